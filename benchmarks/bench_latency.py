"""Time to the first Jacobian (issue #16): plan, build, compile, first call, then per call.

Phases are reported as CPU seconds of the measuring process, wall seconds in parentheses (on a
shared machine wall time mostly measures the load).

The model is a New Keynesian DSGE system in perfect foresight (``tests.users_graphs.
nk_perfect_foresight``: 23 equations of exp / log / power terms per period, ``T`` periods
stacked by shifts of one vector, ``n = 23·T``), the shape of graph gEconpy builds. Every
measurement runs in a fresh subprocess: Numba and PyTensor cache compiled code in the process
and on disk, so each process gets its own cache directories (PyTensor's ``base_compiledir``,
which holds its Numba cache, and ``NUMBA_CACHE_DIR`` for sparsediff's own kernels). A *fresh*
row starts from empty directories (a first run after installing); a *warm* row is a second
process on the directories the fresh one filled.

Rows: ``sparsediff`` (``sd.jacobian_plan`` → ``build`` → ``pytensor.function`` → first call)
and dense ``pytensor.gradient.jacobian`` (``vectorize=True``; its compilation and first call
take minutes at T = 100, so it runs at ``--dense-T`` and under ``--timeout``), each on the
backends asked for (``numba``: PyTensor's default; ``c``: ``mode="CVM"``). With ``--floors``,
also the residual ``F`` alone and one plain JVP (``pytensor.gradient.pushforward`` with the
Ops' ``R_op``), compiled and called the same way: what compiling a derivative of ``F`` costs
at least.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 PYTHONPATH=src:. python benchmarks/bench_latency.py \\
        --T 100 --dense-T 10 --backends numba,c
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(ROOT))

from benchmarks.timing import isolated_cache_env  # noqa: E402

PHASES = ("plan", "build", "compile", "first_call")
MODES = {"numba": "NUMBA", "c": "CVM"}


# --------------------------------------------------------------------------------------------
# One measurement, in a child process
# --------------------------------------------------------------------------------------------


def graph_stats(fn) -> dict:
    """Node counts of a compiled function: all nodes, ``Elemwise`` nodes, and the largest
    fused kernel (inputs + outputs of an ``Elemwise``, what Numba's compile time grows with)."""
    nodes = fn.maker.fgraph.toposort()
    elemwise = [n for n in nodes if type(n.op).__name__ == "Elemwise"]
    return {
        "nodes": len(nodes),
        "elemwise": len(elemwise),
        "max_operands": max((len(n.inputs) + len(n.outputs) for n in elemwise), default=0),
    }


def measure(tool: str, T: int, backend: str, calls: int = 20) -> dict:
    """Phases of one tool in this process (seconds), with the compiled graph's node counts."""
    import numpy as np
    import pytensor
    from pytensor.gradient import jacobian

    import sparsediff as sd
    from tests.users_graphs import nk_perfect_foresight, nk_point

    F, x = nk_perfect_foresight(T)
    xv = nk_point(x)
    out: dict = {"tool": tool, "T": T, "n": int(x.type.shape[0]), "backend": backend}
    clock = [(time.perf_counter(), time.process_time())]
    if tool == "sparsediff":
        plan = sd.jacobian_plan(F, x)
        clock.append((time.perf_counter(), time.process_time()))
        J = plan.build()
        out["n_colors"] = plan.n_colors
    elif tool == "dense pt.jacobian":
        clock.append(clock[0])
        J = jacobian(F, x, vectorize=True)
    elif tool == "residual":  # the user's F alone: what any derivative's compile is above
        clock.append(clock[0])
        J = F
    elif tool == "one JVP":  # one plain forward product, the unit a colored Jacobian batches
        clock.append(clock[0])
        v = pytensor.shared(np.ones_like(xv), name="v")
        J = pytensor.gradient.pushforward(F, x, v, use_op_pushforward=True)
    else:
        raise ValueError(f"unknown tool {tool!r}")
    clock.append((time.perf_counter(), time.process_time()))
    fn = pytensor.function([x], J, mode=MODES[backend])
    clock.append((time.perf_counter(), time.process_time()))
    first = fn(xv)
    clock.append((time.perf_counter(), time.process_time()))
    per_call = []
    for _ in range(calls):
        s = time.perf_counter()
        fn(xv)
        per_call.append(time.perf_counter() - s)
    value = first.toarray() if hasattr(first, "toarray") else np.asarray(first)
    for k, phase in enumerate(PHASES):
        out[phase] = clock[k + 1][0] - clock[k][0]
        out[phase + "_cpu"] = clock[k + 1][1] - clock[k][1]
    out.update(
        per_call=statistics.median(per_call),
        checksum=float(np.abs(value).sum()),
        **graph_stats(fn),
    )
    out["total"] = sum(out[p] for p in PHASES)
    out["total_cpu"] = sum(out[p + "_cpu"] for p in PHASES)
    return out


def _child_main(args) -> None:
    res = measure(args.tool, args.T, args.backend, calls=args.calls)
    print("RESULT " + json.dumps(res))


# --------------------------------------------------------------------------------------------
# The parent: one subprocess per measurement
# --------------------------------------------------------------------------------------------


def run_child(tool: str, T: int, backend: str, cache: Path, timeout: float, calls: int) -> dict:
    """Run :func:`measure` in a fresh process whose caches live under ``cache``."""
    env = isolated_cache_env(cache, ROOT)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")
    cmd = [sys.executable, "-m", "benchmarks.bench_latency", "--child", "--tool", tool]
    cmd += ["--T", str(T), "--backends", backend, "--calls", str(calls)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"tool": tool, "T": T, "backend": backend, "status": f"timeout > {timeout:.0f} s"}
    wall = time.perf_counter() - t0
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            res = json.loads(line[len("RESULT ") :])
            res["status"] = "ok"
            res["process"] = wall
            return res
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {"tool": tool, "T": T, "backend": backend, "status": "error: " + " | ".join(tail)}


def run(
    T: int, dense_T: int, backends: list[str], timeout: float, calls: int, floors: bool = False
) -> list[dict]:
    rows = []
    tools = [("sparsediff", T), ("dense pt.jacobian", dense_T)]
    if floors:
        tools += [("residual", T), ("one JVP", T)]
    for backend in backends:
        for tool, t in tools:
            if t <= 0:
                continue
            with tempfile.TemporaryDirectory(prefix="sd-latency-") as tmp:
                for cache in ("fresh", "warm"):
                    res = run_child(tool, t, backend, Path(tmp), timeout, calls)
                    res["cache"] = cache
                    rows.append(res)
                    print(_row(res), flush=True)
                    if res["status"] != "ok":
                        break
    return rows


def _fmt(v) -> str:
    return f"{v:.2f}" if isinstance(v, float) else str(v)


HEADER = (
    "| tool | backend | T (n) | cache | plan s | build s | compile s | first call s | total s "
    "| per call ms | nodes / Elemwise / widest |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|"
)
#: Phases are shown as CPU seconds of the process (wall seconds in parentheses): on a shared,
#: loaded machine the wall time mostly measures the other processes.


def _row(r: dict) -> str:
    size = f"{r['T']} ({r.get('n', 23 * r['T'])})"
    if r["status"] != "ok":
        return f"| {r['tool']} | {r['backend']} | {size} | {r.get('cache', '')} | {r['status']} |"
    phases = " | ".join(
        f"{_fmt(r.get(p + '_cpu', r[p]))} ({_fmt(r[p])})" for p in (*PHASES, "total")
    )
    graph = f"{r['nodes']} / {r['elemwise']} / {r['max_operands']}"
    return (
        f"| {r['tool']} | {r['backend']} | {size} | {r['cache']} | {phases} "
        f"| {r['per_call'] * 1e3:.3g} | {graph} |"
    )


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--T", type=int, default=100, help="periods (n = 23·T)")
    ap.add_argument("--dense-T", type=int, default=10, help="periods for dense (0: skip)")
    ap.add_argument("--backends", default="numba,c", help="numba and/or c, comma-separated")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per process")
    ap.add_argument("--calls", type=int, default=20, help="calls timed after the first")
    ap.add_argument("--json", type=Path, help="write the rows here")
    ap.add_argument(
        "--floors",
        action="store_true",
        help="also time the residual alone and one plain JVP: the compile floors",
    )
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--tool", default="sparsediff", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if any(b not in MODES for b in backends):
        ap.error(f"--backends: use {', '.join(MODES)}")
    if args.child:
        args.backend = backends[0]
        _child_main(args)
        return
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    print(HEADER)
    rows = run(args.T, args.dense_T, backends, args.timeout, args.calls, args.floors)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    if __package__ in (None, ""):
        sys.path.insert(0, str(ROOT))
    main()
