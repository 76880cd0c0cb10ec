"""Verification: does sparsediff's matrix agree with plain AD at concrete points?

>>> report = sd.check_jacobian(F, x)          # random point(s); dense check for small n
>>> print(report)                             # what was checked, and the worst discrepancy
>>> report.ok, report.max_abs_error, report.missing

Two things are checked at every point:

(a) the **pattern** holds every numerically nonzero entry. For small problems the dense
    Jacobian (``pytensor.gradient.jacobian(..., vectorize=True)``) is computed and every finite
    nonzero outside the pattern is listed in ``missing``. For large ones, random probes: the
    sparse ``J @ v`` is compared with a Jacobian-vector product (``pushforward``) and
    ``uᵀ J`` with a vector-Jacobian product (``pullback``) for random dense ``v``, ``u``; a
    missing nonzero shows up as a discrepancy.
(b) the **values**: against the dense Jacobian, the JVPs/VJPs above, or central finite
    differences (``reference="fd"``), with ``rtol``/``atol``.

Everything is compiled with ``mode="FAST_COMPILE"`` by default (no Numba JIT wait).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytensor
import pytensor.tensor as pt
import scipy.sparse as sp
from pytensor.graph.basic import Constant, Variable
from pytensor.graph.traversal import graph_inputs

from sparsediff._validate import as_expression, as_wrt_list, check_cost
from sparsediff.plans.hessian import hessian_plan
from sparsediff.plans.jacobian import jacobian_plan

__all__ = ["CheckFailed", "CheckReport", "check_hessian", "check_jacobian"]

#: Up to this many rows × columns (entries), the reference is the dense Jacobian.
DENSE_MAX_ENTRIES = 4_000_000
#: Up to this many columns (and rows), the reference is the dense Jacobian.
DENSE_MAX_SIZE = 2000

_REFERENCES = ("auto", "dense", "probes", "fd")


class CheckFailed(AssertionError):
    """Raised by ``check_jacobian``/``check_hessian`` with ``raise_on_failure=True``."""

    def __init__(self, report: CheckReport):
        super().__init__(str(report))
        self.report = report


@dataclass(eq=False)
class CheckReport:
    """What :func:`check_jacobian` / :func:`check_hessian` checked, and what it found.

    ``ok`` is true when no nonzero is missing from the pattern and every value agrees within
    ``rtol``/``atol``. ``missing`` lists ``(row, column)`` entries that were numerically nonzero
    in the dense reference but absent from the pattern (dense check only: probes can only say
    that *something* disagrees, see ``max_abs_error``). ``worst`` describes the largest
    discrepancy: ``(point, row or None, column or None, got, expected)``.
    """

    kind: str  #: "jacobian" or "hessian"
    reference: str  #: "dense", "probes" or "fd"
    shape: tuple[int, int]
    nnz: int
    n_points: int
    n_probes: int
    rtol: float
    atol: float
    ok: bool = True
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0
    missing: list[tuple[int, int]] = field(default_factory=list)
    n_missing: int = 0
    n_nonfinite: int = 0  #: non-finite reference entries, excluded from the comparison
    not_symmetric: float = 0.0  #: largest |H - Hᵀ| (Hessians)
    worst: tuple[Any, ...] | None = None
    notes: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        m, n = self.shape
        what = "Hessian" if self.kind == "hessian" else "Jacobian"
        how = {
            "dense": "against the dense Jacobian (pytensor.gradient.jacobian)",
            "probes": f"with {self.n_probes} random probes per point (J·v vs JVP, uᵀ·J vs VJP)",
            "fd": f"with {self.n_probes} random probes per point (J·v vs central differences)",
        }[self.reference]
        if self.kind == "hessian":
            how = {
                "dense": "against the dense Hessian (pytensor.gradient.hessian)",
                "probes": f"with {self.n_probes} random probes per point (H·v vs HVP)",
            }[self.reference]
        lines = [
            f"check_{self.kind}: {'OK' if self.ok else 'FAILED'} — {what} {m}×{n}, "
            f"nnz={self.nnz}, {self.n_points} point(s), checked {how}",
            f"  values: max abs error {self.max_abs_error:.3g}, max rel error "
            f"{self.max_rel_error:.3g} (rtol={self.rtol:g}, atol={self.atol:g})",
        ]
        if self.reference == "dense":
            if self.n_missing:
                shown = ", ".join(f"({i}, {j})" for i, j in self.missing[:10])
                more = f" and {self.n_missing - 10} more" if self.n_missing > 10 else ""
                lines.append(
                    f"  pattern: {self.n_missing} nonzero(s) MISSING from the pattern: "
                    f"{shown}{more}"
                )
            else:
                lines.append("  pattern: contains every nonzero of the dense reference")
        if self.worst is not None and self.max_abs_error > 0:
            point, i, j, got, expected = self.worst
            where = f"entry ({i}, {j})" if i is not None and j is not None else "a probe"
            lines.append(
                f"  worst: {where} at point {point}: sparsediff {got:.6g}, reference {expected:.6g}"
            )
        if self.kind == "hessian" and self.not_symmetric:
            lines.append(f"  symmetry: max |H - Hᵀ| = {self.not_symmetric:.3g}")
        if self.n_nonfinite:
            lines.append(
                f"  {self.n_nonfinite} non-finite reference entries (NaN/inf) were not compared"
            )
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_pretty_(self, printer, cycle) -> None:  # IPython
        printer.text(str(self))


# --------------------------------------------------------------------------------------------
# Points
# --------------------------------------------------------------------------------------------


def _free_inputs(outputs: Sequence[Variable]) -> list[Variable]:
    """Root inputs that need a value (not constants, not shared variables)."""
    from pytensor.compile.sharedvalue import SharedVariable

    return [
        v
        for v in graph_inputs(outputs)
        if not isinstance(v, Constant | SharedVariable) and v.owner is None
    ]


def _random_value(var: Variable, rng: np.random.Generator) -> np.ndarray:
    shape = getattr(var.type, "shape", None)
    if shape is None or any(s is None for s in shape):
        raise ValueError(
            f"check needs a value for {var} (its shape is not static): pass point={{...}}"
        )
    dtype = var.type.dtype
    if dtype in pt.type.continuous_dtypes:
        return rng.uniform(0.5, 1.5, size=shape).astype(dtype)
    raise ValueError(f"check needs a value for the {dtype} input {var}: pass point={{...}}")


def _points(point, inputs: list[Variable], wrt: list[Variable], n_points: int, seed):
    """A list of ``{input: value}`` dicts, one per point."""
    rng = np.random.default_rng(seed)
    if point is None:
        given = [{}] * n_points
    elif isinstance(point, Mapping):
        given = [dict(point)]
    elif isinstance(point, list) and point and all(isinstance(p, Mapping) for p in point):
        given = [dict(p) for p in point]
    else:
        if len(wrt) != 1:
            raise TypeError("with several wrt, give point as a dict {variable: value}")
        arrays = point if isinstance(point, list) else [point]
        given = [{wrt[0]: a} for a in arrays]
    points = []
    for p in given:
        full = {}
        for var in inputs:
            if var in p:
                value = np.asarray(p[var], dtype=var.type.dtype)
            else:
                value = _random_value(var, rng)
            full[var] = value
        unknown = [k for k in p if k not in inputs]
        if unknown:
            raise ValueError(f"point gives values for variables not in the graph: {unknown}")
        points.append(full)
    return points


def _start(kind, output, wrt_list, point, n_points, seed, **report_fields):
    """The graph's inputs (every ``wrt`` among them, even a disconnected one), the points to
    check at, and the empty report."""
    inputs = _free_inputs([output])
    for w in wrt_list:
        if w not in inputs:
            inputs.append(w)  # disconnected wrt (allowed by the plan options): still an input
    points = _points(point, inputs, wrt_list, n_points, seed)
    return inputs, points, CheckReport(kind=kind, n_points=len(points), **report_fields)


def _flat_wrt(points_values: dict, wrt: list[Variable]) -> np.ndarray:
    return np.concatenate([np.asarray(points_values[w]).ravel() for w in wrt])


# --------------------------------------------------------------------------------------------
# Comparisons
# --------------------------------------------------------------------------------------------


def _sparse_value(blocks) -> sp.csr_array:
    if isinstance(blocks, list | tuple):
        return sp.csr_array(sp.hstack([sp.csr_array(b) for b in blocks], format="csr"))
    return sp.csr_array(blocks)


def _update_errors(report: CheckReport, got, expected, k: int, loc) -> bool:
    """Compare arrays; update the worst discrepancy; whether all agree within tolerance."""
    got = np.asarray(got, dtype=float).ravel()
    expected = np.asarray(expected, dtype=float).ravel()
    finite = np.isfinite(expected)
    report.n_nonfinite += int((~finite).sum())
    # Where the reference is not finite, sparsediff may be anything non-finite too.
    mismatch_nonfinite = finite & ~np.isfinite(got)
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.where(finite, np.abs(got - expected), 0.0)
    err = np.where(mismatch_nonfinite, np.inf, err)
    if err.size == 0:
        return True
    scale = np.abs(expected)
    with np.errstate(invalid="ignore", over="ignore"):
        rel = np.where(finite & (scale > 0), err / np.where(scale > 0, scale, 1.0), 0.0)
    rel = np.where(finite & (scale == 0) & (err > 0), np.inf, rel)
    worst = int(np.argmax(err))
    if err[worst] > report.max_abs_error or report.worst is None:
        report.max_abs_error = float(max(err[worst], report.max_abs_error))
        i, j = loc(worst)
        report.worst = (k, i, j, float(got[worst]), float(expected[worst]))
    report.max_rel_error = float(max(report.max_rel_error, float(np.max(rel))))
    return bool(np.all(err <= report.atol + report.rtol * np.where(finite, scale, 0.0)))


def _compile(inputs, outputs, mode):
    return pytensor.function(inputs, outputs, mode=mode, on_unused_input="ignore")


# --------------------------------------------------------------------------------------------
# check_jacobian
# --------------------------------------------------------------------------------------------


def _choose_reference(reference: str, m: int, n: int, dense_max_size: int) -> str:
    if reference not in _REFERENCES:
        raise ValueError(f"reference must be one of {_REFERENCES}, got {reference!r}")
    if reference != "auto":
        return reference
    small = max(m, n) <= dense_max_size and m * n <= DENSE_MAX_ENTRIES
    return "dense" if small else "probes"


def check_jacobian(
    expression,
    wrt,
    point=None,
    *,
    reference: str = "auto",
    n_points: int = 2,
    n_probes: int = 3,
    rtol: float = 1e-6,
    atol: float = 1e-9,
    fd_step: float | None = None,
    mode="FAST_COMPILE",
    seed: int | None = 0,
    raise_on_failure: bool = False,
    dense_max_size: int = DENSE_MAX_SIZE,
    **plan_kwargs,
) -> CheckReport:
    """Check ``sd.jacobian(expression, wrt)`` numerically at one or more points.

    Parameters
    ----------
    expression, wrt
        As for :func:`sparsediff.plans.jacobian` (``wrt`` may be a list).
    point
        ``None`` (``n_points`` random points, every float input uniform in [0.5, 1.5]), an array
        (the value of a single ``wrt``), a dict ``{variable: value}`` (other inputs random
        unless given), or a list of arrays or dicts. Integer inputs must be given.
    reference
        ``"auto"`` (dense up to ``dense_max_size`` rows and columns, probes above), ``"dense"``,
        ``"probes"`` (J·v vs JVP and uᵀ·J vs VJP) or ``"fd"`` (J·v vs central differences; set
        ``rtol`` loosely, e.g. 1e-4).
    rtol, atol
        Tolerances of the value comparison: ``|got - expected| <= atol + rtol * |expected|``.
    mode
        The PyTensor compilation mode of every function compiled here.
    raise_on_failure
        Raise :class:`CheckFailed` (an ``AssertionError``) holding the report instead of
        returning a failed report.
    **plan_kwargs
        Passed to :func:`sparsediff.jacobian_plan` (``mode`` there is ``jacobian_mode=``).
    """
    wrt_list, is_list = as_wrt_list(wrt)
    expression = as_expression(expression)
    if "jacobian_mode" in plan_kwargs:
        plan_kwargs["mode"] = plan_kwargs.pop("jacobian_mode")
    plan = jacobian_plan(expression, wrt_list if is_list else wrt_list[0], **plan_kwargs)
    J = plan.build()
    m, n = plan.shape
    pattern = plan.full_pattern
    ref = _choose_reference(reference, m, n, dense_max_size)
    inputs, points, report = _start(
        "jacobian", expression, wrt_list, point, n_points, seed,
        reference=ref, shape=(m, n), nnz=int(pattern.nnz),
        n_probes=0 if ref == "dense" else n_probes, rtol=rtol, atol=atol,
    )  # fmt: skip
    f_sparse = _compile(inputs, J if isinstance(J, list) else [J], mode)
    flat = expression.ravel()

    if ref == "dense":

        def dense_reference(vectorize):
            blocks = pytensor.gradient.jacobian(
                flat, wrt_list, disconnected_inputs="ignore", vectorize=vectorize
            )
            return pt.concatenate([d.reshape((m, -1)) for d in blocks], axis=1)

        f_dense = _DenseReference(dense_reference, inputs, mode)
        _dense_check(report, points, inputs, f_sparse, f_dense, pattern)
    else:
        rng = np.random.default_rng(None if seed is None else seed + 1)
        _probe_check(report, ref, points, inputs, wrt_list, flat, f_sparse, rng, mode, fd_step)
    return _finish(report, raise_on_failure)


class _DenseReference:
    """The dense Jacobian, vectorized; PyTensor's Scan version where vectorizing fails (e.g.
    ``vectorize=True`` of an expression whose gradient is all zeros)."""

    def __init__(self, build, inputs, mode):
        self.build, self.inputs, self.mode = build, inputs, mode
        self.fn = None
        try:
            self.fn = _compile(inputs, build(True), mode)
        except Exception:
            self.fn = None

    def __call__(self, *args):
        if self.fn is not None:
            try:
                return self.fn(*args)
            except Exception:
                pass
        self.fn = _compile(self.inputs, self.build(False), self.mode)
        return self.fn(*args)


def _dense_check(report, points, inputs, f_sparse, f_dense, pattern) -> None:
    in_pattern = pattern.toarray()
    for k, values in enumerate(points):
        args = [values[v] for v in inputs]
        got = _sparse_value(f_sparse(*args)).toarray()
        expected = np.asarray(f_dense(*args))
        if got.shape != expected.shape:
            raise AssertionError(f"shapes differ: sparsediff {got.shape}, dense {expected.shape}")
        outside = np.isfinite(expected) & (expected != 0) & ~in_pattern
        rows, cols = np.nonzero(outside)
        known = set(report.missing)
        for i, j in zip(rows.tolist(), cols.tolist(), strict=True):
            if (i, j) not in known:
                report.missing.append((i, j))
                known.add((i, j))
        width = got.shape[1]
        agree = _update_errors(report, got, expected, k, lambda q, w=width: divmod(q, w))
        report.ok = report.ok and agree
    report.n_missing = len(report.missing)
    if report.n_missing:
        report.ok = False


def _probe_check(report, ref, points, inputs, wrt_list, flat, f_sparse, rng, mode, fd_step):
    sizes = [int(np.prod(w.type.shape, dtype=np.int64)) for w in wrt_list]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    m, n = report.shape
    dtype = flat.dtype
    tangents = [w.type() for w in wrt_list]
    f_value = None
    if ref == "probes":
        jvp = pytensor.gradient.pushforward(
            flat, wrt_list, tangents, disconnected_outputs="ignore", return_disconnected="zero"
        )
        cot = pt.vector("u", shape=(m,), dtype=dtype)
        vjps = pytensor.gradient.pullback(
            flat, wrt_list, cot, disconnected_inputs="ignore", return_disconnected="zero"
        )
        f_jvp = _compile([*inputs, *tangents], jvp, mode)
        f_vjp = _compile([*inputs, cot], [v.ravel() for v in vjps], mode)
    else:
        f_value = _compile(inputs, flat, mode)
    for k, values in enumerate(points):
        args = [values[v] for v in inputs]
        J = _sparse_value(f_sparse(*args))
        for _ in range(report.n_probes):
            v = rng.standard_normal(n).astype(dtype)
            got = J @ v
            if ref == "probes":
                parts = [
                    v[offsets[b] : offsets[b + 1]].reshape(w.type.shape)
                    for b, w in enumerate(wrt_list)
                ]
                expected = np.asarray(f_jvp(*args, *parts)).ravel()
            else:
                expected = _central_difference(
                    f_value, values, inputs, wrt_list, v, offsets, fd_step
                )
            ok = _update_errors(report, got, expected, k, lambda q: (q, None))
            report.ok = report.ok and ok
            if ref == "probes":
                u = rng.standard_normal(m).astype(dtype)
                got_t = J.T @ u
                expected_t = np.concatenate([np.ravel(g) for g in f_vjp(*args, u)])
                ok = _update_errors(report, got_t, expected_t, k, lambda q: (None, q))
                report.ok = report.ok and ok
    if ref == "fd":
        report.notes.append("finite differences are approximate: use a loose rtol (e.g. 1e-4)")


def _central_difference(f_value, values, inputs, wrt_list, v, offsets, step):
    x = _flat_wrt(values, wrt_list)
    h = (
        step
        if step is not None
        else np.cbrt(np.finfo(np.float64).eps) * max(1.0, float(np.max(np.abs(x))))
    )

    def at(sign):
        shifted = dict(values)
        for b, w in enumerate(wrt_list):
            piece = (x + sign * h * v)[offsets[b] : offsets[b + 1]]
            shifted[w] = piece.reshape(w.type.shape).astype(w.type.dtype)
        return np.asarray(f_value(*[shifted[var] for var in inputs]), dtype=float)

    return (at(1.0) - at(-1.0)) / (2 * h)


def _finish(report: CheckReport, raise_on_failure: bool) -> CheckReport:
    if raise_on_failure and not report.ok:
        raise CheckFailed(report)
    return report


# --------------------------------------------------------------------------------------------
# check_hessian
# --------------------------------------------------------------------------------------------


def check_hessian(
    cost,
    wrt,
    point=None,
    *,
    reference: str = "auto",
    n_points: int = 2,
    n_probes: int = 3,
    rtol: float = 1e-6,
    atol: float = 1e-9,
    mode="FAST_COMPILE",
    seed: int | None = 0,
    raise_on_failure: bool = False,
    dense_max_size: int = DENSE_MAX_SIZE,
    **plan_kwargs,
) -> CheckReport:
    """Check ``sd.hessian(cost, wrt)`` numerically at one or more points.

    The reference is the dense Hessian (``pytensor.gradient.hessian``) up to ``dense_max_size``
    variables, else Hessian-vector products (``pytensor.gradient.hessian_vector_product``) with
    random vectors (``reference="probes"``). The symmetry of the result is checked too. With a
    list ``wrt``, the diagonal blocks ``sd.hessian`` returns (like ``pytensor.gradient.hessian``)
    are checked together, as one block-diagonal matrix (rows and columns in the order of
    ``wrt``). Other arguments as for :func:`check_jacobian`; ``**plan_kwargs`` go to
    :func:`sparsediff.hessian_plan`.
    """
    cost = check_cost(cost)
    wrt_list, is_list = as_wrt_list(wrt)
    if reference == "fd":
        raise ValueError("check_hessian supports reference='auto', 'dense' or 'probes'")
    plans = hessian_plan(cost, wrt_list if is_list else wrt_list[0], **plan_kwargs)
    plans = plans if is_list else [plans]
    blocks = [p.build() for p in plans]
    patterns = [sp.csr_array(p.pattern) for p in plans]
    pattern = patterns[0] if len(patterns) == 1 else sp.csr_array(sp.block_diag(patterns))
    sizes = [p.shape[0] for p in patterns]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    n = int(offsets[-1])
    ref = _choose_reference(reference, n, n, dense_max_size)
    inputs, points, report = _start(
        "hessian", cost, wrt_list, point, n_points, seed,
        reference=ref, shape=(n, n), nnz=int(pattern.nnz),
        n_probes=0 if ref == "dense" else n_probes, rtol=rtol, atol=atol,
    )  # fmt: skip
    if is_list:
        report.notes.append(
            "wrt is a list: the diagonal blocks (one per wrt) were checked, as pytensor's "
            "hessian returns them"
        )
    f_blocks = _compile(inputs, blocks, mode)

    def f_sparse(*args):
        values = [sp.csr_array(v) for v in f_blocks(*args)]
        return values[0] if len(values) == 1 else sp.csr_array(sp.block_diag(values))

    if ref == "dense":

        def dense_reference(vectorize):
            # The Jacobian of the gradient: pytensor.gradient.hessian only takes vectors.
            grads = pytensor.grad(cost, wrt_list, disconnected_inputs="ignore")
            return [
                pytensor.gradient.jacobian(
                    g.ravel(), w, disconnected_inputs="ignore", vectorize=vectorize
                ).reshape((k, k))
                for g, w, k in zip(grads, wrt_list, sizes, strict=True)
            ]

        f_dense_blocks = _DenseReference(dense_reference, inputs, mode)

        def f_dense(*args):
            from scipy.linalg import block_diag

            return block_diag(*[np.asarray(d) for d in f_dense_blocks(*args)])

        _dense_check(report, points, inputs, f_sparse, f_dense, pattern)
    else:
        directions = [w.type() for w in wrt_list]
        hvps = [
            pytensor.gradient.hessian_vector_product(cost, w, p, disconnected_inputs="ignore")
            for w, p in zip(wrt_list, directions, strict=True)
        ]
        f_hvp = _compile([*inputs, *directions], [h.ravel() for h in hvps], mode)
        rng = np.random.default_rng(None if seed is None else seed + 1)
        for k, values in enumerate(points):
            args = [values[v] for v in inputs]
            Hk = f_sparse(*args)
            for _ in range(n_probes):
                v = rng.standard_normal(n).astype(cost.dtype)
                parts = [
                    v[offsets[b] : offsets[b + 1]].reshape(w.type.shape).astype(w.type.dtype)
                    for b, w in enumerate(wrt_list)
                ]
                expected = np.concatenate([np.ravel(h) for h in f_hvp(*args, *parts)])
                ok = _update_errors(report, Hk @ v, expected, k, lambda q: (q, None))
                report.ok = report.ok and ok
    for values in points:
        Hk = f_sparse(*[values[v] for v in inputs])
        asym = abs(Hk - Hk.T)
        asym = float(np.nanmax(asym.data)) if asym.nnz else 0.0
        report.not_symmetric = max(report.not_symmetric, asym)
        largest = float(np.nanmax(np.abs(Hk.data))) if Hk.nnz else 0.0
        if asym > report.atol + report.rtol * largest:
            report.ok = False
    return _finish(report, raise_on_failure)
