"""sd.hessian equals the dense Hessian, through detection and star coloring."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
import scipy.sparse as sp
from pytensor.gradient import hessian as dense_hessian

import sparsediff as sd
from sparsediff import ColoringError
from sparsediff.plans import HessianPlan, hessian, hessian_plan
from tests.jacobian_helpers import (
    RTOL,
)

MODE = "FAST_COMPILE"


def energy2d(N: int):
    """A 2-D energy: Σ (∇u)² / 2 + Σ exp(u) + Σ u⁴ — 5-point Hessian."""
    x = pt.vector("x", shape=(N * N,))
    u = x.reshape((N, N))
    up = pt.pad(u, 1)
    dx = up[1:, 1:-1] - up[:-1, 1:-1]
    dy = up[1:-1, 1:] - up[1:-1, :-1]
    return 0.5 * (dx**2).sum() + 0.5 * (dy**2).sum() + pt.exp(u).sum() + (u**4).sum(), x


def chain(n: int):
    """Rosenbrock-like chain: tridiagonal Hessian."""
    x = pt.vector("x", shape=(n,))
    return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum(), x


def arrowhead(n: int):
    """One variable coupled to all: needs a good order (and star coloring) for few colors."""
    x = pt.vector("x", shape=(n,))
    return (x[0] * x[1:] ** 2).sum() + (pt.sin(x) ** 2).sum(), x


def _dense(cost, x, xv):
    if x.ndim == 1:
        H = dense_hessian(cost, x)
    else:
        g = pytensor.gradient.grad(cost, x).ravel()
        H = pytensor.gradient.jacobian(g, x, vectorize=True).reshape((g.shape[0], -1))
    return pytensor.function([x], H, mode=MODE)(xv)


def _compare(cost, x, xv, **kwargs):
    H = hessian(cost, x, **kwargs)
    out = pytensor.function([x], H, mode=MODE)(xv)
    assert sp.issparse(out)
    ref = _dense(cost, x, xv)
    got = out.toarray()
    assert np.abs(got - ref).max() <= RTOL * max(np.abs(ref).max(), 1.0)
    np.testing.assert_array_equal(got, got.T)
    return out


@pytest.mark.parametrize("method", ["auto", "forward-over-reverse", "reverse-over-reverse"])
@pytest.mark.parametrize(
    "problem", [(energy2d, 5), (chain, 12), (arrowhead, 10)], ids=["energy2d", "chain", "arrow"]
)
def test_matches_dense(problem, method):
    builder, size = problem
    cost, x = builder(size)
    xv = np.random.default_rng(0).uniform(-0.5, 0.8, x.type.shape)
    _compare(cost, x, xv, method=method, dense=False)


def test_plan_and_repr():
    cost, x = energy2d(6)
    auto = hessian_plan(cost, x)
    # the 5-point stencil: acyclic would need 4 colors, star 5: not enough to pay for
    # substitution, auto keeps star (and does not compute acyclic)
    assert auto.kind == "star" and auto.n_colors == 5
    acyclic = hessian_plan(cost, x, kind="acyclic")
    assert acyclic.n_colors == 4 and "acyclic" in repr(acyclic)
    plan = hessian_plan(cost, x, kind="star")
    assert isinstance(plan, HessianPlan) and not plan.dense
    assert plan.pattern.shape == (36, 36)
    assert (plan.pattern != plan.pattern.T).nnz == 0
    # the most nonzeros in a row (5) bounds column colorings, not star ones: the bound is 3
    assert plan.lower_bound == 3 and plan.n_colors >= 5
    plan.build()
    assert plan.method_used in ("forward-over-reverse", "reverse-over-reverse")
    assert set(plan.costs) == {"forward-over-reverse", "reverse-over-reverse"}
    text = repr(plan)
    assert "36×36" in text and "star" in text and plan.method_used in text


def test_matrix_wrt_and_list_wrt():
    x = pt.matrix("x", shape=(3, 4))
    y = pt.vector("y", shape=(5,))
    cost = (pt.exp(x) * x[::-1]).sum() + (y[1:] * y[:-1]).sum() * x[0, 0]
    rng = np.random.default_rng(2)
    xv = rng.uniform(-1, 1, (3, 4))
    _compare((pt.exp(x) * x[::-1]).sum() + (x[1:] * x[:-1]).sum(), x, xv, dense=False)
    Hx, Hy = hessian(cost, [x, y], dense=False)
    fn = pytensor.function([x, y], [Hx, Hy], mode=MODE, on_unused_input="ignore")
    yv = rng.uniform(-1, 1, 5)
    hx, hy = fn(xv, yv)
    ref_y = pytensor.function([x, y], dense_hessian(cost, y), mode=MODE)(xv, yv)
    np.testing.assert_allclose(hy.toarray(), ref_y, rtol=1e-12, atol=1e-14)
    assert hx.shape == (12, 12)


def test_known_sparsity_and_coloring_and_csc():
    cost, x = chain(9)
    pattern = sp.diags_array([1.0, 1.0, 1.0], offsets=[-1, 0, 1], shape=(9, 9))
    plan = hessian_plan(cost, x, sparsity=pattern, coloring=np.arange(9) % 3, format="csc")
    assert plan.n_colors == 3 and "detection" not in plan.timings
    out = pytensor.function([x], plan.build(), mode=MODE)(np.linspace(-1, 1, 9))
    assert out.format == "csc"
    ref = _dense(cost, x, np.linspace(-1, 1, 9))
    np.testing.assert_allclose(out.toarray(), ref, rtol=1e-12, atol=1e-12)


def test_dense_path():
    x = pt.vector("x", shape=(3,))
    cost = (pt.outer(x, x) ** 2).sum() * pt.exp(x[0])
    plan = hessian_plan(cost, x)
    assert plan.dense and "dense" in repr(plan)
    _compare(cost, x, np.array([0.1, 0.2, 0.3]))


def test_errors():
    x = pt.vector("x", shape=(6,))
    with pytest.raises(ValueError, match="scalar cost"):
        hessian_plan(pt.exp(x), x)
    with pytest.raises(ValueError, match="symmetric"):
        hessian_plan(x.sum(), x, sparsity=np.triu(np.ones((6, 6), bool)))
    cost, y = chain(6)
    with pytest.raises(ColoringError, match="invalid star coloring"):
        hessian_plan(cost, y, coloring=np.arange(6) % 2, dense=False)
    with pytest.raises(ValueError, match="unknown method"):
        hessian_plan(cost, y, method="sideways")
    with pytest.raises(ValueError, match="no static shape"):
        hessian_plan(cost, pt.vector("z"))


def test_public_api():
    assert sd.hessian is hessian and sd.hessian_plan is hessian_plan


@pytest.mark.parametrize("nonlinearity", ["exp", "quartic"])
@pytest.mark.parametrize(("kind", "n_colors"), [("star", 5), ("acyclic", 4), ("auto", 5)])
def test_energy2d_problem_matches_analytic_hessian(nonlinearity, kind, n_colors):
    from sparsediff import problems as P

    prob = P.energy2d(9, nonlinearity)
    plan = hessian_plan(prob.expression, prob.x, kind=kind)
    # the acyclic coloring of the 5-point stencil needs 4 colors, star 5 (auto keeps star)
    assert (plan.pattern != prob.pattern()).nnz == 0 and plan.n_colors == n_colors
    x = np.random.default_rng(0).uniform(-0.5, 0.5, prob.n)
    got = pytensor.function([prob.x], plan.build(), mode=MODE)(x)
    ref = prob.hessian(x).toarray()
    assert np.abs(got.toarray() - ref).max() <= 1e-12 * np.abs(ref).max()
