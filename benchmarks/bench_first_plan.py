"""The first plan after a fresh install: CPU seconds per phase and Numba compile time per kernel.

    python benchmarks/bench_first_plan.py [--problems nk,demo] [--repeat 1] [--top 12]

Each measurement runs in a fresh child process whose caches live in a new temporary folder
(``NUMBA_CACHE_DIR`` for sparsediff's own kernels, PyTensor's ``base_compiledir``): a *fresh*
row starts with both empty, exactly as after ``pip install``; the *warm* row that follows reuses
the folder the fresh one filled (what every later process sees). In the child:
``sd.jacobian_plan(expression, x)`` (detection, coloring, mode choice, decompression
positions), timed in CPU seconds of the process (``time.process_time``: on a shared, loaded
machine wall time mostly measures the other processes), with the plan's own phase timings
(wall), then the same plan again in the same process (every kernel compiled or loaded by
then). Numba's compile events are recorded (exclusive CPU seconds per kernel: a kernel calling
another is charged only its own part), so the table says which kernels a first plan compiles.

Problems: ``nk`` — the New Keynesian perfect-foresight system of ``tests/users_graphs.py``
(T = 100, n = 2300); ``demo`` — the 2-D Bratu problem of ``python -m sparsediff demo``
(300×300, n = 9·10⁴); ``bratu1000`` — the same at n = 10⁶; ``family:n`` — any problem of
``sparsediff.problems.from_size`` (e.g. ``cavity2d:40000``).

    python benchmarks/bench_first_plan.py --sequence 3 --repeat 5 --problems bratu1000

``--sequence N`` measures the first N plans of a process instead, with a warm cache (one
discarded child fills it first): ``--repeat`` fresh processes each make the same plan N times
and time its phases in CPU seconds (detection; probe, which products build; coloring, every
``color`` call of the mode choice; the rest of the mode choice; positions); the table gives
the median over the processes of plan 1, 2, …, N. The first plans of a process run on memory
the process has not touched yet (page faults), later ones on freed and reused memory.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(ROOT))

import benchmarks.threads  # noqa: F401, E402  (one BLAS thread, set before NumPy loads)
from benchmarks.timing import isolated_cache_env  # noqa: E402

PROBLEMS = ("nk", "demo", "bratu1000")


# --------------------------------------------------------------------------------------------
# The child: one plan, timed, with Numba's compile events recorded
# --------------------------------------------------------------------------------------------


class _CompileEvents:
    """Exclusive seconds of every ``numba:compile`` event, per kernel."""

    def __init__(self) -> None:
        from numba.core import event

        self.seconds: dict[str, float] = collections.defaultdict(float)
        self.stack: list[list[float]] = []
        listener = self

        class Listener(event.Listener):
            def on_start(self, ev):
                listener.stack.append([time.process_time(), 0.0])

            def on_end(self, ev):
                t0, child = listener.stack.pop()
                d = time.process_time() - t0
                if listener.stack:
                    listener.stack[-1][1] += d
                data = ev.data if isinstance(ev.data, dict) else {}
                fn = getattr(data.get("dispatcher"), "py_func", None)
                module = (getattr(fn, "__module__", "") or "?").split(".")[-1]
                name = f"{module}.{getattr(fn, '__qualname__', '?')}"
                listener.seconds[name] += d - child

        event.register("numba:compile", Listener())

    def take(self) -> dict[str, float]:
        out = dict(self.seconds)
        self.seconds.clear()
        return out


def _problem(name: str):
    if name == "nk":
        sys.path.insert(0, str(ROOT))
        from tests.users_graphs import nk_perfect_foresight

        F, x = nk_perfect_foresight(T=100)[:2]
        return F, x
    if ":" in name:  # any built-in problem, "family:n"
        from sparsediff.problems import from_size

        family, n = name.split(":")
        p = from_size(family, int(n))
        return p.expression, p.x
    from sparsediff.problems import bratu2d

    side = {"demo": 300, "bratu1000": 1000}[name]
    p = bratu2d(side)
    return p.expression, p.x


def measure(problem: str) -> dict:
    c0 = time.process_time()
    import numba  # noqa: F401

    events = _CompileEvents()
    import sparsediff as sd

    import_cpu = time.process_time() - c0
    F, x = _problem(problem)
    c0 = time.process_time()
    plan = sd.jacobian_plan(F, x)
    plan_cpu = time.process_time() - c0
    compiled = events.take()
    c0 = time.process_time()
    again = sd.jacobian_plan(F, x)
    again_cpu = time.process_time() - c0
    assert again.n_colors == plan.n_colors and (again.colors == plan.colors).all()
    return {
        "problem": problem,
        "n": int(x.type.shape[0]),
        "n_colors": int(plan.n_colors),
        "mode": plan.mode,
        "order": getattr(plan.coloring, "order", None),
        "import_cpu": import_cpu,
        "plan_cpu": plan_cpu,
        "phases": {k: float(v) for k, v in plan.timings.items()},
        "numba_compile": sum(compiled.values()),
        "kernels": compiled,
        "second_plan_cpu": again_cpu,
        "second_compile": sum(events.take().values()),
    }


def measure_sequence(problem: str, n_plans: int) -> dict:
    """``n_plans`` plans in this process, CPU seconds per phase of each."""
    import importlib
    import types

    import sparsediff as sd

    jac = importlib.import_module("sparsediff.plans.jacobian")

    F, x = _problem(problem)
    spent: dict[str, float] = collections.defaultdict(float)

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            c0 = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] += time.process_time() - c0

        return wrapper

    # the plan's own phase timer, made a CPU timer; probe and coloring timed inside it
    jac.time = types.SimpleNamespace(perf_counter=time.process_time)
    jac._probe = timed("probe", jac._probe)
    jac.color = timed("coloring", jac.color)
    plans = []
    for _ in range(n_plans):
        spent.clear()
        c0 = time.process_time()
        plan = sd.jacobian_plan(F, x)
        total = time.process_time() - c0
        t = plan.timings
        choice = t["coloring"] - spent["probe"] - spent["coloring"]
        plans.append(
            {
                "total": total,
                "detection": t["detection"],
                "probe": spent["probe"],
                "coloring": spent["coloring"],
                "mode choice": choice,
                "positions": t["positions"],
                "n_colors": int(plan.n_colors),
            }
        )
    return {"problem": problem, "n": int(x.type.shape[0]), "plans": plans}


def sequence(problems, n_plans: int, repeat: int, timeout: float) -> None:
    import statistics

    keys = ("total", "detection", "probe", "coloring", "mode choice", "positions")
    print("| problem | plan | colors | " + " | ".join(keys) + " |")
    print("|---|---|---|" + "---|" * len(keys))
    for p in problems:
        with tempfile.TemporaryDirectory(prefix="sd-first-plan-") as tmp:
            run_child(p, Path(tmp), timeout)  # fills the cache
            runs = [
                run_child(p, Path(tmp), timeout, ["--sequence", str(n_plans)])
                for _ in range(repeat)
            ]
        for i in range(n_plans):
            rows = [r["plans"][i] for r in runs]
            cells = []
            for k in keys:
                values = sorted(r[k] for r in rows)
                cells.append(f"{statistics.median(values):.2f} ({values[0]:.2f}–{values[-1]:.2f})")
            print(f"| {p} | {i + 1} | {rows[0]['n_colors']} | " + " | ".join(cells) + " |")


# --------------------------------------------------------------------------------------------
# The parent: fresh, then warm, in new processes
# --------------------------------------------------------------------------------------------


def run_child(problem: str, cache: Path, timeout: float, extra=()) -> dict:
    env = isolated_cache_env(cache, ROOT)
    cmd = [sys.executable, "-m", "benchmarks.bench_first_plan", "--child", problem, *extra]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
    raise RuntimeError(f"{problem}: child failed: " + " | ".join(tail))


def _row(r: dict, cache: str) -> str:
    phases = ", ".join(f"{k} {v:.2f}" for k, v in r["phases"].items())
    return (
        f"| {r['problem']} | {r['n']} | {cache} | {r['n_colors']} ({r['mode']}, {r['order']}) "
        f"| {r['import_cpu']:.2f} | {r['plan_cpu']:.2f} | {r['numba_compile']:.2f} "
        f"| {r['second_plan_cpu']:.2f} | {phases} |"
    )


HEADER = (
    "| problem | n | cache | colors | import CPU s | first plan CPU s | of it Numba compile s "
    "| second plan CPU s | plan phases (wall s) |\n|---|---|---|---|---|---|---|---|---|"
)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--problems", default="nk,demo", help=f"comma-separated: {', '.join(PROBLEMS)}")
    ap.add_argument("--repeat", type=int, default=1, help="fresh/warm pairs per problem")
    ap.add_argument("--top", type=int, default=12, help="kernels listed per fresh run")
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--json", type=Path, help="write the rows here")
    ap.add_argument("--sequence", type=int, default=0, help="time the first N plans of a process")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        if args.sequence:
            print("RESULT " + json.dumps(measure_sequence(args.child, args.sequence)))
        else:
            print("RESULT " + json.dumps(measure(args.child)))
        return
    problems = [p.strip() for p in args.problems.split(",") if p.strip()]
    for p in problems:
        if p not in PROBLEMS and ":" not in p:
            ap.error(f"unknown problem {p!r}; expected {', '.join(PROBLEMS)}")
    print(f"load: {os.getloadavg()[0]:.2f} (1-min average)", flush=True)
    if args.sequence:
        sequence(problems, args.sequence, args.repeat, args.timeout)
        print(f"load: {os.getloadavg()[0]:.2f} (1-min average)", flush=True)
        return
    print(HEADER, flush=True)
    rows, notes = [], []
    for _ in range(args.repeat):
        for p in problems:
            with tempfile.TemporaryDirectory(prefix="sd-first-plan-") as tmp:
                for cache in ("fresh", "warm"):
                    r = run_child(p, Path(tmp), args.timeout)
                    r["cache"] = cache
                    rows.append(r)
                    print(_row(r, cache), flush=True)
                    if cache == "fresh":
                        top = sorted(r["kernels"].items(), key=lambda kv: -kv[1])[: args.top]
                        notes.append(
                            f"{p} fresh, Numba compile by kernel (s): "
                            + ", ".join(f"{k} {v:.2f}" for k, v in top)
                        )
    print()
    for note in notes:
        print("- " + note)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
