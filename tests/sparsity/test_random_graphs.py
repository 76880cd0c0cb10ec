"""Random graphs from the covered Ops: the detected pattern must contain every nonzero.

Hypothesis builds a graph step by step from a pool of expressions of ``x``: elementwise unary
and binary Ops (with broadcasting), slicing, concatenation, reshapes and transposes, reductions,
cumulative sums, ``set``/``inc_subtensor``, ``dot`` with a constant matrix that has zeros,
``switch`` and advanced indexing, at small random shapes. The truth is the union of the dense
Jacobian's nonzeros at random points.

Profiles (environment variable ``SPARSEDIFF_HYPOTHESIS_PROFILE``):

* ``ci`` (default): 25 examples, no deadline -- a bounded run for every test session;
* ``long``: 1000 examples, for a soak run before a release::

      SPARSEDIFF_HYPOTHESIS_PROFILE=long ./dev test tests/sparsity/test_random_graphs.py
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field

import numpy as np
import pytensor.tensor as pt
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sparsediff as sd
from tests.sparsity.dense_truth import dense_nonzeros

_COMMON = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile("sparsediff-random-graphs-ci", max_examples=25, **_COMMON)
settings.register_profile("sparsediff-random-graphs-long", max_examples=1000, **_COMMON)
PROFILE = "sparsediff-random-graphs-" + os.environ.get("SPARSEDIFF_HYPOTHESIS_PROFILE", "ci")

MAX_SIZE = 24  # elements per intermediate: keeps dense truths cheap


@dataclass
class Builder:
    """Draws operations and operands; remembers whether a value-dependent Op was used."""

    data: st.DataObject
    rng: np.random.Generator
    pool: list = field(default_factory=list)
    value_dependent: bool = False
    log: list = field(default_factory=list)

    def draw(self, strategy, label):
        value = self.data.draw(strategy, label=label)
        return value

    def operand(self, label="operand"):
        return self.pool[self.draw(st.integers(0, len(self.pool) - 1), label)]

    def fit(self, b, shape):
        """Elements of ``b`` (advanced indexing with a constant index) shaped to broadcast
        against ``shape``: the same shape, or with some dimensions 1, or a scalar."""
        kind = self.draw(st.sampled_from(["same", "ones", "scalar"]), "broadcast")
        if kind == "scalar" or len(shape) == 0:
            target = ()
        elif kind == "ones":
            target = tuple(1 if self.rng.random() < 0.5 else s for s in shape)
        else:
            target = tuple(shape)
        size = int(np.prod(target, dtype=np.int64))
        b_size = int(np.prod(b.type.shape, dtype=np.int64))
        index = self.rng.integers(0, b_size, size=size)
        flat = b.ravel()
        picked = flat[index] if size else flat[:0]
        return picked.reshape(target) if target else picked.reshape(())


UNARY = {
    "sin": pt.sin,
    "cos": pt.cos,
    "tanh": pt.tanh,
    "sigmoid": pt.sigmoid,
    "square": pt.sqr,
    "cube": lambda a: a**3,
    "exp_neg_sq": lambda a: pt.exp(-(a**2)),
    "floor": pt.floor,  # derivative-free
    "neg": lambda a: -a,
}
BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (1.0 + b**2),
}
OPS = [
    "unary",
    "binary",
    "slice",
    "concat",
    "reshape",
    "transpose",
    "reduce",
    "cumsum",
    "set_subtensor",
    "inc_subtensor",
    "dot_constant",
    "switch",
    "advanced_index",
]


def _size(var) -> int:
    return int(np.prod(var.type.shape, dtype=np.int64))


def apply_random_op(b: Builder):
    op = b.draw(st.sampled_from(OPS), "op")
    a = b.operand()
    shape = tuple(a.type.shape)
    if op == "unary":
        name = b.draw(st.sampled_from(sorted(UNARY)), "unary")
        out = UNARY[name](a)
    elif op == "binary":
        name = b.draw(st.sampled_from(sorted(BINARY)), "binary")
        other = b.fit(b.operand("other"), shape)
        out = BINARY[name](a, other) if b.rng.random() < 0.5 else BINARY[name](other, a)
    elif op == "slice":
        if a.type.ndim == 0:
            return a * 2
        n = shape[0]
        start = int(b.rng.integers(0, max(n - 1, 1)))
        step = int(b.rng.choice([1, 2, -1]))
        out = a[start:] if step > 0 else a[::-1]
        out = out[::step] if step > 0 else out
    elif op == "concat":
        out = pt.concatenate([a.ravel(), b.operand("other").ravel()])
    elif op == "reshape":
        n = _size(a)
        factors = [d for d in range(1, n + 1) if n % d == 0]
        rows = int(b.rng.choice(factors))
        out = a.reshape((rows, n // rows))
    elif op == "transpose":
        out = a.T if a.type.ndim == 2 else (a[::-1] if a.type.ndim == 1 else a * 1.0)
    elif op == "reduce":
        kind = b.draw(st.sampled_from(["sum", "prod", "max", "mean"]), "reduce")
        axis = None if a.type.ndim < 2 or b.rng.random() < 0.3 else int(b.rng.integers(0, 2))
        if kind == "max":
            b.value_dependent = True
        out = getattr(a, kind)(axis=axis)
    elif op == "cumsum":
        out = pt.cumsum(a.ravel())
    elif op in ("set_subtensor", "inc_subtensor"):
        flat = a.ravel()
        n = _size(a)
        k = int(b.rng.integers(1, n + 1))
        index = b.rng.choice(n, size=k, replace=op == "inc_subtensor")
        values = b.fit(b.operand("values"), (k,))
        write = pt.set_subtensor if op == "set_subtensor" else pt.inc_subtensor
        out = write(flat[index], values).reshape(shape) if shape else write(flat[index], values)
    elif op == "dot_constant":
        n = _size(a)
        m = int(b.rng.integers(1, 7))
        c = b.rng.uniform(0.5, 1.5, size=(m, n)) * (b.rng.random((m, n)) < 0.4)
        out = pt.dot(c, a.ravel())
    elif op == "switch":
        other = b.fit(b.operand("other"), shape)
        cond = b.fit(b.operand("condition"), shape) > 1.0
        out = pt.switch(cond, a * 2, other)
    else:  # advanced_index
        n = _size(a)
        index = b.rng.integers(0, n, size=int(b.rng.integers(1, 8)))
        out = a.ravel()[index]
    if _size(out) > MAX_SIZE or out.type.ndim > 2:
        return out.ravel()[:MAX_SIZE]
    return out


@st.composite
def random_graphs(draw):
    data = draw(st.data())
    seed = draw(st.integers(0, 2**31 - 1), label="seed")
    rng = np.random.default_rng(seed)
    shape = draw(
        st.one_of(
            st.tuples(st.integers(1, 8)),
            st.tuples(st.integers(1, 4), st.integers(1, 4)),
        ),
        label="shape",
    )
    x = pt.tensor("x", shape=shape)
    builder = Builder(data, rng, pool=[x])
    for _ in range(draw(st.integers(1, 6), label="n_ops")):
        builder.pool.append(apply_random_op(builder))
    n_outputs = draw(st.integers(1, 2), label="n_outputs")
    outputs = builder.pool[-n_outputs:]
    expression = outputs[0] if len(outputs) == 1 else pt.concatenate([o.ravel() for o in outputs])
    return expression, x, builder.value_dependent


@settings(settings.get_profile(PROFILE))
@given(graph=random_graphs())
def test_random_graph_pattern_contains_dense_nonzeros(graph):
    expression, x, value_dependent = graph
    with warnings.catch_warnings():
        warnings.simplefilter("error", sd.SparsityWarning)  # every Op here has a rule
        pattern = sd.jacobian_sparsity(expression, x)
    truth = dense_nonzeros(expression, [x], [x], n_points=6)[0]
    dense = pattern.toarray()
    assert dense.shape == truth.shape
    missing = np.argwhere(truth & ~dense)
    assert missing.size == 0, f"missed nonzeros {missing[:5].tolist()}"
    if not value_dependent:
        # Loose sanity: extra entries (from cancellations, derivative-free branches) stay a
        # minority; detection that gave up and went dense would fail this.
        extra = int((dense & ~truth).sum())
        assert extra <= 0.5 * dense.size + 2, (extra, int(truth.sum()), dense.shape)


@st.composite
def pattern_lists(draw):
    """Several boolean patterns of one shape, some non-canonical, some row slices of larger
    ones (``indptr[0] != 0``), some ``None`` or empty."""
    n_rows = draw(st.integers(0, 7), label="rows")
    n_cols = draw(st.integers(1, 9), label="cols")
    seed = draw(st.integers(0, 2**31 - 1), label="seed")
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(draw(st.integers(1, 6), label="k")):
        kind = draw(st.sampled_from(["random", "none", "empty", "slice", "duplicates"]))
        dense = rng.random((n_rows, n_cols)) < rng.uniform(0.0, 0.7)
        if kind == "none":
            out.append(None)
        elif kind == "empty":
            out.append(sp.csr_array((n_rows, n_cols), dtype=bool))
        elif kind == "slice":
            big = np.vstack([rng.random((2, n_cols)) < 0.5, dense, rng.random((1, n_cols)) < 0.5])
            out.append(sp.csr_array(big)[2 : 2 + n_rows])
        elif kind == "duplicates":
            rows, cols = np.nonzero(dense)
            order = rng.permutation(rows.size)
            rows = np.concatenate([rows[order], rows])
            cols = np.concatenate([cols[order], cols])
            coo = sp.coo_array((np.ones(rows.size, dtype=bool), (rows, cols)), (n_rows, n_cols))
            csr = sp.csr_array(coo, copy=False)
            out.append(csr)
        else:
            out.append(sp.csr_array(dense))
        if len(out) > 1 and draw(st.booleans(), label="repeat object"):
            out.append(out[0])  # the same object twice
    return out, (n_rows, n_cols)


@settings(
    settings.get_profile(PROFILE), max_examples=max(200, settings.get_profile(PROFILE).max_examples)
)
@given(data=pattern_lists())
def test_union_of_patterns_equals_dense_or(data):
    """``pattern.union`` (2-way and k-way Numba merges) against a dense logical OR."""
    from sparsediff.sparsity import pattern as pat

    patterns, shape = data
    result = pat.union(patterns)
    present = [p for p in patterns if p is not None]
    if not present:
        assert result is None
        return
    expected = np.zeros(shape, dtype=bool)
    for p in present:
        expected |= p.toarray()
    assert result.shape == shape
    np.testing.assert_array_equal(result.toarray(), expected)
    assert result.has_canonical_format
    for r in range(shape[0]):  # the canonical flag is true: rows sorted, no duplicates
        row = result.indices[result.indptr[r] : result.indptr[r + 1]]
        assert np.all(np.diff(row) > 0)
