"""Why is this pattern dense? The chain of Ops through which ``expression[i]`` depends on
``wrt[j]``.

>>> print(sd.explain_sparsity(F, x, (5, 7)))   # one entry
>>> print(sd.explain_sparsity(F, x))           # densest rows/columns, and one of their entries

The graph is prepared and propagated exactly as for :func:`sparsediff.jacobian_sparsity`,
keeping the pattern of every variable. From the output element, the path walks backwards:
at each node, the input element through which ``wrt[j]`` reaches the current element is found
by re-running the node's own sparsity rule with the input's elements as the "wrt" (the
node's local element-to-element pattern). The path is printed top-down like
``pytensor.dprint``, each line with the element on the path, how many ``wrt`` entries that
element depends on, and how many elements of the variable depend on ``wrt[j]``. The node where
the element on the path first depends on more ``wrt`` entries than its input element did is
marked: that is where the coupling was introduced; its source line is shown when PyTensor
recorded one (``pytensor.config.traceback__limit``).
"""

from __future__ import annotations

import itertools
import os
import warnings
from dataclasses import dataclass, field

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Variable

from sparsediff._validate import as_wrt_list
from sparsediff.sparsity import pattern as pat
from sparsediff.sparsity.graph import prepare_graph, wrt_seeds
from sparsediff.sparsity.propagate import propagate
from sparsediff.sparsity.registry import RuleContext, find_rule

__all__ = ["PathStep", "SparsityExplanation", "explain_sparsity"]


@dataclass
class PathStep:
    """One variable on the path from ``wrt[j]`` to ``expression[i]``."""

    variable: Variable
    op: str | None  #: the Op that produced it (None for wrt itself)
    label: str  #: the variable's name, or its repr
    element: int  #: flat index of the element on the path
    shape: tuple[int, ...] | None
    depends_on: int  #: how many wrt entries that element depends on
    fan_out: int  #: how many elements of the variable depend on wrt[j]
    coupling: bool = False  #: the element depends on more wrt entries than its input element
    first_coupling: bool = False
    source: str | None = None  #: "file:line" where the user created the variable

    def element_label(self) -> str:
        if self.shape is None or len(self.shape) <= 1:
            return f"[{self.element}]"
        idx = np.unravel_index(self.element, self.shape)
        return "[" + ", ".join(str(int(k)) for k in idx) + "]"


@dataclass(eq=False)
class SparsityExplanation:
    """The result of :func:`explain_sparsity`; ``str()`` is the printout."""

    shape: tuple[int, int]
    nnz: int
    row: int | None
    column: int | None
    connected: bool  #: whether (row, column) is in the pattern
    path: list[PathStep] = field(default_factory=list)  #: from the output down to wrt
    densest_rows: list[tuple[int, int]] = field(default_factory=list)  #: (row, nnz)
    densest_columns: list[tuple[int, int]] = field(default_factory=list)  #: (column, nnz)
    expression_label: str = "expression"
    wrt_label: str = "wrt"
    notes: list[str] = field(default_factory=list)

    @property
    def culprit(self) -> PathStep | None:
        """The node that first coupled the output element to ``wrt[j]`` (None if none did)."""
        return next((s for s in self.path if s.first_coupling), None)

    def __str__(self) -> str:
        m, n = self.shape
        lines = [
            f"Jacobian pattern of {self.expression_label} w.r.t. {self.wrt_label}: {m}×{n}, "
            f"nnz={self.nnz}" + (f", density {self.nnz / (m * n):.3g}" if m * n else "")
        ]
        if self.densest_rows:
            rows = ", ".join(f"{i} ({k})" for i, k in self.densest_rows)
            cols = ", ".join(f"{j} ({k})" for j, k in self.densest_columns)
            lines.append(f"  densest rows (nnz): {rows}")
            lines.append(f"  densest columns (nnz): {cols}")
        if self.row is None:
            lines.extend(f"  note: {note}" for note in self.notes)
            return "\n".join(lines)
        head = f"{self.expression_label}[{self.row}] ← {self.wrt_label}[{self.column}]"
        if not self.connected:
            lines.append(f"{head}: not in the pattern ({self.wrt_label}[{self.column}] does not")
            lines[-1] += f" affect {self.expression_label}[{self.row}])"
            lines.extend(f"  note: {note}" for note in self.notes)
            return "\n".join(lines)
        lines.append(f"{head}: through {len(self.path) - 1} Op(s), output first:")
        for depth, step in enumerate(self.path):
            prefix = "" if depth == 0 else " " * (3 * (depth - 1)) + " └─ "
            what = step.op if step.op is not None else "input"
            name = f" '{step.label}'" if step.label else ""
            text = (
                f"{prefix}{what}{name} {step.element_label()}: depends on {step.depends_on} "
                f"of {n}; {step.fan_out} element(s) depend on {self.wrt_label}[{self.column}]"
            )
            if step.first_coupling:
                text += "   ◀ coupling introduced here"
            elif step.coupling:
                text += "   ◀ more coupling"
            lines.append(text)
            if step.coupling and step.source:
                lines.append(" " * (len(prefix) + 3) + f"created at {step.source}")
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_pretty_(self, printer, cycle) -> None:  # IPython
        printer.text(str(self))


def _label(var: Variable) -> str:
    if var.name:
        return var.name
    return ""


def _source(var: Variable) -> str | None:
    """The innermost frame of the user's code that created ``var`` (PyTensor's tag.trace)."""
    trace = getattr(var.tag, "trace", None)
    if not trace:
        return None
    frames = trace[0] if isinstance(trace[0], list | tuple) and trace[0] else trace
    for frame in reversed(list(frames)):
        try:
            filename, lineno = frame[0], frame[1]
        except (TypeError, IndexError):
            return None
        parts = os.path.normpath(filename).split(os.sep)
        if "pytensor" in parts or "sparsediff" in parts:
            continue
        return f"{filename}:{lineno}"
    return None


def _local_patterns(node, k: int) -> list | None:
    """The node's element-to-element patterns from ``node.inputs[k]`` to each output (None:
    unknown), by running its rule with the input's elements as the "wrt"."""
    rule = find_rule(node.op)
    if rule is None:
        return None
    inp = node.inputs[k]
    ctx = RuleContext(n_wrt=1, propagate=propagate)
    try:
        size = ctx.size(inp)
        ctx = RuleContext(n_wrt=size, propagate=propagate)
        seeds = [pat.identity(size) if q == k else None for q in range(len(node.inputs))]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            outs = rule(node.op, node, seeds, ctx)
    except Exception:
        return None
    return outs


def _step_back(node, out_index: int, row: int, column: int, patterns) -> tuple[int, int] | None:
    """An input (index, element) of ``node`` through which column ``column`` reaches ``row``."""
    candidates = []
    for k, inp in enumerate(node.inputs):
        p = patterns.get(inp)
        if p is None:
            continue
        col = p[:, [column]].tocsc()
        rows_with_j = col.indices
        if rows_with_j.size == 0:
            continue
        candidates.append((k, rows_with_j))
    if not candidates:
        return None
    for k, rows_with_j in candidates:
        local = _local_patterns(node, k)
        if local is None:
            continue
        local_out = local[out_index]
        if local_out is None:
            continue
        local_out = pat.as_pattern(local_out)
        feeding = local_out.indices[local_out.indptr[row] : local_out.indptr[row + 1]]
        both = np.intersect1d(feeding, rows_with_j)
        if both.size:
            # Prefer the element "closest" to the output element (same position if possible).
            best = both[np.argmin(np.abs(both - row))]
            return k, int(best)
    # No rule to ask (or it failed): any input element carrying the column.
    k, rows_with_j = candidates[0]
    return k, int(rows_with_j[np.argmin(np.abs(rows_with_j - row))])


def _as_flat_index(index, shape: tuple[int, ...], what: str) -> int:
    size = int(np.prod(shape, dtype=np.int64))
    if isinstance(index, tuple | list):
        if len(index) != len(shape):
            raise ValueError(f"{what} index {index} has {len(index)} entries, shape is {shape}")
        flat = int(np.ravel_multi_index(tuple(int(i) for i in index), shape))
    else:
        flat = int(index)
        if flat < 0:
            flat += size
    if not 0 <= flat < size:
        raise IndexError(f"{what} index {index} is out of range for size {size}")
    return flat


def explain_sparsity(
    expression,
    wrt,
    entry: tuple | None = None,
    *,
    top: int = 5,
    consider_constant=(),
) -> SparsityExplanation:
    """Why does ``expression[i]`` depend on ``wrt[j]``? The chain of Ops that coupled them.

    Parameters
    ----------
    expression, wrt
        As for :func:`sparsediff.jacobian_sparsity` (a list ``wrt`` numbers the columns of all
        blocks side by side).
    entry
        ``(i, j)``: a row of the Jacobian (flat index of ``expression``, or a tuple of indices
        into its shape) and a column (flat index of ``wrt``, or a tuple). Without it, the
        densest rows and columns are reported and the entry of the densest row farthest from
        the diagonal is explained.
    top
        How many of the densest rows and columns to list.

    Returns a :class:`SparsityExplanation`; print it. ``.path`` holds the steps from the output
    down to ``wrt`` and ``.culprit`` the step where the coupling was introduced.
    """
    expression = pt.as_tensor_variable(expression)
    wrt_list, _ = as_wrt_list(wrt)
    fgraph, fresh_wrt = prepare_graph([expression], wrt_list, consider_constant)
    seeds, offsets = wrt_seeds(fresh_wrt)
    n_wrt = int(offsets[-1])
    patterns = propagate(fgraph, seeds, n_wrt)
    out = fgraph.outputs[0]
    full = patterns.get(out)
    if full is None:
        full = pat.empty(RuleContext(n_wrt=n_wrt).size(out), n_wrt)
    full = pat.as_pattern(full)
    m = full.shape[0]
    expr_label = expression.name or "expression"
    wrt_label = (wrt_list[0].name or "wrt") if len(wrt_list) == 1 else "wrt"
    report = SparsityExplanation(
        shape=(m, n_wrt),
        nnz=int(full.nnz),
        row=None,
        column=None,
        connected=False,
        expression_label=expr_label,
        wrt_label=wrt_label,
    )
    if len(wrt_list) > 1:
        bounds = ", ".join(
            f"{w.name or f'wrt[{b}]'}: {offsets[b]}..{offsets[b + 1] - 1}"
            for b, w in enumerate(wrt_list)
        )
        report.notes.append(f"columns of the blocks side by side: {bounds}")

    if entry is None:
        row_nnz = np.diff(full.indptr)
        col_nnz = np.bincount(full.indices, minlength=n_wrt)
        rows = np.argsort(-row_nnz, kind="stable")[:top]
        cols = np.argsort(-col_nnz, kind="stable")[:top]
        report.densest_rows = [(int(i), int(row_nnz[i])) for i in rows if row_nnz[i]]
        report.densest_columns = [(int(j), int(col_nnz[j])) for j in cols if col_nnz[j]]
        if full.nnz == 0:
            report.notes.append(f"{expr_label} does not depend on {wrt_label}: nothing to explain")
            return report
        i = int(rows[0])
        js = full.indices[full.indptr[i] : full.indptr[i + 1]]
        # The entry farthest from the (scaled) diagonal: the least local coupling of the row.
        j = int(js[np.argmax(np.abs(js / max(n_wrt, 1) - i / max(m, 1)))])
    else:
        if len(entry) != 2:
            raise ValueError(f"entry must be (i, j), got {entry!r}")
        i = _as_flat_index(entry[0], tuple(expression.type.shape), "row") if m else 0
        if len(wrt_list) == 1:
            j = _as_flat_index(entry[1], tuple(wrt_list[0].type.shape), "column")
        else:
            j = _as_flat_index(entry[1], (n_wrt,), "column")
        if not 0 <= i < m:
            raise IndexError(f"row index {entry[0]} is out of range for {m} rows")

    report.row, report.column = i, j
    row_cols = full.indices[full.indptr[i] : full.indptr[i + 1]]
    report.connected = bool(np.isin(j, row_cols))
    if not report.connected:
        return report
    report.path = _path(out, i, j, patterns, seeds, n_wrt)
    if report.path and report.path[-1].variable not in seeds:
        report.notes.append("the path could not be followed all the way to wrt")
    return report


def _path(out, row: int, column: int, patterns, seeds, n_wrt: int) -> list[PathStep]:
    steps: list[PathStep] = []
    var, element = out, row
    ctx = RuleContext(n_wrt=n_wrt)
    seen = 0
    while True:
        p = pat.as_pattern(patterns[var])
        depends_on = int(p.indptr[element + 1] - p.indptr[element])
        fan_out = int(p[:, [column]].nnz)
        try:
            shape = ctx.shape(var)
        except Exception:
            shape = None
        node = var.owner
        steps.append(
            PathStep(
                variable=var,
                op=None if node is None else str(node.op),
                label=_label(var),
                element=element,
                shape=shape,
                depends_on=depends_on,
                fan_out=fan_out,
                source=_source(var),
            )
        )
        if var in seeds or node is None:
            break
        back = _step_back(node, node.outputs.index(var), element, column, patterns)
        seen += 1
        if back is None or seen > 100_000:
            break
        k, element = back
        var = node.inputs[k]
    # From wrt forward: mark where the element on the path picks up more wrt entries.
    first = True
    for upper, lower in itertools.pairwise(steps):
        if upper.depends_on > lower.depends_on:
            upper.coupling = True
    for step in reversed(steps):
        if step.coupling and first:
            step.first_coupling = True
            first = False
    return steps
