"""The raw-allocator hook that gives Numba's large arrays huge pages.

(:mod:`sparsediff.backends.hugepages`)
"""

import os
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest

from sparsediff.backends import hugepages

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")


@numba.njit
def _filled(n, value):
    out = np.empty(n)
    for i in range(n):
        out[i] = value
    return out


@numba.njit
def _grown(n):
    items = []
    for i in range(n):
        items.append(float(i))
    return np.array(items)


def _run(code: str, **env) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_enable_is_idempotent_and_allocations_stay_correct():
    assert hugepages.enable_numba_hugepages() is True
    assert hugepages.enable_numba_hugepages() is True
    assert hugepages.numba_hugepages_enabled()
    # above and below the threshold, freshly allocated and grown (realloc) by Numba
    big = hugepages.HUGEPAGE_THRESHOLD // 8 + 1000
    for n in (10, big, 3 * big):
        out = _filled(n, 2.5)
        assert out.shape == (n,) and (out == 2.5).all()
    grown = _grown(200_000)
    np.testing.assert_array_equal(grown, np.arange(200_000.0))


def test_plans_install_it_and_the_environment_switches_it_off():
    code = """
        import pytensor.tensor as pt, sparsediff as sd
        from sparsediff.backends import hugepages
        x = pt.vector("x", shape=(4,))
        before = hugepages.numba_hugepages_enabled()
        sd.jacobian(pt.exp(x), x)
        print(before, hugepages.numba_hugepages_enabled())
    """
    assert _run(code) == "False True"
    assert _run(code, SPARSEDIFF_NUMBA_HUGEPAGES="0") == "False False"


def test_blocks_from_before_and_tracemalloc_after_are_freed_by_their_allocator():
    out = _run(
        """
        import tracemalloc, numba, numpy as np
        from sparsediff.backends import hugepages

        @numba.njit
        def make(n):
            return np.ones(n)

        early = [make(n) for n in (10, 1 << 20)]  # allocated before the hook
        assert hugepages.enable_numba_hugepages()
        late = [make(n) for n in (10, 1 << 20)]
        del early
        tracemalloc.start()  # hooks over ours
        traced = make(1 << 20)
        del late, traced
        tracemalloc.stop()
        print(float(make(1 << 20).sum()))
        """
    )
    assert out == str(float(1 << 20))
