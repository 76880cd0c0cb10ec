"""The result of a coloring: plain data, nothing to recompute.

``colors[v]`` is the color of column ``v`` (kinds ``"column"`` and ``"star"``) or of row ``v``
(kind ``"row"``); colors are ``0 … n_colors-1``. Later stages build seeds and decompression
positions from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

__all__ = ["Coloring", "ColoringKind"]

ColoringKind = Literal["column", "row", "star"]
_KINDS = ("column", "row", "star")


@dataclass(frozen=True, eq=False)
class Coloring:
    """Colors of the columns (``column``, ``star``) or rows (``row``) of a pattern.

    ``order`` names the vertex order that produced it; ``method`` says which algorithm
    (``"distance2"`` for column/row and for a star coloring obtained as a distance-2 coloring,
    ``"star"`` for the star-coloring algorithm; both are ``"given"`` for colors built by hand);
    ``recolor_passes`` how many iterated-greedy passes (recoloring class by class, which never
    adds colors) refined the greedy result.
    """

    colors: np.ndarray
    n_colors: int
    kind: ColoringKind
    order: str = "given"
    method: str = field(default="given")
    recolor_passes: int = 0

    def __post_init__(self) -> None:
        colors = np.array(self.colors, dtype=np.int64, copy=True)
        if colors.ndim != 1:
            raise ValueError(f"colors must be 1-D, got shape {colors.shape}")
        if self.kind not in _KINDS:
            raise ValueError(f"unknown coloring kind {self.kind!r}; expected one of {_KINDS}")
        expected = int(colors.max()) + 1 if colors.size else 0
        if colors.size and colors.min() < 0:
            raise ValueError("colors must be nonnegative")
        if int(self.n_colors) != expected:
            raise ValueError(f"n_colors={self.n_colors} but colors.max()+1 = {expected}")
        colors.setflags(write=False)
        object.__setattr__(self, "colors", colors)
        object.__setattr__(self, "n_colors", int(self.n_colors))

    @property
    def n_vertices(self) -> int:
        """Number of colored vertices (columns, or rows for kind ``"row"``)."""
        return int(self.colors.size)

    def groups_csr(self) -> tuple[np.ndarray, np.ndarray]:
        """``(ptr, members)``: the vertices of color ``c`` are ``members[ptr[c]:ptr[c+1]]``,
        in increasing order."""
        members = np.argsort(self.colors, kind="stable").astype(np.int64)
        ptr = np.zeros(self.n_colors + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.colors, minlength=self.n_colors), out=ptr[1:])
        return ptr, members

    def groups(self) -> list[np.ndarray]:
        """The vertices of each color, one array per color."""
        if self.n_colors == 0:
            return []
        ptr, members = self.groups_csr()
        return np.split(members, ptr[1:-1])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Coloring):
            return NotImplemented
        return (
            self.kind == other.kind
            and self.n_colors == other.n_colors
            and np.array_equal(self.colors, other.colors)
        )

    def __hash__(self) -> int:
        # the colors are read-only, so hashing by content agrees with ``==``
        return hash((self.kind, self.n_colors, self.colors.tobytes()))

    def __repr__(self) -> str:
        per = "rows" if self.kind == "row" else "columns"
        return (
            f"Coloring(kind={self.kind!r}, n_colors={self.n_colors}, "
            f"{self.n_vertices} {per}, order={self.order!r}, method={self.method!r}"
            + (f", recolor_passes={self.recolor_passes}" if self.recolor_passes else "")
            + ")"
        )
