"""The built-in problems: graphs, NumPy twins and analytic derivatives agree with dense PyTensor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytensor
import pytest
import scipy.sparse as sp
from pytensor.gradient import hessian, jacobian

from sparsediff import problems

SMALL = [
    problems.fd1d(7),
    problems.bratu2d(4, 3),
    problems.bratu2d(3, lam_as_parameter=True, lam=2.5),
    problems.brusselator2d(4),
    problems.brusselator2d(6, A=1.0, B=1.0, alpha0=1.0, dx=1.0),
    problems.energy2d(4),
    problems.energy2d(3, nonlinearity="quartic"),
    problems.rectangular(6),
    problems.dense_row_col(6),
]


@pytest.mark.parametrize("problem", SMALL, ids=[p.name for p in SMALL])
def test_analytic_derivative_matches_dense_pytensor(problem):
    rng = np.random.default_rng(0)
    x = problem.x0 + rng.uniform(0.1, 0.5, size=problem.n)
    if problem.kind == "hessian":
        dense = hessian(problem.expression, problem.x)
    else:
        dense = jacobian(problem.expression, problem.x, vectorize=True)
    inputs = [problem.x, *problem.params]
    fn = pytensor.function(inputs, [problem.expression, dense], mode="FAST_COMPILE")
    value, dense_value = fn(x, *problem.param_values)
    np.testing.assert_allclose(problem.residual_numpy(x), value, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(problem.jacobian(x).toarray(), dense_value, rtol=1e-12, atol=1e-12)
    assert problem.jacobian(x).shape == (problem.m, problem.n)


@pytest.mark.parametrize("problem", SMALL, ids=[p.name for p in SMALL])
def test_pattern_is_the_analytic_structure(problem):
    P = problem.pattern()
    assert P.dtype == bool and P.shape == (problem.m, problem.n)
    assert P.has_sorted_indices and P.data.all()
    J = problem.jacobian(problem.x0 + np.random.default_rng(1).uniform(0.1, 0.2, problem.n))
    np.testing.assert_array_equal((J != 0).toarray(), P.toarray())


def test_known_structures():
    assert problems.bratu2d(7, 6).pattern().nnz == 5 * 42 - 2 * 7 - 2 * 6
    assert problems.brusselator2d(6).pattern().nnz == 432
    assert problems.fd1d(10).pattern().nnz == 28
    P = problems.dense_row_col(10).pattern()
    assert P[9].nnz == 10 and P[:, [9]].nnz == 10


def test_registry_names_every_constructor():
    assert set(problems.PROBLEMS) == {
        "fd1d",
        "bratu2d",
        "brusselator2d",
        "energy2d",
        "rectangular",
        "dense_row_col",
    }


def test_brusselator_matches_sparseconnectivitytracer_reference():
    """SparseConnectivityTracer.jl's N = 6 pattern (Julia order, MIT licence: tests/data)."""
    ref = np.load(Path(__file__).parent / "data" / "sct_Brusselator_N6_jacobian_pattern.npz")
    shape = tuple(int(s) for s in ref["shape"])
    P_ref = sp.csr_array(
        (np.ones(len(ref["rows"]), dtype=bool), (ref["rows"], ref["cols"])), shape=shape
    )
    for problem in (
        problems.brusselator2d(6, A=1.0, B=1.0, alpha0=1.0, dx=1.0),
        problems.brusselator2d(6),
    ):
        P = problem.pattern()
        assert P.shape == shape and P.nnz == 432
        assert (P != P_ref).nnz == 0


def test_brusselator_trap_at_the_initial_condition():
    """u = 0 on a grid line of the DiffEq start: value zeros, yet structural nonzeros."""
    problem = problems.brusselator2d(8)
    J = problem.jacobian(problem.x0)
    J.eliminate_zeros()
    P = problem.pattern()
    assert J.nnz < P.nnz == 12 * 64
    assert ((J != 0).toarray() <= P.toarray()).all()


def test_bratu_parameter_variant_agrees_with_constant():
    fixed = problems.bratu2d(5, lam=3.0)
    param = problems.bratu2d(5, lam=3.0, lam_as_parameter=True)
    assert len(param.params) == 1 and len(param.param_values) == 1
    x = fixed.x0 + 0.1
    np.testing.assert_allclose(fixed.residual_numpy(x), param.residual_numpy(x, np.array(3.0)))
    assert abs(fixed.jacobian(x) - param.jacobian(x, np.array(3.0))).max() == 0
    np.testing.assert_allclose(
        problems.bratu2d(5, lam=1.0).residual_numpy(x), param.residual_numpy(x, np.array(1.0))
    )


def test_bratu_start_is_minpack2():
    x0 = problems.bratu2d(4, 3).x0
    assert x0.shape == (12,) and x0.min() > 0 and x0.max() < 5.0 / 6.0


@pytest.mark.parametrize("name", sorted(problems.PROBLEMS))
def test_from_size_and_large_patterns_are_cheap(name):
    problem = problems.from_size(name, 200_000)
    assert 0.8 * 200_000 <= problem.n <= 1.2 * 200_000
    P = problem.pattern()
    assert P.shape == (problem.m, problem.n)
    assert P.nnz <= 6 * problem.m + problem.n
    r = problem.residual_numpy(problem.x0)
    assert np.ndim(r) == (0 if problem.kind == "hessian" else 1)
