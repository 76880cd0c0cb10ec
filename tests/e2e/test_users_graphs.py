"""Real users' graphs in every mode (issue 13): prod, convolutions, constant derivatives, and an
``auto`` mode that never picks what it cannot build. Sparse == dense to 1e-12."""

from __future__ import annotations

import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sparsediff as sd
from sparsediff.compression.forward_rules import ForwardRuleMissing, forward_obstacle, pushforward
from sparsediff.plans.buildable import ModeNotBuildable
from tests import users_graphs as ug
from tests.jacobian_helpers import assert_matches, dense_reference
from tests.sparsity.dense_truth import dense_nonzeros
from tests.users_graphs import FirstOrderOnly, first_order_only

MODES = ["auto", "forward", "reverse", "bidirectional"]


def _compile_check(J, expr, wrt, values, mode="FAST_COMPILE"):
    fn = pytensor.function(wrt, J if isinstance(J, list) else [J], mode=mode)
    assert_matches(fn(*values), dense_reference(expr, wrt, wrt, values))


# --- 1. prod in every mode; auto only among buildable modes ------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_cge_model_every_mode(mode):
    F, x = ug.cge(16)
    plan = sd.jacobian_plan(F, x, mode=mode)
    if mode == "auto":
        assert plan.mode == "bidirectional", plan  # a dense row and a dense column
        assert plan.n_colors < min(plan.n_colors_forward, plan.n_colors_reverse)
    _compile_check(plan.build(), F, [x], [ug.cge_point(x)])


def test_cge_model_c_backend_auto():
    F, x = ug.cge(8)
    _compile_check(sd.jacobian(F, x), F, [x], [ug.cge_point(x)], mode="CVM")


def test_prod_with_zeros_forward_exact():
    """Prod's forward rule uses its own pullback's partials: exact with one or two zeros."""
    x = pt.matrix("x", shape=(3, 4))
    expr = pt.concatenate([pt.prod(x, axis=1), pt.prod(x[:, ::-1] ** 2, axis=0), [x.prod()]])
    xv = np.random.default_rng(0).uniform(0.5, 1.5, (3, 4))
    xv[0, 1] = 0.0  # one zero in row 0
    xv[2, [0, 3]] = 0.0  # two zeros in row 2
    J = sd.jacobian(expr, x, mode="forward", dense=False)
    _compile_check(J, expr, [x], [xv])


def test_prod_hessian_forward_over_reverse():
    """The gradient of prod contains ProdWithoutZeros (no pullback): forward-over-reverse with
    sparsediff's rule builds; PyTensor's dense Hessian cannot, so the reference is the same
    cost with ``no_zeros_in_input=True``, plus central differences of the gradient."""
    x = pt.vector("x", shape=(8,))
    cost = pt.prod(x[:4] ** 2) + (pt.prod(x.reshape((4, 2)), axis=1) ** 2).sum() + pt.sin(x).sum()
    ref = (
        pt.prod(x[:4] ** 2, no_zeros_in_input=True)
        + (pt.prod(x.reshape((4, 2)), axis=1, no_zeros_in_input=True) ** 2).sum()
        + pt.sin(x).sum()
    )
    plan = sd.hessian_plan(cost, x)
    H = pytensor.function([x], plan.build(), mode="FAST_COMPILE")
    assert plan.method_used == "forward-over-reverse"
    xv = np.random.default_rng(1).uniform(0.5, 1.5, 8)
    dense = pytensor.function([x], pytensor.gradient.hessian(ref, x), mode="FAST_COMPILE")(xv)
    got = H(xv).toarray()
    np.testing.assert_allclose(got, dense, rtol=1e-12, atol=1e-12)
    g = pytensor.function([x], pytensor.grad(ref, x), mode="FAST_COMPILE")
    eps = 1e-6
    fd = np.stack([(g(xv + eps * e) - g(xv - eps * e)) / (2 * eps) for e in np.eye(8)], 1)
    np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-6)


def test_auto_excludes_unbuildable_forward_and_says_why():
    x = pt.vector("x", shape=(12,))
    expr = first_order_only(x) + x[::-1]
    plan = sd.jacobian_plan(expr, x, dense=False)
    assert plan.mode == "reverse"
    assert set(plan.excluded) == {"forward", "bidirectional"}
    assert "FirstOrderOnly" in repr(plan) and "excluded" in repr(plan)
    _compile_check(plan.build(), expr, [x], [np.linspace(0.5, 1.5, 12)])
    for mode in ("forward", "bidirectional"):
        with pytest.raises(ModeNotBuildable, match=r"FirstOrderOnly.*mode='reverse'"):
            sd.jacobian_plan(expr, x, mode=mode)
    # the dense path too: a short, wide Jacobian would go forward
    plan = sd.jacobian_plan(first_order_only(x)[:2], x)
    assert plan.dense and plan.mode == "reverse"


def test_forward_obstacle_names_op_and_pushforward_raises():
    x = pt.vector("x", shape=(4,))
    expr = pt.exp(first_order_only(x))
    op, reason = forward_obstacle([expr], [x])
    assert isinstance(op, FirstOrderOnly) and "not differentiable" in reason
    with pytest.raises(ForwardRuleMissing, match="FirstOrderOnly"):
        pushforward([expr], [x], [x.type()])
    assert forward_obstacle([pt.prod(x) * pt.exp(x)], [x]) is None


def test_node_double_pullback_keeps_inputs_apart():
    """y = f(x, exp(x)) through an Op without pushforward: the node's double pullback runs on a
    fresh clone, so the two inputs do not mix."""
    from pytensor.tensor.math import Argmax  # noqa: F401  (an int output in the graph)

    x = pt.vector("x", shape=(5,))
    a = pt.exp(x)
    expr = pt.linalg.solve(pt.diag(a) + pt.eye(5), x)  # Blockwise(Solve): no pushforward
    t = pt.vector("t", shape=(5,))
    (jvp,) = pushforward([expr], [x], [t])
    xv, tv = np.linspace(0.1, 0.9, 5), np.linspace(1, 2, 5)
    J = pytensor.function([x], pytensor.gradient.jacobian(expr, x), mode="FAST_COMPILE")(xv)
    np.testing.assert_allclose(
        pytensor.function([x, t], jvp, mode="FAST_COMPILE")(xv, tv), J @ tv, rtol=1e-12
    )


# --- 2. constant derivatives compile with wrt as an input -------------------------------------


QUADRATICS = {
    "gaussian": ug.gaussian_quadratic,  # all three at their default (small) sizes
    "least_squares": ug.least_squares_quadratic,
    "torsion": ug.torsion_quadratic,
}


@pytest.mark.parametrize("name", list(QUADRATICS))
def test_quadratic_hessian_compiles_with_wrt_input(name):
    cost, x = QUADRATICS[name]()
    H = sd.hessian(cost, x)
    fn = pytensor.function([x], H, mode="CVM")
    xv = np.random.default_rng(0).uniform(-1, 1, x.type.shape)
    dense = pytensor.function([x], pytensor.gradient.hessian(cost, x), mode="FAST_COMPILE")(xv)
    np.testing.assert_allclose(fn(xv).toarray(), dense, rtol=1e-12, atol=1e-12)
    # folded at plan time: the compiled function computes nothing from x
    ops = {type(n.op).__name__ for n in fn.maker.fgraph.toposort()}
    assert ops <= {"DeepCopyOp"}, ops


@pytest.mark.parametrize("mode", ["auto", "forward", "reverse"])
def test_zero_jacobian_compiles_with_wrt_input(mode):
    expr, x = ug.zero_jacobian()
    J = sd.jacobian(expr, x, mode=mode)
    got = pytensor.function([x], J, mode="FAST_COMPILE")(np.linspace(-2, 2, 8))
    assert got.shape == (8, 8) and got.nnz == 0


def test_constant_jacobian_keeps_parameters_and_list_wrt():
    x, y = pt.vector("x", shape=(4,)), pt.vector("y", shape=(3,))
    p = pt.scalar("p")
    expr = pt.concatenate([2 * x, y[::-1] - 1]) + p
    Jx, Jy = sd.jacobian(expr, [x, y])
    fn = pytensor.function([x, y, p], [Jx, Jy], mode="FAST_COMPILE")
    jx, jy = fn(np.ones(4), np.ones(3), 0.5)
    assert np.array_equal(jx.toarray()[:4], 2 * np.eye(4))
    assert np.array_equal(jy.toarray()[4:], np.eye(3)[::-1])


# --- 3. convolutions: exact patterns -----------------------------------------------------------


@pytest.mark.parametrize("mode", ["full", "valid", "same"])
@pytest.mark.parametrize("kernel", [None, [1.0, 0.0, -1.0], [0.0, 2.0, 0.0, 1.0]])
def test_conv1d_pattern_is_the_window(mode, kernel):
    from pytensor.tensor.signal import convolve1d

    x = pt.vector("x", shape=(20,))
    if kernel is None:
        w = pt.vector("w", shape=(3,))
        expr, k = convolve1d(x, w, mode=mode), 3
        inputs = [x, w]
    else:
        expr, k = convolve1d(x, np.array(kernel), mode=mode), len(kernel)
        inputs = [x]
    P = sd.jacobian_sparsity(expr, x).toarray()
    assert np.array_equal(P, ug.conv1d_window_pattern(20, k, mode, kernel))
    (truth,) = dense_nonzeros(expr, [x], inputs)
    assert np.array_equal(P, truth)


def _conv_cases():
    from pytensor.tensor.signal import convolve1d, convolve2d

    x, w = pt.vector("x", shape=(12,)), pt.vector("w", shape=(3,))
    X, W = pt.matrix("X", shape=(3, 10)), pt.matrix("W", shape=(3, 4))
    Z, K = pt.vector("Z", shape=(64,)), pt.matrix("K", shape=(3, 2))
    z = Z.reshape((8, 8))
    K3f = pt.vector("K3", shape=(9,))
    K3 = K3f.reshape((3, 3))
    return {
        "1d kernel wrt, same": (convolve1d(x, w, mode="same") ** 2, [x, w]),
        "1d kernel longer than signal": (convolve1d(w, x, mode="valid"), [x, w]),
        "1d batched kernels": (convolve1d(X, W, mode="valid"), [X, W]),
        "1d batched, broadcast kernel": (convolve1d(X, w, mode="full"), [X, w]),
        "2d valid": (convolve2d(z, K, mode="valid") ** 2, [Z, K]),
        "2d full": (convolve2d(z, K, mode="full"), [Z, K]),
        "2d same, constant kernel": (convolve2d(z, np.eye(3), mode="same") * z, [Z]),
        "2d same, kernel wrt": (convolve2d(z, K, mode="same") ** 2, [Z, K]),
        "2d same, 3x3 kernel wrt": (convolve2d(z, K3, mode="same"), [Z, K3f]),
        "2d same, no static shape": (convolve2d(z, np.eye(3), mode="same"), [Z]),
    }


@pytest.mark.parametrize("name", list(_conv_cases()))
def test_convolution_patterns_exact(name):
    expr, wrt = _conv_cases()[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error", sd.SparsityWarning)
        patterns = sd.jacobian_sparsity(expr, wrt)
    for p, t in zip(patterns, dense_nonzeros(expr, wrt, wrt), strict=True):
        assert np.array_equal(p.toarray(), t)


@pytest.mark.parametrize("name", list(ug.convolutions()))
def test_sparsejac_convolution_cases(name):
    expr, x = ug.convolutions(n=50, N=12)[name]
    plan = sd.jacobian_plan(expr, x)
    assert plan.n_colors <= 9, plan
    (truth,) = dense_nonzeros(expr, [x], [x])
    assert np.array_equal(plan.pattern.toarray(), truth)
    _compile_check(plan.build(), expr, [x], [np.random.default_rng(0).uniform(size=x.type.shape)])


# --- gEconpy- and PyMC-style graphs ------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("model", ["rbc", "perfect_foresight"])
def test_dsge_systems(model, mode):
    F, x = ug.rbc_steady_state() if model == "rbc" else ug.perfect_foresight(12)
    with warnings.catch_warnings():
        warnings.simplefilter("error", sd.SparsityWarning)
        plan = sd.jacobian_plan(F, x, mode=mode, dense=False)
    (truth,) = dense_nonzeros(F, [x], [x])
    assert np.array_equal(plan.pattern.toarray(), truth)
    xv = np.random.default_rng(0).uniform(0.5, 1.5, x.type.shape)
    _compile_check(plan.build(), F, [x], [xv])


@pytest.mark.parametrize("method", ["forward-over-reverse", "reverse-over-reverse"])
def test_pymc_style_logp_hessian(method):
    logp, theta = ug.latent_gaussian_logp(8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", sd.SparsityWarning)
        plan = sd.hessian_plan(logp, theta, method=method)
    H = pytensor.function([theta], plan.build(), mode="FAST_COMPILE")
    v = ug.latent_gaussian_point(theta)
    dense = _dense_hessian(logp, theta, v)
    assert np.array_equal(plan.pattern.toarray(), dense != 0)
    got = H(v).toarray()
    assert np.abs(got - dense).max() <= 1e-12 * max(np.abs(dense).max(), 1.0)


def _dense_hessian(cost, x, value):
    """The dense Hessian, vectorized (no Scan). ``pytensor.gradient.hessian`` loops in a Scan
    whose inner graph is compiled with C even in FAST_COMPILE, and PyTensor's C ``tri_gamma``
    (the second derivative of ``gammaln``) is off by 2.7e-10 at 1.82 (its Python and Numba
    implementations agree with SciPy)."""
    H = pytensor.gradient.jacobian(pytensor.grad(cost, x), x, vectorize=True)
    return pytensor.function([x], H, mode="FAST_COMPILE")(value)


# --- marked backend subsets --------------------------------------------------------------------


@pytest.mark.numba
@pytest.mark.parametrize("what", ["cge", "quadratic", "conv", "logp"])
def test_numba_backend(what):
    _backend_case(what, "NUMBA")


@pytest.mark.jax
@pytest.mark.parametrize("what", ["cge", "quadratic", "conv", "logp"])
def test_jax_backend(what):
    pytest.importorskip("jax")
    _backend_case(what, "JAX")


def _to_dense(value):
    return value.todense() if hasattr(value, "todense") else value.toarray()


def _backend_case(what, backend):
    if what == "cge":
        # JAX has no ProdWithoutZeros (Prod's gradient uses it): PyTensor's limitation
        F, x = ug.cge(3, no_zeros=backend == "JAX")
        J, ref, v = sd.jacobian(F, x, mode="bidirectional"), None, ug.cge_point(x)
        ref = dense_reference(F, x, [x], [v])[0]
    elif what == "quadratic":
        cost, x = ug.least_squares_quadratic(6)
        J, v = sd.hessian(cost, x), np.linspace(0, 1, 6)
        ref = pytensor.function([x], pytensor.gradient.hessian(cost, x), mode="FAST_COMPILE")(v)
    elif what == "conv":
        F, x = ug.convolutions(n=8)["conv1d_same_squared"]
        J, v = sd.jacobian(F, x, mode="forward"), np.linspace(0, 1, 8)
        ref = dense_reference(F, x, [x], [v])[0]
    else:
        cost, x = ug.latent_gaussian_logp(4)
        J, v = sd.hessian(cost, x), ug.latent_gaussian_point(x)
        ref = _dense_hessian(cost, x, v)
    got = np.asarray(_to_dense(pytensor.function([x], J, mode=backend)(v)))
    assert np.abs(got - ref).max() <= 1e-12 * max(np.abs(ref).max(), 1.0)


# --- the catalogue's users' cases in the modes tests/test_jacobian.py does not run --------------

_USERS_CASES = [
    c
    for c in __import__("tests.sparsity.catalogue", fromlist=["CASES"]).CASES
    if c.name
    in {
        "prod_cobb_douglas_cge",
        "conv1d_symbolic_kernel_modes",
        "conv1d_constant_kernel_with_zeros_batched",
        "conv2d_valid_and_same",
        "quadratic_least_squares",
        "zero_jacobian_piecewise_constant",
        "dsge_perfect_foresight",
        "pymc_logp_gradient",
    }
]


@pytest.mark.parametrize("mode", ["auto", "bidirectional"])
@pytest.mark.parametrize("case", _USERS_CASES, ids=[c.name for c in _USERS_CASES])
def test_catalogue_users_cases_auto_and_bidirectional(case, mode):
    expression, wrt, inputs = case.build()
    J = sd.jacobian(expression, wrt, mode=mode, dense=False)
    rng = np.random.default_rng(0)
    values = [rng.uniform(0.3, 1.7, size=v.type.shape) for v in inputs]
    fn = pytensor.function(inputs, J, mode="FAST_COMPILE")
    assert_matches(fn(*values), dense_reference(expression, wrt, inputs, values))


@settings(max_examples=12, deadline=None)
@given(
    shape=st.sampled_from([(5,), (2, 3), (3, 1, 2)]),
    axis_pick=st.integers(0, 3),
    seed=st.integers(0, 2**16),
)
def test_prod_forward_rules_match_central_differences(shape, axis_pick, seed):
    """sparsediff's JVPs of Prod and ProdWithoutZeros against central differences, on random
    axes and points (away from zeros, where ProdWithoutZeros jumps)."""
    from pytensor.tensor.math import ProdWithoutZeros

    x = pt.tensor("x", shape=shape)
    axes = [None, 0, -1, tuple(range(len(shape)))][axis_pick]
    pwz_axis = None if axes is None else ([axes] if isinstance(axes, int) else list(axes))
    outs = [pt.prod(x, axis=axes), ProdWithoutZeros(axis=pwz_axis)(x)]
    t = pt.tensor("t", shape=shape)
    jvps = pushforward(outs, [x], [t])
    fn = pytensor.function([x, t], jvps, mode="FAST_COMPILE")
    f = pytensor.function([x], outs, mode="FAST_COMPILE")
    rng = np.random.default_rng(seed)
    xv = rng.uniform(0.5, 1.5, shape) * rng.choice([-1, 1], shape)
    tv = rng.normal(size=shape)
    eps = 1e-6
    for got, plus, minus in zip(fn(xv, tv), f(xv + eps * tv), f(xv - eps * tv), strict=True):
        np.testing.assert_allclose(got, (plus - minus) / (2 * eps), rtol=1e-7, atol=1e-8)
