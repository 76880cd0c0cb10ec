"""Seed matrices: the constants whose products with the Jacobian are the compressed matrix.

A coloring groups structurally orthogonal columns (or rows); summing the unit vectors of one
group gives one seed. Seeds are stored batch-first, shape ``(n_colors, n)``: the leading axis is
the one ``vectorize_graph`` adds in :mod:`sparsediff.compression.products`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Variable

__all__ = ["neutral_seed_matrix", "seed_matrix", "split_seeds"]


def seed_matrix(colors: np.ndarray, n_colors: int, dtype="float64") -> np.ndarray:
    """The seed matrix of a coloring, batch-first: ``S[c, j] = 1`` iff ``colors[j] == c``.

    ``colors`` holds one color per column (forward mode, Hessians) or per row (reverse mode).
    The result has shape ``(n_colors, len(colors))``; its transpose is the textbook
    ``(n, n_colors)`` seed matrix.
    """
    colors = np.asarray(colors, dtype=np.int64)
    if colors.ndim != 1:
        raise ValueError(f"colors must be one-dimensional, got shape {colors.shape}")
    if colors.size and (colors.min() < 0 or colors.max() >= n_colors):
        raise ValueError(
            f"colors must lie in [0, {n_colors}), got [{colors.min()}, {colors.max()}]"
        )
    seeds = np.zeros((n_colors, colors.size), dtype=dtype)
    seeds[colors, np.arange(colors.size)] = 1
    return seeds


def neutral_seed_matrix(colors: np.ndarray, dtype="float64") -> np.ndarray:
    """Seeds of one side of a bidirectional coloring: ``S[c - 1, j] = 1`` iff ``colors[j] == c``
    for ``c = 1 … max``; vertices of the neutral color 0 are in no seed."""
    colors = np.asarray(colors, dtype=np.int64)
    k = int(colors.max(initial=0))
    seeds = np.zeros((k, colors.size), dtype=dtype)
    used = np.flatnonzero(colors > 0)
    seeds[colors[used] - 1, used] = 1
    return seeds


def split_seeds(seeds: np.ndarray, wrt: Sequence[Variable]) -> list[Variable]:
    """Cut the columns of a batch-first seed matrix into one constant per ``wrt``, reshaped."""
    out = []
    offset = 0
    n_colors = seeds.shape[0]
    for w in wrt:
        size = int(np.prod(w.type.shape, dtype=np.int64))
        block = seeds[:, offset : offset + size].reshape((n_colors, *w.type.shape))
        out.append(pt.constant(block.astype(w.dtype)))
        offset += size
    if offset != seeds.shape[1]:
        raise ValueError(f"seeds have {seeds.shape[1]} columns but wrt has {offset} elements")
    return out
