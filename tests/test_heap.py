"""``sparsediff._heap.freed_memory_reused``: the outermost block sets glibc's thresholds and
leaves them at the dynamic policy's ceiling; ``small_pages`` turns NumPy's huge-page advice off
inside and back to what it was; ``SPARSEDIFF_PLAN_MALLOC=0`` changes nothing."""

from __future__ import annotations

import pytest

from sparsediff import _heap


@pytest.fixture
def calls(monkeypatch):
    seen: list[tuple[int, int]] = []
    monkeypatch.setattr(_heap, "_set", lambda mmap, trim: seen.append((mmap, trim)))
    monkeypatch.setattr(_heap, "_load", lambda: True)
    monkeypatch.setattr(_heap, "_held_by_jax", lambda: False)
    return seen


def test_outermost_block_sets_and_leaves_the_thresholds(calls):
    with _heap.freed_memory_reused():
        with _heap.freed_memory_reused():
            assert calls == [(_heap.THRESHOLD, _heap.THRESHOLD)]
    assert calls == [(_heap.THRESHOLD, _heap.THRESHOLD), (_heap.AFTER_MMAP, _heap.AFTER_TRIM)]
    assert _heap._depth == 0


def test_thresholds_are_left_as_well_when_the_block_raises(calls):
    with pytest.raises(ZeroDivisionError), _heap.freed_memory_reused():
        raise ZeroDivisionError
    assert calls[-1] == (_heap.AFTER_MMAP, _heap.AFTER_TRIM) and _heap._depth == 0


def test_small_pages_inside_and_the_setting_restored(calls):
    if _heap._numpy_huge_pages(True) is None:
        pytest.skip("this NumPy has no huge-page switch")
    with _heap.freed_memory_reused(small_pages=True):
        assert _heap._numpy_huge_pages(False) is False  # it was off inside
    assert _heap._numpy_huge_pages(True) is True  # and back on after


def test_switched_off_by_the_environment(calls, monkeypatch):
    monkeypatch.setenv("SPARSEDIFF_PLAN_MALLOC", "0")
    before = _heap._numpy_huge_pages(True)
    with _heap.freed_memory_reused(small_pages=True):
        assert _heap._numpy_huge_pages(True) is True
    assert calls == []
    if before is not None:
        _heap._numpy_huge_pages(before)
