"""Sparsity patterns for the coloring tests (structure only, built vectorized).

Ported from the reference workloads (MINPACK-2 solid fuel ignition = 2-D Bratu, the 2-D
Brusselator) plus structured shapes that stress particular orders, and brute-force
definitions of validity to check the Numba checkers against.
"""

from __future__ import annotations

import itertools

import numpy as np
import scipy.sparse as sp


def bratu2d(nx: int, ny: int | None = None) -> sp.csr_array:
    """5-point stencil on an nx×ny grid, k = j·nx + i (MINPACK-2 dsfifj ordering)."""
    ny = nx if ny is None else ny
    k = np.arange(nx * ny)
    i, j = k % nx, k // nx
    rows, cols = [k], [k]
    for mask, off in ((i > 0, -1), (i < nx - 1, 1), (j > 0, -nx), (j < ny - 1, nx)):
        rows.append(k[mask])
        cols.append(k[mask] + off)
    r, c = np.concatenate(rows), np.concatenate(cols)
    return sp.csr_array((np.ones(r.size, bool), (r, c)), shape=(nx * ny, nx * ny))


def bratu_optimal_coloring(nx: int, ny: int) -> np.ndarray:
    """The known optimal 5-coloring of the 5-point stencil: (i + 2j) mod 5."""
    k = np.arange(nx * ny)
    return (k % nx + 2 * (k // nx)) % 5


def cavity2d(nx: int, ny: int | None = None) -> sp.csr_array:
    """MINPACK-2 driven cavity (stream function): the 13-point stencil ``|dx| + |dy| <= 2`` on
    an nx×ny grid, k = j·nx + i. Its column coloring optimum is 13, ``(i + 5j) mod 13``."""
    ny = nx if ny is None else ny
    k = np.arange(nx * ny)
    i, j = k % nx, k // nx
    rows, cols = [], []
    for di in range(-2, 3):
        for dj in range(-2 + abs(di), 3 - abs(di)):
            mask = (i + di >= 0) & (i + di < nx) & (j + dj >= 0) & (j + dj < ny)
            rows.append(k[mask])
            cols.append(k[mask] + di + nx * dj)
    r, c = np.concatenate(rows), np.concatenate(cols)
    return sp.csr_array((np.ones(r.size, bool), (r, c)), shape=(nx * ny, nx * ny))


def cavity_optimal_coloring(nx: int, ny: int) -> np.ndarray:
    """The optimal 13-coloring of the 13-point stencil: (i + 5j) mod 13."""
    k = np.arange(nx * ny)
    return (k % nx + 5 * (k // nx)) % 13


def brusselator2d(N: int) -> sp.csr_array:
    """2-D Brusselator (periodic), Julia column-major state order: i + N·j + N²·species."""
    I, J = np.meshgrid(np.arange(N), np.arange(N), indexing="ij")
    I, J = I.ravel(order="F"), J.ravel(order="F")

    def idx(i, j, s):
        return (i % N) + N * (j % N) + N * N * s

    rows, cols = [], []
    for s in (0, 1):
        r = idx(I, J, s)
        for di, dj in ((-1, 0), (1, 0), (0, 1), (0, -1), (0, 0)):
            rows.append(r)
            cols.append(idx(I + di, J + dj, s))
        rows.append(r)
        cols.append(idx(I, J, 1 - s))
    r, c = np.concatenate(rows), np.concatenate(cols)
    P = sp.csr_array((np.ones(r.size, bool), (r, c)), shape=(2 * N * N, 2 * N * N))
    P.sum_duplicates()
    return P


def banded(n: int, lower: int, upper: int, m: int | None = None) -> sp.csr_array:
    m = n if m is None else m
    offsets = [d for d in range(-lower, upper + 1) if -m < d < n]
    return sp.csr_array(sp.diags([1] * len(offsets), offsets, shape=(m, n), dtype=bool))


def block_diagonal(sizes) -> sp.csr_array:
    return sp.csr_array(sp.block_diag([np.ones((s, s), bool) for s in sizes]))


def arrowhead(n: int) -> sp.csr_array:
    A = np.eye(n, dtype=bool)
    A[0, :] = True
    A[:, 0] = True
    return sp.csr_array(A)


def dense_row(m: int, n: int, row: int = 0) -> sp.csr_array:
    A = np.eye(m, n, dtype=bool)
    A[row, :] = True
    return sp.csr_array(A)


def dense_column(m: int, n: int, col: int = 0) -> sp.csr_array:
    A = np.eye(m, n, dtype=bool)
    A[:, col] = True
    return sp.csr_array(A)


def structured() -> dict[str, sp.csr_array]:
    """Named structured patterns (square ones first-class for star coloring)."""
    cases = {
        "identity": sp.csr_array(sp.eye(12, dtype=bool)),
        "antidiagonal": sp.csr_array(np.fliplr(np.eye(11, dtype=bool))),
        "empty_3x3": sp.csr_array((3, 3), dtype=bool),
        "empty_0x0": sp.csr_array((0, 0), dtype=bool),
        "dense_6x6": sp.csr_array(np.ones((6, 6), bool)),
        "arrowhead": arrowhead(15),
        "dense_row": dense_row(10, 10, 3),
        "dense_column": dense_column(10, 10, 4),
        "block_diagonal": block_diagonal([1, 3, 4, 2, 5]),
        "bratu_7x6": bratu2d(7, 6),
        "brusselator_6": brusselator2d(6),
        "cavity_8x7": cavity2d(8, 7),
        "rect_wide_banded": banded(20, 1, 3, m=8),
        "rect_tall_banded": banded(7, 2, 1, m=19),
        "rect_dense_row": dense_row(5, 13, 2),
        "rect_dense_column": dense_column(13, 5, 1),
        "single_row": sp.csr_array(np.array([[1, 0, 1, 1, 0, 1]], bool)),
        "single_column": sp.csr_array(np.array([[1], [0], [1], [1]], bool)),
        "empty_rows_cols": sp.csr_array(
            np.array([[0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0], [0, 0, 1, 0]], bool)
        ),
    }
    for w in (0, 1, 2, 3, 5):
        cases[f"banded_{w}"] = banded(25, w, w)
    cases["banded_asym_1_3"] = banded(25, 1, 3)
    return cases


# --------------------------------------------------------------------------------------------
# Brute-force definitions (dense, small patterns only)
# --------------------------------------------------------------------------------------------


def brute_column_valid(P, colors) -> bool:
    A = np.asarray(sp.csr_array(P).toarray() != 0) if sp.issparse(P) else np.asarray(P) != 0
    for i in range(A.shape[0]):
        c = colors[np.flatnonzero(A[i])]
        if len(np.unique(c)) != len(c):
            return False
    return True


def _adjacency(P) -> np.ndarray:
    A = np.asarray(sp.csr_array(P).toarray() != 0) if sp.issparse(P) else np.asarray(P) != 0
    S = A | A.T
    np.fill_diagonal(S, False)
    return S


def brute_star_valid(P, colors) -> bool:
    """Proper on P ∪ Pᵀ and no path on four vertices with only two colors."""
    S = _adjacency(P)
    n = S.shape[0]
    nbrs = [np.flatnonzero(S[v]) for v in range(n)]
    for v in range(n):
        if np.any(colors[nbrs[v]] == colors[v]):
            return False
    for b, c in zip(*np.nonzero(S), strict=True):
        for a, d in itertools.product(nbrs[b], nbrs[c]):
            if len({a, b, c, d}) == 4 and colors[a] == colors[c] and colors[b] == colors[d]:
                return False
    return True


def brute_symmetric_recovery(P, colors) -> bool:
    """Coleman–Moré direct recovery: for every nonzero (i, j) of P ∪ Pᵀ ∪ I, column j is alone
    in its color in row i, or column i is alone in its color in row j."""
    S = _adjacency(P)
    np.fill_diagonal(S, True)
    n = S.shape[0]
    for i, j in zip(*np.nonzero(S), strict=True):
        alone_j = np.sum(S[i] & (colors == colors[j])) == 1
        alone_i = np.sum(S[j] & (colors == colors[i])) == 1
        if not (alone_j or alone_i):
            return False
    return n >= 0
