"""The structure of a sparsity pattern, as canonical int64 CSR arrays.

Coloring reads only *where* the nonzeros are, never their values: a SciPy matrix with explicit
stored zeros, or entries that cancel, keeps them as structure. Every pattern is turned once into
canonical CSR arrays (sorted column indices, no duplicates, int64) so that one compiled
specialization of each Numba kernel serves every input.

Graphs are described as a *two-hop* structure ``(a_ptr, a_idx, b_ptr, b_idx)``: the neighbours
of vertex ``v`` are ``⋃_{i ∈ A[v]} B[i] \\ {v}``. With ``A`` = CSC and ``B`` = CSR of a pattern,
that is the column intersection graph (distance-2 coloring of the bipartite graph); with ``A``
the identity and ``B`` a symmetric adjacency, it is the ordinary adjacency graph. All ordering and
coloring kernels take this one form.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from sparsediff._jit import kernel

__all__ = [
    "Structure",
    "TwoHop",
    "as_structure",
    "bipartite",
    "degrees",
    "neighbours",
    "symmetric_adjacency",
    "walk",
]


@dataclass(frozen=True, eq=False)
class Structure:
    """Canonical CSR structure of an ``(m, n)`` pattern (row pointers and column indices)."""

    shape: tuple[int, int]
    indptr: np.ndarray
    indices: np.ndarray

    @property
    def nnz(self) -> int:
        return int(self.indices.size)

    def transpose(self) -> Structure:
        """The structure of the transpose (equivalently, the CSC arrays of this pattern).

        SciPy's compiled CSR → CSC conversion (a counting sort: rows come out sorted), so
        that coloring compiles no Numba kernel for it on a first run.
        """
        m, n = self.shape
        data = np.ones(self.nnz, dtype=bool)
        t = sp.csr_matrix((data, self.indices, self.indptr), shape=(m, n)).tocsc()
        ptr = np.asarray(t.indptr, dtype=np.int64)
        idx = np.asarray(t.indices, dtype=np.int64)
        return Structure((n, m), ptr, idx)

    def row_lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def to_scipy(self) -> sp.csr_array:
        data = np.ones(self.nnz, dtype=bool)
        return sp.csr_array((data, self.indices, self.indptr), shape=self.shape)


@dataclass(frozen=True, eq=False)
class TwoHop:
    """Neighbourhoods through an intermediate set: ``N(v) = ⋃_{i ∈ A[v]} B[i] \\ {v}``."""

    n: int
    a_ptr: np.ndarray
    a_idx: np.ndarray
    b_ptr: np.ndarray
    b_idx: np.ndarray
    #: ``A`` is the transpose of ``B`` (every ``i`` lies in ``|B[i]|`` of the ``A[v]``)
    transposed: bool = field(default=False, repr=False)

    def work(self) -> int:
        """How many neighbour visits one sweep over all vertices costs (duplicates included):
        ``Σ_v Σ_{i ∈ A[v]} |B[i]|``, which is ``Σ_i |B[i]|²`` when ``A = Bᵀ`` (O(rows)
        instead of a gather over every entry)."""
        if self.n == 0:
            return 0
        b_len = np.diff(self.b_ptr).astype(np.int64)
        if self.transposed:
            return int(b_len @ b_len)
        return int(b_len[self.a_idx].sum())


def _index_dtype(*sizes: int):
    return np.int32 if max(sizes) < 2**31 - 1 else np.int64


def two_hop(n: int, a_ptr, a_idx, b_ptr, b_idx, transposed: bool = False) -> TwoHop:
    """A :class:`TwoHop`, stored as int32 when the sizes allow: the sweeps that visit vertices
    in a scattered order (random, class by class) are bound by memory traffic."""
    dtype = _index_dtype(a_idx.size, b_idx.size, n, a_ptr.size, b_ptr.size)
    arrays = (np.asarray(x, dtype=dtype) for x in (a_ptr, a_idx, b_ptr, b_idx))
    return TwoHop(n, *arrays, transposed=transposed)


def bipartite(s: Structure) -> TwoHop:
    """Column intersection graph of ``s``: columns are adjacent when they share a row.

    The CSC arrays come from SciPy's conversion run on the index type the graph is stored in
    (int32 below 2³¹ entries), so that no int64 copy is made and converted back.
    """
    m, n = s.shape
    dtype = _index_dtype(s.nnz, m + 1, n + 1)
    ptr = np.asarray(s.indptr, dtype=dtype)
    idx = np.asarray(s.indices, dtype=dtype)
    data = np.ones(s.nnz, dtype=bool)
    t = sp.csr_matrix((data, idx, ptr), shape=(m, n)).tocsc()  # rows of each column, sorted
    return two_hop(n, t.indptr, t.indices, ptr, idx, transposed=True)


def closed_two_hop(closed: Structure) -> TwoHop:
    """Distance-2 graph of a symmetric structure with its diagonal (its own transpose)."""
    ptr, idx = closed.indptr, closed.indices
    return two_hop(closed.shape[0], ptr, idx, ptr, idx, transposed=True)


def symmetric_adjacency(s: Structure, diagonal: bool = False) -> Structure:
    """Structure of ``P ∪ Pᵀ`` (square ``P``), with the diagonal removed or, if asked, added."""
    m, n = s.shape
    if m != n:
        raise ValueError(f"a symmetric pattern must be square, got shape {s.shape}")
    t = s.transpose()
    ptr, idx = _union_rows(n, s.indptr, s.indices, t.indptr, t.indices, diagonal)
    return Structure((n, n), ptr, idx)


def adjacency_two_hop(adj: Structure) -> TwoHop:
    """Ordinary adjacency graph in two-hop form (``A`` is the identity)."""
    n = adj.shape[0]
    ident = np.arange(n + 1, dtype=np.int64)
    return two_hop(n, ident, ident[:n], adj.indptr, adj.indices)


# --------------------------------------------------------------------------------------------
# Input normalization
# --------------------------------------------------------------------------------------------


def as_structure(pattern) -> Structure:
    """Canonical structure of a SciPy sparse matrix/array or a dense array-like.

    Sparse inputs contribute every *stored* entry (explicit zeros included); dense inputs
    contribute their nonzeros (NaN counts as nonzero).
    """
    if sp.issparse(pattern):
        if pattern.ndim != 2:
            raise ValueError(f"a sparsity pattern must be 2-D, got {pattern.ndim}-D")
        m, n = (int(d) for d in pattern.shape)
        fmt = pattern.format
        if fmt in ("csr", "csc"):
            ptr = np.asarray(pattern.indptr, dtype=np.int64)
            idx = np.asarray(pattern.indices, dtype=np.int64)
            nnz = int(ptr[-1])
            idx = idx[:nnz]
            if fmt == "csr":
                out = Structure((m, n), ptr, idx)
                shape_inner = (m, n)
            else:  # CSC of P is the CSR of Pᵀ
                out = Structure((n, m), ptr, idx)
                shape_inner = (n, m)
            if not is_canonical(ptr, idx):
                r, c = _expand_rows(ptr, idx)
                p2, i2 = _coo_to_csr(shape_inner[0], shape_inner[1], r, c)
                out = Structure(shape_inner, p2, i2)
            return out.transpose() if fmt == "csc" else out
        coo = pattern.tocoo()
        r = np.asarray(coo.row if hasattr(coo, "row") else coo.coords[0], dtype=np.int64)
        c = np.asarray(coo.col if hasattr(coo, "col") else coo.coords[1], dtype=np.int64)
        ptr, idx = _coo_to_csr(m, n, r, c)
        return Structure((m, n), ptr, idx)
    if isinstance(pattern, str | bytes) or pattern is None:
        raise TypeError(
            f"a sparsity pattern must be a SciPy sparse matrix or a 2-D array, got {type(pattern)}"
        )
    try:
        arr = np.asarray(pattern)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise TypeError(
            f"cannot read a sparsity pattern from an object of type {type(pattern).__name__}"
        ) from exc
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise TypeError(
            "a dense sparsity pattern must have a numeric or boolean dtype, "
            f"got {arr.dtype} (from {type(pattern).__name__})"
        )
    if arr.ndim != 2:
        raise ValueError(f"a sparsity pattern must be 2-D, got an array of shape {arr.shape}")
    m, n = arr.shape
    rows, cols = np.nonzero(arr)  # row-major: already canonical CSR order
    ptr = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=m), out=ptr[1:])
    return Structure((m, n), ptr, cols.astype(np.int64))


def is_canonical(ptr: np.ndarray, idx: np.ndarray) -> bool:
    """Column indices strictly increasing within every row (sorted, no duplicates), in NumPy:
    O(nnz) and nothing to compile."""
    if idx.size < 2:
        return True
    rising = idx[1:] > idx[:-1]
    starts = ptr[1:-1]
    starts = starts[(starts > 0) & (starts < idx.size)]
    rising[starts - 1] = True  # a row may start below where the previous one ended
    return bool(rising.all())


# --------------------------------------------------------------------------------------------
# Numba kernels
# --------------------------------------------------------------------------------------------


@kernel
def _expand_rows(ptr, idx):
    m = ptr.size - 1
    rows = np.empty(idx.size, dtype=np.int64)
    for i in range(m):
        for k in range(ptr[i], ptr[i + 1]):
            rows[k] = i
    return rows, idx.copy()


@kernel
def transpose_positions(m, n, ptr, idx):
    """CSR of the transpose by counting sort (output rows sorted), with the position in the
    original ``idx`` of every transposed entry."""
    tptr = np.zeros(n + 1, dtype=np.int64)
    for k in range(idx.size):
        tptr[idx[k] + 1] += 1
    for j in range(n):
        tptr[j + 1] += tptr[j]
    fill = tptr[:n].copy()
    tidx = np.empty(idx.size, dtype=np.int64)
    tpos = np.empty(idx.size, dtype=np.int64)
    for i in range(m):
        for k in range(ptr[i], ptr[i + 1]):
            j = idx[k]
            tidx[fill[j]] = i
            tpos[fill[j]] = k
            fill[j] += 1
    return tptr, tidx, tpos


@kernel
def _coo_to_csr(m, n, rows, cols):
    """Canonical CSR from coordinates: two counting sorts (by column, then stably by row)."""
    nnz = rows.size
    for k in range(nnz):
        if rows[k] < 0 or rows[k] >= m or cols[k] < 0 or cols[k] >= n:
            raise ValueError("coordinate out of bounds")
    # by column
    cptr = np.zeros(n + 1, dtype=np.int64)
    for k in range(nnz):
        cptr[cols[k] + 1] += 1
    for j in range(n):
        cptr[j + 1] += cptr[j]
    fill = cptr[:n].copy()
    by_col = np.empty(nnz, dtype=np.int64)
    for k in range(nnz):
        j = cols[k]
        by_col[fill[j]] = k
        fill[j] += 1
    # stably by row
    rptr = np.zeros(m + 1, dtype=np.int64)
    for k in range(nnz):
        rptr[rows[k] + 1] += 1
    for i in range(m):
        rptr[i + 1] += rptr[i]
    rfill = rptr[:m].copy()
    tmp = np.empty(nnz, dtype=np.int64)
    for t in range(nnz):
        k = by_col[t]
        i = rows[k]
        tmp[rfill[i]] = cols[k]
        rfill[i] += 1
    # drop duplicates (adjacent within a row)
    ptr = np.zeros(m + 1, dtype=np.int64)
    idx = np.empty(nnz, dtype=np.int64)
    pos = 0
    for i in range(m):
        last = -1
        for k in range(rptr[i], rptr[i + 1]):
            j = tmp[k]
            if j != last:
                idx[pos] = j
                pos += 1
                last = j
        ptr[i + 1] = pos
    return ptr, idx[:pos].copy()


@kernel
def _union_rows(n, p1, i1, p2, i2, diagonal):
    """Row-wise merge of two canonical CSR structures, diagonal dropped (or forced in)."""
    ptr = np.zeros(n + 1, dtype=np.int64)
    idx = np.empty(i1.size + i2.size + (n if diagonal else 0), dtype=np.int64)
    pos = 0
    for r in range(n):
        a, ae = p1[r], p1[r + 1]
        b, be = p2[r], p2[r + 1]
        diag_done = not diagonal
        while a < ae or b < be:
            if b >= be or (a < ae and i1[a] < i2[b]):
                j = i1[a]
                a += 1
            elif a >= ae or i2[b] < i1[a]:
                j = i2[b]
                b += 1
            else:
                j = i1[a]
                a += 1
                b += 1
            if not diag_done and j >= r:
                idx[pos] = r
                pos += 1
                diag_done = True
            if j != r:
                idx[pos] = j
                pos += 1
        if not diag_done:
            idx[pos] = r
            pos += 1
        ptr[r + 1] = pos
    return ptr, idx[:pos].copy()


#: What one :func:`walk` computes: distinct-neighbour counts, first-fit colors, or the
#: distinct neighbours themselves (CSR). One kernel for the three: on a first run (no Numba
#: cache yet) every kernel costs a compilation of a few tenths of a second.
DEGREES, FIRST_FIT, NEIGHBOURS = 0, 1, 2
#: The ``idx`` :func:`walk` takes when it writes no neighbours (one argument type for all
#: calls: each type combination is one more compilation).
NO_NEIGHBOURS = np.zeros(0, dtype=np.int32)


def degrees(g: TwoHop) -> np.ndarray:
    """Number of distinct neighbours of every vertex."""
    deg = np.zeros(g.n, dtype=np.int64)
    mark = np.full(g.n + 1, -1, dtype=np.int64)
    order = np.arange(g.n, dtype=np.int64)
    walk(g.n, g.a_ptr, g.a_idx, g.b_ptr, g.b_idx, order, deg, mark, DEGREES, NO_NEIGHBOURS)
    return deg


def neighbours(g: TwoHop, deg: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """CSR ``(ptr, idx)`` of the graph of ``g``: the distinct neighbours of every vertex (int32
    indices), in the order a sweep first meets them; ``deg``: :func:`degrees`, if known."""
    n = g.n
    if deg is None:
        deg = degrees(g)
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(deg, out=ptr[1:])
    idx = np.empty(int(ptr[-1]), dtype=np.int32)
    if idx.size:
        mark = np.full(n + 1, -1, dtype=np.int64)
        order = np.arange(n, dtype=np.int64)
        walk(n, g.a_ptr, g.a_idx, g.b_ptr, g.b_idx, order, ptr, mark, NEIGHBOURS, idx)
    return ptr, idx


@kernel
def walk(n, a_ptr, a_idx, b_ptr, b_idx, order, out, mark, mode, idx):
    """One sweep over the neighbourhoods of the vertices in ``order``; ``mark`` (``n + 1``
    entries, all -1) is scratch.

    - ``mode == FIRST_FIT``: greedy coloring, ``out[v]`` the smallest color no colored
      neighbour of ``v`` has (``out`` starts all -1);
    - ``mode == DEGREES``: ``out[v]`` the number of distinct neighbours of ``v``;
    - ``mode == NEIGHBOURS``: the distinct neighbours of ``v`` written to ``idx`` from
      ``out[v]`` on (``out``: the CSR row pointers, from the degrees).

    Greedy coloring, degrees and the distance-2 graph of the improvement phase share this one
    kernel: on a first run (no Numba cache yet) every kernel costs a compilation.
    """
    for t in range(order.size):
        v = order[t]
        if mode == 1:
            for k in range(a_ptr[v], a_ptr[v + 1]):
                i = a_idx[k]
                for s in range(b_ptr[i], b_ptr[i + 1]):
                    u = b_idx[s]
                    c = out[u]
                    if c >= 0 and u != v:
                        mark[c] = v  # color c is taken around v
            c = 0
            while mark[c] == v:
                c += 1
            out[v] = c
        else:
            mark[v] = v
            d = 0
            pos = out[v] if mode == 2 else 0
            for k in range(a_ptr[v], a_ptr[v + 1]):
                i = a_idx[k]
                for s in range(b_ptr[i], b_ptr[i + 1]):
                    u = b_idx[s]
                    if mark[u] != v:
                        mark[u] = v
                        if mode == 2:
                            idx[pos + d] = u
                        d += 1
            if mode == 0:
                out[v] = d
