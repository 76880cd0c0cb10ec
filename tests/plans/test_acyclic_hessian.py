"""Hessians from an acyclic coloring (substitution): sparse == dense on every backend."""

from __future__ import annotations

import importlib

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from pytensor.gradient import hessian as dense_hessian

import sparsediff as sd
from sparsediff import ColoringError
from sparsediff.decompression.substitution import Substitute


def banded_cost(n: int, beta: int):
    """Couples x[i] and x[i+k] for k ≤ beta: a banded Hessian with 2·beta off-diagonal bands."""
    x = pt.vector("x", shape=(n,))
    cost = (x**4).sum()
    for k in range(1, beta + 1):
        cost += (pt.sin(x[k:]) * pt.cos(x[:-k]) + x[k:] ** 2 * x[:-k] ** 2).sum()
    return cost, x


def energy2d(N: int):
    x = pt.vector("x", shape=(N * N,))
    u = x.reshape((N, N))
    cost = ((u[1:] - u[:-1]) ** 2).sum() + ((u[:, 1:] - u[:, :-1]) ** 2 * u[:, 1:]).sum()
    return cost + pt.exp(x).sum(), x


def arrow_cost(n: int):
    x = pt.vector("x", shape=(n,))
    return (x[:-1] ** 2 * pt.exp(x[-1])).sum() + (x**3).sum(), x


def _check(cost, x, backend="CVM", seed=0, **kwargs):
    xv = np.random.default_rng(seed).uniform(-0.6, 0.8, x.type.shape)
    H = sd.hessian(cost, x, dense=False, **kwargs)
    got = pytensor.function([x], H, mode=backend)(xv)
    if backend == "JAX":
        got = sp.csr_array(np.asarray(got.todense()))
    ref = pytensor.function([x], dense_hessian(cost, x), mode="FAST_COMPILE")(xv)
    ref = ref.reshape(got.shape)
    scale = max(np.abs(ref).max(), 1.0)
    assert np.abs(got.toarray() - ref).max() <= 1e-12 * scale
    assert (abs(got - got.T) > 0).nnz == 0  # exactly symmetric
    return got


@pytest.mark.parametrize("rho", [2, 4, 6])
def test_banded_acyclic_colors_and_values(rho):
    cost, x = banded_cost(30, rho // 2)
    plan = sd.hessian_plan(cost, x, kind="acyclic", dense=False)
    assert plan.kind == "acyclic" and plan.n_colors == rho // 2 + 1
    # fewer colors, but not half of star's: auto keeps the direct (gather) recovery
    auto = sd.hessian_plan(cost, x, dense=False)
    assert auto.kind == "star" and auto.n_colors == rho + 1
    _check(cost, x, kind="acyclic")


def test_auto_takes_acyclic_when_it_saves_enough(monkeypatch):
    hessian_module = importlib.import_module("sparsediff.plans.hessian")

    cost, x = banded_cost(30, 3)  # star 7 colors, acyclic 4
    assert sd.hessian_plan(cost, x, dense=False).kind == "star"
    monkeypatch.setattr(hessian_module, "AUTO_ACYCLIC_FRACTION", 0.6)
    plan = sd.hessian_plan(cost, x, dense=False)
    assert plan.kind == "acyclic" and (plan.n_colors, plan.n_colors_star) == (4, 7)
    monkeypatch.setattr(hessian_module, "AUTO_ACYCLIC_MIN_STAR", 8)
    plan = sd.hessian_plan(cost, x, dense=False)  # acyclic not even computed
    assert plan.kind == "star" and plan.n_colors_acyclic is None


@pytest.mark.parametrize("kind", ["star", "acyclic", "auto"])
@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_kinds_agree_with_dense(kind, fmt):
    cost, x = energy2d(5)
    got = _check(cost, x, kind=kind, format=fmt)
    assert got.format == fmt
    cost, x = arrow_cost(12)
    _check(cost, x, kind=kind, format=fmt)


def test_auto_prefers_star_on_a_tie(monkeypatch):
    hessian_module = importlib.import_module("sparsediff.plans.hessian")

    monkeypatch.setattr(hessian_module, "AUTO_ACYCLIC_FRACTION", 1.0)
    monkeypatch.setattr(hessian_module, "AUTO_ACYCLIC_MIN_STAR", 0)
    cost, x = arrow_cost(12)  # an arrowhead: star and acyclic both need 2 colors
    plan = sd.hessian_plan(cost, x, dense=False)
    assert plan.n_colors_star == plan.n_colors_acyclic == 2 and plan.kind == "star"


def test_coloring_argument_selects_the_kind():
    cost, x = banded_cost(20, 2)
    plan = sd.hessian_plan(cost, x, coloring="acyclic", dense=False)
    assert plan.kind == "acyclic" and plan.schedule is not None and plan.positions is None
    c = sd.color(plan.pattern, kind="acyclic")
    again = sd.hessian_plan(cost, x, coloring=c)
    assert again.kind == "acyclic" and again.n_colors == 3
    arr = sd.hessian_plan(cost, x, coloring=np.arange(20) % 3, kind="acyclic")
    assert arr.kind == "acyclic"
    _check(cost, x, coloring=np.arange(20) % 3, kind="acyclic")
    blocks = sd.hessian_plan(cost, [x], coloring="acyclic", dense=False)
    assert blocks[0].kind == "acyclic"


def test_bad_input_gives_clear_errors():
    cost, x = banded_cost(12, 1)
    # a 2-coloring of a path is acyclic, of a path closed into a cycle it is not
    with pytest.raises(ColoringError, match="adjacent vertices"):
        sd.hessian_plan(cost, x, coloring=np.zeros(12, int), kind="acyclic")
    ring = np.eye(12, dtype=bool) | np.eye(12, k=1, dtype=bool) | np.eye(12, k=-1, dtype=bool)
    ring[0, 11] = ring[11, 0] = True
    with pytest.raises(ColoringError, match="cycle"):
        sd.hessian_plan(cost, x, sparsity=ring, coloring=np.arange(12) % 2, kind="acyclic")
    with pytest.raises(ValueError, match="unknown kind"):
        sd.hessian_plan(cost, x, kind="greedy")
    with pytest.raises(ValueError, match="kind='star' but the coloring given is 'acyclic'"):
        sd.hessian_plan(cost, x, kind="star", coloring=sd.color(np.eye(12), "acyclic"))
    with pytest.raises(ValueError, match="star or acyclic coloring, got kind 'column'"):
        sd.hessian_plan(cost, x, coloring=sd.color(np.eye(12), "column"))


def test_substitution_has_no_gradient():
    cost, x = banded_cost(10, 1)
    H = sd.hessian(cost, x, kind="acyclic", dense=False)
    nodes = [n for n in pytensor.graph.traversal.ancestors([H]) if n.owner is not None]
    assert any(isinstance(n.owner.op, Substitute) for n in nodes)
    with pytest.raises(NotImplementedError, match="kind='star'"):
        pytensor.grad(pt.sum(pytensor.sparse.dense_from_sparse(H)), x)


@settings(max_examples=10, deadline=None)
@given(M=st.integers(3, 9).flatmap(lambda n: hnp.arrays(np.bool_, (n, n), elements=st.booleans())))
def test_random_patterns_sparse_equals_dense(M):
    """cost = Σ W ∘ (x xᵀ)² + Σ exp(x): the Hessian pattern is W ∪ Wᵀ plus the diagonal."""
    n = M.shape[0]
    W = (M | M.T) * (1.0 + np.arange(n * n).reshape(n, n) / (n * n))
    x = pt.vector("x", shape=(n,))
    cost = (W * pt.outer(x, x) ** 2).sum() + pt.exp(x).sum()
    _check(cost, x, backend="FAST_COMPILE", kind="acyclic")


@pytest.mark.numba
def test_acyclic_numba_backend():
    cost, x = banded_cost(25, 3)
    _check(cost, x, backend="NUMBA", kind="acyclic")


@pytest.mark.jax
def test_acyclic_jax_backend():
    pytest.importorskip("jax")
    cost, x = banded_cost(25, 3)
    _check(cost, x, backend="JAX", kind="acyclic")
