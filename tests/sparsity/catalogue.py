"""Graphs that exercise every sparsity rule, with what their pattern must be.

Each case returns ``(expression, wrt_list, all_inputs)``. ``exact=True`` means the detected
pattern must equal the union of the dense Jacobian's nonzeros at random points (no extra
entries); ``exact=False`` allows a documented over-approximation (value-dependent Ops).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytensor.scalar as ps
import pytensor.sparse as psp
import pytensor.tensor as pt
import scipy.sparse as sp
from pytensor.gradient import disconnected_grad, zero_grad
from pytensor.tensor.elemwise import Elemwise


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable
    exact: bool = True
    reference: Callable | None = None  # same function without Ops PyTensor cannot differentiate


CASES: list[Case] = []


def case(exact: bool = True, reference: Callable | None = None):
    def register(fn):
        CASES.append(Case(fn.__name__, fn, exact, reference))
        return fn

    return register


def vec(name="x", n=6):
    return pt.vector(name, shape=(n,))


@case()
def fd1d_concat():
    x = vec()
    xp = pt.concatenate([[0.0], x, [0.0]])
    return xp[:-2] - 2 * x + xp[2:] - 0.1 * (pt.exp(x) + x**3), [x], [x]


@case()
def fd1d_pad():
    x = vec()
    xp = pt.pad(x, 1)
    return xp[:-2] - 2 * xp[1:-1] + xp[2:] + pt.sin(x), [x], [x]


@case()
def bratu2d_set_subtensor():
    x = vec(n=12)
    u = x.reshape((3, 4))
    up = pt.zeros((5, 6))
    up = pt.set_subtensor(up[1:-1, 1:-1], u)
    lap = 4 * u - up[:-2, 1:-1] - up[2:, 1:-1] - up[1:-1, :-2] - up[1:-1, 2:]
    return lap - 0.3 * pt.exp(u), [x], [x]


@case()
def broadcasting_row_col():
    a = pt.matrix("a", shape=(3, 1))
    b = pt.matrix("b", shape=(1, 4))
    return a * b + pt.exp(a), [a, b], [a, b]


@case()
def broadcast_scalar_parameter():
    x = vec()
    p = pt.scalar("p")
    return x * p + x.sum(), [x, p], [x, p]


@case()
def derivative_free_scalar_ops():
    x = vec()
    y = pt.floor(x) + pt.ceil(x) + pt.round(x) + pt.sign(x) + pt.trunc(x) + x // 0.7
    z = pt.cast(x > 1.0, "float64") + pt.cast(pt.isnan(x), "float64") + pt.cast(x * 3, "int64")
    return y + z + x[0], [x], [x]


@case()
def switch_uses_branches_not_condition():
    x = vec()
    y = vec("y")
    return pt.switch(y > x, x**2, 2 * y[::-1]), [x, y], [x, y]


@case()
def switch_constant_condition():
    x = vec()
    cond = np.array([True, False, True, True, False, False])
    return pt.switch(cond, x, x[::-1]), [x], [x]


@case()
def mul_constant_zeros():
    x = vec()
    c = np.array([1.0, 0.0, 2.0, 0.0, 3.0, 1.0])
    return x * c + 0 * x[0], [x], [x]


@case()
def fill_second():
    x = vec()
    return pt.second(x, x[2]) + pt.fill(x[:3][::-1], x[5]).sum(), [x], [x]


def _composite_unfused(x, y, c):
    return pt.switch(c > 0.5, pt.exp(x), pt.floor(y)) + c


@case(reference=_composite_unfused)
def composite_scalar_op():
    """Composite has no gradient in PyTensor: the reference is the same graph unfused."""
    xs, ys, cs = ps.float64("xs"), ps.float64("ys"), ps.float64("cs")
    comp = ps.Composite([xs, ys, cs], [ps.switch(ps.gt(cs, 0.5), ps.exp(xs), ps.floor(ys)) + cs])
    x, y, c = vec(), vec("y"), vec("c")
    return Elemwise(comp)(x, y, c), [x, y, c], [x, y, c]


@case()
def dimshuffle_transpose():
    x = pt.matrix("x", shape=(2, 3))
    return x.T[:, None, :] * 2 + x.T.sum(), [x], [x]


@case()
def reshape_and_specify_shape():
    x = vec(n=12)
    y = pt.specify_shape(x.reshape((3, 4)), (3, 4))
    return y[1:] * y[:-1], [x], [x]


@case()
def subtensor_basic():
    x = pt.matrix("x", shape=(4, 5))
    return x[1:3, ::2] + x[0, 1] + x[-1, ::-2][:3], [x], [x]


@case()
def advanced_subtensor_int():
    x = vec(n=8)
    idx = np.array([3, 1, 1, 7, 0])
    return x[idx] * x[idx[::-1]], [x], [x]


@case()
def advanced_subtensor_2d():
    x = pt.matrix("x", shape=(4, 5))
    return x[[0, 2, 3], [1, 1, 4]] + x[:, [4, 0]].sum(), [x], [x]


@case()
def advanced_subtensor_bool():
    x = vec()
    mask = np.array([True, False, True, False, False, True])
    return x[mask] ** 2, [x], [x]


@case()
def inc_subtensor_basic():
    x = vec()
    y = vec("y", 3)
    return pt.inc_subtensor(x[1:4], y**2) + pt.set_subtensor(x[::2], y), [x, y], [x, y]


@case()
def advanced_inc_with_duplicates():
    x = vec()
    y = vec("y", 4)
    idx = np.array([0, 2, 2, 5])
    return pt.inc_subtensor(x[idx], y) * pt.set_subtensor(x[idx[:2]], y[1:3]), [x, y], [x, y]


@case()
def set_subtensor_broadcast_writes():
    # each position written once, from a broadcast y (a row gather), and a repeated one
    x = pt.matrix("x", shape=(3, 4))
    y = vec("y", 4)
    return (
        pt.set_subtensor(x[1:, ::2], y[0] * y[3])
        + pt.inc_subtensor(x[[2, 0], 1:3], y[1:3])
        + pt.set_subtensor(x[[1, 1], [0, 0]], y[2:]),
        [x, y],
        [x, y],
    )


@case()
def advanced_inc_2d():
    x = pt.matrix("x", shape=(3, 4))
    y = vec("y", 2)
    return (
        pt.set_subtensor(x[[0, 2], [1, 3]], y) + pt.inc_subtensor(x[:, [0, 0]], x[:, [3, 2]]),
        [x, y],
        [x, y],
    )


@case()
def join_split():
    x = vec()
    a, b, c = pt.split(x, [1, 2, 3])
    return (
        pt.concatenate([c, a * b[0], b[::-1]]) + pt.stack([x[0], x[5], x[2], x[3], x[1], x[4]]),
        [x],
        [x],
    )


@case()
def join_axis1():
    x = pt.matrix("x", shape=(2, 3))
    return pt.concatenate([x, x[:, :1] ** 2], axis=1), [x], [x]


@case()
def make_vector_of_scalars():
    x = vec()
    return pt.stack([x[0] * x[1], x[3], pt.exp(x[5])]), [x], [x]


@case()
def alloc_broadcast():
    x = vec(n=3)
    return pt.alloc(x, 2, 3) * pt.arange(3) + pt.eye(3)[0] * x, [x], [x]


@case()
def reductions_sum_prod():
    x = pt.matrix("x", shape=(3, 4))
    return pt.concatenate([x.sum(axis=0), x.prod(axis=1), [x.sum()]]), [x], [x]


@case(exact=False)
def reductions_max_min():
    x = pt.matrix("x", shape=(3, 4))
    return pt.concatenate([x.max(axis=0), x.min(axis=1)]), [x], [x]


@case()
def reductions_all_any_cut():
    x = vec()
    return x * pt.cast(pt.all(x > 0), "float64") + pt.cast(pt.any(x > 1), "float64"), [x], [x]


@case()
def cumsum_cumprod():
    x = pt.matrix("x", shape=(3, 4))
    return (
        pt.concatenate([pt.cumsum(x, axis=1).ravel(), pt.cumprod(x, axis=0).ravel(), pt.cumsum(x)]),
        [x],
        [x],
    )


@case()
def dot_constant_matrix_with_zeros():
    x = vec(n=5)
    a = np.array([[1.0, 0, 0, 2, 0], [0, 0, 0, 0, 0], [0, 3, 0, 0, 1], [1, 1, 0, 0, 0]])
    return pt.concatenate([pt.dot(a, x), pt.dot(x[:4], a)]), [x], [x]


@case()
def matmul_symbolic():
    x = pt.matrix("x", shape=(3, 2))
    w = pt.matrix("w", shape=(2, 4))
    return x @ w, [x, w], [x, w]


@case()
def matmul_batched_constant():
    x = pt.tensor3("x", shape=(2, 3, 2))
    a = np.array([[[1.0, 0, 0], [0, 2, 0]], [[0, 0, 1], [1, 0, 1]]])
    return pt.matmul(a, x), [x], [x]


_SPARSE_A = np.array([[1.0, 0, 0, 2, 0], [0, 0, 0, 0, 0], [0, 3, 0, 0, 1]])


def _sparse_product_dense(x):
    return pt.dot(_SPARSE_A, x) + pt.dot(_SPARSE_A, x) ** 2


@case(reference=_sparse_product_dense)
def sparse_constant_product():
    """The vectorized dense Jacobian fails on sparse graphs: the reference is dense."""
    x = vec(n=5)
    A = psp.as_sparse_variable(sp.csr_matrix(_SPARSE_A))
    return psp.structured_dot(A, x[:, None]).ravel() + (A @ x) ** 2, [x], [x]


@case()
def blockwise_linalg_dense_core():
    x = pt.tensor3("x", shape=(3, 2, 2))
    b = pt.matrix("b", shape=(3, 2))
    return (
        pt.linalg.solve(x + 3 * pt.eye(2), b, b_ndim=1) + pt.linalg.det(x)[:, None],
        [x, b],
        [x, b],
    )


@case(exact=False)
def sort_along_axis():
    x = pt.matrix("x", shape=(2, 3))
    return pt.sort(x, axis=1) + pt.sort(x, axis=0), [x], [x]


@case()
def ofg_softmax_kron_einsum():
    x = vec(n=4)
    m = x.reshape((2, 2))
    return (
        pt.concatenate(
            [
                pt.special.softmax(m, axis=1).ravel(),
                pt.linalg.kron(m, np.eye(2)).ravel(),
                pt.einsum("ij,jk->ik", m, m).ravel(),
            ]
        ),
        [x],
        [x],
    )


@case()
def zero_and_disconnected_grad():
    x = vec()
    return zero_grad(x) * x + disconnected_grad(x[::-1]) ** 2 + x[::-1], [x], [x]


@case()
def several_wrt_and_parameter():
    x = vec()
    y = pt.matrix("y", shape=(2, 3))
    p = pt.vector("p", shape=(3,))
    return (x.reshape((2, 3)) * y[::-1] * p).sum(axis=0), [x, y], [x, y, p]


@case()
def rank0_expression():
    x = vec()
    return (x**2).sum(), [x], [x]


@case()
def rank3_expression():
    x = vec(n=8)
    return x.reshape((2, 2, 2)) * x[::-1].reshape((2, 2, 2)).transpose(2, 0, 1), [x], [x]


@case()
def intermediate_wrt():
    x = vec()
    y = pt.exp(x)
    return y[1:] * x[:-1], [y], [x]


# --- Control flow, inner graphs, conversions (rules/control.py) -------------------------------


def _ifelse_as_switch(x, y, c):
    return pt.switch(c > 1.0, x * 2 + y[0], y[::-1] ** 2)


@case(reference=_ifelse_as_switch)
def ifelse_symbolic_condition():
    """Both branches can be taken: the union; the condition adds nothing. The vectorized dense
    Jacobian cannot run IfElse: the reference is the same function with ``switch``."""
    from pytensor.ifelse import ifelse

    x, y, c = vec(), vec("y"), pt.scalar("c")
    return ifelse(c > 1.0, x * 2 + y[0], y[::-1] ** 2), [x, y, c], [x, y, c]


def _ifelse_taken_branch(x, y):
    return y[::-1] ** 2 + 0 * x


@case(reference=_ifelse_taken_branch)
def ifelse_constant_condition():
    """A constant condition: only the branch taken counts."""
    from pytensor.ifelse import ifelse

    x, y = vec(), vec("y")
    return ifelse(pt.constant(0) > 1, x * 2 + y[0], y[::-1] ** 2), [x, y], [x, y]


def _scan(*args, **kwargs):
    import pytensor

    return pytensor.scan(*args, return_updates=False, **kwargs)


@case()
def scan_cumulative_recurrence():
    """sit-sot with a sequence: step t depends on x[0..t] (lower triangle)."""
    x = vec()
    return (
        _scan(lambda xi, acc: acc * xi + xi, sequences=[x], outputs_info=[pt.zeros(())]),
        [x],
        [x],
    )


@case()
def scan_two_tap_recurrence():
    """mit-sot with taps (-2, -1) on a vector state: a Fibonacci-like chain, coupled across
    elements by a reversal; the initial state is part of wrt."""
    x = vec(n=4)
    s0 = pt.matrix("s0", shape=(2, 2))
    out = _scan(
        lambda a, b: a * b[::-1] + a,
        outputs_info=[dict(initial=s0, taps=[-2, -1])],
        n_steps=5,
    )
    return out + x[:2], [x, s0], [x, s0]


@case()
def scan_sequences_and_non_sequences():
    """Sequence rows, a non-sequence vector, a sit-sot state and a nit-sot output."""
    m = pt.matrix("m", shape=(5, 3))
    w = pt.vector("w", shape=(3,))
    h0 = pt.vector("h0", shape=(3,))
    h, s = _scan(
        lambda row, h, w: (pt.tanh(h[::-1] * w + row), (row * w).sum()),
        sequences=[m],
        outputs_info=[h0, None],
        non_sequences=[w],
    )
    return pt.concatenate([h.ravel(), s]), [m, w, h0], [m, w, h0]


@case()
def scan_constant_non_sequence_matrix():
    """A constant non-sequence matrix with zeros: the inner dot stays exact, step by step."""
    a = np.array([[1.0, 0.0, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 1.0]])
    x0 = pt.vector("x0", shape=(3,))
    out = _scan(lambda h, a: pt.sin(pt.dot(a, h)), outputs_info=[x0], non_sequences=[a], n_steps=3)
    return out, [x0], [x0]


@case()
def scan_sequence_taps():
    """Sequence taps (-1, 0, 1) become three shifted outer sequences."""
    x = vec(n=7)
    out = _scan(lambda a, b, c: a * c - b**2, sequences=[dict(input=x, taps=[-1, 0, 1])])
    return out, [x], [x]


def _ofg_zeroed_grad():
    from pytensor.compile.builders import OpFromGraph

    a, b = pt.vector("a"), pt.vector("b")
    return OpFromGraph(
        [a, b],
        [a * b + a[::-1] * b.sum()],
        pullback=lambda inputs, outputs, g: [g[0] * inputs[1], pt.zeros_like(inputs[1])],
    )


@case()
def ofg_pullback_override_zeroes_one_input():
    """The override says: diagonal in ``a``, nothing in ``b`` -- pytensor.grad agrees."""
    x, y = vec(), vec("y")
    return _ofg_zeroed_grad()(x, y), [x, y], [x, y]


@case()
def ofg_pullback_override_list_and_symbolic_subclass():
    """A list override (None = the inner graph's gradient) and a SymbolicOp subclass whose
    own ``pullback`` is a straight-through estimator of ``round``."""
    from pytensor.compile.builders import OpFromGraph, SymbolicOp

    class RoundStraightThrough(SymbolicOp):
        def build_inner_graph(self, v):
            return [pt.round(v)]

        def pullback(self, inputs, outputs, output_grads):
            return [output_grads[0]]

    a, b = pt.vector("a"), pt.vector("b")
    op = OpFromGraph(
        [a, b],
        [a * b[::-1]],
        pullback=[None, lambda inputs, outputs, g: g[0] * inputs[0]],  # diagonal in b
    )
    x, y = vec(), vec("y")
    return op(x, y) + RoundStraightThrough()(x[::-1]), [x, y], [x, y]


@case()
def ofg_pushforward_override_recurses_into_inner_graph():
    """Not inlined (it has a pushforward override): the rule recurses into the inner graph."""
    from pytensor.compile.builders import OpFromGraph

    a, b = pt.vector("a"), pt.vector("b")
    op = OpFromGraph(
        [a, b],
        [a * b + a[::-1]],
        pushforward=lambda inputs, t: [t[0] * inputs[1] + t[1] * inputs[0] + t[0][::-1]],
    )
    x, y = vec(), vec("y")
    return op(x, y[::-1]), [x, y], [x, y]


@case()
def scalar_tensor_conversions():
    """TensorFromScalar / ScalarFromTensor around a scalar graph."""
    x = vec()
    s = pt.scalar_from_tensor(x[2])
    t = pt.tensor_from_scalar(ps.exp(s) * ps.floor(s))
    return x * t + pt.cast(x[0], "int32"), [x], [x]


# --- Real users' graphs (issue 13; tests/users_graphs.py): prod, convolutions, quadratic costs,
# zero Jacobians, gEconpy- and PyMC-style systems -------------------------------------------


@case()
def prod_cobb_douglas_cge():
    from tests.users_graphs import cge

    F, x = cge(n_sectors=4, n_factors=3)
    return F, [x], [x]


@case()
def conv1d_symbolic_kernel_modes():
    from pytensor.tensor.signal import convolve1d

    x, w = vec(n=9), vec("w", n=3)
    outs = [convolve1d(x, w, mode=m) for m in ("full", "valid", "same")]
    return pt.concatenate(outs) ** 2, [x, w], [x, w]


@case()
def conv1d_constant_kernel_with_zeros_batched():
    from pytensor.tensor.signal import convolve1d

    X = pt.matrix("X", shape=(2, 7))
    return convolve1d(X, np.array([1.0, 0.0, -1.0]), mode="same"), [X], [X]


@case()
def conv2d_valid_and_same():
    from pytensor.tensor.signal import convolve2d

    Z, K = vec("Z", n=36), pt.matrix("K", shape=(2, 3))
    z = Z.reshape((6, 6))
    same = pt.specify_shape(convolve2d(z, np.eye(3), mode="same"), (6, 6))  # pad: no static shape
    out = pt.concatenate([convolve2d(z, K, mode="valid").ravel(), same.ravel()])
    return out * Z[:1], [Z, K], [Z, K]


@case()
def quadratic_least_squares():
    from tests.users_graphs import least_squares_quadratic

    cost, x = least_squares_quadratic(6)
    return pt.grad(cost, x), [x], [x]  # linear gradient: constant Jacobian (the Hessian)


@case()
def zero_jacobian_piecewise_constant():
    from tests.users_graphs import zero_jacobian

    F, x = zero_jacobian(6)
    return F, [x], [x]


@case()
def dsge_perfect_foresight():
    from tests.users_graphs import perfect_foresight

    F, x = perfect_foresight(5)
    return F, [x], [x]


@case()
def pymc_logp_gradient():
    """The gradient of a PyMC-style logp: its Jacobian is the Hessian (switch bounds checks,
    log1p, logsumexp, gammaln, an Assert)."""
    from tests.users_graphs import latent_gaussian_logp

    logp, theta = latent_gaussian_logp(6)
    return pt.grad(logp, theta), [theta], [theta]
