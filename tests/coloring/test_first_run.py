"""What a first plan compiles: phases that cannot improve are skipped, and the kernels that
replaced others (one sweep kernel, bucket queues in NumPy) give the same results.

``auto`` tries the improvement phase at the lower bound right after DSATUR; when that succeeds
the last greedy orders (and their kernel) are never run. These tests check that this changes
no color count (and, on the patterns here, no color) against running every order first.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sparsediff.coloring import check_coloring, color, lower_bound, select
from sparsediff.coloring import improve as improve_module
from sparsediff.coloring.buckets import fill_buckets, single_bucket
from sparsediff.coloring.graphs import as_structure, bipartite, degrees, neighbours
from tests.coloring.patterns import bratu2d, brusselator2d, cavity2d, structured

patterns = hnp.arrays(
    np.bool_, st.tuples(st.integers(1, 14), st.integers(1, 14)), elements=st.booleans()
)


def _spy(monkeypatch):
    """Record every greedy sweep ``auto`` runs and every repair attempt it makes."""
    swept: list[str] = []
    attempts: list[tuple[int, int]] = []
    sweep, repair = select._sweep, improve_module.fixed_k_repair

    def spy_sweep(g, name, *args, **kwargs):
        swept.append(name)
        return sweep(g, name, *args, **kwargs)

    def spy_repair(adjacency, order, k, budget, seed=0):
        attempts.append((int(k), int(budget)))
        return repair(adjacency, order, k, budget, seed)

    monkeypatch.setattr(select, "_sweep", spy_sweep)
    monkeypatch.setattr(improve_module, "fixed_k_repair", spy_repair)
    return swept, attempts


def _all_orders_first(monkeypatch):
    """``auto`` as it was before the early attempt: every greedy order, then the phase."""
    monkeypatch.setattr(select, "_split_after_dsatur", lambda orders: (tuple(orders), ()))


def test_greedy_at_the_bound_runs_no_improvement(monkeypatch):
    P = bratu2d(12)  # DSATUR reaches the bound 5 of the 5-point stencil
    swept, attempts = _spy(monkeypatch)

    def fail(*args, **kwargs):
        raise AssertionError("the improvement phase ran although greedy reached the bound")

    monkeypatch.setattr(select, "improve_colors", fail)
    c = color(P)
    check_coloring(P, c, kind="column")
    assert c.n_colors == lower_bound(P, "column") == 5 and c.improved == 0
    assert swept == ["natural", "largest_first", "dsatur"] and attempts == []


def test_early_attempt_at_the_bound_skips_the_last_orders(monkeypatch):
    P = cavity2d(30)  # 13-point stencil: every greedy order > 13, the phase reaches 13
    swept, attempts = _spy(monkeypatch)
    c = color(P)
    check_coloring(P, c, kind="column")
    assert c.n_colors == 13 == lower_bound(P, "column") and c.improved > 0
    assert swept == ["natural", "largest_first", "dsatur"]  # smallest_last … never ran
    assert len(attempts) == 1 and attempts[0][0] == 13
    monkeypatch.undo()
    _all_orders_first(monkeypatch)
    reference = color(P)
    assert np.array_equal(reference.colors, c.colors)
    assert (reference.n_colors, reference.order) == (c.n_colors, c.order)


def test_a_failed_early_attempt_runs_the_last_orders_and_is_not_repeated(monkeypatch):
    P = brusselator2d(13)
    swept, attempts = _spy(monkeypatch)
    c = color(P)
    check_coloring(P, c, kind="column")
    bound = lower_bound(P, "column")
    if c.n_colors > bound:  # the bound was not reached: every order ran
        assert swept[:3] == ["natural", "largest_first", "dsatur"] and len(swept) > 3
    assert len(attempts) == len(set(attempts))  # an attempt is never made twice
    monkeypatch.undo()
    _all_orders_first(monkeypatch)
    reference = color(P)
    assert reference.n_colors == c.n_colors
    assert np.array_equal(reference.colors, c.colors)


@pytest.mark.parametrize("name", sorted(structured()))
def test_same_colors_as_every_order_first_on_structured_patterns(name, monkeypatch):
    P = structured()[name]
    new = color(P)
    _all_orders_first(monkeypatch)
    old = color(P)
    check_coloring(P, new, kind="column")
    assert new.n_colors == old.n_colors


@settings(max_examples=60, deadline=None)
@given(P=patterns)
def test_same_color_count_as_every_order_first_on_random_patterns(P):
    new = color(P)
    with pytest.MonkeyPatch.context() as mp:
        _all_orders_first(mp)
        old = color(P)
    check_coloring(P, new, kind="column")
    assert new.n_colors == old.n_colors
    assert new.n_colors <= color(P, order="natural").n_colors  # never worse than natural


@settings(max_examples=60, deadline=None)
@given(P=patterns)
def test_neighbours_are_the_distinct_conflicts_in_first_visit_order(P):
    s = as_structure(P)
    g = bipartite(s)
    ptr, idx = neighbours(g)
    assert np.array_equal(ptr, neighbours(g, degrees(g))[0])
    for v in range(g.n):
        expected, seen = [], {v}
        for i in g.a_idx[g.a_ptr[v] : g.a_ptr[v + 1]]:
            for u in g.b_idx[g.b_ptr[i] : g.b_ptr[i + 1]]:
                if u not in seen:
                    seen.add(u)
                    expected.append(u)
        assert idx[ptr[v] : ptr[v + 1]].tolist() == expected


def _reference_buckets(key, tie, n_buckets):
    """The bucket queue as the former Numba kernel filled it, one push at a time."""
    n = key.size
    head = np.full(max(n_buckets, 1), -1, dtype=np.int64)
    nxt = np.full(n, -1, dtype=np.int64)
    prv = np.full(n, -1, dtype=np.int64)
    for v in sorted(range(n), key=lambda v: (tie[v], -v)):
        h = head[key[v]]
        nxt[v] = h
        if h >= 0:
            prv[h] = v
        head[key[v]] = v
    return head, nxt, prv


@settings(max_examples=80, deadline=None)
@given(
    data=st.integers(0, 40).flatmap(
        lambda n: st.tuples(
            hnp.arrays(np.int64, n, elements=st.integers(0, 5)),
            hnp.arrays(np.int64, n, elements=st.integers(0, 3)),
        )
    )
)
def test_fill_buckets_matches_pushing_one_at_a_time(data):
    key, tie = data
    for got, want in zip(fill_buckets(key, tie, 6), _reference_buckets(key, tie, 6), strict=True):
        assert np.array_equal(got, want)


@settings(max_examples=80, deadline=None)
@given(
    tie=st.integers(0, 40).flatmap(
        lambda n: hnp.arrays(np.int64, n, elements=st.integers(0, 2**17))
    ),
    extra=st.integers(0, 3),
)
def test_single_bucket_is_the_queue_pushing_one_at_a_time_gives(tie, extra):
    # DSATUR's starting queue, from one sort: the same as pushing every vertex into bucket 0
    # (ties wide and narrow: int16 radix sort and the general one)
    n_buckets = tie.size + extra
    zeros = np.zeros(tie.size, dtype=np.int64)
    want = _reference_buckets(zeros, tie, n_buckets)
    for got, ref in zip(single_bucket(tie, n_buckets), want, strict=True):
        assert np.array_equal(got, ref)
    small = np.minimum(tie, 3)
    for got, ref in zip(
        single_bucket(small), _reference_buckets(zeros, small, tie.size), strict=True
    ):
        assert np.array_equal(got, ref)


def _dsatur_with_full_work_arrays(g):
    """DSATUR as it was called before its work arrays were trimmed and its per-vertex state
    interleaved: the queue filled by :func:`fill_buckets` with ``n`` buckets, ``forbidden`` of
    ``n + 1`` entries, one int64 array per field."""
    from sparsediff.coloring.greedy import DSATUR_MAX_WORDS

    n = g.n
    deg = degrees(g)
    maxd = int(deg.max())
    words = max(1, int(min(DSATUR_MAX_WORDS, (maxd + 1 + 63) // 64)))
    head, nxt, prv = fill_buckets(np.zeros(n, dtype=np.int64), deg, max(n, maxd + 2))
    colors = np.full(n, -1, dtype=np.int64)
    order = np.empty(n, dtype=np.int64)
    _dsatur_separate_arrays(
        n, g.a_ptr, g.a_idx, g.b_ptr, g.b_idx, deg, maxd, words, colors, order,
        np.zeros(n * words, dtype=np.uint64), np.zeros(n, dtype=np.int64),
        np.full(n + 1, -1, dtype=np.int64), np.full(n, -1, dtype=np.int64),
        np.empty(maxd + 1, dtype=np.int64), head, nxt, prv,
    )  # fmt: skip
    return colors, order


@numba.njit
def _dsatur_separate_arrays(
    n,
    a_ptr,
    a_idx,
    b_ptr,
    b_idx,
    deg,
    maxd,
    words,
    colors,
    order,
    masks,
    sat,
    forbidden,
    mark,
    uncolored,
    head,
    nxt,
    prv,
):
    """DSATUR as it was before its per-vertex state was interleaved (one array per field)."""
    nbits = 64 * words
    hi = 0
    one = np.uint64(1)
    for step in range(n):
        while head[hi] < 0:
            hi -= 1
        v = head[hi]
        # take v out of its bucket (the queue moves are written out here, not called: a
        # function called with different constant arguments is compiled once for each)
        p = prv[v]
        q = nxt[v]
        if p >= 0:
            nxt[p] = q
        else:
            head[sat[v]] = q
        if q >= 0:
            prv[q] = p
        prv[v] = -1
        nxt[v] = -1
        order[step] = v
        # one walk: forbid the neighbours' colors, collect the uncolored neighbours
        mark[v] = v
        m = 0
        for k in range(a_ptr[v], a_ptr[v + 1]):
            i = a_idx[k]
            for s in range(b_ptr[i], b_ptr[i + 1]):
                u = b_idx[s]
                if mark[u] == v:
                    continue
                mark[u] = v
                cu = colors[u]
                if cu >= 0:
                    forbidden[cu] = v
                else:
                    uncolored[m] = u
                    m += 1
        c = 0
        while forbidden[c] == v:
            c += 1
        colors[v] = c
        # saturation of the uncolored neighbours: does c add a new color around u?
        w = c // 64
        bit = one << np.uint64(c % 64)
        for t in range(m):
            u = uncolored[t]
            if c < nbits:
                slot = u * words + w
                if masks[slot] & bit:
                    continue
                masks[slot] |= bit
            else:
                seen = False
                for k2 in range(a_ptr[u], a_ptr[u + 1]):
                    i2 = a_idx[k2]
                    for s2 in range(b_ptr[i2], b_ptr[i2 + 1]):
                        x = b_idx[s2]
                        if x != v and x != u and colors[x] == c:
                            seen = True
                            break
                    if seen:
                        break
                if seen:
                    continue
            # move u up one bucket
            p = prv[u]
            q = nxt[u]
            if p >= 0:
                nxt[p] = q
            else:
                head[sat[u]] = q
            if q >= 0:
                prv[q] = p
            sat[u] += 1
            h = head[sat[u]]
            nxt[u] = h
            prv[u] = -1
            if h >= 0:
                prv[h] = u
            head[sat[u]] = u
            if sat[u] > hi:
                hi = sat[u]


@settings(max_examples=60, deadline=None)
@given(P=patterns)
def test_dsatur_unchanged_by_its_trimmed_work_arrays(P):
    from sparsediff.coloring.greedy import dsatur

    g = bipartite(as_structure(P))
    colors, order = dsatur(g)
    want_colors, want_order = _dsatur_with_full_work_arrays(g)
    assert np.array_equal(colors, want_colors) and np.array_equal(order, want_order)


@pytest.mark.parametrize("P", [bratu2d(30), brusselator2d(12), cavity2d(15)])
def test_dsatur_unchanged_by_its_trimmed_work_arrays_on_stencils(P):
    from sparsediff.coloring.greedy import dsatur

    g = bipartite(as_structure(P))
    colors, order = dsatur(g)
    want_colors, want_order = _dsatur_with_full_work_arrays(g)
    assert np.array_equal(colors, want_colors) and np.array_equal(order, want_order)


def _many_colors(m: int, n: int, density: float, full_rows: int, seed: int):
    rng = np.random.default_rng(seed)
    P = rng.random((m, n)) < density
    P[:full_rows] = True  # a full row: every column its own color
    return P


@pytest.mark.parametrize(
    "P",
    [
        _many_colors(120, 90, 0.3, 0, 0),  # tens of colors: bit 31 of a mask piece
        _many_colors(200, 150, 0.5, 0, 1),  # over 64 colors: a second mask word
        _many_colors(30, 600, 0.02, 1, 2),  # 600 colors, over 512: the neighbourhood scan
    ],
    ids=["bit31", "two_words", "fallback"],
)
def test_dsatur_interleaved_state_unchanged_on_many_colors(P):
    """The 32-bit mask pieces of the interleaved state (bit 31 makes an int32 piece negative),
    several mask words and the scan beyond them give the colors and order of one array per
    field."""
    from sparsediff.coloring.greedy import dsatur

    g = bipartite(as_structure(P))
    assert g.a_idx.dtype == np.int32
    colors, order = dsatur(g)
    want_colors, want_order = _dsatur_with_full_work_arrays(g)
    assert np.array_equal(colors, want_colors) and np.array_equal(order, want_order)
    assert colors.dtype == order.dtype == np.int64
    assert colors.max() + 1 > {120: 32, 200: 64, 30: 512}[P.shape[0]]


def test_precompile_entry_point_runs(capsys):
    from sparsediff.__main__ import main

    assert main(["precompile"]) == 0
    assert "cached" in capsys.readouterr().out
