"""Detection of low-rank couplings (sparsity/lowrank): which reductions are cut, which are not."""

import warnings

import numpy as np
import pytensor.tensor as pt
import pytest

import sparsediff as sd
from sparsediff.sparsity.lowrank import LowRankHint, default_min_coupling, find_couplings
from tests.users_graphs import icar


def _names(found):
    return sorted(str(v.owner.op) for v in found.variables)


def test_icar_cuts_the_sum_only():
    cost, x = icar(5)
    found = find_couplings(cost, x)
    assert found.rank == 1 and found.sizes == (1,)
    (u,) = found.variables
    # the soft sum-to-zero's Σx; the likelihood and the prior sums are linear in the cost
    assert "Sum" in str(u.owner.op) and u.owner.inputs[0] is x
    assert not found.cross.any()  # c̃ = ... - ½(ũ/ε)²: no cross term with x


def test_icar_with_hyperparameter_cuts_the_prior_sum_too():
    cost, theta = icar(5, hyper=True)
    found = find_couplings(cost, theta)
    assert found.rank == 2
    # the prior's Σ(xi - xj)² is multiplied by τ = exp(θ_n): a cross term with θ
    assert found.cross.sum() == 1


def test_centering_cuts_the_mean_not_the_likelihood():
    x = pt.vector("x", shape=(40,))
    y = np.linspace(-1, 1, 40)
    cost = -(pt.log1p((y - (x - x.mean())) ** 2)).sum()
    found = find_couplings(cost, x)
    assert found.rank == 1 and found.cross.all()  # x - ũ/n inside a nonlinearity


def test_vector_coupling_from_dot():
    n = 30
    W = np.random.default_rng(0).standard_normal((2, n))
    x = pt.vector("x", shape=(n,))
    cost = -0.5 * (pt.dot(W, x) ** 2).sum() + (x**4).sum()
    found = find_couplings(cost, x)
    assert found.sizes == (2,) and found.rank == 2


@pytest.mark.parametrize(
    "make",
    [
        lambda x: (x**2).sum() + x.sum(),  # linear in the reduction
        lambda x: (pt.exp(x[1:] - x[:-1])).sum(),  # banded, no small intermediate
        lambda x: (x[0] * x).sum(),  # one dense row from an index, not a reduction
    ],
)
def test_no_coupling(make):
    x = pt.vector("x", shape=(50,))
    found = find_couplings(make(x), x)
    assert not found and found.rank == 0


def test_min_coupling_and_max_rank():
    x = pt.vector("x", shape=(40,))
    cost = pt.exp(x[:10].sum()) + pt.exp(x.sum()) + pt.exp((x**2).sum())
    assert default_min_coupling(40) == 16
    found = find_couplings(cost, x)
    assert found.rank == 2  # x[:10].sum() has 10 < 16 nonzeros
    assert find_couplings(cost, x, min_coupling=5).rank == 3
    assert find_couplings(cost, x, max_rank=1).rank == 1


def test_hint_on_the_default_path():
    cost, x = icar(8)  # n = 64: the rank-one term makes the Hessian dense
    with pytest.warns(LowRankHint, match="low_rank=True"):
        sd.hessian(cost, x)
    x2 = pt.vector("x", shape=(64,))
    with warnings.catch_warnings():
        warnings.simplefilter("error", LowRankHint)
        sd.hessian(pt.exp(x2).prod(), x2)  # dense, but the reduction is the cost itself
        sd.hessian((pt.exp(x2[1:] - x2[:-1])).sum(), x2)  # sparse: no hint


def test_hint_silent_for_small_problems():
    cost, x = icar(4)  # n = 16 < HINT_MIN_SIZE
    with warnings.catch_warnings():
        warnings.simplefilter("error", LowRankHint)
        sd.hessian(cost, x)
