"""Bad input gets a clear error or warning, never a wrong matrix (issue #7)."""

import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
import scipy.sparse as sp
from pytensor.gradient import DisconnectedInputError, disconnected_grad

import sparsediff as sd
from sparsediff.sparsity import propagate as propagate_module

MODE = "FAST_COMPILE"


def _dense_jacobian(expression, x, value):
    # vectorize=False: PyTensor's vectorized jacobian fails on an all-zero gradient.
    J = pytensor.gradient.jacobian(expression.ravel(), x, vectorize=False)
    return pytensor.function([x], J, mode=MODE)(value)


# --------------------------------------------------------------------------------------------
# wrt of the wrong kind


@pytest.mark.parametrize(
    "api",
    [sd.jacobian_sparsity, sd.jacobian_plan, sd.jacobian, sd.check_jacobian, sd.explain_sparsity],
)
def test_wrt_without_static_shape(api):
    x = pt.vector("x")
    with pytest.raises(ValueError, match="no static shape"):
        api(x**2, x)


@pytest.mark.parametrize("dtype", ["int64", "int32", "bool"])
@pytest.mark.parametrize("api", [sd.jacobian_sparsity, sd.jacobian, sd.hessian_sparsity])
def test_integer_or_boolean_wrt(api, dtype):
    k = pt.vector("k", shape=(3,), dtype=dtype)
    expression = (pt.cast(k, "float64") ** 2).sum()
    with pytest.raises(TypeError, match=f"dtype {dtype}"):
        api(expression, k)


# --------------------------------------------------------------------------------------------
# wrt not in the graph


def test_disconnected_raise():
    x = pt.vector("x", shape=(3,))
    y = pt.vector("y", shape=(4,))
    with pytest.raises(DisconnectedInputError, match="not part of the computational graph"):
        sd.jacobian_sparsity(x**2, y, disconnected_inputs="raise")
    with pytest.raises(DisconnectedInputError):
        sd.jacobian_sparsity(x**2, [x, y], disconnected_inputs="raise")
    with pytest.raises(DisconnectedInputError):
        sd.jacobian(x**2, [x, y], disconnected_inputs="raise")


def test_disconnected_raises_by_default_like_pytensor():
    """As ``pytensor.gradient.jacobian``: a wrt outside the graph is usually a mistake."""
    x = pt.vector("x", shape=(3,))
    y = pt.vector("y", shape=(4,))
    for call in (
        lambda: sd.jacobian_sparsity(x**2, y),
        lambda: sd.jacobian_plan(x**2, [x, y]),
        lambda: sd.jacobian(x**2, [x, y]),
        lambda: sd.hessian_sparsity((x**2).sum(), y),
        lambda: sd.hessian_plan((x**2).sum(), [x, y]),
        lambda: sd.hessian((x**2).sum(), y),
    ):
        with pytest.raises(DisconnectedInputError, match="disconnected_inputs='ignore'"):
            call()


def test_disconnected_hessian_warn_and_ignore():
    x = pt.vector("x", shape=(3,))
    y = pt.vector("y", shape=(4,))
    cost = (x**2).sum()
    with pytest.warns(UserWarning, match="Hessian block is all zeros"):
        p = sd.hessian_sparsity(cost, y, disconnected_inputs="warn")
    assert p.shape == (4, 4) and p.nnz == 0
    H = sd.hessian(cost, y, disconnected_inputs="ignore")
    h = pytensor.function([x, y], H, mode=MODE, on_unused_input="ignore")(np.ones(3), np.ones(4))
    assert h.shape == (4, 4) and h.nnz == 0


def test_disconnected_warn_and_ignore_give_empty_blocks():
    x = pt.vector("x", shape=(3,))
    y = pt.vector("y", shape=(4,))
    with pytest.warns(UserWarning, match="not part of the computational graph"):
        px, py = sd.jacobian_sparsity(x**2, [x, y], disconnected_inputs="warn")
    assert py.shape == (3, 4) and py.nnz == 0
    np.testing.assert_array_equal(px.toarray(), np.eye(3, dtype=bool))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = sd.jacobian_sparsity(x**2, y, disconnected_inputs="ignore")
    assert p.shape == (3, 4) and p.nnz == 0
    # The built Jacobian: a zero block of the right shape.
    Jx, Jy = sd.jacobian(x**2, [x, y], disconnected_inputs="ignore")
    f = pytensor.function([x, y], [Jx, Jy], mode=MODE, on_unused_input="ignore")
    jx, jy = f(np.arange(3.0), np.zeros(4))
    np.testing.assert_allclose(jx.toarray(), np.diag(2 * np.arange(3.0)))
    assert jy.shape == (3, 4) and jy.nnz == 0
    with pytest.raises(ValueError, match="disconnected_inputs must be"):
        sd.jacobian_sparsity(x**2, y, disconnected_inputs="nope")


def test_disconnected_grad_and_consider_constant_disconnect():
    x = pt.vector("x", shape=(3,))
    with pytest.raises(DisconnectedInputError):
        sd.jacobian_sparsity(disconnected_grad(x) * 2, x, disconnected_inputs="raise")
    y = x * 3
    with pytest.raises(DisconnectedInputError):
        sd.jacobian_sparsity(y**2, x, consider_constant=[y], disconnected_inputs="raise")
    p = sd.jacobian_sparsity(y**2, x, consider_constant=[y], disconnected_inputs="ignore")
    assert p.nnz == 0 and p.shape == (3, 3)


# --------------------------------------------------------------------------------------------
# Piecewise-constant dependence: an all-zero matrix of the right shape


@pytest.mark.parametrize(
    "build",
    [
        lambda x: pt.floor(x),
        lambda x: pt.sign(x) * 3.0,
        lambda x: pt.round(x).reshape((2, 3)),
        lambda x: pt.cast(x > 0, "float64") + pt.cast(pt.cast(x, "int64"), "float64"),
    ],
    ids=["floor", "sign", "round", "comparison_and_int_cast"],
)
def test_piecewise_constant_gives_all_zero_matrix(build):
    x = pt.vector("x", shape=(6,))
    expression = build(x)
    p = sd.jacobian_sparsity(expression, x)
    assert p.shape == (6, 6) and p.nnz == 0
    J = sd.jacobian(expression, x)
    value = np.linspace(-2.3, 2.7, 6)
    result = pytensor.function([x], J, mode=MODE, on_unused_input="ignore")(value)
    assert sp.issparse(result) and result.shape == (6, 6) and result.nnz == 0
    np.testing.assert_array_equal(_dense_jacobian(expression, x, value), 0.0)
    report = sd.check_jacobian(expression, x, value)
    assert report.ok and report.nnz == 0, report


# --------------------------------------------------------------------------------------------
# Indices computed from wrt's values


@pytest.mark.parametrize(
    "build",
    [
        lambda x: x[pt.argmax(x)] * x,
        lambda x: x[pt.cast(x[0], "int64")] + x,
        lambda x: pt.set_subtensor(x[pt.argmin(x)], 0.0) * 2,
    ],
    ids=["argmax", "cast", "set_argmin"],
)
def test_value_dependent_index_is_flagged(build):
    x = pt.vector("x", shape=(5,))
    expression = build(x)
    with pytest.warns(sd.SparsityWarning, match="value-dependent index"):
        p = sd.jacobian_sparsity(expression, x)
    for value in ([0.5, 3.0, 1.0, 2.0, 4.0], [2.0, 0.1, 0.3, 0.2, 0.4], [4.0, 1, 2, 3, 0]):
        truth = _dense_jacobian(expression, x, np.array(value)) != 0
        assert not (truth & ~p.toarray()).any()


def test_symbolic_index_from_a_parameter_is_not_called_value_dependent():
    x = pt.vector("x", shape=(5,))
    i = pt.scalar("i", dtype="int64")
    with pytest.warns(sd.SparsityWarning) as record:
        sd.jacobian_sparsity(x[i] * x, x)
    assert not any("value-dependent" in str(w.message) for w in record)


# --------------------------------------------------------------------------------------------
# Random variables


def test_random_draws_are_unknown_inputs_with_a_warning():
    x = pt.vector("x", shape=(4,))
    noise = pt.random.normal(size=(4,))
    with pytest.warns(sd.SparsityWarning, match="random numbers"):
        p = sd.jacobian_sparsity(x**2 + noise, x)
    np.testing.assert_array_equal(p.toarray(), np.eye(4, dtype=bool))


def test_random_draws_depending_on_wrt_are_refused():
    x = pt.vector("x", shape=(4,))
    with pytest.raises(ValueError, match="random draws have no derivative"):
        sd.jacobian_sparsity(pt.random.normal(x, 1.0), x)


# --------------------------------------------------------------------------------------------
# Sizes that would exceed memory: an estimate and a refusal before allocating


def test_compressed_matrix_over_budget_is_refused():
    n = 50
    x = pt.vector("x", shape=(n,))
    F = x * x.sum()  # dense: n colors either way
    plan = sd.jacobian_plan(F, x)
    with pytest.raises(MemoryError, match=rf"would hold {n * n} numbers \(limit 1000\)"):
        plan.build(max_compressed_size=1000)


def test_conservative_fallback_over_budget_is_refused(monkeypatch):
    from pytensor.graph.basic import Apply
    from pytensor.graph.op import Op

    class NoRule(Op):
        def make_node(self, x):
            return Apply(self, [x], [x.type()])

        def perform(self, node, inputs, outputs):
            outputs[0][0] = inputs[0].copy()

    x = pt.vector("x", shape=(30,))
    monkeypatch.setattr(propagate_module, "MAX_FALLBACK_NNZ", 100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sd.SparsityWarning)
        with pytest.raises(MemoryError, match="900"):
            sd.jacobian_sparsity(NoRule()(x), x)


# --------------------------------------------------------------------------------------------
# NaN and inf: the numbers propagate, the pattern does not change


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_inputs_propagate_without_changing_the_pattern(bad):
    n = 7
    x = pt.vector("x", shape=(n,))
    xp = pt.concatenate([[0.0], x, [0.0]])
    F = xp[:-2] - 2 * x + xp[2:] + x**3
    pattern = sd.jacobian_sparsity(F, x)
    f = pytensor.function([x], sd.jacobian(F, x), mode=MODE)
    value = np.linspace(0.5, 1.5, n)
    good = f(value)
    value[3] = bad
    result = sp.csr_array(f(value))
    result.sort_indices()
    np.testing.assert_array_equal(result.indptr, pattern.indptr)
    np.testing.assert_array_equal(result.indices, pattern.indices)
    dense = result.toarray()
    # The derivative 3 x² at the bad entry is not finite ...
    assert not np.isfinite(dense[3, 3])
    # ... and rows that do not touch x[3] are unchanged.
    rows = [0, 1, 5, 6]
    np.testing.assert_allclose(dense[rows], good.toarray()[rows])
