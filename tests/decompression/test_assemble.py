"""The compiled sparse result: a plain scipy matrix, validated once, independent per call."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
import scipy.sparse as sp
from pytensor.compile.mode import Mode
from pytensor.link.vm import VMLinker
from pytensor.sparse.basic import CSM

from sparsediff.decompression import SharedStructureCSM, assemble
from sparsediff.decompression.assemble import csr_attributes, matrix_from_attributes
from sparsediff.decompression.positions import layout

ROOT = Path(__file__).resolve().parents[2]
MODES = ["FAST_RUN", pytest.param("NUMBA", marks=pytest.mark.numba)]


def _pattern(m: int, n: int, seed: int) -> sp.csr_array:
    rng = np.random.default_rng(seed)
    dense = rng.random((m, n)) < 0.3
    dense[np.arange(min(m, n)), np.arange(min(m, n))] = True  # no empty pattern
    return sp.csr_array(dense)


def _compiled(P, fmt: str, mode: str):
    lay = layout(P, fmt)
    d = pt.vector("d", shape=(lay.nnz,))
    fn = pytensor.function([d], assemble(pt.exp(d), lay), mode=mode)
    return lay, fn


def _expected(lay, values) -> np.ndarray:
    out = np.zeros(lay.shape)
    out[lay.rows, lay.cols] = values
    return out


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_result_is_the_matrix_scipy_constructor_makes(fmt, mode):
    P = _pattern(7, 5, seed=1)
    lay, fn = _compiled(P, fmt, mode)
    if mode == "FAST_RUN":
        assert any(isinstance(n.op, SharedStructureCSM) for n in fn.maker.fgraph.apply_nodes)
    d = np.linspace(-1.0, 1.0, lay.nnz)
    got = fn(d)
    cls = sp.csr_matrix if fmt == "csr" else sp.csc_matrix
    ref = cls((np.exp(d), lay.indices, lay.indptr), shape=lay.shape)
    assert type(got) is cls and got.shape == lay.shape and got.dtype == np.float64
    assert set(vars(ref)) <= set(vars(got))  # every attribute the constructor sets
    assert got.has_sorted_indices == ref.has_sorted_indices
    assert got.has_canonical_format == ref.has_canonical_format
    got.check_format(full_check=True)
    np.testing.assert_array_equal(got.indices, ref.indices)
    np.testing.assert_array_equal(got.indptr, ref.indptr)
    np.testing.assert_allclose(got.toarray(), _expected(lay, np.exp(d)))
    assert not got.indices.flags.writeable and not got.indptr.flags.writeable
    np.testing.assert_allclose((got @ np.ones(lay.shape[1])), _expected(lay, np.exp(d)).sum(1))


@pytest.mark.parametrize("mode", [*MODES, "no_gc"])
def test_consecutive_results_are_independent(mode):
    """Each call's data is a fresh array, also where the VM keeps its intermediate storage
    between calls (``allow_gc=False``)."""
    if mode == "no_gc":
        mode = Mode(linker=VMLinker(allow_gc=False, use_cloop=True), optimizer="fast_run")
    P = _pattern(6, 6, seed=2)
    lay, fn = _compiled(P, "csr", mode)
    d1, d2 = np.linspace(0.0, 1.0, lay.nnz), np.linspace(-2.0, -1.0, lay.nnz)
    a = fn(d1)
    b = fn(d2)
    assert not np.shares_memory(a.data, b.data)
    np.testing.assert_allclose(a.toarray(), _expected(lay, np.exp(d1)))  # not overwritten
    np.testing.assert_allclose(b.toarray(), _expected(lay, np.exp(d2)))
    a.data[:] = 0.0  # the caller's own values
    np.testing.assert_allclose(fn(d2).toarray(), _expected(lay, np.exp(d2)))
    with pytest.raises(ValueError, match="read-only"):
        b.indices[0] = 1


@pytest.mark.numba
def test_each_structure_gets_its_own_numba_result():
    """Two structures of one Op (same props) in one process: each result has its own shape
    and structure (PyTensor caches Numba functions per Op key; the key includes them)."""
    P1, P2, P3 = _pattern(5, 4, seed=3), _pattern(9, 8, seed=4), _pattern(4, 5, seed=3)
    for P in (P1, P2, P3, P1):
        lay, fn = _compiled(P, "csr", "NUMBA")
        d = np.linspace(0.5, 1.5, lay.nnz)
        got = fn(d)
        assert got.shape == lay.shape
        np.testing.assert_allclose(got.toarray(), _expected(lay, np.exp(d)))


def test_structure_is_validated_once_and_checked_per_call():
    P = _pattern(4, 3, seed=5)
    lay = layout(P, "csr")
    cls, attributes, nnz = csr_attributes("csr", lay.indices, lay.indptr, lay.shape)
    assert cls is sp.csr_matrix and nnz == lay.nnz
    m = matrix_from_attributes(cls, attributes, nnz, np.ones(nnz))
    np.testing.assert_array_equal(m.toarray(), P.toarray())
    with pytest.raises(ValueError, match="entries"):
        matrix_from_attributes(cls, attributes, nnz, np.ones(nnz + 1))
    with pytest.raises(ValueError):  # an index past the last column
        csr_attributes("csr", np.array([0, 3], dtype=np.int32), np.array([0, 1, 2]), (2, 3))
    with pytest.raises(ValueError, match="number of indices"):  # trailing entries
        csr_attributes("csr", np.array([0, 1], dtype=np.int32), np.array([0, 1, 1]), (2, 3))


def test_an_invalid_constant_structure_keeps_pytensor_csm():
    indices = np.array([0, 1, 2], dtype=np.int32)
    indptr = np.array([0, 1, 2], dtype=np.int32)  # indptr[-1] = 2 < 3 indices
    for a in (indices, indptr):
        a.setflags(write=False)
    d = pt.vector("d", shape=(3,))
    out = CSM("csr")(d, pt.constant(indices), pt.constant(indptr), pt.constant([2, 3]))
    fn = pytensor.function([d], out, mode="FAST_RUN")
    assert not any(isinstance(n.op, SharedStructureCSM) for n in fn.maker.fgraph.apply_nodes)


_CACHED_SCRIPT = """
import numpy as np, pytensor, pytensor.tensor as pt, pytensor.sparse as ps, scipy.sparse as sp
from sparsediff.decompression import assemble
from sparsediff.decompression.positions import layout
for m, n in ((5, 4), (8, 9)):
    P = sp.csr_array(np.eye(m, n, dtype=bool) | np.eye(m, n, 1, dtype=bool))
    lay = layout(P, "csr")
    d = pt.vector("d", shape=(lay.nnz,))
    J = assemble(2.0 * d, lay)
    got = pytensor.function([d], J, mode="NUMBA")(np.ones(lay.nnz))
    assert got.shape == (m, n), got.shape
    np.testing.assert_array_equal(got.toarray(), 2.0 * P.toarray())
    got, Jv = pytensor.function([d], [J, ps.structured_dot(J, pt.ones((n, 1)))], mode="NUMBA")(
        np.ones(lay.nnz)
    )
    np.testing.assert_array_equal(Jv[:, 0], 2.0 * P.toarray().sum(1))
print("ok")
"""


@pytest.mark.numba
def test_a_result_the_graph_also_reads_keeps_pytensors_numba_csm():
    import pytensor.sparse as ps

    from sparsediff.backends.numba_csm import ReturnedSharedStructureCSM

    P = _pattern(6, 5, seed=6)
    lay = layout(P, "csr")
    d = pt.vector("d", shape=(lay.nnz,))
    J = assemble(pt.exp(d), lay)
    alone = pytensor.function([d], J, mode="NUMBA")
    both = pytensor.function([d], [J, ps.structured_dot(J, pt.ones((5, 1)))], mode="NUMBA")
    twice = pytensor.function([d], [J, J], mode="NUMBA")

    def ops(fn):
        return {type(n.op) for n in fn.maker.fgraph.apply_nodes}

    assert ReturnedSharedStructureCSM in ops(alone)
    assert ReturnedSharedStructureCSM not in ops(both) | ops(twice)
    assert SharedStructureCSM in ops(both)
    dv = np.linspace(0.0, 1.0, lay.nnz)
    expected = _expected(lay, np.exp(dv))
    got, Jv = both(dv)
    np.testing.assert_allclose(got.toarray(), expected)
    np.testing.assert_allclose(Jv[:, 0], expected.sum(1))
    a, b = twice(dv)
    assert not np.shares_memory(a.data, b.data)
    np.testing.assert_allclose(b.toarray(), expected)


@pytest.mark.numba
def test_numba_result_from_a_fresh_and_a_reused_disk_cache(tmp_path):
    """The boxing is compiled into PyTensor's and Numba's disk caches: a process that loads
    the cached graphs gets the same matrices as the one that compiled them."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.timing import isolated_cache_env

    env = isolated_cache_env(tmp_path, ROOT)
    env.setdefault("OMP_NUM_THREADS", "1")
    for _ in range(2):  # compile and store, then load
        proc = subprocess.run(
            [sys.executable, "-c", _CACHED_SCRIPT],
            capture_output=True,
            text=True,
            env=env,
            cwd=os.fspath(ROOT),
            timeout=600,
        )
        assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-3000:]
    # A cache index lists the argument types of a compiled function: sparsediff's Numba types
    # are never an argument (only returned, boxed), so no index, of PyTensor's Ops' functions
    # (shared by every program) or of sparsediff's, refers to sparsediff's classes.
    indexes = list(tmp_path.rglob("*.nbi"))
    assert any("spmdv" in p.name for p in indexes)  # structured_dot(J, v) was cached
    assert not [p.name for p in indexes if b"Shared" in p.read_bytes()]
