"""Fuzzing (#7): random PyTensor graphs from every supported Op family, against dense AD.

Hypothesis builds a graph step by step from a pool of expressions of ``x`` (the wrt) and ``p``
(a parameter, sometimes a second wrt): elementwise unary and binary Ops with broadcasting,
comparisons and ``switch``, reductions (sum, prod, max, min, mean), ``cumsum``/``cumprod``,
``dot`` with constant matrices that have zeros (and between two expressions), reshape,
dimshuffle, transpose, basic and advanced indexing, ``set``/``inc_subtensor``, ``join``,
``split``, ``stack``, ``repeat``, ``sort``, ``roll``, ``tile``, ``clip``, ``diff``, ``outer``,
``convolve1d`` (constant kernels with zeros or symbolic ones) and piecewise-constant Ops (zero
Jacobians) at small random shapes. For each graph:

(a) ``sd.jacobian_sparsity`` contains every numerically nonzero entry of the dense
    ``pytensor.gradient.jacobian`` at random points (a missed nonzero is a wrong answer);
(b) ``sd.jacobian`` in forward, reverse and bidirectional mode equals the dense Jacobian to
    1e-12 of its largest entry;
(c) ``sd.hessian`` of a weighted sum of the graph equals ``pytensor.gradient.hessian``.

Profiles (``HYPOTHESIS_PROFILE``, registered in ``tests/conftest.py``): ``ci`` (the default)
runs a bounded number of examples, ``long`` many more::

    HYPOTHESIS_PROFILE=long ./dev test tests/e2e/test_random_graphs.py
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st
from pytensor.gradient import jacobian as dense_jacobian

import sparsediff as sd
from sparsediff._validate import static_shape_of

MAX_SIZE = 24  #: elements per intermediate: dense truths stay cheap
MAX_NDIM = 3
RTOL = 1e-12
N_POINTS = 3


def _size(var) -> int:
    return int(np.prod(var.type.shape, dtype=np.int64))


def _shape(var) -> tuple[int, ...]:
    return tuple(int(s) for s in var.type.shape)


# --------------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------------

UNARY = {
    "sin": pt.sin,
    "cos": pt.cos,
    "tanh": pt.tanh,
    "sigmoid": pt.sigmoid,
    "sqr": pt.sqr,
    "cube": lambda a: a**3,
    "gauss": lambda a: pt.exp(-(a**2)),
    "log1p_sq": lambda a: pt.log1p(a**2),
    "sqrt1p": lambda a: pt.sqrt(1.0 + a**2),
    "abs": pt.abs,
    "neg": lambda a: -a,
    "floor": pt.floor,  # derivative-free
    "sign_times": lambda a: pt.sign(a - 1.0) * a,
    "int_cast": lambda a: pt.cast(pt.cast(3 * a, "int64"), "float64") + a,
}
BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (1.0 + b**2),
    "maximum": pt.maximum,
    "minimum": pt.minimum,
    "pow": lambda a, b: (1.0 + a**2) ** pt.tanh(b),
    "hypot_like": lambda a, b: pt.sqrt(1.0 + a**2 + b**2),
    "gt_mask": lambda a, b: a * (b > 1.0),  # the comparison has no derivative
    "where": lambda a, b: pt.where(pt.le(a, b), a * b, b),
}
FAMILIES = [
    "unary",
    "binary",
    "switch",
    "reduce",
    "cumulative",
    "dot_constant",
    "dot_variable",
    "reshape",
    "dimshuffle",
    "transpose",
    "basic_index",
    "integer_index",
    "advanced_index",
    "boolean_mask",
    "set_subtensor",
    "inc_subtensor",
    "join",
    "stack",
    "repeat",
    "sort",
    "roll",
    "tile",
    "flip",
    "split",
    "convolve",
    "piecewise_constant",
    "clip",
    "diff",
    "outer",
]


@dataclass
class Builder:
    """Draws Ops and operands: the Op family and the operands through Hypothesis (they shrink),
    the details (indices, constants) from an RNG seeded by Hypothesis."""

    data: st.DataObject
    rng: np.random.Generator
    pool: list = field(default_factory=list)
    log: list = field(default_factory=list)

    def draw(self, strategy, label):
        return self.data.draw(strategy, label=label)

    def operand(self, label="operand"):
        return self.pool[self.draw(st.integers(0, len(self.pool) - 1), label)]

    def fit(self, b, shape, exact=False):
        """Elements of ``b`` shaped to broadcast against ``shape`` (or exactly ``shape``): the
        same shape, some dimensions 1, or a scalar. A reduction or a reshape when sizes allow,
        else a constant advanced index."""
        kind = "same" if exact else self.draw(st.sampled_from(["same", "ones", "scalar"]), "fit")
        if kind == "scalar" or len(shape) == 0:
            target = ()
        elif kind == "ones":
            target = tuple(1 if self.rng.random() < 0.5 else s for s in shape)
        else:
            target = tuple(shape)
        size = int(np.prod(target, dtype=np.int64))
        if _shape(b) == target:
            return b
        if _size(b) == size:
            return b.reshape(target)
        if target == () and self.rng.random() < 0.5:
            return b.sum()
        index = self.rng.integers(0, _size(b), size=size)
        return b.ravel()[index].reshape(target)

    def axis(self, a):
        return int(self.rng.integers(0, a.type.ndim)) if a.type.ndim else None


def random_write(b: Builder, a, family: str):
    """``set_subtensor``/``inc_subtensor`` of ``a``: into a block or a row of a matrix (the
    values broadcast), a strided slice, or an index array."""
    rng, shape, n = b.rng, _shape(a), _size(a)
    write = pt.set_subtensor if family == "set_subtensor" else pt.inc_subtensor
    if a.type.ndim >= 2 and rng.random() < 0.4:
        if rng.random() < 0.3:
            region = a[int(rng.integers(0, shape[0]))]  # an integer index: one row
        else:
            region = a[int(rng.integers(0, shape[0])) :, int(rng.integers(0, shape[1])) :]
        return write(region, b.fit(b.operand("values"), _shape(region)))
    flat = a.ravel()
    if rng.random() < 0.4:
        lo, step = int(rng.integers(0, n)), int(rng.choice([1, 2]))
        region = flat[lo::step]
    else:  # no repeats for set_subtensor: PyTensor 3.0.7's pullback of a repeated write is
        # wrong (see test_jacobian.test_set_subtensor_repeated_indices)
        k = int(rng.integers(1, n + 1))
        region = flat[rng.choice(n, size=k, replace=family == "inc_subtensor")]
    return write(region, b.fit(b.operand("values"), _shape(region))).reshape(shape)


def apply_random_op(b: Builder):
    family = b.draw(st.sampled_from(FAMILIES), "op")
    a = b.operand()
    shape = _shape(a)
    n = _size(a)
    b.log.append(family)
    rng = b.rng
    if family == "unary":
        name = b.draw(st.sampled_from(sorted(UNARY)), "unary")
        out = UNARY[name](a)
    elif family == "binary":
        name = b.draw(st.sampled_from(sorted(BINARY)), "binary")
        other = b.fit(b.operand("other"), shape)
        out = BINARY[name](a, other) if rng.random() < 0.5 else BINARY[name](other, a)
    elif family == "switch":
        other = b.fit(b.operand("other"), shape)
        condition = b.fit(b.operand("condition"), shape)
        cond = condition > 1.0 if rng.random() < 0.7 else pt.as_tensor(rng.random(shape) < 0.5)
        out = pt.switch(cond, a * 2.0, other)
    elif family == "reduce":
        kind = b.draw(st.sampled_from(["sum", "prod", "max", "min", "mean"]), "reduce")
        axis = None if a.type.ndim == 0 or rng.random() < 0.3 else b.axis(a)
        out = getattr(a, kind)(axis=axis)
    elif family == "cumulative":
        fn = pt.cumsum if rng.random() < 0.6 else pt.cumprod
        out = fn(a, axis=b.axis(a)) if a.type.ndim else fn(a)
    elif family == "dot_constant":
        m = int(rng.integers(1, 7))
        c = rng.uniform(0.5, 1.5, size=(m, n)) * (rng.random((m, n)) < 0.4)
        out = pt.dot(c, a.ravel()) if rng.random() < 0.5 else pt.dot(a.ravel(), c.T)
    elif family == "dot_variable":
        other = b.operand("other")
        k = int(rng.integers(1, 4))
        left = b.fit(other, (k, n), exact=True)
        out = pt.dot(left, a.ravel())
    elif family == "reshape":
        sizes = [d for d in range(1, n + 1) if n % d == 0]
        rows = int(rng.choice(sizes))
        rest = n // rows
        if rng.random() < 0.3 and rest > 1:
            cols = int(rng.choice([d for d in range(1, rest + 1) if rest % d == 0]))
            out = a.reshape((rows, cols, rest // cols))
        else:
            out = a.reshape((rows, rest))
    elif family == "dimshuffle":
        if a.type.ndim == 0:
            out = a.dimshuffle("x", "x") * 1.5
        else:
            order = list(rng.permutation(a.type.ndim))
            pos = int(rng.integers(0, len(order) + 1))
            order.insert(pos, "x")
            out = a.dimshuffle(*order)
    elif family == "transpose":
        out = a.T if a.type.ndim >= 2 else pt.transpose(a)
    elif family == "basic_index":
        if a.type.ndim == 0:
            out = a.ravel()[0:1]
        else:
            d = shape[0]
            start = int(rng.integers(0, d))
            step = int(rng.choice([1, 2, -1, -2]))
            out = a[start:] if step > 0 else a[start::-1]
            out = out[:: abs(step)]
            if a.type.ndim >= 2 and rng.random() < 0.5:
                out = out[:, int(rng.integers(0, shape[1])) :]
    elif family == "integer_index":
        if a.type.ndim == 0:
            out = a * a
        else:
            out = a[int(rng.integers(-shape[0], shape[0]))]  # may be 0-d
    elif family == "advanced_index":
        if a.type.ndim >= 2 and rng.random() < 0.5:
            rows = rng.integers(0, shape[0], size=int(rng.integers(1, 5)))
            cols = rng.integers(0, shape[1], size=rows.size)
            out = a[rows, cols] if rng.random() < 0.5 else a[rows]
        else:
            out = a.ravel()[rng.integers(0, n, size=int(rng.integers(1, 8)))]
    elif family == "boolean_mask":
        mask = rng.random(n) < 0.6
        out = a.ravel()[mask] if mask.any() else a.ravel()[:1]
    elif family in ("set_subtensor", "inc_subtensor"):
        out = random_write(b, a, family)
    elif family == "join":
        other = b.operand("other")
        if a.type.ndim >= 1 and other.type.ndim == a.type.ndim and a.type.ndim <= 2:
            axis = b.axis(a)
            other_shape = list(shape)
            other_shape[axis] = int(rng.integers(1, 4))
            out = pt.concatenate([a, b.fit(other, tuple(other_shape), exact=True)], axis=axis)
        else:
            out = pt.concatenate([a.ravel(), other.ravel()])
    elif family == "stack":
        other = b.fit(b.operand("other"), shape, exact=True)
        axis = int(rng.integers(0, a.type.ndim + 1))
        out = pt.stack([a, other], axis=axis)
    elif family == "repeat":
        if a.type.ndim == 0:
            out = pt.repeat(a.ravel(), 3)
        elif rng.random() < 0.5:
            out = pt.repeat(a, int(rng.integers(1, 4)), axis=b.axis(a))
        else:
            axis = b.axis(a)
            out = pt.repeat(a, rng.integers(0, 3, size=shape[axis]), axis=axis)
    elif family == "sort":
        out = pt.sort(a, axis=b.axis(a)) if a.type.ndim else pt.sort(a.ravel())
    elif family == "roll":
        out = pt.roll(a.ravel(), int(rng.integers(-3, 4)))
    elif family == "tile":
        if a.type.ndim == 0:
            out = pt.tile(a.ravel(), (2,))
        else:
            out = pt.tile(a, tuple(int(r) for r in rng.integers(1, 3, size=a.type.ndim)))
    elif family == "flip":
        out = a[::-1] if a.type.ndim else -a
    elif family == "split":
        flat = a.ravel()
        cut = int(rng.integers(0, n + 1))
        first, second = pt.split(flat, [cut, n - cut], n_splits=2)
        out = second * 2.0 if rng.random() < 0.5 else pt.concatenate([second, first])
    elif family == "clip":
        out = pt.clip(a, 0.6, 1.4)
    elif family == "diff":
        out = pt.diff(a.ravel()) if n > 1 else a * 3.0
    elif family == "convolve":  # a constant kernel with zeros, or another expression
        from pytensor.tensor.signal import convolve1d

        k = int(rng.integers(1, 4))
        if rng.random() < 0.5:
            kernel = pt.as_tensor(rng.uniform(0.5, 1.5, k) * (rng.random(k) < 0.7))
        else:
            kernel = b.fit(b.operand("kernel"), (k,), exact=True)
        mode = str(rng.choice(["full", "valid", "same"])) if n >= k else "full"
        out = convolve1d(a.ravel(), kernel, mode=mode)
    elif family == "piecewise_constant":  # zero derivative: zero Jacobians, constant Hessians
        out = [pt.floor, pt.sign, pt.round][int(rng.integers(0, 3))](a) + a * 0.0
    else:  # outer
        out = pt.outer(a.ravel(), b.fit(b.operand("other"), (int(rng.integers(1, 4)),), True))
    if any(d is None for d in out.type.shape):  # e.g. repeat with an array of counts
        out = pt.specify_shape(out, static_shape_of(out))
    if _size(out) == 0:
        return a + 1.0
    if _size(out) > MAX_SIZE:
        return out.ravel()[: int(rng.integers(1, MAX_SIZE + 1))]
    if out.type.ndim > MAX_NDIM:
        return out.ravel()
    return out


@st.composite
def random_graphs(draw, max_ops: int = 6):
    """``(expression, wrt list, inputs, families)``."""
    data = draw(st.data())
    seed = draw(st.integers(0, 2**31 - 1), label="seed")
    rng = np.random.default_rng(seed)
    shapes = st.one_of(
        st.tuples(),
        st.tuples(st.integers(1, 8)),
        st.tuples(st.integers(1, 4), st.integers(1, 4)),
    )
    x = pt.tensor("x", shape=draw(shapes, label="x shape"))
    p = pt.tensor("p", shape=draw(shapes, label="p shape"))
    builder = Builder(data, rng, pool=[x, p, x])  # x twice: it is the likelier operand
    for _ in range(draw(st.integers(1, max_ops), label="n_ops")):
        builder.pool.append(apply_random_op(builder))
    n_outputs = draw(st.integers(1, 2), label="n_outputs")
    outputs = builder.pool[-n_outputs:]
    if len(outputs) == 1:
        expression = outputs[0]
    else:
        expression = pt.concatenate([o.ravel() for o in outputs])
    wrt = [x, p] if draw(st.booleans(), label="p is wrt too") else [x]
    return expression, wrt, [x, p], builder.log


# --------------------------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------------------------


def _dense_blocks(flat, wrt):
    sizes = [_size(w) for w in wrt]
    m = _size(flat)
    try:
        blocks = dense_jacobian(flat, wrt, disconnected_inputs="ignore", vectorize=True)
    except Exception:  # graphs PyTensor cannot vectorize: row by row
        blocks = dense_jacobian(flat, wrt, disconnected_inputs="ignore", vectorize=False)
    return [bl.reshape((m, s)) for bl, s in zip(blocks, sizes, strict=True)]


def _sparse_blocks(expression, wrt, mode, pattern, dense):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a wrt outside the graph, by design
        blocks = sd.jacobian(
            expression,
            wrt,
            mode=mode,
            sparsity=pattern,
            dense=dense,
            disconnected_inputs="ignore",
        )
    return list(blocks)


def check_graph(expression, wrt, inputs, families, *, dense, compile_mode, rng_seed=0):
    note(f"families: {families}; wrt: {[w.name for w in wrt]}; dense={dense}")
    note(pytensor.dprint(expression, file="str"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", sd.SparsityWarning)  # every Op here has a rule
        pattern = sd.jacobian_sparsity(expression, wrt, disconnected_inputs="ignore")
    full = sp.hstack(pattern, format="csr").toarray()
    m = _size(expression)
    assert full.shape == (m, sum(_size(w) for w in wrt))

    flat = expression.ravel()
    n_blocks = len(wrt)
    outputs = _dense_blocks(flat, wrt)
    # every mode builds: prod has a sparsediff forward rule (sparsediff.forward_rules)
    modes = ["forward", "reverse"] + ([] if dense else ["bidirectional"])
    for jac_mode in modes:
        outputs += _sparse_blocks(expression, wrt, jac_mode, pattern, dense)
    fn = pytensor.function(inputs, outputs, mode=compile_mode, on_unused_input="ignore")

    rng = np.random.default_rng(rng_seed)
    checked = 0
    for _ in range(N_POINTS):
        values = [rng.uniform(0.3, 1.7, size=_shape(v)) for v in inputs]
        with np.errstate(all="ignore"):
            results = fn(*values)
        ref = np.hstack([np.asarray(r) for r in results[:n_blocks]])
        if not np.all(np.isfinite(ref)):
            continue  # overflow (e.g. cube of a cube of a cube): nothing to compare
        checked += 1
        missing = np.argwhere((ref != 0) & ~full)
        assert missing.size == 0, (
            f"the pattern misses nonzeros at {missing[:5].tolist()} (families {families})"
        )
        scale = max(float(np.abs(ref).max(initial=0.0)), 1.0)
        for k, jac_mode in enumerate(modes):
            got = results[n_blocks * (k + 1) : n_blocks * (k + 2)]
            assert all(sp.issparse(g) for g in got), [type(g) for g in got]
            got = np.hstack([g.toarray() for g in got])
            err = float(np.abs(got - ref).max(initial=0.0))
            assert err <= RTOL * scale, f"{jac_mode}: max |sparse - dense| = {err:.3g}"
    assume(checked > 0)


#: The numbers of examples come from the Hypothesis profile loaded in tests/conftest.py.
_SETTINGS = dict(
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
    print_blob=True,
)


@settings(**_SETTINGS)
@given(graph=random_graphs(), dense=st.sampled_from([False, False, None]))
def test_random_graph_pattern_and_values_match_dense(graph, dense):
    expression, wrt, inputs, families = graph
    check_graph(expression, wrt, inputs, families, dense=dense, compile_mode="FAST_COMPILE")


@pytest.mark.numba
@settings(max_examples=max(2, settings.default.max_examples // 20), **_SETTINGS)
@given(graph=random_graphs(max_ops=3))
def test_random_graph_numba_backend(graph):
    expression, wrt, inputs, families = graph
    check_graph(expression, wrt, inputs, families, dense=False, compile_mode="NUMBA")


@settings(max_examples=max(4, settings.default.max_examples // 8), **_SETTINGS)
@given(graph=random_graphs(max_ops=4))
def test_random_graph_hessian_matches_dense(graph):
    """Hessians of a random weighted sum of the graph (quadratic costs and zero Hessians come
    from the same families) against ``pytensor.gradient.hessian``; graphs whose dense Hessian
    PyTensor cannot build (prod's gradient has no gradient) are skipped."""
    expression, wrt, inputs, families = graph
    x = wrt[0]
    weights = np.random.default_rng(1).uniform(0.5, 1.5, _shape(expression))
    cost = (expression * weights).sum()
    try:
        dense = pytensor.gradient.hessian(cost, x, disconnected_inputs="ignore")
        dense_fn = pytensor.function(inputs, dense, mode="FAST_COMPILE", on_unused_input="ignore")
    except Exception:
        assume(False)
    note(f"families: {families}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        H = sd.hessian(cost, x, disconnected_inputs="ignore")
    fn = pytensor.function(inputs, H, mode="FAST_COMPILE", on_unused_input="ignore")
    values = [np.random.default_rng(2).uniform(0.3, 1.7, size=_shape(v)) for v in inputs]
    with np.errstate(all="ignore"):
        ref = np.asarray(dense_fn(*values)).reshape(_size(x), _size(x))
        got = fn(*values).toarray()
    assume(np.all(np.isfinite(ref)))
    scale = max(float(np.abs(ref).max(initial=0.0)), 1.0)
    assert float(np.abs(got - ref).max(initial=0.0)) <= RTOL * scale
