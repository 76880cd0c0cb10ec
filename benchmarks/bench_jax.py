"""The JAX backend, measured two ways, side by side in one process (interleaved medians).

    python -m benchmarks.bench_jax --sizes 100000,1000000            # heap on/off table
    python -m benchmarks.bench_jax --devices --sizes 100000          # 1 vs 2 host devices
    python -m benchmarks.bench_jax --breakdown --sizes 1000000       # where J's time goes
    python -m benchmarks.bench_jax --layouts --sizes 1000000         # fd1d's data, 7 ways
    python -m benchmarks.bench_jax --blocks --sizes 1000000          # row blocks vs scatter

*Heap* (default): every problem's compiled Jacobian (Hessian) and residual, the jitted functions
alone (:func:`sparsediff.backends.jax_function.jax_callable`, ``block_until_ready``), with
glibc's thresholds as sparsediff sets them (:mod:`sparsediff.backends.jax_memory`: XLA's large
buffers stay in the heap) and as glibc's defaults (each large buffer a fresh ``mmap``, faulted
in per call). The thresholds are switched with ``mallopt`` between calls, so both columns come
from the same process, the same compiled functions and the same load.

*Breakdown*: the jitted derivative, the jitted residual and, as the floor of any derivative,
a jitted function that only *writes* ``nnz`` doubles (``jnp.full(nnz, x[0])``), interleaved;
then a ``jax.profiler`` trace of the derivative, summed per XLA op (thread time, so ops split
over XLA's threads count once per thread): which fusions, gathers and scatters the time goes to.

*Layouts*: fd1d's Jacobian data (``3n - 2`` values: the varying diagonal ``d`` at every third
position, ones between) written by seven equivalent XLA programs, interleaved with the residual
and a plain fill: what sparsediff's graph compiles to (a fill and one scatter), a gather
(``where(hit, d[src], 1)``), ``lax.pad`` with interior padding, a gather with computed indices,
the ``(n, 3)`` array ``stack([d, 1, 1])`` flattened and sliced to ``3n - 2``, and the same
``(n, 3)`` array unsliced (``3n`` values: not the Jacobian, the floor of a rectangular layout).
Checked equal before timing.

*Blocks*: every problem's jitted derivative compiled twice, with the row-block form of the
decompression's scatter (:mod:`sparsediff.backends.jax_blocks`, the default) and without it
(``MAX_RUNS = 0``: the gather form or XLA's scatter, as before), checked equal, timed
interleaved with the jitted residual.

*Devices*: in a child process with ``XLA_FLAGS=--xla_force_host_platform_device_count=2``, the
same jitted derivative with ``x`` on one device and with ``x`` sharded over both
(``NamedSharding``, output data split too), checked equal and timed interleaved. On a 2-core
machine this shows correctness and the partitioning overhead, not a speed-up.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import benchmarks.threads  # noqa: F401  (one BLAS thread, set before NumPy loads)

# isort: split
import numpy as np

CASES = [("bratu2d", "auto"), ("brusselator2d", "auto"), ("energy2d", "star"), ("fd1d", "auto")]
_GLIBC_DEFAULT = 128 * 1024  # glibc's initial mmap and trim thresholds


def _mallopt(value: int) -> None:
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(-3, value)  # M_MMAP_THRESHOLD
    libc.mallopt(-1, value)  # M_TRIM_THRESHOLD


def _graph(family: str, kind: str, n: int):
    """The problem and its sparse derivative's graph."""
    import sparsediff as sd
    from sparsediff import problems

    p = problems.from_size(family, n)
    if p.kind == "hessian":
        return p, sd.hessian_plan(p.expression, p.x, kind=kind).build()
    return p, sd.jacobian_plan(p.expression, p.x).build()


def _build(family: str, kind: str, n: int, graph=None):
    import pytensor

    p, D = graph or _graph(family, kind, n)
    fD = pytensor.function([p.x], D, mode="JAX")
    fr = pytensor.function([p.x], p.expression, mode="JAX")
    x = p.x0 + np.random.default_rng(0).uniform(0.0, 0.1, p.n)
    return p, fD, fr, x


def _interleaved(fns: dict, repeats: int, block: int = 4) -> dict:
    """Rounds of: for each entry, ``setup()``, one untimed call, ``block`` timed calls.

    The untimed call lets the allocator settle after a switch of thresholds (a trimmed heap
    grows back once); medians over all timed calls.
    """
    samples = {k: [] for k in fns}
    for _ in range(max(1, repeats // block)):
        for name, (setup, fn) in fns.items():
            setup()
            fn()
            for _ in range(block):
                t = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - t)
    return {k: 1e3 * statistics.median(v) for k, v in samples.items()}


def _cases(problems: str | None) -> list[tuple[str, str]]:
    if not problems:
        return CASES
    wanted = problems.split(",")
    return [c for c in CASES if c[0] in wanted]


def heap_table(sizes: list[int], repeats: int, problems: str | None = None) -> str:
    import jax

    from sparsediff.backends.jax_function import jax_callable
    from sparsediff.backends.jax_memory import THRESHOLD, large_buffers_kept_in_heap

    lines = [
        "| problem | n | J ms, heap | r ms, heap | J/r heap | J ms, mmap | r ms, mmap | J/r mmap |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for family, kind in _cases(problems):
        for n in sizes:
            p, fD, fr, x_host = _build(family, kind, n)
            assert large_buffers_kept_in_heap()
            gD, gr = jax_callable(fD), jax_callable(fr)
            x = jax.device_put(x_host)
            for g in (gD, gr):
                jax.block_until_ready(g(x))
            heap, mmap = (lambda: _mallopt(THRESHOLD)), (lambda: _mallopt(_GLIBC_DEFAULT))
            t = _interleaved(
                {
                    "J heap": (heap, lambda g=gD, x=x: jax.block_until_ready(g(x))),
                    "r heap": (heap, lambda g=gr, x=x: jax.block_until_ready(g(x))),
                    "J mmap": (mmap, lambda g=gD, x=x: jax.block_until_ready(g(x))),
                    "r mmap": (mmap, lambda g=gr, x=x: jax.block_until_ready(g(x))),
                },
                repeats,
            )
            _mallopt(THRESHOLD)
            name = family if kind == "auto" else f"{family} ({kind})"
            lines.append(
                f"| {name} | {p.n} | {t['J heap']:.3g} | {t['r heap']:.3g} | "
                f"{t['J heap'] / t['r heap']:.2f} | {t['J mmap']:.3g} | {t['r mmap']:.3g} | "
                f"{t['J mmap'] / t['r mmap']:.2f} |"
            )
            print(lines[-1], file=sys.stderr, flush=True)
    return "\n".join(lines)


def _op_times(g, x, calls: int) -> list[tuple[str, float]]:
    """Per-XLA-op thread time (ms per call) in ``calls`` calls of ``g(x)``, from a profile."""
    import collections
    import glob
    import tempfile

    import jax

    where = tempfile.mkdtemp(prefix="bench_jax_profile_")
    jax.profiler.start_trace(where)
    for _ in range(calls):
        jax.block_until_ready(g(x))
    jax.profiler.stop_trace()
    (path,) = glob.glob(os.path.join(where, "**", "*.xplane.pb"), recursive=True)
    total: dict[str, float] = collections.defaultdict(float)
    for plane in jax.profiler.ProfileData.from_file(path).planes:
        for line in plane.lines:
            if line.name == "python":
                continue
            for ev in line.events:
                if ev.name.startswith("end:") or "Execute" in ev.name or "Threadpool" in ev.name:
                    continue
                total[ev.name] += ev.duration_ns / 1e6 / calls
    return sorted(total.items(), key=lambda kv: -kv[1])


def breakdown_table(sizes: list[int], repeats: int, problems: str | None = None) -> str:
    import jax
    import jax.numpy as jnp

    from sparsediff.backends.jax_function import jax_callable

    lines = [
        "| problem | n | nnz | r ms | J ms | write nnz ms | J/r | write/r "
        "| J's XLA ops, ms per call |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for family, kind in _cases(problems):
        for n in sizes:
            p, fD, fr, x_host = _build(family, kind, n)
            gD, gr = jax_callable(fD), jax_callable(fr)
            x = jax.device_put(x_host)
            nnz = int(jax.eval_shape(gD, x).data.shape[0])
            fill = jax.jit(lambda x, nnz=nnz: jnp.full(nnz, x[0]))
            for g in (gD, gr, fill):
                jax.block_until_ready(g(x))
            nothing = lambda: None  # noqa: E731
            t = _interleaved(
                {
                    k: (nothing, lambda g=g, x=x: jax.block_until_ready(g(x)))
                    for k, g in (("J", gD), ("r", gr), ("w", fill))
                },
                repeats,
            )
            ops = _op_times(gD, x, max(8, repeats // 2))
            top = ", ".join(f"{name} {ms:.2g}" for name, ms in ops[:4])
            name = family if kind == "auto" else f"{family} ({kind})"
            lines.append(
                f"| {name} | {p.n} | {nnz} | {t['r']:.3g} | {t['J']:.3g} | {t['w']:.3g} | "
                f"{t['J'] / t['r']:.2f} | {t['w'] / t['r']:.2f} | {top} |"
            )
            print(lines[-1], file=sys.stderr, flush=True)
    return "\n".join(lines)


def layout_programs(n: int) -> tuple[dict, list[str]]:
    """fd1d's residual, a fill, and its Jacobian data written by equivalent XLA programs.

    Returns ``({name: jitted function of x}, names of those that give the Jacobian data)``.
    """
    import jax
    import jax.numpy as jnp
    from jax import lax

    h2 = 1.0 / (n + 1) ** 2
    nnz = 3 * n - 2
    at = 3 * np.arange(n)  # the diagonal's positions in the CSR data
    src = np.zeros(nnz, np.int32)
    src[at] = np.arange(n)
    hit = np.zeros(nnz, bool)
    hit[at] = True

    def diag(x):
        return -2.0 - h2 * (jnp.exp(x) + 3.0 * x * x)

    def residual(x):
        p = jnp.concatenate([jnp.zeros(1), x, jnp.zeros(1)])
        return p[:-2] - 2 * x + p[2:] - h2 * (jnp.exp(x) + x**3)

    def rows(x):  # (n, 3): d, 1, 1 in each row
        return jnp.where(jnp.arange(3)[None, :] == 0, diag(x)[:, None], 1.0)

    def computed_gather(x):
        e = lax.iota(np.int32, nnz)
        return jnp.where(e % 3 == 0, diag(x).at[e // 3].get(mode="promise_in_bounds"), 1.0)

    fns = {
        "residual": residual,
        "fill nnz": lambda x: jnp.full(nnz, x[0]),
        "fill + scatter": lambda x: jnp.full(nnz, 1.0).at[at].set(diag(x)),
        "gather": lambda x: jnp.where(hit, diag(x).at[src].get(mode="promise_in_bounds"), 1.0),
        "interior pad": lambda x: lax.pad(diag(x), 1.0, [(0, 0, 2)]),
        "computed gather": computed_gather,
        "(n, 3) sliced": lambda x: rows(x).ravel()[:nnz],
        "(n, 3), 3n values": rows,
    }
    data = [k for k in fns if k not in ("residual", "fill nnz", "(n, 3), 3n values")]
    return {k: jax.jit(f) for k, f in fns.items()}, data


def layouts_table(sizes: list[int], repeats: int) -> str:
    import jax

    lines = ["| n | program | ms | / residual | XLA fusions |", "|---:|---|---:|---:|---:|"]
    for n in sizes:
        fns, data = layout_programs(n)
        x = jax.device_put(np.random.default_rng(0).uniform(0.0, 0.1, n))
        ref = np.asarray(fns["fill + scatter"](x))
        for k in data:
            if not np.array_equal(np.asarray(fns[k](x)), ref):
                raise AssertionError(f"layout {k!r} differs from fill + scatter")
        nothing = lambda: None  # noqa: E731
        t = _interleaved(
            {k: (nothing, lambda g=g, x=x: jax.block_until_ready(g(x))) for k, g in fns.items()},
            repeats,
        )
        for k, g in fns.items():
            fusions = g.lower(x).compile().as_text().count("kind=kLoop")
            lines.append(f"| {n} | {k} | {t[k]:.3g} | {t[k] / t['residual']:.2f} | {fusions} |")
            print(lines[-1], file=sys.stderr, flush=True)
    return "\n".join(lines)


def blocks_table(sizes: list[int], repeats: int, problems: str | None = None) -> str:
    import jax
    import pytensor

    import sparsediff.backends.jax_blocks as jax_blocks
    from sparsediff.backends.jax_function import jax_callable

    lines = [
        "| problem | n | r ms | J ms, blocks | J ms, scatter | J/r blocks | J/r scatter "
        "| block form used |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    default = jax_blocks.MAX_RUNS
    for family, kind in _cases(problems):
        for n in sizes:
            graph = _graph(family, kind, n)
            p, f_blocks, fr, x_host = _build(family, kind, n, graph)
            x = jax.device_put(x_host)
            try:
                jax_blocks.MAX_RUNS = 0  # the conversion runs when the function is compiled
                g_scatter = jax_callable(pytensor.function([p.x], graph[1], mode="JAX"))
                jax.block_until_ready(g_scatter(x))
            finally:
                jax_blocks.MAX_RUNS = default
            g_blocks, gr = jax_callable(f_blocks), jax_callable(fr)
            for g in (g_blocks, gr):
                jax.block_until_ready(g(x))
            a, b = np.asarray(g_blocks(x).data), np.asarray(g_scatter(x).data)
            if not np.array_equal(a, b):
                raise AssertionError(f"{family} n={n}: block form and scatter differ")
            used = "scatter(" not in g_blocks.lower(x).compile().as_text()
            nothing = lambda: None  # noqa: E731
            t = _interleaved(
                {
                    k: (nothing, lambda g=g, x=x: jax.block_until_ready(g(x)))
                    for k, g in (("r", gr), ("Jb", g_blocks), ("Js", g_scatter))
                },
                repeats,
            )
            name = family if kind == "auto" else f"{family} ({kind})"
            lines.append(
                f"| {name} | {p.n} | {t['r']:.3g} | {t['Jb']:.3g} | {t['Js']:.3g} | "
                f"{t['Jb'] / t['r']:.2f} | {t['Js'] / t['r']:.2f} | {'yes' if used else 'no'} |"
            )
            print(lines[-1], file=sys.stderr, flush=True)
    return "\n".join(lines)


def devices_table(sizes: list[int], repeats: int) -> str:
    import jax
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    from sparsediff.backends.jax_function import jax_callable, leading_axis_shardings

    devices = jax.devices()
    if len(devices) < 2:
        raise SystemExit("needs 2 devices (run with --devices, which starts the child itself)")
    mesh = Mesh(np.array(devices[:2]), ("d",))
    rows = NamedSharding(mesh, P("d"))
    lines = [
        "| problem | n | J ms, 1 device | J ms, 2 devices (sharded) | ratio | equal | data split |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for family, kind in CASES:
        for n in sizes:
            p, fD, _fr, x_host = _build(family, kind, n)
            g1 = jax_callable(fD)
            x1 = jax.device_put(x_host, devices[0])
            xs = jax.device_put(x_host, rows)
            g2 = jax_callable(
                fD, out_shardings=leading_axis_shardings(jax.eval_shape(g1, xs), rows)
            )
            J1, J2 = jax.block_until_ready(g1(x1)), jax.block_until_ready(g2(xs))
            equal = np.array_equal(np.asarray(J1.data), np.asarray(J2.data)) and np.array_equal(
                np.asarray(J1.indices), np.asarray(J2.indices)
            )
            split = len(J2.data.sharding.device_set) == 2 and tuple(J2.data.sharding.spec) == ("d",)
            nothing = lambda: None  # noqa: E731
            t = _interleaved(
                {
                    "1": (nothing, lambda g=g1, x=x1: jax.block_until_ready(g(x))),
                    "2": (nothing, lambda g=g2, x=xs: jax.block_until_ready(g(x))),
                },
                repeats,
            )
            name = family if kind == "auto" else f"{family} ({kind})"
            lines.append(
                f"| {name} | {p.n} | {t['1']:.3g} | {t['2']:.3g} | {t['2'] / t['1']:.2f} | "
                f"{'yes' if equal else 'NO'} | {'yes' if split else 'NO'} |"
            )
            print(lines[-1], file=sys.stderr, flush=True)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="100000")
    ap.add_argument("--repeats", type=int, default=31)
    ap.add_argument("--devices", action="store_true", help="the 1-vs-2 host device table")
    ap.add_argument("--breakdown", action="store_true", help="J vs r vs writing nnz doubles")
    ap.add_argument("--layouts", action="store_true", help="fd1d's data written 7 ways")
    ap.add_argument("--blocks", action="store_true", help="row-block form vs scatter")
    ap.add_argument("--problems", default=None, help="comma-separated subset of the problems")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    if args.devices and not args.child:
        env = dict(os.environ)
        flags = env.get("XLA_FLAGS", "")
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count=2 {flags}".strip()
        cmd = [sys.executable, "-m", "benchmarks.bench_jax", "--devices", "--child"]
        cmd += ["--sizes", args.sizes, "--repeats", str(args.repeats)]
        return subprocess.call(cmd, env=env, cwd=Path(__file__).resolve().parent.parent)
    import jax

    jax.config.update("jax_enable_x64", True)
    if args.devices:
        print(devices_table(sizes, args.repeats))
    elif args.layouts:
        print(layouts_table(sizes, args.repeats))
    elif args.blocks:
        print(blocks_table(sizes, args.repeats, args.problems))
    elif args.breakdown:
        print(breakdown_table(sizes, args.repeats, args.problems))
    else:
        print(heap_table(sizes, args.repeats, args.problems))
    return 0


if __name__ == "__main__":
    sys.exit(main())
