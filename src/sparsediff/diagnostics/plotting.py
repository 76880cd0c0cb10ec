"""Pictures of sparsity patterns and colorings (matplotlib, the optional ``plot`` extra)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["plot_sparsity"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "plot_sparsity needs matplotlib: pip install matplotlib "
            '(or pip install "sparsediff[plot]")'
        ) from err
    return plt


def plot_sparsity(pattern, coloring=None, ax=None, *, markersize=None, cmap="tab10", title=None):
    """Draw the nonzeros of ``pattern``; with a ``coloring``, each color group in its own color.

    ``pattern``: a ``scipy.sparse`` matrix or a 2-D array (nonzero = structurally present), or
    a plan (``JacobianPlan``/``HessianPlan``: its pattern and coloring are used). ``coloring``:
    a ``Coloring`` or an integer array — one color per column (``kind`` ``"column"`` or
    ``"star"``, or an array as long as the number of columns) or per row (``kind="row"``).
    ``ax``: the matplotlib axes to draw on (a new figure otherwise). Returns the axes.
    """
    if hasattr(pattern, "full_pattern") or hasattr(pattern, "layout"):  # a plan
        plan = pattern
        pattern = getattr(plan, "full_pattern", None)
        if pattern is None:
            pattern = plan.pattern
        if coloring is None and not getattr(plan, "dense", False):
            coloring = plan.coloring
    P = sp.coo_array(pattern if sp.issparse(pattern) else np.asarray(pattern))
    if P.ndim != 2:
        raise ValueError(f"pattern must be two-dimensional, got shape {P.shape}")
    P.sum_duplicates()
    mask = P.data != 0
    rows, cols = P.row[mask], P.col[mask]
    m, n = P.shape

    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5 * m / n if n else 5))
    if markersize is None:  # one cell of the grid, in points
        fig = ax.get_figure()
        width_pt = ax.get_window_extent().width * 72.0 / fig.dpi
        markersize = float(np.clip(0.95 * width_pt / max(m, n, 1), 0.1, 30.0))

    label = f"{m}×{n}, nnz = {rows.size:,}"
    if coloring is None:
        ax.scatter(cols, rows, s=markersize**2, c="k", marker="s", linewidths=0)
    else:
        colors = np.asarray(getattr(coloring, "colors", coloring)).ravel()
        kind = getattr(coloring, "kind", None)
        if kind is None:
            kind = "column" if colors.size == n else "row" if colors.size == m else None
        if kind == "row":
            if colors.size != m:
                raise ValueError(f"a row coloring needs {m} colors, got {colors.size}")
            group = colors[rows]
        else:
            if colors.size != n:
                raise ValueError(f"a column coloring needs {n} colors, got {colors.size}")
            group = colors[cols]
        k = int(colors.max()) + 1 if colors.size else 0
        palette = plt.get_cmap(cmap, max(k, 1))
        ax.scatter(
            cols,
            rows,
            s=markersize**2,
            c=palette(group % palette.N),
            marker="s",
            linewidths=0,
        )
        label += f", {k} colors ({kind})"
    ax.set_xlim(-0.5, n - 0.5)
    ax.set_ylim(m - 0.5, -0.5)
    ax.set_aspect("equal" if max(m, n) <= 20 * max(min(m, n), 1) else "auto")
    ax.set_xlabel("column")
    ax.set_ylabel("row")
    ax.set_title(title if title is not None else label)
    return ax
