"""The built-in problems: graphs, NumPy twins and analytic derivatives agree with dense PyTensor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytensor
import pytest
import scipy.sparse as sp
from pytensor.gradient import hessian, jacobian

import sparsediff as sd
from sparsediff import problems
from tests.coloring.patterns import cavity2d as cavity_stencil

SMALL = [
    problems.fd1d(7),
    problems.bratu2d(4, 3),
    problems.bratu2d(3, lam_as_parameter=True, lam=2.5),
    problems.brusselator2d(4),
    problems.brusselator2d(6, A=1.0, B=1.0, alpha0=1.0, dx=1.0),
    problems.energy2d(4),
    problems.energy2d(3, nonlinearity="quartic"),
    problems.cavity2d(5, 4),
    problems.cavity2d(2, 3, R=10.0),
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
    # 13 per row, less 5 per rim point and side (2 rows deep), the 4 corner diagonals counted twice
    assert problems.cavity2d(10).pattern().nnz == 13 * 100 - 4 * 5 * 10 + 4
    P = problems.dense_row_col(10).pattern()
    assert P[9].nnz == 10 and P[:, [9]].nnz == 10


def test_registry_names_every_constructor():
    assert set(problems.PROBLEMS) == {
        "fd1d",
        "bratu2d",
        "brusselator2d",
        "energy2d",
        "cavity2d",
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
    assert P.nnz <= (13 if name == "cavity2d" else 6) * problem.m + problem.n
    r = problem.residual_numpy(problem.x0)
    assert np.ndim(r) == (0 if problem.kind == "hessian" else 1)


# --- the driven cavity -----------------------------------------------------------------------


def _dfdcfj(nx: int, ny: int, R: float, x: np.ndarray) -> np.ndarray:
    """MINPACK-2's ``dfdcfj`` function evaluation, line by line (point loops, small grids only):
    the reference the padded-array formulation is checked against."""
    hx, hy = 1 / (nx + 1), 1 / (ny + 1)
    hx2, hy2 = hx * hx, hy * hy
    f = np.zeros(nx * ny)
    for j in range(1, ny + 1):
        for i in range(1, nx + 1):
            k = (j - 1) * nx + i - 1

            def at(off, k=k):
                return x[k + off]

            pbl = 0.0 if j == 1 or i == 1 else at(-nx - 1)
            pb, pbb = (
                (0.0, at(0)) if j == 1 else (at(-nx), 0.0) if j == 2 else (at(-nx), at(-2 * nx))
            )
            pbr = 0.0 if j == 1 or i == nx else at(-nx + 1)
            pl, pll = (0.0, at(0)) if i == 1 else (at(-1), 0.0) if i == 2 else (at(-1), at(-2))
            p = at(0)
            pr, prr = (at(1), 0.0) if i == nx - 1 else (0.0, at(0)) if i == nx else (at(1), at(2))
            ptl = 0.0 if j == ny or i == 1 else at(nx - 1)
            if j == ny - 1:
                pt, ptt = at(nx), 0.0
            elif j == ny:
                pt, ptt = 0.0, at(0) + 2 * hy
            else:
                pt, ptt = at(nx), at(2 * nx)
            ptr = 0.0 if j == ny or i == nx else at(nx + 1)
            dpdy, dpdx = (pt - pb) / (2 * hy), (pr - pl) / (2 * hx)
            pblap = (pbr - 2 * pb + pbl) / hx2 + (p - 2 * pb + pbb) / hy2
            pllap = (p - 2 * pl + pll) / hx2 + (ptl - 2 * pl + pbl) / hy2
            plap = (pr - 2 * p + pl) / hx2 + (pt - 2 * p + pb) / hy2
            prlap = (prr - 2 * pr + p) / hx2 + (ptr - 2 * pr + pbr) / hy2
            ptlap = (ptr - 2 * pt + ptl) / hx2 + (ptt - 2 * pt + p) / hy2
            value = (prlap - 2 * plap + pllap) / hx2 + (ptlap - 2 * plap + pblap) / hy2
            value -= R * (dpdy * (prlap - pllap) / (2 * hx) - dpdx * (ptlap - pblap) / (2 * hy))
            f[k] = hx2 * hy2 * value
    return f


@pytest.mark.parametrize("nx, ny, R", [(6, 5, 100.0), (3, 7, 250.0), (2, 2, 1.0)])
def test_cavity_is_minpack2_dfdcfj(nx, ny, R):
    problem = problems.cavity2d(nx, ny, R=R)
    x = np.random.default_rng(2).uniform(-1.0, 1.0, problem.n)
    expected = _dfdcfj(nx, ny, R, x)
    fn = pytensor.function([problem.x], problem.expression, mode="FAST_COMPILE")
    np.testing.assert_allclose(problem.residual_numpy(x), expected, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(fn(x), expected, rtol=1e-12, atol=1e-13)
    # the lid drives the flow: at ψ = 0 only the rows next to it are nonzero
    f0 = _dfdcfj(nx, ny, R, np.zeros(problem.n)).reshape(ny, nx)
    np.testing.assert_allclose(problem.residual_numpy(problem.x0).reshape(ny, nx), f0)
    assert np.abs(f0[-1]).min() > 0 and (ny < 3 or not f0[: ny - 2].any())


def test_cavity_pattern_is_the_13_point_stencil_and_needs_13_colors():
    problem = problems.cavity2d(30, 20)
    P = problem.pattern()
    assert (P != cavity_stencil(30, 20)).nnz == 0
    assert (sd.jacobian_sparsity(problem.expression, problem.x) != P).nnz == 0
    assert sd.color(P, kind="column").n_colors == 13  # (i + 5j) mod 13, after improvement


@pytest.mark.parametrize("mode", ["FAST_COMPILE", "CVM"])
def test_cavity_sparse_jacobian_matches_dense(mode):
    problem = problems.cavity2d(9, 8, R=50.0)
    x = np.random.default_rng(3).uniform(-0.5, 0.5, problem.n)
    plan = sd.jacobian_plan(problem.expression, problem.x)
    assert 13 <= plan.n_colors <= 14  # a 9×8 grid is too small for (i + 5j) mod 13 to be found
    dense = jacobian(problem.expression, problem.x, vectorize=True)
    fn = pytensor.function([problem.x], [plan.build(), dense], mode=mode)
    J, J_dense = fn(x)
    assert sp.issparse(J)
    np.testing.assert_allclose(J.toarray(), J_dense, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(problem.jacobian(x).toarray(), J_dense, rtol=1e-11, atol=1e-11)


def test_cavity_jacobian_against_central_differences():
    """Independent of PyTensor's AD: the residual is quadratic, so central differences of the
    NumPy twin are exact up to rounding."""
    problem = problems.cavity2d(7, 6, R=80.0)
    x = np.random.default_rng(4).uniform(-1.0, 1.0, problem.n)
    J = problem.jacobian(x).toarray()
    eps = 1e-3
    for col in (0, 8, problem.n // 2, problem.n - 1):
        e = np.zeros(problem.n)
        e[col] = eps
        fd = (problem.residual_numpy(x + e) - problem.residual_numpy(x - e)) / (2 * eps)
        np.testing.assert_allclose(J[:, col], fd, rtol=1e-8, atol=1e-10)


def test_cavity_rejects_tiny_grids():
    with pytest.raises(ValueError, match="2×2"):
        problems.cavity2d(1, 5)
