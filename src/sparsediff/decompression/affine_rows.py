"""The nonzeros of a slot-layout Jacobian whose regular rows are affine, in one pass.

Where the forward compressed matrix in slot layout (:mod:`sparsediff.compression.slots`) is
affine in a few color-invariant operands ``v_1 … v_q`` (the driven cavity: the convective
term is bilinear in ψ), every regular row ``k`` is ``S[k] = A[0] + Σ_i v_i[k] A[i]`` with a
plan-time coefficient matrix ``A`` of shape ``(q + 1, n_colors)``, and the nonzeros are
``S.ravel()`` at the CSR positions, except on the few irregular rows (near a boundary),
computed apart. As a graph that is a join of the operands, a matrix product writing
``m × n_colors`` values, a row scatter and a gather reading them again; :class:`AffineRows`
writes each nonzero once instead, straight into the CSR data: the positions are cut at plan
time into *runs* that are consecutive both in ``S.ravel()`` (or in the irregular values) and
in the output, and the kernel walks the runs.

``AffineRows`` is an ``OpFromGraph`` whose inner graph is that plain graph, so gradients,
pushforwards, vectorization, sparsity detection and the JAX backend see ordinary PyTensor
Ops; only the evaluation on the C (``perform``) and Numba backends is the kernel. (On JAX the
inner graph is the faster form: n ≈ 10⁵, 2.4 ms, against 5.4 for the same one-pass formula as
constant-index gathers, which XLA does not fuse as well.)
"""

from __future__ import annotations

import functools
import hashlib

import numba
import numpy as np
import pytensor.tensor as pt
from pytensor.compile.builders import OpFromGraph
from pytensor.graph.basic import Variable
from pytensor.scalar import upcast

from sparsediff._jit import kernel

__all__ = [
    "MAX_OPERANDS",
    "AffineRows",
    "affine_rows",
    "affine_rows_kernel",
    "register_numba_affine_rows",
    "warm_up_kernel",
]


def affine_runs(sources: np.ndarray, irregular: np.ndarray) -> np.ndarray:
    """The ``(R, 4)`` run table of the output: output ``p`` reads ``S.ravel()[sources[p]]``
    where ``irregular[p]`` is False, else the next irregular value (in output order).

    Columns: the source (0: ``S.ravel()``, 1: the irregular values), the first source index,
    the first output index, the length; a run is consecutive in its source and the output."""
    sources = np.asarray(sources, dtype=np.int64)
    irregular = np.asarray(irregular, dtype=bool)
    if sources.shape != irregular.shape or sources.ndim != 1:
        raise ValueError("sources and irregular must be 1-D arrays of one length")
    src = sources.copy()
    src[irregular] = np.arange(int(irregular.sum()), dtype=np.int64)
    if src.size == 0:
        return np.zeros((0, 4), dtype=np.int64)
    kind = irregular.astype(np.int64)
    breaks = np.flatnonzero((np.diff(src) != 1) | (np.diff(kind) != 0)) + 1
    starts = np.concatenate([[0], breaks])
    lengths = np.diff(np.concatenate([starts, [src.size]]))
    return np.stack([kind[starts], src[starts], starts, lengths], axis=1)


#: Operands per pass of the kernel: a pass reads this many operands (a group padded by
#: repeating its first operand with zero coefficients), so that its inner loop is a fixed
#: expression of scalars (Numba does not vectorize a loop over a tuple of operands).
GROUP = 4
#: The most operands an :class:`AffineRows` takes. The kernel always receives this many (the
#: list padded by repeating its first operand), so that it has one signature, compiled once
#: into Numba's cache at install time (``python -m sparsediff precompile``), whatever ``q``.
MAX_OPERANDS = 8


def operand_groups(coefficients: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(groups, grouped)``: the operands' indices in passes of :data:`GROUP` (shape
    ``(g, GROUP)``) and each pass's coefficients ``(g, GROUP + 1, n_colors)``: row 0 the
    constant term (zero after the first pass), padding operands with zero rows."""
    q = coefficients.shape[0] - 1
    g = max(1, -(-q // GROUP))
    groups = np.zeros((g, GROUP), dtype=np.int64)
    grouped = np.zeros((g, GROUP + 1, coefficients.shape[1]), dtype=coefficients.dtype)
    grouped[0, 0] = coefficients[0]
    for i in range(q):
        p, j = divmod(i, GROUP)
        groups[p, j] = i
        grouped[p, j + 1] = coefficients[i + 1]
    for p in range(g):
        groups[p, (q - p * GROUP) :] = groups[p, 0]  # padding: zero coefficients
    return groups, grouped


@kernel(fastmath={"contract"})  # FMA; NaN and inf semantics kept
def _affine_pass(v0, v1, v2, v3, a, runs, out, accumulate):
    """One pass: ``out[p] (+)= a[0, r] + Σ_j v_j[k] a[j + 1, r]`` over the affine runs."""
    width = a.shape[1]
    a0, a1, a2, a3, a4 = a[0], a[1], a[2], a[3], a[4]
    for t in range(runs.shape[0]):
        if runs[t, 0] == 1:
            continue
        src, dst, length = runs[t, 1], runs[t, 2], runs[t, 3]
        k, r = src // width, src % width
        done = 0
        while done < length:
            stop = min(width, r + length - done)
            x0, x1, x2, x3 = v0[k], v1[k], v2[k], v3[k]
            if r == 0 and stop == width and not accumulate:
                # a whole row (most of them), written through a view from 0: this loop
                # vectorizes (the kernel at n ≈ 10⁵: 1.4–1.7 ms indexing ``out`` at an offset,
                # 0.8–1.2 ms so)
                o = out[dst + done : dst + done + width]
                for c in range(width):
                    o[c] = a0[c] + x0 * a1[c] + x1 * a2[c] + x2 * a3[c] + x3 * a4[c]
            else:
                base = dst + done - r
                for c in range(r, stop):
                    value = a0[c] + x0 * a1[c] + x1 * a2[c] + x2 * a3[c] + x3 * a4[c]
                    out[base + c] = out[base + c] + value if accumulate else value
            done += stop - r
            r = 0
            k += 1


@kernel
def affine_rows_kernel(operands, irregular, groups, grouped, runs, nnz):
    """The output of :class:`AffineRows` (``groups``, ``grouped``: :func:`operand_groups`)."""
    out = np.empty(nnz, dtype=grouped.dtype)
    for p in range(groups.shape[0]):
        g = groups[p]
        _affine_pass(
            operands[g[0]],
            operands[g[1]],
            operands[g[2]],
            operands[g[3]],
            grouped[p],
            runs,
            out,
            p > 0,
        )
    for t in range(runs.shape[0]):
        if runs[t, 0] == 1:
            src, dst, length = runs[t, 1], runs[t, 2], runs[t, 3]
            out[dst : dst + length] = irregular[src : src + length]
    return out


def warm_up_kernel() -> None:
    """Run :func:`affine_rows_kernel` once with the argument types ``perform`` passes, so
    that its one signature is compiled (and with ``cache=True`` stored in Numba's cache)."""
    ones = np.ones(2)
    affine_rows_kernel(
        (ones,) * MAX_OPERANDS,
        ones,
        np.zeros((1, GROUP), dtype=np.int64),
        np.ones((1, GROUP + 1, 2)),
        np.array([[0, 0, 0, 2], [1, 0, 2, 2]], dtype=np.int64),
        4,
    )


@functools.cache
def _kernel_digest() -> str:
    """The kernels' source: PyTensor's Numba cache keeps whole compiled graphs under the
    Ops' keys, so a key that outlived a change of the kernel would load the old code."""
    import inspect

    source = "".join(inspect.getsource(f.py_func) for f in (_affine_pass, affine_rows_kernel))
    return hashlib.sha256(source.encode()).hexdigest()


class AffineRows(OpFromGraph):
    """``data = affine_rows(v_1, …, v_q, irregular)``: see the module docstring.

    The plan-time arrays (``coefficients`` ``(q + 1, n_colors)`` and the run table) are
    attributes; the inner graph, built from them, is what every symbolic transformation
    uses."""

    def __init__(self, inputs, outputs, coefficients: np.ndarray, runs: np.ndarray, nnz: int):
        super().__init__(inputs, outputs, inline=False, name="AffineRows")
        self.coefficients = coefficients
        self.groups, self.grouped = operand_groups(coefficients)
        self.runs = runs
        self.nnz = int(nnz)

    def cache_key(self) -> str:
        """What the compiled kernel depends on (Numba's cache of the whole function)."""
        digest = hashlib.sha256(f"sparsediff.AffineRows {_kernel_digest()}".encode())
        for a in (self.coefficients, self.runs):
            digest.update(str((a.dtype, a.shape)).encode())
            digest.update(np.ascontiguousarray(a).tobytes())
        digest.update(str((self.nnz, len(self.inner_inputs))).encode())
        return digest.hexdigest()

    def perform(self, node, inputs, outputs):
        *operands, irregular = inputs
        operands = [np.ascontiguousarray(v) for v in operands]
        outputs[0][0] = affine_rows_kernel(
            tuple(operands + operands[:1] * (MAX_OPERANDS - len(operands))),
            np.ascontiguousarray(irregular),
            self.groups,
            self.grouped,
            self.runs,
            self.nnz,
        )


def affine_rows(
    operands: list[Variable],
    irregular: Variable,
    coefficients: np.ndarray,
    sources: np.ndarray,
    is_irregular: np.ndarray,
) -> Variable:
    """The nonzeros ``data[p]``: ``S.ravel()[sources[p]]`` with ``S = [1, v_1, …, v_q] @
    coefficients`` (rows of ``S``: the operands' entries), or, where ``is_irregular[p]``, the
    next entry of ``irregular`` (its values in output order)."""
    operands = [pt.as_tensor_variable(v) for v in operands]
    irregular = pt.as_tensor_variable(irregular)
    coefficients = np.ascontiguousarray(coefficients)
    sources = np.asarray(sources, dtype=np.int64)
    is_irregular = np.asarray(is_irregular, dtype=bool)
    if not operands or any(v.ndim != 1 for v in operands) or irregular.ndim != 1:
        raise TypeError("affine_rows needs 1-D operands and a 1-D vector of irregular values")
    if len(operands) > MAX_OPERANDS:
        raise ValueError(f"affine_rows takes at most {MAX_OPERANDS} operands, got {len(operands)}")
    if coefficients.ndim != 2 or coefficients.shape[0] != len(operands) + 1:
        raise ValueError(
            f"coefficients must have one row per operand plus one, got {coefficients.shape}"
        )
    lengths = {v.type.shape[0] for v in operands}
    if len(lengths) != 1 or None in lengths:
        raise ValueError("the operands must have one static length (the rows of S)")
    (m,) = lengths
    width = coefficients.shape[1]
    n_irregular = int(is_irregular.sum())
    if irregular.type.shape[0] != n_irregular:
        raise ValueError(
            f"{n_irregular} irregular positions but {irregular.type.shape[0]} irregular values"
        )
    regular_sources = sources[~is_irregular]
    if regular_sources.size and (regular_sources.min() < 0 or regular_sources.max() >= m * width):
        raise ValueError("a source position lies outside S")
    # the output's dtype, and the kernel's (it writes in the coefficients' dtype)
    dtype = upcast(coefficients.dtype, irregular.dtype, *(v.dtype for v in operands))
    coefficients = coefficients.astype(dtype)

    inner_operands = [v.type() for v in operands]
    inner_irregular = irregular.type()
    stacked = pt.stack([pt.ones((m,), dtype=dtype)] + [v.astype(dtype) for v in inner_operands])
    rows = pt.dot(stacked.T, pt.constant(coefficients)).ravel()
    combined = pt.concatenate([rows, inner_irregular.astype(dtype)])
    index = sources.copy()
    index[is_irregular] = m * width + np.arange(n_irregular, dtype=np.int64)
    data = combined[pt.constant(index)]
    op = AffineRows(
        [*inner_operands, inner_irregular],
        [data],
        coefficients=coefficients,
        runs=affine_runs(sources, is_irregular),
        nnz=sources.size,
    )
    return op(*operands, irregular)


def register_numba_affine_rows() -> None:
    """Compile :class:`AffineRows` on the Numba backend as the kernel, not its inner graph."""
    from pytensor.link.numba.dispatch.basic import register_funcify_and_cache_key

    @register_funcify_and_cache_key(AffineRows)
    def numba_funcify_AffineRows(op, node=None, **kwargs):
        groups, grouped, runs, nnz = op.groups, op.grouped, op.runs, op.nnz
        q = len(op.inner_inputs) - 1
        names = [f"v{i}" for i in range(q)]
        padded = names + names[:1] * (MAX_OPERANDS - q)
        source = (
            f"def affine_rows_numba({', '.join(names)}, irregular):\n"
            f"    return affine_rows_kernel(({', '.join(padded)},), irregular, groups, grouped,"
            " runs, nnz)\n"
        )
        scope = {
            "affine_rows_kernel": affine_rows_kernel,
            "groups": groups,
            "grouped": grouped,
            "runs": runs,
            "nnz": nnz,
        }
        # a fixed template (one argument per operand), like PyTensor's own generated functions
        exec(compile(source, "<affine_rows>", "exec"), scope)
        return numba.njit(scope["affine_rows_numba"]), op.cache_key()
