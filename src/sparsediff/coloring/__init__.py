"""Stage 2 of the pipeline: color a sparsity pattern so that few JVPs/VJPs/HVPs recover it.

``color(pattern, kind)`` returns a :class:`Coloring`:

- ``kind="column"``: structurally orthogonal column groups (forward mode, one JVP per color);
- ``kind="row"``: the same for rows (reverse mode, one VJP per color);
- ``kind="star"``: a star coloring of the symmetric structure ``P ∪ Pᵀ`` (Hessians, one HVP per
  color, every entry recovered directly).

``order`` picks the greedy vertex order (:data:`ORDERS`), a tuple of them (the best is kept), an
explicit permutation, or ``"auto"`` (the default), which tries :data:`AUTO_ORDERS` in turn and
keeps the fewest colors — the first to reach the fewest on ties, so the result is deterministic.
Column/row ``auto`` stops as soon as an order reaches the lower bound (the most nonzeros in a
row, resp. column): nothing can beat it. On very large graphs (more than
:data:`AUTO_WORK_LIMIT` neighbour visits per sweep) it tries only :data:`AUTO_ORDERS_LARGE`.
Star ``auto`` runs the star algorithm with every order, then — only if that can still be beaten —
a distance-2 coloring of ``P ∪ Pᵀ ∪ I`` (a valid star coloring too) with every order, stopping at
its lower bound. For an explicit star order both algorithms run and the smaller result is kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sparsediff.coloring.checks import check_coloring, is_valid_coloring
from sparsediff.coloring.greedy import dsatur, greedy_coloring, recolor_by_classes
from sparsediff.coloring.orders import ORDERS, degrees, vertex_order
from sparsediff.coloring.result import Coloring, ColoringKind
from sparsediff.coloring.star import star_coloring
from sparsediff.coloring.structure import (
    Structure,
    TwoHop,
    adjacency_two_hop,
    as_structure,
    bipartite,
    symmetric_adjacency,
)

__all__ = [
    "AUTO_ORDERS",
    "AUTO_ORDERS_LARGE",
    "AUTO_RECOLOR_PASSES",
    "AUTO_WORK_LIMIT",
    "KINDS",
    "ORDERS",
    "Coloring",
    "ColoringKind",
    "check_coloring",
    "color",
    "is_valid_coloring",
    "lower_bound",
]

KINDS: tuple[str, ...] = ("column", "row", "star")

#: What ``order="auto"`` tries, in this order (``random`` is left out: it rarely wins and its
#: scattered memory accesses make it the slowest sweep at large n).
AUTO_ORDERS: tuple[str, ...] = (
    "natural",
    "largest_first",
    "dsatur",
    "smallest_last",
    "incidence_degree",
    "dynamic_largest_first",
)
#: What ``auto`` tries when one sweep costs more than :data:`AUTO_WORK_LIMIT` neighbour visits.
AUTO_ORDERS_LARGE: tuple[str, ...] = ("natural", "largest_first", "dsatur")
#: Neighbour visits per sweep (Σ over rows of their length², about 0.1 s here) above which
#: ``auto`` trims its orders to :data:`AUTO_ORDERS_LARGE`. The 2-D Bratu pattern at n = 10⁶
#: costs 2.5·10⁷.
AUTO_WORK_LIMIT = 20_000_000
#: Most iterated-greedy passes ``auto`` runs on its best distance-2 coloring (it stops earlier
#: at the lower bound or after three passes without a gain).
AUTO_RECOLOR_PASSES = 8


def color(
    pattern,
    kind: ColoringKind = "column",
    order: str | Sequence[str] | np.ndarray = "auto",
    seed: int = 0,
) -> Coloring:
    """Color the columns (``"column"``), rows (``"row"``) or symmetric structure (``"star"``)
    of ``pattern`` — a SciPy sparse matrix/array (stored entries are the structure) or a dense
    2-D array (its nonzeros are). ``seed`` drives ``order="random"``.
    """
    if not isinstance(kind, str) or kind not in KINDS:
        raise ValueError(f"unknown coloring kind {kind!r}; expected one of {', '.join(KINDS)}")
    orders, permutation = _parse_order(order)
    s = as_structure(pattern)
    if kind == "star":
        if s.shape[0] != s.shape[1]:
            raise ValueError(
                f"star coloring needs a square (symmetric) pattern, got shape {s.shape}; "
                "use kind='column' or kind='row' for a Jacobian"
            )
        return _color_star(s, orders, permutation, seed, order == "auto")
    if kind == "row":
        s = s.transpose()
    return _color_distance2(s, kind, orders, permutation, seed, order == "auto")


def lower_bound(pattern, kind: ColoringKind = "column") -> int:
    """Colors no column (row) coloring can go below: the most nonzeros in one row (column).

    For ``"star"`` the bound of a distance-1 coloring of ``P ∪ Pᵀ`` that is cheap to state:
    2 when there is an off-diagonal nonzero, 1 when there are vertices, else 0.
    """
    s = as_structure(pattern)
    if kind == "row":
        s = s.transpose()
    elif kind == "star":
        adj = symmetric_adjacency(s)
        return 0 if s.shape[0] == 0 else (2 if adj.nnz else 1)
    elif kind != "column":
        raise ValueError(f"unknown coloring kind {kind!r}; expected one of {', '.join(KINDS)}")
    return int(s.row_lengths().max(initial=0)) if s.shape[1] else 0


# --------------------------------------------------------------------------------------------


def _parse_order(order) -> tuple[tuple[str, ...], np.ndarray | None]:
    if isinstance(order, str):
        if order == "auto":
            return AUTO_ORDERS, None
        if order not in ORDERS:
            raise ValueError(
                f"unknown order {order!r}; expected 'auto' or one of {', '.join(ORDERS)}"
            )
        return (order,), None
    if isinstance(order, np.ndarray) and np.issubdtype(order.dtype, np.integer):
        return ("custom",), np.asarray(order, dtype=np.int64)
    if isinstance(order, Sequence) and order and all(isinstance(o, str) for o in order):
        names: list[str] = []
        for o in order:
            names.extend(_parse_order(o)[0])
        return tuple(dict.fromkeys(names)), None
    raise TypeError(
        "order must be 'auto', an order name, a sequence of order names, "
        f"or an integer permutation array; got {order!r}"
    )


def _check_permutation(perm: np.ndarray, n: int) -> np.ndarray:
    if perm.ndim != 1 or perm.size != n or (n and (perm.min() < 0 or perm.max() >= n)):
        raise ValueError(f"a custom order must be a permutation of range({n})")
    if n and np.bincount(perm, minlength=n).max() != 1:
        raise ValueError(f"a custom order must be a permutation of range({n}) (repeats found)")
    return perm


def _coloring(colors: np.ndarray, kind: str, order: str, method: str, passes: int = 0) -> Coloring:
    n_colors = int(colors.max()) + 1 if colors.size else 0
    return Coloring(colors, n_colors, kind, order, method, passes)  # type: ignore[arg-type]


def _n(colors: np.ndarray) -> int:
    return int(colors.max()) + 1 if colors.size else 0


def _sweep(g: TwoHop, name: str, seed: int, deg, perm) -> np.ndarray:
    """Colors of one greedy distance-2 sweep of ``g``."""
    if name == "custom":
        return greedy_coloring(g, _check_permutation(perm, g.n))
    if name == "dsatur":
        return dsatur(g, deg)[0]
    return greedy_coloring(g, vertex_order(g, name, seed, deg))


def _needs_degrees(orders) -> bool:
    return any(o not in ("natural", "random", "custom") for o in orders)


def _best_distance2(
    g: TwoHop, orders, perm, seed: int, bound: int, auto: bool
) -> tuple[np.ndarray, str, int]:
    """Best distance-2 coloring over ``orders`` (stopping at the lower ``bound``), then, for
    ``auto``, iterated-greedy passes: ``(colors, order name, passes)``."""
    if auto and g.work() > AUTO_WORK_LIMIT:
        orders = AUTO_ORDERS_LARGE
    deg = degrees(g) if _needs_degrees(orders) else None
    best, best_name = None, orders[0]
    for name in orders:
        colors = _sweep(g, name, seed, deg, perm)
        if best is None or _n(colors) < _n(best):
            best, best_name = colors, name
        if _n(colors) <= bound:
            break
    passes = best_passes = 0
    current = best
    while auto and passes < AUTO_RECOLOR_PASSES and _n(best) > bound and passes - best_passes < 3:
        current = recolor_by_classes(g, current)
        passes += 1
        if _n(current) < _n(best):
            best, best_passes = current, passes
    return best, best_name, best_passes


def _color_distance2(s: Structure, kind, orders, perm, seed: int, auto: bool) -> Coloring:
    """Column coloring of ``s`` (the transpose already taken for rows)."""
    n = s.shape[1]
    if n == 0:
        return _coloring(np.zeros(0, dtype=np.int64), kind, orders[0], "distance2")
    bound = int(s.row_lengths().max(initial=0))
    if auto and bound == n:
        # a full row: every pair of columns conflicts, and natural order gives 0 … n-1
        return _coloring(np.arange(n, dtype=np.int64), kind, "natural", "distance2")
    colors, name, passes = _best_distance2(bipartite(s), orders, perm, seed, bound, auto)
    return _coloring(colors, kind, name, "distance2", passes)


def _color_star(s: Structure, orders, perm, seed: int, auto: bool) -> Coloring:
    n = s.shape[0]
    if n == 0:
        return _coloring(np.zeros(0, dtype=np.int64), "star", orders[0], "star")
    adj = symmetric_adjacency(s)
    closed = symmetric_adjacency(s, diagonal=True)
    g2 = TwoHop(n, closed.indptr, closed.indices, closed.indptr, closed.indices)
    if auto and g2.work() > AUTO_WORK_LIMIT:
        orders = AUTO_ORDERS_LARGE
    trivial = 2 if adj.nnz else 1
    g1 = adjacency_two_hop(adj)
    deg = degrees(g1) if _needs_degrees(orders) else None
    best, best_name = None, orders[0]
    for name in orders:
        if name == "custom":
            order = _check_permutation(perm, n)
        else:
            order = vertex_order(g1, name, seed, deg)
        colors = star_coloring(adj, order)
        if best is None or _n(colors) < _n(best):
            best, best_name = colors, name
        if _n(colors) <= trivial:
            break
    # a distance-2 coloring of P ∪ Pᵀ ∪ I is a star coloring too; it needs at least
    # max degree + 1 colors, so it is only worth trying when that can beat the star result
    d2_bound = int(closed.row_lengths().max(initial=0))
    if d2_bound < _n(best):
        colors, name, passes = _best_distance2(g2, orders, perm, seed, d2_bound, auto)
        if _n(colors) < _n(best):
            return _coloring(colors, "star", name, "distance2", passes)
    return _coloring(best, "star", best_name, "star")
