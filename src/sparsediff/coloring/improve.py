"""Fewer colors than any greedy order: greedy with tabu repair at a fixed number of colors.

Greedy orders and iterated greedy stop well above the optimum on some stencils: the 13-point
stencil of the MINPACK-2 driven cavity needs 13 colors (``(x + 5y) mod 13``, every row a
rainbow) where every greedy order gets 17–19, and plain tabu search (TabuCol, Hertz and de
Werra 1987) started from such a coloring stalls at 16–17 on a 100×100 grid: its color classes
form domains whose walls no sequence of local moves removes. What works is to *grow* a
``k``-coloring along DSATUR's visiting order (a front that spreads from one vertex) and repair
it as it grows:

- each vertex, in order, takes the color its colored neighbours use least (the first free one
  when there is one: without conflicts this is first-fit greedy);
- whenever that leaves conflicts, TabuCol moves recolor conflicting vertices (the move that
  removes most conflicts, not undoing a recent move unless it beats the best so far; ties
  broken by a seeded xorshift generator) until there are none, before the next vertex comes.

The conflicts stay near the front, so the repairs stay small and the front never freezes a
mismatch into the coloring. This reaches 13 on the driven cavity (100×100 and 1000×1000) and
the lower bound 6 on the 2-D Brusselator (N = 300; 7 at N = 100) where greedy gets 10–11.

The search runs on the distance-2 graph itself, built once (distinct neighbours, int32): counting
conflicts through the two-hop structure with multiplicity (two columns sharing eight rows
conflicting eight times) was tried and misleads the search (no gain on the cavity, 8 instead
of 6 colors on the Brusselator). Everything is bounded by a work
budget (neighbour visits plus move evaluations); an attempt that runs out of it fails and
leaves the coloring it started from untouched. Same input, same budget, same seed: same result.
"""

from __future__ import annotations

import numpy as np

from sparsediff._jit import kernel
from sparsediff.coloring.graphs import TwoHop, neighbours

__all__ = ["Attempts", "distance2_adjacency", "fixed_k_repair", "improve_colors"]

#: Tabu tenure of a move: ``TENURE_RANDOM`` random iterations plus ``TENURE_FACTOR`` × the
#: number of conflicting vertices (Galinier and Hao's 10 and 0.6).
TENURE_RANDOM = 10
TENURE_FACTOR = 0.6
#: Work an attempt may take at most (iteration numbers, which the tabu table stores, stay
#: within int32).
MAX_BUDGET = 2**30
#: Share of the budget the first attempt, straight at the lower bound, may take.
BOUND_FIRST_SHARE = 0.25
#: Equally good moves kept to draw from (the first ones found beyond that are kept).
TIE_BUFFER = 256

#: Attempts already made, ``(k, budget) → (colors or None, work)``: an attempt is a pure
#: function of the graph, the order, ``k``, its budget and the seed, so one made early (at the
#: lower bound, before the last greedy orders: :mod:`.select`) is not repeated.
Attempts = dict[tuple[int, int], tuple[np.ndarray | None, int]]


def fixed_k_repair(
    adjacency: tuple[np.ndarray, np.ndarray],
    order: np.ndarray,
    k: int,
    budget: int,
    seed: int = 0,
) -> tuple[np.ndarray | None, int]:
    """A coloring with at most ``k`` colors of the graph ``adjacency`` (CSR ``(ptr, idx)`` of
    distinct neighbours, :func:`distance2_adjacency`) grown along ``order`` with tabu repair,
    or ``None`` when ``budget`` (neighbour visits plus move evaluations) ran out first; and the
    work spent."""
    ptr, idx = adjacency
    n = ptr.size - 1
    if n == 0:
        return np.zeros(0, dtype=np.int64), 0
    k = int(k)
    if k < 1:
        return None, 0
    colors = np.full(n, -1, dtype=np.int64)
    gamma = np.zeros((n, k), dtype=np.int32)
    tabu = np.zeros((n, k), dtype=np.int32)
    where = np.full(n, -1, dtype=np.int64)
    conflicting = np.empty(n, dtype=np.int64)
    ties = np.empty(2 * TIE_BUFFER, dtype=np.int64)
    ok, work = _repair(
        n,
        ptr,
        idx,
        np.asarray(order, dtype=np.int64),
        k,
        min(int(budget), MAX_BUDGET),
        np.uint64(seed * 2654435761 + 88172645463325252),
        TENURE_RANDOM,
        round(TENURE_FACTOR * 1024),
        colors,
        gamma,
        tabu,
        where,
        conflicting,
        ties,
    )
    if not ok:
        return None, int(work)
    used = np.bincount(colors, minlength=k) > 0  # fewer than k colors may have been enough
    if not used.all():
        colors = (np.cumsum(used) - 1)[colors]
    return colors, int(work)


def improve_colors(
    g: TwoHop,
    colors: np.ndarray,
    order: np.ndarray,
    bound: int,
    budget: int,
    seed: int = 0,
    *,
    deg: np.ndarray | None = None,
    attempts: Attempts | None = None,
    bound_only: bool = False,
) -> tuple[np.ndarray, int, int]:
    """``colors`` with fewer colors where :func:`fixed_k_repair` finds them: ``(best colors,
    colors removed, work spent)``, never more colors than ``colors``.

    The first attempt aims straight at ``bound`` with :data:`BOUND_FIRST_SHARE` of the
    ``budget`` (all of it when ``colors`` has ``bound + 1``): where the optimum is that tight,
    the tight count is what forces the search into the right pattern (driven cavity, 100×100:
    13 colors in under one sweep of work, where going down one color at a time from 18 spends
    some 60). Then one color fewer than the best so far, down to the bound, until an attempt
    fails or the budget is spent. Building the distance-2 graph counts as two sweeps; nothing
    is built when no attempt can run. ``bound_only``: make only the first attempt. ``deg``:
    the degrees of ``g``, if known (the graph is built in one sweep then); ``attempts``:
    attempts already made, and where this call records its own (:data:`Attempts`).
    """
    k = _n_colors(colors)
    bound = max(int(bound), 1)
    if k - 1 < bound or budget <= 0:
        return colors, 0, 0
    memo: Attempts = {} if attempts is None else attempts
    graph: list[tuple[np.ndarray, np.ndarray]] = []

    def attempt(k_try: int, allowed: int) -> tuple[np.ndarray | None, int]:
        key = (int(k_try), int(allowed))
        if key not in memo:
            if not graph:
                graph.append(distance2_adjacency(g, deg))
            memo[key] = fixed_k_repair(graph[0], order, k_try, allowed, seed)
        return memo[key]

    spent = 2 * g.work()
    best, lowest = colors, bound
    if k - 1 > bound:
        allowed = int(BOUND_FIRST_SHARE * max(budget - spent, 0))
        found, work = attempt(bound, allowed)
        spent += work
        if found is not None:
            return found, k - _n_colors(found), spent
        lowest = bound + 1
    elif bound_only:
        found, work = attempt(bound, budget - spent) if spent < budget else (None, 0)
        spent += work
        return (colors, 0, spent) if found is None else (found, k - _n_colors(found), spent)
    if bound_only:
        return colors, 0, spent
    while spent < budget and _n_colors(best) - 1 >= lowest:
        found, work = attempt(_n_colors(best) - 1, budget - spent)
        spent += work
        if found is None:
            break
        best = found
    return best, k - _n_colors(best), spent


def _n_colors(colors: np.ndarray) -> int:
    return int(colors.max()) + 1 if colors.size else 0


def distance2_adjacency(g: TwoHop, deg: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """CSR ``(ptr, idx)`` of the graph of ``g``: the distinct neighbours of every vertex
    (:func:`~sparsediff.coloring.graphs.neighbours`, the greedy sweep's kernel); ``deg``: the
    degrees of ``g``, if known."""
    return neighbours(g, deg)


# --------------------------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------------------------


@kernel
def _repair(
    n,
    ptr,
    idx,
    order,
    k,
    budget,
    rng,
    tenure_random,
    tenure_factor,
    colors,
    gamma,
    tabu,
    where,
    conflicting,
    ties,
):
    """Grow a ``k``-coloring along ``order``, repairing conflicts by tabu moves (module doc).

    ``gamma[v, c]``: neighbours of ``v`` (with multiplicity) colored ``c``; ``conflicting[:nc]``
    the colored vertices with a neighbour of their own color (``where[v]`` their slot, -1 when
    not listed); ``f`` the number of conflicting pairs; ``tabu[v, c]`` the iteration until which
    giving ``v`` color ``c`` back is forbidden. Returns ``(success, work)``; the work arrays are
    filled in place (``colors`` is a valid coloring on success).
    """
    nc = 0
    f = 0
    it = 0
    work = 0
    for step in range(n):
        v = order[step]
        c_new = 0
        for c in range(1, k):
            if gamma[v, c] < gamma[v, c_new]:
                c_new = c
        colors[v] = c_new
        f += gamma[v, c_new]
        work += ptr[v + 1] - ptr[v]
        for s in range(ptr[v], ptr[v + 1]):
            u = idx[s]
            gamma[u, c_new] += 1
            if colors[u] == c_new and where[u] < 0:
                where[u] = nc
                conflicting[nc] = u
                nc += 1
        if gamma[v, c_new] > 0:
            where[v] = nc
            conflicting[nc] = v
            nc += 1
        best_f = f
        while f > 0:
            if work > budget:
                return False, work
            it += 1
            # the best move: a conflicting vertex to another color
            best_d = 1 << 40
            n_ties = 0
            cap = ties.size // 2
            for q in range(nc):
                w = conflicting[q]
                cw = colors[w]
                g0 = gamma[w, cw]
                for c in range(k):
                    if c == cw:
                        continue
                    d = gamma[w, c] - g0
                    if d > best_d or (tabu[w, c] > it and f + d >= best_f):
                        continue  # worse, or tabu and not better than the best so far
                    if d < best_d:
                        best_d = d
                        n_ties = 0
                    if n_ties < cap:
                        ties[2 * n_ties] = w
                        ties[2 * n_ties + 1] = c
                        n_ties += 1
            work += nc * k + 1  # +1: progress even with nothing to evaluate
            if n_ties == 0:
                continue  # every move tabu: wait for a tenure to end
            pick = 0
            if n_ties > 1:
                rng ^= rng << np.uint64(13)
                rng ^= rng >> np.uint64(7)
                rng ^= rng << np.uint64(17)
                pick = np.int64(rng % np.uint64(n_ties))
            bv = ties[2 * pick]
            bc = ties[2 * pick + 1]
            old = colors[bv]
            colors[bv] = bc
            f += best_d
            work += ptr[bv + 1] - ptr[bv]
            for s in range(ptr[bv], ptr[bv + 1]):
                u = idx[s]
                gamma[u, old] -= 1
                gamma[u, bc] += 1
                cu = colors[u]
                if cu == old and gamma[u, old] == 0 and where[u] >= 0:
                    slot = where[u]
                    last = conflicting[nc - 1]
                    conflicting[slot] = last
                    where[last] = slot
                    where[u] = -1
                    nc -= 1
                elif cu == bc and where[u] < 0:
                    where[u] = nc
                    conflicting[nc] = u
                    nc += 1
            if gamma[bv, bc] == 0 and where[bv] >= 0:
                slot = where[bv]
                last = conflicting[nc - 1]
                conflicting[slot] = last
                where[last] = slot
                where[bv] = -1
                nc -= 1
            elif gamma[bv, bc] > 0 and where[bv] < 0:
                where[bv] = nc
                conflicting[nc] = bv
                nc += 1
            rng ^= rng << np.uint64(13)
            rng ^= rng >> np.uint64(7)
            rng ^= rng << np.uint64(17)
            tabu[bv, old] = (
                it + np.int64(rng % np.uint64(tenure_random)) + (tenure_factor * nc) // 1024
            )
            if f < best_f:
                best_f = f
    return True, work
