"""Small systems (issue #16): sparsediff's total cost against the dense Jacobian at n ≈ 10²–10³.

gEconpy removed a sparse-Jacobian port because building, coloring and compiling cost more than
they saved at n ≈ 10². This script measures, for each problem, size and backend, the phases a
user pays once — plan (detection + coloring), build (the graph), compile
(``pytensor.function``), first call — and the per-call time, for three variants:

* ``sparse``: ``sd.jacobian_plan(F, x, dense=False)`` (``mode="auto"`` without the small-system
  fallback: forward, reverse or bidirectional, whichever ``auto`` picks);
* ``dense``: ``sd.jacobian_plan(F, x, mode="dense")`` (detection, then
  ``pytensor.gradient.jacobian`` gathered into the pattern: the same CSR result);
* ``pt``: ``pytensor.gradient.jacobian(F, x, vectorize=True)`` alone (a dense matrix: the
  baseline a user without sparsediff writes; no pattern, so not the same result).

Every measurement runs in a fresh subprocess (Numba and PyTensor keep compiled functions in
memory; their on-disk caches stay as they are: the first repetition meets colder caches than
the next); the subprocesses of one repetition are interleaved (every case and variant in turn,
the variant order rotated; ``--jobs 2`` runs the two variants of a case side by side), so the
machine's load hits them alike. Times are process CPU time (one BLAS thread: what a busy
machine distorts least); the table gives medians over the repetitions (``--table FILE
--repeat K``: one repetition). ``per call`` is the median of 9 samples of at least 2 ms each.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_small.py \\
        --sizes 50,200,1000 --problems fd1d,dsge,cge --variants sparse,dense --repeats 2 \\
        --jobs 2 --out /tmp/small.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import benchmarks.threads  # noqa: E402, F401  (one BLAS thread; children inherit it)

PROBLEMS = ("fd1d", "bratu2d", "dsge", "cge")
VARIANTS = ("sparse", "dense", "pt")
PHASES = ("plan", "build", "compile", "first")


def make_problem(name: str, n: int):
    """``(F, x, x0)`` with about ``n`` unknowns."""
    import numpy as np

    from sparsediff import problems
    from tests import users_graphs as ug

    if name == "fd1d":
        p = problems.fd1d(n)
        return p.expression, p.x, p.x0 + 0.1
    if name == "bratu2d":
        p = problems.bratu2d(max(2, round(n**0.5)))
        return p.expression, p.x, p.x0
    if name == "dsge":
        F, x = ug.perfect_foresight(max(2, round(n / 3)))
        return F, x, np.full(x.type.shape, 0.5)
    if name == "cge":
        F, x = ug.cge(max(2, round((n - 1) / 6)))
        return F, x, ug.cge_point(x)
    raise KeyError(name)


def _per_call(fn, arg) -> float:
    loops = 1
    t0 = time.process_time()
    fn(arg)
    dt = max(time.process_time() - t0, 1e-7)
    loops = max(1, min(10_000, int(0.002 / dt) + 1))
    samples = []
    for _ in range(9):
        t0 = time.process_time()
        for _ in range(loops):
            fn(arg)
        samples.append((time.process_time() - t0) / loops)
    return statistics.median(samples)


def one(problem: str, n: int, variant: str, backend: str) -> dict:
    """The phases of one variant, in this process (run it in a fresh one)."""
    import pytensor
    import pytensor.gradient

    import sparsediff as sd

    F, x, x0 = make_problem(problem, n)
    mode = None if backend == "NUMBA" else backend
    out = {"problem": problem, "n": int(x.type.shape[0]), "variant": variant, "backend": backend}
    cpu, wall = {}, {}

    def phase(name, fn):
        c0, w0 = time.process_time(), time.perf_counter()
        result = fn()
        cpu[name], wall[name] = time.process_time() - c0, time.perf_counter() - w0
        return result

    if variant == "pt":
        cpu["plan"] = wall["plan"] = 0.0
        J = phase("build", lambda: pytensor.gradient.jacobian(F, x, vectorize=True))
    else:
        kw = {"dense": False} if variant == "sparse" else {"mode": "dense"}
        plan = phase("plan", lambda: sd.jacobian_plan(F, x, **kw))
        out["plan"] = repr(plan)
        out["n_colors"] = plan.n_colors
        out["nnz"] = plan.nnz
        J = phase("build", plan.build)
    fn = phase("compile", lambda: pytensor.function([x], J, mode=mode))
    phase("first", lambda: fn(x0))
    cpu["call"] = _per_call(fn, x0)
    out["cpu"], out["wall"] = cpu, wall
    return out


def _run_one(problem, n, variant, backend) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--one", problem, str(n), variant, backend]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def run(sizes, problems, backends, repeats: int, variants=VARIANTS, jobs=1, log=print, stream=None):
    """All measurements: ``repeats`` interleaved repetitions, smallest sizes first; ``jobs``
    subprocesses at a time (CPU times are per process); each result is appended to the JSON
    lines file ``stream`` as it comes."""
    from concurrent.futures import ThreadPoolExecutor

    tasks = []
    for rep in range(repeats):
        cases = [(n, b, p) for n in sizes for b in backends for p in problems]
        for k, (n, b, p) in enumerate(cases):
            shift = (rep + k) % len(variants)
            for v in (*variants[shift:], *variants[:shift]):
                tasks.append((rep, p, n, v, b))

    def go(task):
        rep, p, n, v, b = task
        r = _run_one(p, n, v, b)
        r["repeat"] = rep
        if stream is not None:
            with open(stream, "a") as fh:
                fh.write(json.dumps(r) + "\n")
        total = sum(r["cpu"][ph] for ph in PHASES)
        log(f"rep {rep} {b} {p} n={r['n']} {v}: total {total:.2f} s cpu", flush=True)
        return r

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(go, tasks))


def summarize(results: list[dict]) -> list[dict]:
    """Median over the repetitions of each phase, per (backend, problem, n, variant)."""
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        groups.setdefault((r["backend"], r["problem"], r["n"], r["variant"]), []).append(r)
    rows = []
    for (b, p, n, v), rs in groups.items():
        med = {ph: statistics.median(r["cpu"][ph] for r in rs) for ph in (*PHASES, "call")}
        med["total"] = sum(med[ph] for ph in PHASES)
        rows.append(
            {
                "backend": b,
                "problem": p,
                "n": n,
                "variant": v,
                "samples": len(rs),
                "n_colors": rs[0].get("n_colors"),
                "nnz": rs[0].get("nnz"),
                **med,
            }
        )
    return rows


def table(rows: list[dict]) -> str:
    """Markdown: one line per (backend, problem, n); sparse vs dense totals and phases."""
    by = {(r["backend"], r["problem"], r["n"], r["variant"]): r for r in rows}
    keys = sorted({k[:3] for k in by}, key=lambda k: (k[0], PROBLEMS.index(k[1]), k[2]))
    head = (
        "| backend | problem | n | colors | sparse total (plan / build / compile / first) "
        "| dense total (plan / build / compile / first) | pt.jacobian total "
        "| per call sparse / dense / pt (ms) | cheaper |\n|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]

    def phases(r):
        return f"{r['total']:.2f} ({' / '.join(f'{r[ph]:.2f}' for ph in PHASES)})"

    for key in keys:
        s, d, p = (by.get((*key, v)) for v in VARIANTS)
        if s is None or d is None:
            continue
        cheaper = "dense" if d["total"] < s["total"] else "sparse"
        calls = " / ".join(f"{r['call'] * 1e3:.3f}" if r else "–" for r in (s, d, p))
        lines.append(
            f"| {key[0]} | {key[1]} | {key[2]} | {s['n_colors']} | {phases(s)} | {phases(d)} "
            f"| {p['total']:.2f} | {calls} | {cheaper} |"
            if p
            else f"| {key[0]} | {key[1]} | {key[2]} | {s['n_colors']} | {phases(s)} "
            f"| {phases(d)} | – | {calls} | {cheaper} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--one", nargs=4, metavar=("PROBLEM", "N", "VARIANT", "BACKEND"))
    ap.add_argument("--sizes", default="50,200,1000")
    ap.add_argument("--problems", default=",".join(PROBLEMS))
    ap.add_argument("--backends", default="NUMBA,CVM")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--variants", default="sparse,dense,pt")
    ap.add_argument("--jobs", type=int, default=1, help="subprocesses at a time")
    ap.add_argument(
        "--out",
        default=None,
        help="write all measurements (JSON) here, and to OUT + 'l' as they come",
    )
    ap.add_argument("--table", default=None, help="only print the table of a JSON lines file")
    ap.add_argument("--repeat", type=int, default=None, help="with --table: one repetition")
    args = ap.parse_args(argv)
    if args.one:
        problem, n, variant, backend = args.one
        print(json.dumps(one(problem, int(n), variant, backend)))
        return 0
    if args.table:
        with open(args.table) as fh:
            results = [json.loads(line) for line in fh if line.strip()]
        if args.repeat is not None:
            results = [r for r in results if r["repeat"] == args.repeat]
        print(table(summarize(results)))
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    results = run(
        sizes,
        args.problems.split(","),
        args.backends.split(","),
        args.repeats,
        variants=tuple(args.variants.split(",")),
        jobs=args.jobs,
        log=print,
        stream=args.out + "l" if args.out else None,
    )
    rows = summarize(results)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"results": results, "rows": rows}, fh, indent=1)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
