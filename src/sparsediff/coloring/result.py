"""The result of a coloring: plain data, nothing to recompute.

``colors[v]`` is the color of column ``v`` (kinds ``"column"``, ``"star"``, ``"acyclic"``) or of
row ``v`` (kind ``"row"``); colors are ``0 … n_colors-1``. Kind ``"bidirectional"`` colors both
sides: ``colors`` per column and ``row_colors`` per row, each ``0`` (neutral: in no product) or
``1 … k``; ``n_colors`` is then the number of products, JVPs plus VJPs. Later stages build seeds
and decompression positions from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

__all__ = ["Coloring", "ColoringKind"]

ColoringKind = Literal["column", "row", "star", "acyclic", "bidirectional"]
_KINDS = ("column", "row", "star", "acyclic", "bidirectional")


@dataclass(frozen=True, eq=False)
class Coloring:
    """Colors of the columns (``column``, ``star``, ``acyclic``) or rows (``row``) of a pattern,
    or of both (``bidirectional``: ``colors`` per column, ``row_colors`` per row, 0 = neutral).

    ``order`` names the vertex order that produced it; ``method`` says which algorithm
    (``"distance2"`` for column/row and for a star coloring obtained as a distance-2 coloring,
    ``"star"`` for the star-coloring algorithm; both are ``"given"`` for colors built by hand);
    ``recolor_passes`` how many iterated-greedy passes (recoloring class by class, which never
    adds colors) refined the greedy result; ``improved`` how many colors the improvement phase
    (greedy with tabu repair, :mod:`sparsediff.coloring.improve`) removed from it.
    """

    colors: np.ndarray
    n_colors: int
    kind: ColoringKind
    order: str = "given"
    method: str = field(default="given")
    recolor_passes: int = 0
    row_colors: np.ndarray | None = None  #: per row, kind ``"bidirectional"`` only
    #: colors the improvement phase (greedy with tabu repair, :mod:`.improve`) removed
    improved: int = 0

    def __post_init__(self) -> None:
        colors = _frozen_colors(self.colors, "colors")
        if self.kind not in _KINDS:
            raise ValueError(f"unknown coloring kind {self.kind!r}; expected one of {_KINDS}")
        if self.kind == "bidirectional":
            if self.row_colors is None:
                raise ValueError("a bidirectional coloring needs row_colors (one per row)")
            rows = _frozen_colors(self.row_colors, "row_colors")
            expected = _max(colors) + _max(rows)
            if int(self.n_colors) != expected:
                raise ValueError(
                    f"n_colors={self.n_colors} but a bidirectional coloring with column colors "
                    f"up to {_max(colors)} and row colors up to {_max(rows)} needs "
                    f"{expected} products"
                )
            object.__setattr__(self, "row_colors", rows)
        else:
            if self.row_colors is not None:
                raise ValueError(f"row_colors are only for kind 'bidirectional', not {self.kind!r}")
            expected = _max(colors) + 1 if colors.size else 0
            if int(self.n_colors) != expected:
                raise ValueError(f"n_colors={self.n_colors} but colors.max()+1 = {expected}")
        object.__setattr__(self, "colors", colors)
        object.__setattr__(self, "n_colors", int(self.n_colors))

    @property
    def n_column_colors(self) -> int:
        """JVPs: column colors in use (for a bidirectional coloring, 0 is neutral)."""
        if self.kind == "bidirectional":
            return _max(self.colors)
        return self.n_colors if self.kind != "row" else 0

    @property
    def n_row_colors(self) -> int:
        """VJPs: row colors in use (for a bidirectional coloring, 0 is neutral)."""
        if self.kind == "bidirectional":
            return _max(self.row_colors)
        return self.n_colors if self.kind == "row" else 0

    @property
    def n_vertices(self) -> int:
        """Number of colored vertices (columns, or rows for kind ``"row"``)."""
        return int(self.colors.size)

    def groups_csr(self) -> tuple[np.ndarray, np.ndarray]:
        """``(ptr, members)``: the vertices of color ``c`` are ``members[ptr[c]:ptr[c+1]]``,
        in increasing order (bidirectional: the column groups, group 0 the neutral columns)."""
        k = self._n_groups()
        members = np.argsort(self.colors, kind="stable").astype(np.int64)
        ptr = np.zeros(k + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.colors, minlength=k), out=ptr[1:])
        return ptr, members

    def _n_groups(self) -> int:
        if self.kind == "bidirectional":
            return _max(self.colors) + 1 if self.colors.size else 0
        return self.n_colors

    def groups(self) -> list[np.ndarray]:
        """The vertices of each color, one array per color."""
        if self._n_groups() == 0:
            return []
        ptr, members = self.groups_csr()
        return np.split(members, ptr[1:-1])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Coloring):
            return NotImplemented
        same_rows = (self.row_colors is None and other.row_colors is None) or (
            self.row_colors is not None
            and other.row_colors is not None
            and np.array_equal(self.row_colors, other.row_colors)
        )
        return (
            self.kind == other.kind
            and self.n_colors == other.n_colors
            and np.array_equal(self.colors, other.colors)
            and same_rows
        )

    def __hash__(self) -> int:
        # the colors are read-only, so hashing by content agrees with ``==``
        rows = b"" if self.row_colors is None else self.row_colors.tobytes()
        return hash((self.kind, self.n_colors, self.colors.tobytes(), rows))

    def __repr__(self) -> str:
        per = "rows" if self.kind == "row" else "columns"
        if self.kind == "bidirectional":
            per = f"columns ({self.n_column_colors} JVPs), {self.row_colors.size} rows "
            per += f"({self.n_row_colors} VJPs)"
        return (
            f"Coloring(kind={self.kind!r}, n_colors={self.n_colors}, "
            f"{self.n_vertices} {per}, order={self.order!r}, method={self.method!r}"
            + (f", recolor_passes={self.recolor_passes}" if self.recolor_passes else "")
            + (f", improved={self.improved}" if self.improved else "")
            + ")"
        )


def _frozen_colors(values, what: str) -> np.ndarray:
    colors = np.array(values, dtype=np.int64, copy=True)
    if colors.ndim != 1:
        raise ValueError(f"{what} must be 1-D, got shape {colors.shape}")
    if colors.size and colors.min() < 0:
        raise ValueError(f"{what} must be nonnegative")
    colors.setflags(write=False)
    return colors


def _max(colors: np.ndarray) -> int:
    return int(colors.max()) if colors.size else 0
