"""The coloring policy: which algorithm and vertex orders each kind runs, and which result wins.

``color(pattern, kind)`` returns a :class:`Coloring`:

- ``kind="column"``: structurally orthogonal column groups (forward mode, one JVP per color);
- ``kind="row"``: the same for rows (reverse mode, one VJP per color);
- ``kind="star"``: a star coloring of the symmetric structure ``P ∪ Pᵀ`` (Hessians, one HVP per
  color, every entry recovered directly);
- ``kind="acyclic"``: an acyclic coloring of ``P ∪ Pᵀ`` (Hessians, fewer colors than star,
  entries recovered by substitution along two-colored trees; :mod:`.acyclic`);
- ``kind="bidirectional"``: a star bicoloring (Jacobians with dense rows *and* columns: column
  colors for JVPs, row colors for VJPs, 0 neutral; ``n_colors`` counts the products;
  :mod:`.bicolor`).

``order`` picks the greedy vertex order (:data:`ORDERS`), a tuple of them (the best is kept), an
explicit permutation, or ``"auto"`` (the default), which tries :data:`AUTO_ORDERS` in turn and
keeps the fewest colors — the first to reach the fewest on ties, so the result is deterministic.
Acyclic and bidirectional ``auto`` run their algorithm with every order and keep the fewest
colors (products), stopping at 2 (acyclic) or 1 (bidirectional).
Column/row ``auto`` stops as soon as an order reaches the lower bound (the most nonzeros in a
row, resp. column): nothing can beat it. A static order whose greedy prefix (1/32 of the
vertices, at least :data:`PREFIX_VERTICES`) already needs more colors than the bound cannot
reach it, so its full sweep is put off until no other order reaches the bound (natural and
largest-first order on the 2-D five-point stencil: 7 colors, where DSATUR gets the bound 5);
the result is the one running every order in turn gives. Right after DSATUR it tries the
improvement phase's first attempt, at the bound: when that succeeds the remaining orders are
skipped (a first run never compiles their kernel; same color count as running them first).
Otherwise it runs the improvement phase of :mod:`.improve` (greedy along DSATUR's order with
tabu repair at a fixed number of colors, within :data:`AUTO_IMPROVE_SWEEPS` sweeps of work;
``Coloring.improved`` says how many colors it removed) and, only if that removed none, refines
the best result by iterated greedy (recoloring class by class, which never adds colors;
:data:`AUTO_RECOLOR_PASSES`), reporting the number of passes in ``Coloring.recolor_passes``. On
very large graphs (more than :data:`AUTO_WORK_LIMIT` neighbour visits per sweep) it tries only
:data:`AUTO_ORDERS_LARGE` and fewer passes. Star ``auto`` runs the star algorithm with every
order (stopping at the cheap bound of :func:`lower_bound`), then — only if that can still be
beaten — a distance-2 coloring of ``P ∪ Pᵀ ∪ I`` (a valid star coloring too) the same way. For
an explicit star order both algorithms run with that order and the smaller result is kept
(ties: the star algorithm).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np

from sparsediff._heap import freed_memory_reused
from sparsediff.coloring.acyclic import acyclic_coloring
from sparsediff.coloring.bicolor import augmented_adjacency, neutralize, star_bicolor_products
from sparsediff.coloring.graphs import (
    Structure,
    TwoHop,
    adjacency_two_hop,
    as_structure,
    bipartite,
    closed_two_hop,
    degrees,
    symmetric_adjacency,
)
from sparsediff.coloring.greedy import dsatur, greedy_coloring, recolor_by_classes
from sparsediff.coloring.improve import Attempts, improve_colors
from sparsediff.coloring.orders import ORDERS, vertex_order
from sparsediff.coloring.result import Coloring, ColoringKind
from sparsediff.coloring.star import star_coloring

__all__ = [
    "AUTO_IMPROVE_SWEEPS",
    "AUTO_IMPROVE_SWEEPS_LARGE",
    "AUTO_ORDERS",
    "AUTO_ORDERS_BIDIRECTIONAL",
    "AUTO_ORDERS_LARGE",
    "AUTO_RECOLOR_PASSES",
    "AUTO_RECOLOR_PASSES_LARGE",
    "AUTO_RECOLOR_PATIENCE",
    "AUTO_RECOLOR_PATIENCE_LARGE",
    "AUTO_WORK_LIMIT",
    "KINDS",
    "PREFIX_VERTICES",
    "color",
    "lower_bound",
]

KINDS: tuple[str, ...] = ("column", "row", "star", "acyclic", "bidirectional")

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
#: What bidirectional ``auto`` tries: the star bicoloring of a dense row and a dense column
#: needs them colored last (``largest_last``: 3 products where the other orders need ~n).
AUTO_ORDERS_BIDIRECTIONAL: tuple[str, ...] = ("largest_last", *AUTO_ORDERS)
#: What ``auto`` tries when one sweep costs more than :data:`AUTO_WORK_LIMIT` neighbour visits.
AUTO_ORDERS_LARGE: tuple[str, ...] = ("natural", "largest_first", "dsatur")
#: Neighbour visits per sweep (Σ over rows of their length², about 0.1 s here) above which
#: ``auto`` trims its orders to :data:`AUTO_ORDERS_LARGE`. The 2-D Bratu pattern at n = 10⁶
#: costs 2.5·10⁷.
AUTO_WORK_LIMIT = 20_000_000
#: Iterated-greedy passes ``auto`` runs on its best distance-2 coloring: at most this many, and
#: it stops after ``patience`` passes without a gain (or at the lower bound). A pass visits the
#: vertices class by class, which scatters memory accesses: at n = 10⁶ it costs several plain
#: sweeps, hence the smaller budget above :data:`AUTO_WORK_LIMIT`.
AUTO_RECOLOR_PASSES = 20
AUTO_RECOLOR_PATIENCE = 5
AUTO_RECOLOR_PASSES_LARGE = 4
AUTO_RECOLOR_PATIENCE_LARGE = 2
#: Work budget of the improvement phase (:mod:`.improve`, greedy with tabu repair at a fixed
#: number of colors), in sweeps (:meth:`TwoHop.work`): proportional to the pattern, and small
#: above :data:`AUTO_WORK_LIMIT` so that it never dominates a plan at n = 10⁶. One unit of its
#: work (a move evaluated, a neighbour updated) costs about ten of a greedy sweep's.
AUTO_IMPROVE_SWEEPS = 24
AUTO_IMPROVE_SWEEPS_LARGE = 4
#: Seed of the improvement phase's tie-breaking (fixed: ``auto`` is deterministic).
AUTO_IMPROVE_SEED = 0


@freed_memory_reused()  # its work arrays at n = 10⁶: see sparsediff._heap
def color(
    pattern,
    kind: ColoringKind = "column",
    order: str | Sequence[str] | np.ndarray = "auto",
    seed: int = 0,
) -> Coloring:
    """Color the columns (``"column"``), rows (``"row"``), symmetric structure (``"star"``,
    ``"acyclic"``) or columns and rows together (``"bidirectional"``) of ``pattern`` — a SciPy
    sparse matrix/array (stored entries are the structure) or a dense 2-D array (its nonzeros
    are). ``seed`` drives ``order="random"``. A custom permutation for ``"bidirectional"``
    orders the ``n + m`` vertices of ``[0 Jᵀ; J 0]`` (columns first).
    """
    if not isinstance(kind, str) or kind not in KINDS:
        raise ValueError(f"unknown coloring kind {kind!r}; expected one of {', '.join(KINDS)}")
    orders, permutation = _parse_order(order)
    auto = isinstance(order, str) and order == "auto"
    s = as_structure(pattern)
    if kind in ("star", "acyclic"):
        if s.shape[0] != s.shape[1]:
            raise ValueError(
                f"{kind} coloring needs a square (symmetric) pattern, got shape {s.shape}; "
                "use kind='column', 'row' or 'bidirectional' for a Jacobian"
            )
        symmetric = _color_star if kind == "star" else _color_acyclic
        return symmetric(s, orders, permutation, seed, auto)
    if kind == "bidirectional":
        if auto:
            orders = AUTO_ORDERS_BIDIRECTIONAL
        return _color_bidirectional(s, orders, permutation, seed, auto)
    if kind == "row":
        s = s.transpose()
    return _color_distance2(s, kind, orders, permutation, seed, auto)


def lower_bound(pattern, kind: ColoringKind = "column") -> int:
    """Colors no column (row) coloring can go below: the most nonzeros in one row (column).

    For ``"star"`` a bound that is cheap to state: 3 when ``P ∪ Pᵀ`` is not a forest of stars
    (some edge joins two vertices of degree ≥ 2, so a path on four vertices or a triangle
    exists), 2 when there is an off-diagonal nonzero, 1 when there are vertices, else 0.
    """
    s = as_structure(pattern)
    if kind == "row":
        s = s.transpose()
    elif kind == "star":
        if s.shape[0] != s.shape[1]:
            raise ValueError(f"star coloring needs a square pattern, got shape {s.shape}")
        return _star_bound(symmetric_adjacency(s))
    elif kind in ("acyclic", "bidirectional"):
        raise ValueError(f"no lower bound is implemented for kind {kind!r}")
    elif kind != "column":
        raise ValueError(f"unknown coloring kind {kind!r}; expected one of {', '.join(KINDS)}")
    return _distance2_bound(s)


# --------------------------------------------------------------------------------------------


def _distance2_bound(s: Structure) -> int:
    """Most nonzeros in a row; at least 1 when there are columns to color."""
    n = s.shape[1]
    return max(1, int(s.row_lengths().max(initial=0))) if n else 0


def _star_bound(adj: Structure) -> int:
    """See :func:`lower_bound` (kind ``"star"``)."""
    n = adj.shape[0]
    if n == 0:
        return 0
    if adj.nnz == 0:
        return 1
    deg = adj.row_lengths()
    rows = np.repeat(np.arange(n), deg)
    return 3 if np.any((deg[rows] >= 2) & (deg[adj.indices] >= 2)) else 2


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


def _coloring(
    colors: np.ndarray, kind: str, order: str, method: str, passes: int = 0, removed: int = 0
) -> Coloring:
    return Coloring(
        colors,
        _n(colors),
        kind,  # type: ignore[arg-type]
        order,
        method,
        passes,
        improved=removed,
    )


def _n(colors: np.ndarray) -> int:
    return int(colors.max()) + 1 if colors.size else 0


R = TypeVar("R")


def best_over_orders(
    orders: Sequence[str],
    run: Callable[[str], R],
    cost: Callable[[R], float],
    stop: float,
    above_stop: Callable[[str], bool] | None = None,
) -> tuple[R, str]:
    """Run ``run(name)`` for each order and keep the cheapest result (the first on ties),
    stopping early once a result costs at most ``stop``: ``(result, order name)``.

    ``above_stop(name)``, if given, says (cheaply, and only when it is certain) that an order's
    result would cost more than ``stop``. Such orders are run last, and only when no other
    reaches ``stop``: the result is the same as running every order in turn, since an order
    that reaches ``stop`` beats every order proven above it.
    """
    best, best_key, best_name = None, None, orders[0]
    deferred = []
    for rank, name in enumerate(orders):
        if above_stop is not None and above_stop(name):
            deferred.append((rank, name))
            continue
        result = run(name)
        c = cost(result)
        if best is None or (c, rank) < best_key:
            best, best_key, best_name = result, (c, rank), name
        if c <= stop:
            return best, best_name
    for rank, name in deferred:
        result = run(name)
        c = cost(result)
        if best is None or (c, rank) < best_key:
            best, best_key, best_name = result, (c, rank), name
    return best, best_name


def _sweep(g: TwoHop, name: str, seed: int, deg, perm, visits: dict | None = None) -> np.ndarray:
    """Colors of one greedy distance-2 sweep of ``g`` (DSATUR's visiting order is kept in
    ``visits``, for the improvement phase)."""
    if name == "custom":
        return greedy_coloring(g, _check_permutation(perm, g.n))
    if name == "dsatur":
        colors, order = dsatur(g, deg)
        if visits is not None:
            visits["dsatur"] = order
        return colors
    return greedy_coloring(g, vertex_order(g, name, seed, deg))


#: Vertices a static order's prefix colors before :func:`_best_distance2` decides whether that
#: order can still reach the lower bound (at least this many, or 1/32 of the vertices).
PREFIX_VERTICES = 4096


def _prefix_size(n: int) -> int:
    """Vertices of the prefix :func:`_prefix_exceeds` colors (``n``: no shorter prefix)."""
    return min(n, max(PREFIX_VERTICES, n // 32))


def _prefix_exceeds(g: TwoHop, order: np.ndarray, bound: int) -> bool:
    """Whether first-fit greedy along ``order`` is certain to need more than ``bound`` colors,
    judged from a prefix of the order. Greedy is online: the prefix gets exactly the colors it
    gets in the full sweep, so a prefix above the bound proves the sweep is above it."""
    k = _prefix_size(order.size)
    if k >= order.size:
        return False  # the prefix would be the whole sweep: just run it
    colors = greedy_coloring(g, order[:k])
    return int(colors.max()) + 1 > bound


def _progress(colors: np.ndarray) -> tuple[int, int]:
    """Iterated greedy makes progress while (colors, size of the smallest class) decreases:
    emptying the smallest class is how a color disappears."""
    return _n(colors), int(np.bincount(colors).min()) if colors.size else 0


def _split_after_dsatur(orders: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``orders`` up to DSATUR (included), and the rest: ``auto`` tries the improvement phase
    at the lower bound between the two (it starts from DSATUR's visiting order)."""
    orders = tuple(orders)
    if "dsatur" not in orders:
        return orders, ()
    cut = orders.index("dsatur") + 1
    return orders[:cut], orders[cut:]


def _needs_degrees(orders) -> bool:
    return any(o not in ("natural", "random", "custom") for o in orders)


def _best_distance2(
    g: TwoHop, orders, perm, seed: int, bound: int, auto: bool, beat: int | None = None
) -> tuple[np.ndarray, str, int, int]:
    """Best distance-2 coloring over ``orders`` (stopping at the lower ``bound``), then, for
    ``auto``, the improvement phase (:mod:`.improve`) and, if that removed no color,
    iterated-greedy passes: ``(colors, order name, passes, colors the phase removed)``.

    ``beat``: the result only matters if it has fewer colors than this; the passes (which
    usually remove one color) are skipped when they would need to remove more.
    """
    work = g.work()
    large = work > AUTO_WORK_LIMIT
    if auto and large:
        orders = AUTO_ORDERS_LARGE
    deg = degrees(g) if _needs_degrees(orders) else None
    visits: dict[str, np.ndarray] = {}
    static: dict[str, np.ndarray] = {}  # the orders a prefix was tried on, kept for their sweep

    def sweep(name: str) -> np.ndarray:
        if name in static:
            return greedy_coloring(g, static[name])
        return _sweep(g, name, seed, deg, perm, visits)

    def above_bound(name: str) -> bool:
        # a sweep that misses the bound (natural and largest-first order on 2-D stencils)
        # costs 0.05 s at n = 10⁶, its prefix 1/32 of that; DSATUR's order is not static
        if name in ("dsatur", "custom") or _prefix_size(g.n) >= g.n:
            return False
        static[name] = vertex_order(g, name, seed, deg)
        return _prefix_exceeds(g, static[name], bound)

    head, tail = _split_after_dsatur(orders) if auto else (orders, ())
    best, best_name = best_over_orders(head, sweep, _n, bound, above_bound if auto else None)
    removed = 0
    sweeps = AUTO_IMPROVE_SWEEPS_LARGE if large else AUTO_IMPROVE_SWEEPS
    budget = sweeps * work
    attempts: Attempts = {}
    if auto and _n(best) > bound and tail:
        # the improvement phase's first attempt, at the lower bound, before the last greedy
        # orders: when it succeeds nothing can beat it, and those orders are never run (nor
        # compiled, on a first run); when it fails it is not repeated (``attempts``)
        found, removed, _ = improve_colors(
            g,
            best,
            visits["dsatur"],
            bound,
            budget,
            AUTO_IMPROVE_SEED,
            deg=deg,
            attempts=attempts,
            bound_only=True,
        )
        if removed:
            return found, best_name, 0, removed
        rest, rest_name = best_over_orders(tail, sweep, _n, bound, above_bound)
        if _n(rest) < _n(best):
            best, best_name = rest, rest_name
    if auto and _n(best) > bound:
        order = visits.get("dsatur")
        if order is None:
            order = dsatur(g, deg)[1]
        best, removed, _ = improve_colors(
            g, best, order, bound, budget, AUTO_IMPROVE_SEED, deg=deg, attempts=attempts
        )
    if removed or (beat is not None and _n(best) > beat):
        auto = False
    most = AUTO_RECOLOR_PASSES_LARGE if large else AUTO_RECOLOR_PASSES
    patience = AUTO_RECOLOR_PATIENCE_LARGE if large else AUTO_RECOLOR_PATIENCE
    passes = best_passes = last_progress = 0
    current = best
    record = _progress(best)
    while auto and passes < most and _n(best) > bound and passes - last_progress < patience:
        current = recolor_by_classes(g, current)
        passes += 1
        if _n(current) < _n(best):
            best, best_passes = current, passes
        if _progress(current) < record:
            record, last_progress = _progress(current), passes
    return best, best_name, best_passes, removed


def _color_distance2(s: Structure, kind, orders, perm, seed: int, auto: bool) -> Coloring:
    """Column coloring of ``s`` (the transpose already taken for rows)."""
    n = s.shape[1]
    if n == 0:
        return _coloring(np.zeros(0, dtype=np.int64), kind, orders[0], "distance2")
    bound = _distance2_bound(s)
    if auto and bound == n:
        # a full row: every pair of columns conflicts, and natural order gives 0 … n-1
        return _coloring(np.arange(n, dtype=np.int64), kind, "natural", "distance2")
    colors, name, passes, removed = _best_distance2(bipartite(s), orders, perm, seed, bound, auto)
    return _coloring(colors, kind, name, "distance2", passes, removed)


def _color_star(s: Structure, orders, perm, seed: int, auto: bool) -> Coloring:
    n = s.shape[0]
    if n == 0:
        return _coloring(np.zeros(0, dtype=np.int64), "star", orders[0], "star")
    adj = symmetric_adjacency(s)
    closed = symmetric_adjacency(s, diagonal=True)
    g2 = closed_two_hop(closed)
    if auto and g2.work() > AUTO_WORK_LIMIT:
        orders = AUTO_ORDERS_LARGE
    max_degree = float(adj.row_lengths().max(initial=0))
    if auto and max_degree * max_degree > AUTO_WORK_LIMIT:
        # a dense row (arrowhead, global coupling): any order that colors it before its
        # neighbours costs deg² — minutes at n = 10⁶; largest_last stays O(nnz)
        orders = ("largest_last",)
    trivial = _star_bound(adj)
    g1 = adjacency_two_hop(adj)
    deg = degrees(g1) if _needs_degrees(orders) else None
    best, best_name = best_over_orders(
        orders, lambda name: star_coloring(adj, _order_of(g1, name, perm, seed, deg)), _n, trivial
    )
    # a distance-2 coloring of P ∪ Pᵀ ∪ I is a star coloring too; it needs at least
    # max degree + 1 colors, so it is only worth trying when that can beat the star result
    d2_bound = int(closed.row_lengths().max(initial=0))
    if d2_bound < _n(best):
        colors, name, passes, removed = _best_distance2(
            g2, orders, perm, seed, d2_bound, auto, beat=_n(best)
        )
        if _n(colors) < _n(best):
            return _coloring(colors, "star", name, "distance2", passes, removed)
    return _coloring(best, "star", best_name, "star")


def _orders_for(adj: Structure, orders, auto: bool, large_orders) -> tuple[str, ...]:
    """``orders``, or ``large_orders`` for ``auto`` on a graph where one sweep is expensive.

    The star and acyclic kernels look at the neighbourhoods of colored neighbours: a vertex of
    degree d colored early is looked at by each of its d neighbours, d² work (n² for a dense
    row). ``largest_last`` colors such vertices after their neighbours, so it stays O(nnz).
    """
    deg = adj.row_lengths().astype(np.float64)
    if auto and float(deg @ deg) > AUTO_WORK_LIMIT:
        return large_orders
    return orders


def _order_of(g: TwoHop, name: str, perm, seed: int, deg) -> np.ndarray:
    if name == "custom":
        return _check_permutation(perm, g.n)
    return vertex_order(g, name, seed, deg)


def _color_acyclic(s: Structure, orders, perm, seed: int, auto: bool) -> Coloring:
    """Best greedy acyclic coloring over ``orders`` (stops at 2 colors: any edge needs 2)."""
    n = s.shape[0]
    if n == 0:
        return _coloring(np.zeros(0, dtype=np.int64), "acyclic", orders[0], "acyclic")
    adj = symmetric_adjacency(s)
    g1 = adjacency_two_hop(adj)
    orders = _orders_for(adj, orders, auto, ("largest_last", *AUTO_ORDERS_LARGE))
    deg = degrees(g1) if _needs_degrees(orders) else None
    trivial = 2 if adj.nnz else 1
    best, best_name = best_over_orders(
        orders,
        lambda name: acyclic_coloring(adj, _order_of(g1, name, perm, seed, deg)),
        _n,
        trivial,
    )
    return _coloring(best, "acyclic", best_name, "acyclic")


def _color_bidirectional(s: Structure, orders, perm, seed: int, auto: bool) -> Coloring:
    """Best star bicoloring over ``orders``: star coloring of ``[0 Jᵀ; J 0]`` in each order,
    neutral colors, fewest products kept (stops at 1)."""
    m, n = s.shape
    aug = augmented_adjacency(s)
    if s.nnz == 0:
        z = np.zeros(n, dtype=np.int64)
        return Coloring(z, 0, "bidirectional", orders[0], "star_bicoloring", 0, np.zeros(m))
    g1 = adjacency_two_hop(aug)
    orders = _orders_for(aug, orders, auto, ("largest_last",))
    deg = degrees(g1) if _needs_degrees(orders) else None

    def run(name: str) -> tuple[np.ndarray, np.ndarray]:
        return neutralize(s, star_coloring(aug, _order_of(g1, name, perm, seed, deg)))

    (col, row), best_name = best_over_orders(
        orders, run, lambda pair: star_bicolor_products(*pair), 1
    )
    products = star_bicolor_products(col, row)
    return Coloring(col, products, "bidirectional", best_name, "star_bicoloring", 0, row)
