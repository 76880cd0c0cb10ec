"""Newton's method (sd.newton / sd.NewtonSolver): convergence, options and bad input."""

import re

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
import scipy.sparse as sp

import sparsediff as sd
from sparsediff.linalg import factor_stats
from sparsediff.problems import bratu2d
from sparsediff.solvers.newton import LINESEARCH, MAXITER, NONFINITE, NOT_SQUARE, SINGULAR

MODE = "CVM"


def test_bratu_small_converges():
    p = bratu2d(8)
    res = sd.newton(p.expression, p.x, x0=p.x0, mode=MODE)
    assert res.success, res.message
    assert res.status == 0
    assert 1 <= res.nit <= 6
    assert res.norm <= 1e-8
    assert np.linalg.norm(p.residual_numpy(np.ravel(res.x))) <= 1e-8
    assert res.x.shape == (64,)
    assert len(res.history) == res.nit + 1
    assert [h["iteration"] for h in res.history] == list(range(res.nit + 1))
    for key in ("plan", "build", "compile", "evaluate", "linear_solve", "total"):
        assert res.timings[key] >= 0
    # A full Newton step costs one call of the compiled [F, J] function.
    assert res.nfev == res.nit + 1


def test_nonlinear_system_with_parameters():
    n = 30
    x = pt.vector("x", shape=(n,))
    a = pt.scalar("a")
    b = pt.vector("b", shape=(n,))
    xp = pt.concatenate([[0.0], x, [0.0]])
    F = x**3 + a * x - 0.3 * (xp[:-2] + xp[2:]) - b
    solver = sd.NewtonSolver(F, x, [a, b], mode=MODE)
    rng = np.random.default_rng(0)
    for a_value in (1.0, 2.5):
        b_value = rng.normal(size=n)
        res = solver.solve(np.zeros(n), [a_value, b_value], tol=1e-11)
        assert res.success, res.message
        z = np.concatenate([[0.0], res.x, [0.0]])
        r = res.x**3 + a_value * res.x - 0.3 * (z[:-2] + z[2:]) - b_value
        assert np.abs(r).max() < 1e-11


def test_bratu_lambda_parameter_and_verbose_log(capsys):
    p = bratu2d(6, lam_as_parameter=True)
    res = sd.newton(
        p.expression,
        p.x,
        p.params,
        x0=p.x0,
        param_values=[np.asarray(3.0)],
        verbose=True,
        mode=MODE,
    )
    assert res.success
    assert np.linalg.norm(p.residual_numpy(res.x, 3.0)) <= 1e-8
    out = capsys.readouterr().out
    assert "‖F‖" in out and "step" in out and "converged" in out
    assert len([line for line in out.splitlines() if line.strip()[:1].isdigit()]) == res.nit + 1


@pytest.mark.parametrize("linear_solver", ["spsolve", "gmres", "bicgstab", "lgmres"])
def test_linear_solvers(linear_solver):
    p = bratu2d(7)
    res = sd.newton(p.expression, p.x, x0=p.x0, linear_solver=linear_solver, mode=MODE)
    assert res.success, res.message
    assert np.linalg.norm(p.residual_numpy(res.x)) <= 1e-8


def test_callable_linear_solver_gets_sparse_matrix():
    p = bratu2d(5)
    seen = []

    def solve(J, b):
        seen.append(J)
        return sp.linalg.spsolve(sp.csc_matrix(J), b)

    res = sd.newton(p.expression, p.x, x0=p.x0, linear_solver=solve, mode=MODE)
    assert res.success
    assert seen and all(sp.issparse(J) for J in seen)
    np.testing.assert_allclose(seen[0].toarray(), p.jacobian(p.x0).toarray(), rtol=1e-12)


def test_line_search_backtracks_over_nan():
    x = pt.vector("x", shape=(1,))
    # From x = 3 the full Newton step lands at x < 0, where log is NaN: backtrack.
    res = sd.newton(pt.log(x), x, x0=np.array([3.0]), mode=MODE)
    assert res.success, res.message
    np.testing.assert_allclose(res.x, [1.0], atol=1e-8)
    assert res.history[1]["step"] < 1


# --------------------------------------------------------------------------------------------
# bad input: a clear message, never a raw traceback from deep inside
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("m", [2, 4])
def test_non_square_system_gives_a_failed_result(m):
    x = pt.vector("x", shape=(3,))
    F = pt.concatenate([x**2, x[:1]])[:m] - 1.0
    res = sd.newton(F, x, x0=np.zeros(3), mode=MODE)
    assert not res.success
    assert res.status == NOT_SQUARE
    assert re.search(rf"square system.*{m} equations.*3 unknowns.*least_squares", res.message)
    assert res.nit == 0 and res.x.shape == (3,)
    # The solver object, built explicitly, refuses it up front.
    with pytest.raises(ValueError, match="square system"):
        sd.NewtonSolver(F, x, mode=MODE)


def test_wrong_x0_and_options():
    p = bratu2d(3)
    with pytest.raises(ValueError, match="x0 has 4 entries"):
        sd.newton(p.expression, p.x, x0=np.zeros(4), mode=MODE)
    with pytest.raises(ValueError, match="unknown linear_solver"):
        sd.newton(p.expression, p.x, x0=p.x0, linear_solver="magic", mode=MODE)
    with pytest.raises(ValueError, match="param_values"):
        sd.newton(p.expression, p.x, x0=p.x0, param_values=[1.0], mode=MODE)


def test_singular_jacobian():
    x = pt.vector("x", shape=(2,))
    F = pt.stack([x[0] + x[1], 2 * (x[0] + x[1]) - 1])  # rank one everywhere
    res = sd.newton(F, x, x0=np.zeros(2), mode=MODE)
    assert not res.success
    assert res.status == SINGULAR
    assert "singular" in res.message
    assert res.x.shape == (2,)


def test_singular_jacobian_at_a_point():
    x = pt.vector("x", shape=(3,))
    res = sd.newton(x**2 - 1, x, x0=np.zeros(3), mode=MODE)
    assert res.status == SINGULAR and "singular at iteration 0" in res.message


def test_non_convergence_maxiter():
    p = bratu2d(6)
    res = sd.newton(p.expression, p.x, x0=p.x0, maxiter=1, tol=1e-14, mode=MODE)
    assert not res.success
    assert res.status == MAXITER
    assert "maxiter = 1" in res.message
    assert res.nit == 1


def test_no_solution_line_search_fails():
    x = pt.vector("x", shape=(1,))
    # x² + 1 has no real root: Newton stalls; reported, not raised.
    res = sd.newton(x**2 + 1, x, x0=np.array([0.7]), maxiter=100, mode=MODE)
    assert not res.success
    assert res.status in (SINGULAR, LINESEARCH, MAXITER)
    assert res.message


def test_nan_at_start():
    x = pt.vector("x", shape=(2,))
    res = sd.newton(pt.log(x) - 1, x, x0=np.array([1.0, -1.0]), mode=MODE)
    assert not res.success
    assert res.status == NONFINITE
    assert "NaN" in res.message and "starting point" in res.message
    res = sd.newton(pt.log(x) - 1, x, x0=np.array([1.0, np.nan]), mode=MODE)
    assert res.status == NONFINITE and "x0" in res.message


def test_nan_during_the_iteration():
    """Without a line search, a step into log's domain boundary: NaN in F, reported."""
    x = pt.vector("x", shape=(1,))
    res = sd.newton(pt.log(x) - 1, x, x0=np.array([10.0]), line_search=False, mode=MODE)
    assert not res.success
    assert res.status == NONFINITE
    assert "F has 1 NaN or inf entries at iteration 1" in res.message


def test_newton_factors_through_the_linalg_layer_with_a_weak_diagonal():
    """Equations listed out of variable order (a zero diagonal, as in stacked DSGE systems):
    the default "splu" goes through sparsediff.linalg.factorize, which picks its ordering per
    pattern, and the solve converges to the solution of the ordered system."""
    n = 60
    x = pt.vector("x", shape=(n,))
    xp = pt.concatenate([[0.0], x, [0.0]])
    F = xp[:-2] - 2.5 * x + xp[2:] + 0.1 * pt.tanh(x) - 1.0
    order = np.roll(np.arange(n), n // 2)  # a permutation with no fixed point
    before = factor_stats()["factorizations"]
    res = sd.newton(F[order], x, x0=np.zeros(n), tol=1e-12, mode="FAST_COMPILE")
    ref = sd.newton(F, x, x0=np.zeros(n), tol=1e-12, mode="FAST_COMPILE")
    assert res.success and ref.success
    np.testing.assert_allclose(res.x, ref.x, rtol=1e-10, atol=1e-12)
    assert factor_stats()["factorizations"] - before >= res.nit + ref.nit


def _stacked_system(T: int = 40, k: int = 6):
    """T periods of a nonlinear k-equation block coupled to t-1 and t+1, the equations of each
    period listed out of variable order (a zero diagonal: gEconpy's perfect-foresight layout)."""
    rng = np.random.default_rng(3)
    perm = np.roll(np.arange(k), 1)
    C = 0.2 * rng.standard_normal((k, k)) * (rng.random((k, k)) < 0.3) + 3 * np.eye(k)[perm]
    P, N = 0.3 * rng.standard_normal((k, k)), 0.2 * rng.standard_normal((k, k))
    x = pt.vector("x", shape=(T * k,))
    X = x.reshape((T, k))
    Xp = pt.concatenate([pt.zeros((1, k)), X[:-1]])
    Xn = pt.concatenate([X[1:], pt.zeros((1, k))])
    F = (X @ C.T + pt.tanh(Xp) @ P.T + 0.1 * Xn**2 @ N.T - 0.3).ravel()
    return F, x


def test_ordering_analysis_runs_once_per_solve_and_is_reported():
    from sparsediff.linalg import factor as FL

    F, x = _stacked_system()
    n = x.type.shape[0]
    FL._LU_ANALYSES.clear()
    solver = sd.NewtonSolver(F, x, mode="FAST_COMPILE")
    before = factor_stats()
    res = solver.solve(np.zeros(n), tol=1e-12)
    assert res.success, res.message
    assert res.nit >= 2
    info = res.factorization
    assert info["analyses"] == 1 and info["auto"]
    assert factor_stats()["lu_analyses"] == before["lu_analyses"] + 1
    assert factor_stats()["factorizations"] - before["factorizations"] >= res.nit
    assert info["pivoting"].startswith("diagonal") and info["row_matching"] is not None
    predicted = {k: v for k, v in info["predicted"].items() if isinstance(v, int)}
    assert info["ordering"] in predicted and predicted[info["ordering"]] == min(predicted.values())
    # the solution against a dense Newton iteration with NumPy's solve
    f = pytensor.function([x], [F, pytensor.gradient.jacobian(F, x)], mode="FAST_COMPILE")
    z = np.zeros(n)
    for _ in range(30):
        r, J = f(z)
        z = z - np.linalg.solve(J, r)
    np.testing.assert_allclose(res.x, z, rtol=1e-9, atol=1e-11)
    again = solver.solve(np.full(n, 0.1), tol=1e-12)  # same pattern: no new analysis
    assert again.success and again.factorization["analyses"] == 0
    np.testing.assert_allclose(again.x, z, rtol=1e-9, atol=1e-11)


def test_explicit_ordering_and_bad_ordering():
    F, x = _stacked_system(10)
    n = x.type.shape[0]
    solver = sd.NewtonSolver(F, x, mode="FAST_COMPILE")
    ref = solver.solve(np.zeros(n), tol=1e-12)
    for opts in ({"ordering": "NATURAL"}, {"permc_spec": "COLAMD"}, {"diag_pivot_thresh": 0.1}):
        res = solver.solve(np.zeros(n), tol=1e-12, linear_options=opts)
        assert res.success, res.message
        want = opts.get("ordering", opts.get("permc_spec"))
        if want:
            assert res.factorization["ordering"] == want and not res.factorization["auto"]
            assert res.factorization["analyses"] == 0
        else:
            assert res.factorization["pivoting"] == "diagonal (threshold 0.1)"
        np.testing.assert_allclose(res.x, ref.x, rtol=1e-9, atol=1e-11)
    with pytest.raises(ValueError, match="unknown LU ordering 'magic'"):
        solver.solve(np.zeros(n), linear_options={"ordering": "magic"})
    gm = sd.newton(F, x, x0=np.zeros(n), linear_solver="gmres", mode="FAST_COMPILE")
    assert "factorization" not in gm


def test_optimize_root_reuses_the_ordering_analysis():
    from sparsediff.linalg import factor as FL

    F, x = _stacked_system(15)
    n = x.type.shape[0]
    FL._LU_ANALYSES.clear()
    x_star, ok = sd.optimize.root(F, x, mode="FAST_COMPILE")
    f = pytensor.function([x], [x_star, ok], mode="FAST_COMPILE")
    before = factor_stats()
    value, success = f(np.zeros(n))
    assert success
    assert factor_stats()["lu_analyses"] - before["lu_analyses"] <= 1
    assert factor_stats()["factorizations"] - before["factorizations"] >= 2
    g = pytensor.function([x], F, mode="FAST_COMPILE")
    assert np.abs(g(value)).max() < 1e-8
