"""The JAX backend's fast paths: same values as the C backend, BCSR round trips, the JAX function.

Checks (all on CPU, small sizes):

* the JAX result equals the C backend's (``CVM``) on the catalogue subset, structure exactly,
  values to rounding, and both equal the analytic derivative;
* the returned ``BCSR`` round-trips: ``(data, indices, indptr)`` → SciPy CSR → ``BCSR`` → dense,
  and ``J @ v`` in JAX equals SciPy's;
* :func:`sparsediff.backends.jax_function.jax_callable` gives the same values as the PyTensor
  function, works under ``jax.jit``/``vmap``, and refuses what it cannot represent;
* loading the JAX backend keeps XLA's large buffers in the heap and gives threads started
  afterwards no arena of their own (:mod:`sparsediff.backends.jax_memory`), and
  ``SPARSEDIFF_JAX_MALLOC=0`` leaves the allocator alone.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

jax = pytest.importorskip("jax")

import pytensor  # noqa: E402
import pytensor.tensor as pt  # noqa: E402

import sparsediff as sd  # noqa: E402
from sparsediff import problems  # noqa: E402
from sparsediff.backends.jax_function import jax_callable, leading_axis_shardings  # noqa: E402

pytestmark = pytest.mark.jax

CASES = [
    ("fd1d", 200, "auto"),
    ("bratu2d", 400, "auto"),
    ("brusselator2d", 200, "auto"),
    ("energy2d", 400, "star"),
    ("energy2d", 400, "acyclic"),
]


def _compiled(family, n, kind, mode):
    p = problems.from_size(family, n)
    if p.kind == "hessian":
        J = sd.hessian_plan(p.expression, p.x, kind=kind).build()
    else:
        J = sd.jacobian_plan(p.expression, p.x).build()
    return p, pytensor.function([p.x, *p.params], J, mode=mode)


def _csr(out):
    return sp.csr_array(
        (np.asarray(out.data), np.asarray(out.indices), np.asarray(out.indptr)),
        shape=tuple(out.shape),
    )


@pytest.mark.parametrize(("family", "n", "kind"), CASES)
def test_jax_equals_c_backend_and_analytic(family, n, kind):
    p, f_jax = _compiled(family, n, kind, "JAX")
    _, f_c = _compiled(family, n, kind, "CVM")
    rng = np.random.default_rng(3)
    x = p.x0 + rng.uniform(0.0, 0.1, p.n)
    Jj = f_jax(x, *p.param_values)
    Jc = sp.csr_array(f_c(x, *p.param_values))
    assert isinstance(Jj, jax.experimental.sparse.BCSR)
    got = _csr(Jj)
    np.testing.assert_array_equal(got.indptr, Jc.indptr)
    np.testing.assert_array_equal(got.indices, Jc.indices)
    np.testing.assert_allclose(got.data, Jc.data, rtol=1e-12, atol=1e-12)
    expected = p.jacobian(x)
    assert abs(got - expected).max() < 1e-9


def test_bcsr_round_trip_and_products():
    import jax.experimental.sparse as jsp
    import jax.numpy as jnp

    p, f = _compiled("brusselator2d", 200, "auto", "JAX")
    x = p.x0 + 0.05
    J = f(x)
    A = _csr(J)
    back = jsp.BCSR(
        (jnp.asarray(A.data), jnp.asarray(A.indices), jnp.asarray(A.indptr)), shape=A.shape
    )
    np.testing.assert_array_equal(np.asarray(back.todense()), A.toarray())
    np.testing.assert_array_equal(np.asarray(J.todense()), A.toarray())
    np.testing.assert_array_equal(np.asarray(J.to_bcoo().todense()), A.toarray())
    v = np.random.default_rng(0).standard_normal(A.shape[1])
    np.testing.assert_allclose(np.asarray(J @ jnp.asarray(v)), A @ v, rtol=1e-12, atol=1e-12)
    # BCSR has no transpose in JAX: go through BCOO
    np.testing.assert_allclose(
        np.asarray(J.to_bcoo().T @ jnp.asarray(v)), A.T @ v, rtol=1e-12, atol=1e-12
    )


def test_jax_callable_matches_and_composes():
    import jax.numpy as jnp

    p, f = _compiled("bratu2d", 400, "auto", "JAX")
    g = jax_callable(f)
    x = p.x0 + 0.01
    J1, J2 = f(x), g(jnp.asarray(x))
    np.testing.assert_array_equal(np.asarray(J1.data), np.asarray(J2.data))
    np.testing.assert_array_equal(np.asarray(J1.indices), np.asarray(J2.indices))
    # it is a JAX function: vmap over a batch of points gives one Jacobian per point
    xs = jnp.stack([jnp.asarray(x), jnp.asarray(x) + 0.02])
    data = jax.vmap(lambda y: g(y).data)(xs)
    np.testing.assert_allclose(np.asarray(data[1]), _csr(f(x + 0.02)).data, rtol=1e-13)
    # a list of outputs comes back as a tuple, in order
    h = jax_callable(
        pytensor.function([p.x], [p.expression, sd.jacobian(p.expression, p.x)], mode="JAX")
    )
    r, J3 = h(jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(r), p.residual_numpy(x), rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(np.asarray(J3.data), np.asarray(J1.data))


def test_jax_callable_refuses_other_functions():
    x = pt.vector("x", shape=(3,))
    with pytest.raises(TypeError, match="mode='JAX'"):
        jax_callable(pytensor.function([x], 2 * x, mode="FAST_COMPILE"))
    s = pytensor.shared(np.ones(3), name="s")
    f = pytensor.function([x], x * s, mode="JAX")
    with pytest.raises(NotImplementedError, match="shared"):
        jax_callable(f)


def test_leading_axis_shardings_splits_divisible_axes_only():
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    mesh = Mesh(np.array(jax.devices()[:1]), ("d",))
    rows = NamedSharding(mesh, PartitionSpec("d"))
    shapes = {"a": jax.ShapeDtypeStruct((4,), np.float64), "s": jax.ShapeDtypeStruct((), np.int32)}
    out = leading_axis_shardings(shapes, rows)
    assert out["a"].spec == PartitionSpec("d")
    assert out["s"].spec == PartitionSpec()
    with pytest.raises(ValueError, match="axis 0"):
        leading_axis_shardings(shapes, NamedSharding(mesh, PartitionSpec()))
    with pytest.raises(TypeError, match="NamedSharding"):
        leading_axis_shardings(shapes, jax.devices()[0])


def _child_flag(env_value):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2] / "src")
    if env_value is None:
        env.pop("SPARSEDIFF_JAX_MALLOC", None)
    else:
        env["SPARSEDIFF_JAX_MALLOC"] = env_value
    # arenas: glibc's malloc_info lists one <heap nr=…> per arena; four threads that allocate
    # after the backend loaded add none when the policy holds, one each otherwise
    code = (
        "import ctypes, os, tempfile, threading, numpy as np\n"
        "import sparsediff, pytensor.link.jax.dispatch\n"
        "from sparsediff.backends.jax_memory import large_buffers_kept_in_heap\n"
        "libc = ctypes.CDLL('libc.so.6')\n"
        "libc.fopen.restype = ctypes.c_void_p\n"
        "libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]\n"
        "libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]\n"
        "libc.fclose.argtypes = [ctypes.c_void_p]\n"
        "def arenas():\n"
        "    path = tempfile.mktemp()\n"
        "    f = libc.fopen(path.encode(), b'w'); libc.malloc_info(0, f); libc.fclose(f)\n"
        "    text = open(path).read(); os.remove(path)\n"
        "    return text.count('<heap nr=')\n"
        "before = arenas()\n"
        "kept = []\n"
        "def work():\n"
        "    kept.append(np.ones(1 << 16))\n"
        "gate = threading.Barrier(4)\n"
        "def run():\n"
        "    gate.wait(); work()\n"
        "threads = [threading.Thread(target=run) for _ in range(4)]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]\n"
        "print(large_buffers_kept_in_heap(), arenas() - before)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    kept, new_arenas = out.stdout.strip().splitlines()[-1].split()
    return kept, int(new_arenas)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_loading_jax_backend_keeps_buffers_in_heap_unless_opted_out():
    assert _child_flag(None) == ("True", 0)
    kept, new_arenas = _child_flag("0")
    assert kept == "False"
    assert new_arenas > 0  # the check can fail: without the policy each thread gets an arena


def _random_schedule(seed):
    from sparsediff.decompression.substitution import Schedule

    rng = np.random.default_rng(seed)
    m, d, n_b = int(rng.integers(5, 60)), int(rng.integers(1, 20)), 50
    n_slots = int(rng.integers(3, 12))
    perm = rng.permutation(2 * m + d)
    out_a = np.concatenate([perm[0 : 2 * m : 2], perm[2 * m :]])
    out_b = np.concatenate([perm[1 : 2 * m : 2], perm[2 * m :]])
    # arbitrary reads and writes: slots read before (and written after) their first read, so
    # the conversion must follow the sequential order run by run
    # (slot 0 holds zero and is never written, slot 1 is written and never read: the invariant)
    reads = rng.integers(1, n_slots, m)
    reads[reads == 1] = 0
    read = np.concatenate([reads, np.zeros(d, dtype=np.int64)])
    write = np.concatenate([rng.integers(1, n_slots, m), np.ones(d, dtype=np.int64)])
    src = rng.integers(0, n_b, m + d)
    return Schedule(src, read, write, out_a, out_b, n_slots, 2 * m + d), n_b


@pytest.mark.parametrize("seed", range(5))
def test_jax_substitute_follows_the_sequential_loop_on_any_schedule(seed):
    """Schedules that are not leaf peelings take the path that carries the values too."""
    from sparsediff.decompression.substitution import substitute

    schedule, n_b = _random_schedule(seed)
    b = pt.vector("b", shape=(n_b,))
    out = substitute(b, schedule)
    value = np.random.default_rng(seed + 100).standard_normal(n_b)
    expected = pytensor.function([b], out, mode="FAST_COMPILE")(value)  # the Numba kernel
    got = np.asarray(pytensor.function([b], out, mode="JAX")(value))
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize(
    ("set_", "n", "idx"),
    [
        (False, 8, [5, 0, 7, 2]),  # increment, partial cover: gather form
        (False, 4, [3, 1, 0, 2]),  # increment, full cover
        (True, 6, [4, -1, 0, 2]),  # set, cover 2/3 ≥ MIN_COVER, a negative index
        (True, 10, [9, 3]),  # set, sparse: stays a scatter
        (False, 6, [1, 1, 4, 0]),  # repeated indices: stays a scatter (sums)
        (False, 256, np.arange(256, dtype=np.uint8)[::-1]),  # uint8: idx + n overflowed
    ],
)
def test_constant_index_scatter_equals_numpy(set_, n, idx):
    from pytensor.tensor.subtensor import AdvancedIncSubtensor1

    from sparsediff.backends.jax_scatter import _gather_form

    x = pt.vector("x", shape=(n,))
    y = pt.vector("y", shape=(len(idx),))
    index = idx if isinstance(idx, np.ndarray) else np.asarray(idx, dtype=np.int64)
    out = pt.set_subtensor(x[index], y) if set_ else pt.inc_subtensor(x[index], y)
    f = pytensor.function([x, y], out, mode="JAX")
    node = next(a for a in f.maker.fgraph.apply_nodes if isinstance(a.op, AdvancedIncSubtensor1))
    wide = index.astype(np.int64)
    unique = len(set(np.where(wide < 0, wide + n, wide).tolist())) == index.size
    expect_gather = unique and (not set_ or index.size >= 0.5 * n)
    assert (_gather_form(node.op, node) is not None) == expect_gather
    rng = np.random.default_rng(1)
    xv, yv = rng.standard_normal(n), rng.standard_normal(len(idx))
    expected = xv.copy()
    if set_:
        expected[index] = yv
    else:
        np.add.at(expected, index, yv)
    np.testing.assert_allclose(np.asarray(f(xv, yv)), expected, rtol=1e-15, atol=1e-15)


def _entry_result_shapes(g, x):
    """The shapes the compiled XLA program returns (its ENTRY computation's result)."""
    return [tuple(leaf.shape) for leaf in jax.tree_util.tree_leaves(jax.eval_shape(g, x))]


@pytest.mark.parametrize(
    ("family", "kind", "cls"), [("bratu2d", "auto", "BCSR"), ("energy2d", "star", "BCSR")]
)
def test_constant_structure_is_not_an_output_of_the_jitted_function(family, kind, cls):
    """indices/indptr are shared constants: the XLA program returns the data alone."""
    import jax.experimental.sparse as jsp
    import jax.numpy as jnp

    from sparsediff.backends.jax_structure import shared_structure_classes

    p, f = _compiled(family, 400, kind, "JAX")
    g = jax_callable(f)
    x = jnp.asarray(p.x0 + 0.01)
    J1, J2 = f(np.asarray(x)), g(x)
    assert isinstance(J1, shared_structure_classes()[0]) and isinstance(J1, jsp.BCSR)
    nnz = int(J1.data.shape[0])
    assert _entry_result_shapes(g, x) == [(nnz,)]
    assert len(jax.tree_util.tree_leaves(J1)) == 1
    hlo = g.lower(x).compile().as_text()
    entry = hlo[hlo.index("ENTRY") :].splitlines()[0]
    assert "s32" not in entry and "s64" not in entry, entry  # no index array returned
    # the same structure arrays in every result, and the values unchanged
    assert J1.indices is J2.indices and J1.indptr is J2.indptr
    np.testing.assert_array_equal(np.asarray(J1.data), np.asarray(J2.data))
    A = _csr(J1)
    np.testing.assert_allclose(A.toarray(), p.jacobian(np.asarray(x)).toarray(), atol=1e-10)
    # it goes into (and out of) other JAX functions like any BCSR
    v = jnp.asarray(np.random.default_rng(0).standard_normal(A.shape[1]))
    np.testing.assert_allclose(np.asarray(jax.jit(lambda J, v: J @ v)(J1, v)), A @ np.asarray(v))
    J3 = jax.jit(lambda J: J)(J1)
    assert J3.indices is J1.indices
    np.testing.assert_array_equal(np.asarray(J1.to_bcoo().todense()), A.toarray())


def test_csc_result_shares_its_coo_indices():
    """A CSC result is a BCOO whose constant (nnz, 2) indices stay out of the jitted function."""
    import jax.numpy as jnp

    from sparsediff.backends.jax_structure import shared_structure_classes

    x = pt.vector("x", shape=(30,))
    r = pt.concatenate([x[1:] * x[:-1], pt.exp(x[:1])])
    Jc = sd.jacobian_plan(r, x, format="csc").build()
    f = pytensor.function([x], Jc, mode="JAX")
    fc = pytensor.function([x], Jc, mode="CVM")
    xv = np.linspace(0.1, 1.0, 30)
    out = f(xv)
    assert isinstance(out, shared_structure_classes()[1])
    assert _entry_result_shapes(jax_callable(f), jnp.asarray(xv)) == [(int(out.data.shape[0]),)]
    np.testing.assert_allclose(np.asarray(out.todense()), fc(xv).toarray(), rtol=1e-14)


def _primitives(jaxpr) -> list[str]:
    """Every primitive of a jaxpr, nested jaxprs (jit, loops) included."""
    out = []
    for eqn in jaxpr.eqns:
        out.append(eqn.primitive.name)
        for v in eqn.params.values():
            for sub in v if isinstance(v, list | tuple) else [v]:
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    out.extend(_primitives(inner))
    return out


@pytest.mark.parametrize("family", ["bratu2d", "fd1d"])
def test_stencil_jacobians_compile_to_a_fill_and_one_scatter(family):
    """The decompression of the stencil problems with boundary rows on JAX: the varying entries
    computed on slices of x (no gather), then one scatter into the constant fill; values as
    the C backend. (Their rows have different lengths: no row-block form, see
    :mod:`sparsediff.backends.jax_blocks`.)

    Checked on the optimized XLA program too: one scatter, no gather, no copy, and at most
    five loop fusions (fill, scatter, the formulas, their indices; an extra one means XLA
    materializes something per call, e.g. a returned constant)."""
    import jax.numpy as jnp

    p, f = _compiled(family, 400, "auto", "JAX")
    _, fc = _compiled(family, 400, "auto", "CVM")
    g = jax_callable(f)
    x = p.x0 + np.random.default_rng(5).uniform(0.0, 0.1, p.n)
    prims = _primitives(jax.make_jaxpr(g)(jnp.asarray(x)).jaxpr)
    assert "gather" not in prims, prims
    assert prims.count("scatter") == 1, prims
    hlo = g.lower(jnp.asarray(x)).compile().as_text()
    entry = hlo[hlo.index("ENTRY") :]
    assert len(re.findall(r"\} scatter\(", hlo)) == 1, hlo
    assert not re.search(r"\} gather\(", hlo) and not re.search(r"\} copy\(", entry), entry
    assert entry.count("kind=kLoop") <= 5, entry
    got, expected = _csr(f(x)), sp.csr_array(fc(x))
    np.testing.assert_array_equal(got.indices, expected.indices)
    np.testing.assert_allclose(got.data, expected.data, rtol=1e-14, atol=1e-14)


def test_brusselator_jacobian_compiles_to_one_fusion():
    """Every row of the Brusselator's Jacobian has 6 entries: its decompression is the row-block
    form (:mod:`sparsediff.backends.jax_blocks`), and XLA fuses the formulas, the selects and
    the assembly into one loop: no scatter, no gather, no 1-D concatenation; values as C."""
    import jax.numpy as jnp

    p, f = _compiled("brusselator2d", 400, "auto", "JAX")
    _, fc = _compiled("brusselator2d", 400, "auto", "CVM")
    g = jax_callable(f)
    x = p.x0 + np.random.default_rng(5).uniform(0.0, 0.1, p.n)
    prims = _primitives(jax.make_jaxpr(g)(jnp.asarray(x)).jaxpr)
    assert "gather" not in prims and "scatter" not in prims, prims
    hlo = g.lower(jnp.asarray(x)).compile().as_text()
    entry = hlo[hlo.index("ENTRY") :]
    assert not re.search(r"\} (scatter|gather|copy)\(", hlo), hlo
    assert entry.count("kind=kLoop") == 1, entry
    assert not re.search(r"f64\[\d+\]\{0\} concatenate\(", hlo), hlo  # 1-D: a branch per value
    got, expected = _csr(f(x)), sp.csr_array(fc(x))
    np.testing.assert_array_equal(got.indptr, expected.indptr)
    np.testing.assert_array_equal(got.indices, expected.indices)
    np.testing.assert_allclose(got.data, expected.data, rtol=1e-14, atol=1e-14)


def test_vmap_of_a_shared_structure_result_is_a_batched_bcsr():
    import jax.experimental.sparse as jsp
    import jax.numpy as jnp

    p, f = _compiled("bratu2d", 100, "auto", "JAX")
    g = jax_callable(f)
    x = p.x0 + 0.01
    Js = jax.vmap(g)(jnp.stack([jnp.asarray(x), jnp.asarray(x) + 0.02]))
    assert isinstance(Js, jsp.BCSR) and Js.shape == (2, p.n, p.n) and Js.n_batch == 1
    dense = np.asarray(Js.todense())
    np.testing.assert_allclose(dense[1], _csr(f(x + 0.02)).toarray(), rtol=1e-13)


def test_bench_jax_layouts_write_the_same_data():
    """benchmarks/bench_jax.py --layouts times equivalent programs: they must be equivalent."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from benchmarks.bench_jax import layout_programs

    jax.config.update("jax_enable_x64", True)
    n = 50
    fns, data = layout_programs(n)
    x = jax.device_put(np.random.default_rng(1).uniform(0.0, 0.1, n))
    ref = sp.csr_array(problems.fd1d(n).jacobian(np.asarray(x)))
    assert len(data) == 5
    for k in data:
        np.testing.assert_allclose(np.asarray(fns[k](x)), ref.data, rtol=1e-15, err_msg=k)
