"""``sparsediff._jit.kernel``: a cache hit loads without Numba's context refresh, and the
kernel, later compilations and the opt-out still behave.

Each check runs in a fresh process (the refresh happens once per process) on a private Numba
cache: the first process compiles ``walk`` and fills it, the next ones load it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys
import numpy as np
from sparsediff.coloring.graphs import as_structure, bipartite, degrees
import scipy.sparse as sp

P = sp.random(60, 40, density=0.1, format="csr", random_state=3)
g = bipartite(as_structure(P))
deg = degrees(g)  # the first kernel of the process: compiled, or loaded from the cache
B = (P.T @ P).tocsr().astype(bool)
B.setdiag(False)
B.eliminate_zeros()
expected = np.diff(B.indptr)
refreshed = "numba.np.npyimpl" in sys.modules  # imported by Numba's context refresh

import numba

@numba.njit
def later(a):  # a compilation after the fast load: refreshes the contexts itself
    out = np.empty(a.size)
    for i in range(a.size):
        out[i] = np.sqrt(a[i]) + a[:i].sum()
    return out

a = np.arange(5.0)
ref = np.array([np.sqrt(a[i]) + a[:i].sum() for i in range(a.size)])
print("RESULT " + json.dumps({
    "degrees_ok": bool(np.array_equal(deg, expected)),
    "refreshed": refreshed,
    "later_ok": bool(np.allclose(later(a), ref)),
}))
"""


def _child(cache: Path, **env) -> dict:
    full = dict(os.environ)
    full["NUMBA_CACHE_DIR"] = str(cache)
    full["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
    full.update(env)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD], env=full, capture_output=True, text=True, timeout=300
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    pytest.fail(f"child failed (rc {proc.returncode}): {proc.stderr[-2000:]}")


def test_cache_hit_loads_without_refresh(tmp_path):
    first = _child(tmp_path)  # compiles walk: the refresh is part of compiling
    assert first == {"degrees_ok": True, "refreshed": True, "later_ok": True}
    warm = _child(tmp_path)
    assert warm == {"degrees_ok": True, "refreshed": False, "later_ok": True}


def test_opt_out_keeps_numbas_loader(tmp_path):
    _child(tmp_path)
    plain = _child(tmp_path, SPARSEDIFF_NUMBA_FAST_LOAD="0")
    assert plain == {"degrees_ok": True, "refreshed": True, "later_ok": True}


def test_fast_load_leaves_uncached_dispatchers_alone():
    import numba

    from sparsediff._jit import fast_load

    d = numba.njit(lambda x: x + 1)
    before = d._cache.load_overload
    assert fast_load(d) is d and d._cache.load_overload == before
    assert d(1) == 2
