"""What a valid coloring argument is: the one owner of that question and of its error type.

Every stage that accepts colors from a caller (plans, decompression, the checkers) asks here, so
a bad argument gets the same message wherever it enters. Whether colors are *valid for a
pattern* (structural orthogonality, star, acyclic) is :mod:`sparsediff.coloring.checks`; this
module only answers whether they are colors at all: one non-negative integer per vertex.
"""

from __future__ import annotations

import numpy as np

from sparsediff.coloring.result import Coloring

__all__ = ["ColoringError", "as_colors", "bidirectional_pair", "colors_and_kind"]


class ColoringError(ValueError):
    """A coloring does not allow exact decompression of the given pattern, or is no coloring."""


def as_colors(colors, size: int, kind: str, per: str | None = None) -> np.ndarray:
    """``colors`` (a :class:`Coloring` or an array) as int64, one non-negative color per vertex.

    ``kind`` names the coloring in messages; ``per`` the vertex ("row" for row colorings,
    "column" otherwise unless given).
    """
    colors = np.asarray(getattr(colors, "colors", colors))
    per = per or ("row" if kind == "row" else "column")
    if colors.ndim != 1 or colors.size != size:
        raise ColoringError(
            f"a {kind} coloring needs one color per {per} ({size}), got an array of shape "
            f"{colors.shape}"
        )
    if colors.size and not np.issubdtype(colors.dtype, np.integer):
        raise ColoringError(f"colors must be integers, got dtype {colors.dtype}")
    colors = colors.astype(np.int64)
    if colors.size and colors.min() < 0:
        v = int(np.argmin(colors))
        raise ColoringError(
            f"invalid {kind} coloring: colors must be non-negative, {per} {v} has color {colors[v]}"
        )
    return colors


def bidirectional_pair(coloring, m: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(column colors, row colors)`` of a bidirectional :class:`Coloring` or of a pair of
    arrays, for an ``m × n`` pattern; 0 is the neutral color."""
    if isinstance(coloring, Coloring) and coloring.kind == "bidirectional":
        col, row = coloring.colors, coloring.row_colors
    elif isinstance(coloring, tuple | list) and len(coloring) == 2:
        col, row = coloring
    else:
        raise ColoringError(
            "a bidirectional plan needs a bidirectional coloring: sd.color(P, "
            "kind='bidirectional') or a pair (column colors, row colors), 0 meaning neutral; "
            f"got {type(coloring).__name__}"
        )
    return (
        as_colors(col, n, "bidirectional", "column"),
        as_colors(row, m, "bidirectional", "row"),
    )


def colors_and_kind(coloring, kind: str | None, shape: tuple[int, int]):
    """The colors of ``coloring`` (a pair for bidirectional) and its kind, validated for a
    pattern of ``shape``; ``kind`` is required with plain arrays and must agree with a
    :class:`Coloring`'s own."""
    if isinstance(coloring, Coloring):
        if kind is not None and kind != coloring.kind:
            raise ValueError(f"kind {kind!r} given for a {coloring.kind!r} coloring")
        kind = coloring.kind
    elif kind is None:
        raise TypeError(
            "pass kind= ('column', 'row', 'star', 'acyclic' or 'bidirectional') with plain colors"
        )
    m, n = shape
    if kind == "bidirectional":
        if not isinstance(coloring, Coloring | tuple | list) or (
            not isinstance(coloring, Coloring) and len(coloring) != 2
        ):
            raise TypeError(
                "a bidirectional coloring given as arrays must be a pair "
                "(column colors, row colors)"
            )
        return bidirectional_pair(coloring, m, n), kind
    if kind == "row":
        return as_colors(coloring, m, kind), kind
    if kind in ("column", "star", "acyclic"):
        return as_colors(coloring, n, kind), kind
    raise ValueError(
        f"unknown coloring kind {kind!r}; expected 'column', 'row', 'star', 'acyclic' or "
        "'bidirectional'"
    )
