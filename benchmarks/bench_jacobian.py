"""Sparse Jacobian evaluation against the residual, side by side in one process.

    python benchmarks/bench_jacobian.py [--problems fd1d:100000,bratu2d:90000,bratu2d:1000000]
        [--backends c,numba] [--repeat 25] [--no-peers] [--dense-max 4096] [--mode auto]

For every problem (each in a fresh subprocess, so that its peak memory is its own):

* plan time (detection, coloring, positions), build time, compile time of ``[J]`` and of
  ``[r]``, and the first call (for Numba this includes its JIT compilation);
* medians of the residual ``r(x)`` and of the sparse Jacobian ``J(x)`` (a ``scipy.sparse``
  CSR matrix per call), interleaved call by call so that machine noise hits both alike; the
  ratio ``J / r`` against the targets ``n_colors + 1`` (every problem) and 2 (these problems);
* the dense ``pytensor.gradient.jacobian(..., vectorize=True)`` where ``n <= --dense-max``;
* asdex (JAX, jit, float64) on the same function when importable: its residual and Jacobian
  (BCOO, as asdex returns it) interleaved the same way, and its detection + coloring time;
* peak resident memory of the sparsediff path (measured before JAX is imported).

Prints a markdown table (and, with ``--json PATH``, writes the raw numbers).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import warnings

import numpy as np

DEFAULT_PROBLEMS = "fd1d:100000,bratu2d:90000,bratu2d:1000000"
BACKENDS = {"c": "CVM", "numba": "NUMBA", "jax": "JAX"}


# --- the problems (PyTensor and JAX versions of the same function) ----------------------------


def fd1d_pt(n):
    import pytensor.tensor as pt

    x = pt.vector("x", shape=(n,))
    h2 = 1.0 / (n + 1) ** 2
    xp = pt.concatenate([pt.zeros((1,)), x, pt.zeros((1,))])
    return xp[:-2] - 2 * x + xp[2:] - h2 * (pt.exp(x) + x**3), x


def fd1d_jax(n):
    import jax.numpy as jnp

    h2 = 1.0 / (n + 1) ** 2

    def f(x):
        xp = jnp.pad(x, 1)
        return xp[:-2] - 2 * x + xp[2:] - h2 * (jnp.exp(x) + x**3)

    return f


def _side(n):
    side = round(n**0.5)
    if side * side != n:
        raise ValueError(f"bratu2d needs a square size, got n = {n}")
    return side


def bratu2d_pt(n, lam=5.0):
    import pytensor.tensor as pt

    N = _side(n)
    x = pt.vector("x", shape=(n,))
    h2 = 1.0 / (N + 1) ** 2
    u = x.reshape((N, N))
    up = pt.set_subtensor(pt.zeros((N + 2, N + 2))[1:-1, 1:-1], u)
    lap = 4 * u - up[:-2, 1:-1] - up[2:, 1:-1] - up[1:-1, :-2] - up[1:-1, 2:]
    return (lap - h2 * lam * pt.exp(u)).ravel(), x


def bratu2d_jax(n, lam=5.0):
    import jax.numpy as jnp

    N = _side(n)
    h2 = 1.0 / (N + 1) ** 2

    def f(x):
        u = x.reshape((N, N))
        up = jnp.pad(u, 1)
        lap = 4 * u - up[:-2, 1:-1] - up[2:, 1:-1] - up[1:-1, :-2] - up[1:-1, 2:]
        return (lap - h2 * lam * jnp.exp(u)).ravel()

    return f


PROBLEMS = {"fd1d": (fd1d_pt, fd1d_jax), "bratu2d": (bratu2d_pt, bratu2d_jax)}


# --- timing ----------------------------------------------------------------------------------


def _calls_for(fn, target_s=0.02):
    t0 = time.perf_counter()
    fn()
    dt = max(time.perf_counter() - t0, 1e-7)
    return max(1, min(1000, int(target_s / dt)))


def interleaved_medians(fns: dict, repeat: int) -> dict:
    """Median seconds per call of each function, timed in turn within every repetition."""
    loops = {name: _calls_for(fn) for name, fn in fns.items()}
    samples = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            k = loops[name]
            t0 = time.perf_counter()
            for _ in range(k):
                fn()
            samples[name].append((time.perf_counter() - t0) / k)
    return {name: statistics.median(s) for name, s in samples.items()}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# --- one problem, in a child process ---------------------------------------------------------


def run_one(problem: str, n: int, backends: list[str], repeat: int, peers: bool, dense_max, mode):
    import pytensor
    from pytensor.gradient import jacobian as dense_jacobian

    import sparsediff as sd

    warnings.simplefilter("ignore")
    build_pt, build_jax = PROBLEMS[problem]
    r, x = build_pt(n)
    out = {"problem": problem, "n": n, "rows": []}

    t0 = time.perf_counter()
    plan = sd.jacobian_plan(r, x, mode=mode)
    out["plan_s"] = time.perf_counter() - t0
    out["plan_parts"] = {k: v for k, v in plan.timings.items()}
    out.update(nnz=plan.nnz, mode=plan.mode, n_colors=plan.n_colors, lower_bound=plan.lower_bound)
    t0 = time.perf_counter()
    J = plan.build()
    out["build_s"] = time.perf_counter() - t0

    rng = np.random.default_rng(0)
    xv = rng.uniform(0.0, 0.1, n)
    for backend in backends:
        pt_mode = BACKENDS[backend]
        row = {"backend": backend}
        t0 = time.perf_counter()
        fJ = pytensor.function([x], J, mode=pt_mode)
        row["compile_J_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        fr = pytensor.function([x], r, mode=pt_mode)
        row["compile_r_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        Jv = fJ(xv)
        row["first_J_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        fr(xv)
        row["first_r_s"] = time.perf_counter() - t0
        fns = {"r": lambda fr=fr: fr(xv), "J": lambda fJ=fJ: fJ(xv)}
        if dense_max and n <= dense_max:
            fD = pytensor.function([x], dense_jacobian(r, x, vectorize=True), mode=pt_mode)
            D = fD(xv)
            dense = Jv.toarray() if hasattr(Jv, "toarray") else np.asarray(Jv.todense())
            row["dense_max_err"] = float(np.abs(dense - D).max())
            fns["dense"] = lambda fD=fD: fD(xv)
        med = interleaved_medians(fns, repeat)
        row.update({f"{k}_ms": v * 1e3 for k, v in med.items()})
        out["rows"].append(row)
    out["peak_rss_mb"] = peak_rss_mb()

    if peers:
        out["asdex"] = run_asdex(build_jax(n), n, xv, repeat)
    return out


def run_asdex(f, n, xv, repeat):
    try:
        import jax

        jax.config.update("jax_enable_x64", True)
        import asdex
        import jax.numpy as jnp
    except ImportError:
        return {"status": "not installed"}
    x0 = jnp.asarray(xv)
    t0 = time.perf_counter()
    coloring = asdex.jacobian_coloring(f, x0)
    detect_s = time.perf_counter() - t0
    jf = jax.jit(asdex.jacobian_from_coloring(f, coloring))
    fr = jax.jit(f)
    jf(x0).data.block_until_ready()
    fr(x0).block_until_ready()
    med = interleaved_medians(
        {
            "r": lambda: fr(x0).block_until_ready(),
            "J": lambda: jf(x0).data.block_until_ready(),
        },
        repeat,
    )
    text = repr(coloring)
    return {
        "status": "ok",
        "detect_color_s": detect_s,
        "r_ms": med["r"] * 1e3,
        "J_ms": med["J"] * 1e3,
        "coloring": text.splitlines()[0][:120],
    }


# --- driver ----------------------------------------------------------------------------------


def table(results: list[dict]) -> str:
    head = (
        "| problem | n | nnz | mode, colors (lb) | backend | residual ms | sparse J ms | J / r "
        "| bound | dense J ms | asdex r ms | asdex J ms | plan s (detect / color / pos) "
        "| build s | compile J s | first J call s | peak RSS MB |"
    )
    lines = [head, "|" + "---|" * 17]
    for res in results:
        if "error" in res:
            lines.append(f"| {res['problem']} | {res['n']} | error: {res['error']} |")
            continue
        parts = res["plan_parts"]
        plan = (
            f"{res['plan_s']:.2f} ({parts.get('detection', 0):.2f} / "
            f"{parts.get('coloring', 0):.2f} / {parts.get('positions', 0):.2f})"
        )
        a = res.get("asdex", {})
        ar = f"{a['r_ms']:.3f}" if a.get("status") == "ok" else a.get("status", "-")
        aj = f"{a['J_ms']:.3f}" if a.get("status") == "ok" else "-"
        for row in res["rows"]:
            ratio = row["J_ms"] / row["r_ms"]
            dense = f"{row['dense_ms']:.3f}" if "dense_ms" in row else "-"
            lines.append(
                f"| {res['problem']} | {res['n']} | {res['nnz']} | {res['mode']}, "
                f"{res['n_colors']} ({res['lower_bound']}) | {row['backend']} "
                f"| {row['r_ms']:.3f} | {row['J_ms']:.3f} | {ratio:.2f} | {res['n_colors'] + 1} "
                f"| {dense} | {ar} | {aj} | {plan} | {res['build_s']:.2f} "
                f"| {row['compile_J_s']:.2f} | {row['first_J_s']:.3f} | {res['peak_rss_mb']:.0f} |"
            )
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--problems", default=DEFAULT_PROBLEMS)
    ap.add_argument("--backends", default="c,numba")
    ap.add_argument("--repeat", type=int, default=25)
    ap.add_argument("--no-peers", action="store_true", help="skip asdex")
    ap.add_argument("--dense-max", type=int, default=4096)
    ap.add_argument("--mode", default="auto")
    ap.add_argument("--json", default=None, help="also write the raw results here")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]

    if args.child:
        problem, size = args.child.split(":")
        res = run_one(
            problem, int(size), backends, args.repeat, not args.no_peers, args.dense_max, args.mode
        )
        print("RESULT " + json.dumps(res))
        return

    results = []
    for item in args.problems.split(","):
        problem, size = item.strip().split(":")
        cmd = [sys.executable, __file__, "--child", f"{problem}:{size}", "--backends",
               args.backends, "--repeat", str(args.repeat), "--dense-max", str(args.dense_max),
               "--mode", args.mode]  # fmt: skip
        if args.no_peers:
            cmd.append("--no-peers")
        proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            results.append({"problem": problem, "n": int(size), "error": " / ".join(tail)})
        else:
            results.append(json.loads(lines[-1][len("RESULT ") :]))
        print(f"done {problem} n={size}", file=sys.stderr)
    print(table(results))
    notes = [
        f"- {r['problem']} n={r['n']}: asdex coloring {r['asdex'].get('coloring', '')}, "
        f"asdex detection + coloring {r['asdex']['detect_color_s']:.2f} s"
        for r in results
        if r.get("asdex", {}).get("status") == "ok"
    ]
    if notes:
        print("\n" + "\n".join(notes))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)


if __name__ == "__main__":
    main()
