"""sd.jacobian equals the dense pytensor.gradient.jacobian, through detection and coloring."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.sparse as psp
import pytensor.tensor as pt
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import sparsediff as sd
from sparsediff import ColoringError
from sparsediff.plans import JacobianPlan, jacobian, jacobian_plan
from tests.jacobian_helpers import (
    assert_matches,
    bratu2d,
    bratu2d_colors,
    bratu2d_pattern,
    dense_reference,
    fd1d,
    random_value,
)
from tests.sparsity.catalogue import CASES

MODE = "FAST_COMPILE"

# Graphs whose derivative PyTensor itself cannot build: no gradient for a bare Composite; the
# vectorized derivative of a pytensor.sparse product fails inside PyTensor (dense reference
# included). Prod has no JVP in PyTensor: sparsediff's forward rule gives it one.
_NO_DERIVATIVE = {"composite_scalar_op", "sparse_constant_product"}


def _check(expression, wrt, inputs, mode, rng_seed=0, reference=None, **kwargs):
    """sd.jacobian of ``expression`` against the dense Jacobian of ``reference`` (the same
    function written so that ``pytensor.gradient.jacobian(vectorize=True)`` can run it)."""
    J = jacobian(expression, wrt, mode=mode, **kwargs)
    blocks = J if isinstance(J, list) else [J]
    fn = pytensor.function(inputs, blocks, mode=MODE, on_unused_input="ignore")
    rng = np.random.default_rng(rng_seed)
    values = [random_value(v, rng) for v in inputs]
    reference = expression if reference is None else reference
    assert_matches(fn(*values), dense_reference(reference, wrt, inputs, values))
    return J


@pytest.mark.parametrize("mode", ["forward", "reverse"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_catalogue_matches_dense(case, mode):
    if case.name in _NO_DERIVATIVE:
        pytest.skip("PyTensor cannot differentiate this graph (see _NO_DERIVATIVE)")
    expression, wrt, inputs = case.build()
    reference = None if case.reference is None else case.reference(*inputs)
    _check(expression, wrt, inputs, mode, reference=reference, dense=False)


def test_auto_falls_back_to_reverse_when_forward_impossible():
    """An Op with no forward route: auto excludes forward mode at plan time (and says why);
    forward mode asked for raises, naming the Op (see tests/e2e/test_users_graphs.py)."""
    from tests.users_graphs import first_order_only

    x = pt.matrix("x", shape=(3, 4))
    expr = pt.concatenate([first_order_only(x).sum(axis=1), x[:, 0]])
    with pytest.raises(NotImplementedError, match="FirstOrderOnly"):
        jacobian_plan(expr, x, dense=False, coloring=np.arange(12), mode="forward")
    plan = jacobian_plan(expr, x, dense=False)
    assert plan.mode == "reverse" and "forward" in plan.excluded
    J = plan.build()
    fn = pytensor.function([x], J, mode=MODE)
    xv = np.random.default_rng(0).uniform(0.5, 1.5, (3, 4))
    assert_matches([fn(xv)], dense_reference(expr, x, [x], [xv]))


@pytest.mark.parametrize("mode", ["auto", "forward", "reverse"])
@pytest.mark.parametrize("shape", [(5, 12), (12, 5), (9, 9)], ids=["wide", "tall", "square"])
def test_wide_tall_square(shape, mode):
    m, n = shape
    x = pt.vector("x", shape=(n,))
    idx = np.arange(m) % n
    expr = pt.sin(x[idx]) * x[(idx + 1) % n] + x[(idx + 3) % n] ** 2
    _check(expr, x, [x], mode, dense=False)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
@pytest.mark.parametrize("rank", [0, 1, 2, 3])
def test_expression_rank(rank, mode):
    x = pt.vector("x", shape=(8,))
    y = pt.exp(x) * x[::-1]
    expr = {0: y.sum(), 1: y, 2: y.reshape((2, 4)) * 2, 3: y.reshape((2, 2, 2)).transpose(1, 2, 0)}
    _check(expr[rank], x, [x], mode, dense=False)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_several_wrt_and_parameters(mode):
    x = pt.vector("x", shape=(6,))
    y = pt.matrix("y", shape=(2, 3))
    p = pt.vector("p", shape=(3,))
    expr = pt.concatenate([(x.reshape((2, 3)) * y * p).ravel(), pt.exp(x[:3]) * p])
    J = _check(expr, [x, y], [x, y, p], mode, dense=False)
    assert isinstance(J, list) and len(J) == 2
    plan = jacobian_plan(expr, [x, y], mode=mode, dense=False)
    assert isinstance(plan.pattern, list) and [b.shape for b in plan.pattern] == [(9, 6), (9, 6)]


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_format(fmt):
    r, x = fd1d(10)
    J = jacobian(r, x, format=fmt)
    assert J.type.format == fmt
    fn = pytensor.function([x], J, mode=MODE)
    xv = np.linspace(0, 1, 10)
    out = fn(xv)
    assert out.format == fmt
    assert_matches([out], dense_reference(r, x, [x], [xv]))


def test_plan_contents_and_repr():
    r, x = bratu2d(6)
    plan = jacobian_plan(r, x)
    assert isinstance(plan, JacobianPlan)
    assert plan.pattern.shape == (36, 36) and plan.pattern.nnz == bratu2d_pattern(6).nnz
    assert plan.mode in ("forward", "reverse") and not plan.dense
    assert plan.n_colors == plan.coloring.n_colors >= plan.lower_bound == 5
    text = repr(plan)
    for piece in (
        "36×36",
        f"nnz={plan.nnz}",
        "density=",
        f"{plan.n_colors} colors",
        "lower bound 5",
    ):
        assert piece in text, text
    assert plan.timings["detection"] >= 0 and "coloring" in plan.timings


def test_known_sparsity_and_coloring():
    r, x = bratu2d(7)
    pattern = bratu2d_pattern(7)
    plan = jacobian_plan(r, x, mode="forward", sparsity=pattern, coloring=bratu2d_colors(7))
    assert plan.n_colors == 5 and "detection" not in plan.timings
    fn = pytensor.function([x], plan.build(), mode=MODE)
    xv = np.random.default_rng(1).random(49)
    assert_matches([fn(xv)], dense_reference(r, x, [x], [xv]))
    # a pattern given as a dense boolean array works too
    J2 = jacobian(r, x, mode="reverse", sparsity=pattern.toarray())
    fn2 = pytensor.function([x], J2, mode=MODE)
    assert_matches([fn2(xv)], dense_reference(r, x, [x], [xv]))


def test_dense_path_for_small_or_dense_problems():
    x = pt.vector("x", shape=(3,))
    expr = pt.outer(x, x).ravel() + pt.exp(x).sum()
    plan = jacobian_plan(expr, x)
    assert plan.dense and plan.coloring is None and plan.n_colors == 3
    assert "dense" in repr(plan)
    fn = pytensor.function([x], plan.build(), mode=MODE)
    xv = np.array([0.3, 0.7, 1.1])
    out = fn(xv)
    assert sp.issparse(out) and out.format == "csr"
    assert_matches([out], dense_reference(expr, x, [x], [xv]))
    r, y = fd1d(30)
    assert not jacobian_plan(r, y).dense
    assert jacobian_plan(r, y, dense=True).dense


def test_composes_with_pytensor():
    r, x = fd1d(12)
    J = jacobian(r, x)
    v = pt.vector("v", shape=(12,))
    Jv = psp.structured_dot(J, v[:, None]).ravel()
    JT = J.T
    newton = psp.dense_from_sparse(J)
    fn = pytensor.function([x, v], [r, J, Jv, JT, newton], mode=MODE)
    xv, vv = np.linspace(-1, 1, 12), np.arange(12.0)
    _, Jval, Jvv, JTv, dense = fn(xv, vv)
    (ref,) = dense_reference(r, x, [x], [xv])
    np.testing.assert_allclose(Jval.toarray(), ref, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(Jvv, ref @ vv, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(JTv.toarray(), ref.T, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dense, ref, rtol=1e-12, atol=1e-14)


def test_empty_and_constant_jacobians():
    x = pt.vector("x", shape=(4,))
    y = pt.vector("y", shape=(3,))
    J = jacobian(pt.exp(y), x, dense=False, disconnected_inputs="ignore")  # all zero
    out = pytensor.function([x, y], J, mode=MODE, on_unused_input="ignore")(np.ones(4), np.ones(3))
    assert out.shape == (3, 4) and out.nnz == 0
    a = np.arange(12.0).reshape(3, 4)
    J = jacobian(pt.dot(a, x), x, dense=False)  # linear: a constant
    out = pytensor.function([x], J, mode=MODE, on_unused_input="ignore")(np.ones(4))
    np.testing.assert_array_equal(out.toarray(), a * (a != 0))


def test_errors():
    x = pt.vector("x", shape=(5,))
    r = pt.exp(x)
    with pytest.raises(ValueError, match="unknown mode"):
        jacobian_plan(r, x, mode="sideways")
    with pytest.raises(ValueError, match=r"sparsity has shape \(4, 5\), expected \(5, 5\)"):
        jacobian_plan(r, x, sparsity=np.ones((4, 5), bool))
    with pytest.raises(ColoringError, match="invalid column coloring"):
        jacobian_plan(r + x[0], x, mode="forward", sparsity=None, coloring=np.zeros(5, int))
    with pytest.raises(ColoringError, match="one color per column"):
        jacobian_plan(r, x, mode="forward", coloring=np.zeros(3, int))
    with pytest.raises(ValueError, match="needs a row coloring"):
        jacobian_plan(r, x, mode="reverse", coloring=sd.jacobian_plan(r, x, dense=False).coloring)
    with pytest.raises(ValueError, match="no static shape"):
        jacobian_plan(r, pt.vector("z"))
    with pytest.raises(TypeError, match="floating-point"):
        jacobian_plan(r, pt.vector("i", dtype="int64", shape=(5,)))
    with pytest.raises(ValueError, match="format"):
        jacobian_plan(r, x, format="coo")
    with pytest.raises(TypeError, match="PyTensor variable"):
        jacobian_plan(np.ones(3), x)
    with pytest.raises(ValueError, match="empty list"):
        jacobian_plan(r, [])


def test_public_api():
    assert sd.jacobian is jacobian and sd.jacobian_plan is jacobian_plan
    assert sd.JacobianPlan is JacobianPlan


# --- random graphs: sparse == dense ------------------------------------------------------------

N_RANDOM = 7


def _unary(name, e):
    return {"exp": pt.exp(e * 0.3), "sin": pt.sin(e), "sqr": e**2, "tanh": pt.tanh(e)}[name]


@st.composite
def random_graphs(draw):
    x = pt.vector("x", shape=(N_RANDOM,))
    p = pt.scalar("p")
    terms = [x]
    for _ in range(draw(st.integers(1, 5))):
        a = terms[draw(st.integers(0, len(terms) - 1))]
        kind = draw(
            st.sampled_from(["unary", "binary", "shift", "perm", "gather", "reduce", "cumsum"])
        )
        if kind == "unary":
            e = _unary(draw(st.sampled_from(["exp", "sin", "sqr", "tanh"])), a)
        elif kind == "binary":
            b = terms[draw(st.integers(0, len(terms) - 1))]
            op = draw(st.sampled_from(["add", "mul", "sub"]))
            e = {"add": a + b, "mul": a * b * p, "sub": a - 2.0 * b}[op]
        elif kind == "shift":
            k = draw(st.integers(1, 3))
            e = pt.concatenate([pt.zeros((k,)), a[:-k]])
        elif kind == "perm":
            perm = np.array(draw(st.permutations(range(N_RANDOM))))
            e = a[perm]
        elif kind == "gather":
            idx = np.array(
                draw(st.lists(st.integers(0, N_RANDOM - 1), min_size=N_RANDOM, max_size=N_RANDOM))
            )
            # set_subtensor with repeated indices is left out: PyTensor's pullback of it counts
            # every repeat (see test_set_subtensor_repeated_indices); inc_subtensor is exact.
            e = pt.set_subtensor(a[np.unique(idx[:3])], a[idx[3:6]][: np.unique(idx[:3]).size] ** 2)
            e = pt.inc_subtensor(e[idx[:4]], a[idx[3:]])
        elif kind == "reduce":
            e = a * a[: N_RANDOM // 2].sum()
        else:
            e = pt.cumsum(a)
        terms.append(e)
    expr = terms[-1] + terms[draw(st.integers(0, len(terms) - 1))]
    return expr, x, p


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(random_graphs(), st.sampled_from(["forward", "reverse", "auto"]), st.integers(0, 3))
def test_random_graphs_sparse_equals_dense(graph, mode, seed):
    expr, x, p = graph
    note(pytensor.dprint(expr, file="str"))
    _check(expr, x, [x, p], mode, rng_seed=seed, dense=False)


@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize("mode", ["forward", "reverse"])
@pytest.mark.parametrize(
    "build",
    [
        lambda x, m: pt.inc_subtensor(x[0:], x[1]),  # a scalar into a slice
        lambda x, m: pt.inc_subtensor(x[1:], x[0] ** 2),
        lambda x, m: pt.set_subtensor(x[::2], pt.sin(x[1])),
        lambda x, m: pt.inc_subtensor(m[1:, :], m[0]).ravel(),  # a row into rows
        lambda x, m: pt.inc_subtensor(m[:, 1:], m[:, 0:1] * 2).ravel(),
        lambda x, m: pt.set_subtensor(m[1], m[0, 0]).ravel(),  # a scalar into a row
    ],
    ids=["scalar_slice", "scalar_tail", "set_step", "row_rows", "column_cols", "int_index"],
)
def test_inc_subtensor_of_broadcast_value(build, mode, dense):
    """Regression (found by tests/e2e/test_random_graphs.py): vectorizing ``IncSubtensor`` over the
    seeds must align a broadcast value's batch axis with the region's, not with its core axes.
    ``inc_subtensor(x[0:], x[1])`` came out wrong in forward mode (batch 2 = size 2), or failed
    with a broadcasting error (other sizes)."""
    x = pt.vector("x", shape=(2,))
    m = pt.matrix("m", shape=(3, 2))
    for wrt, expression in ((x, build(x, x.reshape((1, 2)).repeat(3, 0))), (m, build(m[0], m))):
        _check(expression, wrt, [wrt], mode, dense=dense)


def test_set_subtensor_repeated_indices():
    """``x[[0, 0, 0]] = x[[0, 0, 0]] ** 2``: the last write wins, so d y0 / d x0 = 2 x0.

    Forward mode (the Ops' own pushforward) gets it right; PyTensor 3.0.7's pullback of
    ``AdvancedSetSubtensor`` adds the cotangent once per repeat (3 × 2 x0), and so do the
    dense ``pytensor.gradient.jacobian`` and our reverse mode, which use it.
    """
    x = pt.vector("x", shape=(3,))
    idx = np.array([0, 0, 0])
    y = pt.set_subtensor(x[idx], x[idx] ** 2)
    xv = np.array([1.5, 2.0, 3.0])
    J = pytensor.function([x], jacobian(y, x, mode="forward", dense=False), mode=MODE)(xv)
    np.testing.assert_allclose(J.toarray(), np.diag([2 * xv[0], 1.0, 1.0]))
    Jr = pytensor.function([x], jacobian(y, x, mode="reverse", dense=False), mode=MODE)(xv)
    assert Jr[0, 0] == pytest.approx(3 * 2 * xv[0])  # PyTensor's pullback, reproduced faithfully


# --- the built-in problems: against their analytic Jacobians --------------------------------


def _problem_cases():
    from sparsediff import problems as P

    return [
        P.fd1d(40),
        P.bratu2d(7, lam_as_parameter=True),
        P.bratu2d(5, 8),
        P.brusselator2d(6),
        P.rectangular(30),
        P.dense_row_col(12),
    ]


@pytest.mark.parametrize("mode", ["auto", "forward", "reverse"])
@pytest.mark.parametrize("index", range(6))
def test_problems_match_analytic_jacobians(index, mode):
    prob = _problem_cases()[index]
    plan = jacobian_plan(prob.expression, prob.x, mode=mode)
    fn = pytensor.function([prob.x, *prob.params], plan.build(), mode=MODE)
    rng = np.random.default_rng(index)
    x = prob.x0 + 0.1 * rng.standard_normal(prob.n)
    got = fn(x, *prob.param_values)
    ref = prob.jacobian(x).toarray()
    assert np.abs(got.toarray() - ref).max() <= 1e-12 * np.abs(ref).max()
    assert (plan.full_pattern != prob.pattern()).nnz == 0  # detection is exact on these


def test_too_many_colors_for_memory_is_a_clear_error():
    from sparsediff import problems as P

    prob = P.dense_row_col(3000)  # needs n colors both ways: the compressed matrix is dense
    plan = jacobian_plan(prob.expression, prob.x, mode="forward", dense=False)
    assert plan.n_colors == 3000
    with pytest.raises(MemoryError, match=r"3000 colors.*mode='bidirectional'"):
        plan.build(max_compressed_size=1_000_000)
    # auto picks a bicoloring: 3 products
    assert jacobian_plan(prob.expression, prob.x).n_colors == 3
