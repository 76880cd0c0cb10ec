"""The built-in problems: graphs, NumPy twins and analytic derivatives agree with dense PyTensor."""

from __future__ import annotations

import numpy as np
import pytensor
import pytest
from pytensor.gradient import hessian, jacobian

from sparsediff import problems

SMALL = [
    problems.fd1d(7),
    problems.bratu2d(4, 3),
    problems.bratu2d(3, lam_as_parameter=True, lam=2.5),
    problems.brusselator2d(4),
    problems.brusselator2d(6, A=1.0, B=1.0, alpha0=1.0, dx=1.0),
    problems.energy2d(4),
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
    J = problem.jacobian(problem.x0 + 0.3)
    assert ((J != 0).toarray() <= P.toarray()).all()


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
