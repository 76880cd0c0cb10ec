"""Sparse Jacobian evaluation against the residual, side by side in one process.

    python benchmarks/bench_jacobian.py [--problems fd1d:100000,bratu2d:90000,bratu2d:1000000]
        [--backends c,numba] [--repeat 25] [--no-peers] [--dense-max 4096] [--mode auto]
    python benchmarks/bench_jacobian.py --problems all     # + every built-in problem

Problems are ``sparsediff.problems.from_size(name, n)``. For every problem (each in a fresh
subprocess, so that its peak memory is its own):

* plan time (detection, coloring, positions), build time, compile time of ``[J]`` and of
  ``[r]``, and the first call (for Numba this includes its JIT compilation);
* medians of the residual ``r(x)`` and of the sparse Jacobian ``J(x)`` (a ``scipy.sparse``
  CSR matrix per call), interleaved call by call so that machine noise hits both alike; the
  ratio ``J / r`` against the targets ``n_colors + 1`` (every problem) and 2 (these problems);
* ``[r, J]`` from one compiled function (shared subexpressions computed once);
* the dense ``pytensor.gradient.jacobian(..., vectorize=True)`` where ``n <= --dense-max``;
* for Hessian problems (``energy2d``) the "residual" is the gradient and J is the Hessian;
* the result is checked against the problem's analytic derivative where n <= 200000;
* asdex (JAX, jit, float64) on the same function when importable: its residual and Jacobian
  (BCOO, as asdex returns it) interleaved the same way, and its detection + coloring time;
* peak resident memory of the sparsediff path (measured before JAX is imported).

At n = 10⁶ the Jacobian's data (5·10⁶ doubles, 40 MB) is above glibc's largest dynamic mmap
threshold (32 MB): every call maps fresh pages and faults them in. NumPy advises huge pages on
such arrays and so does sparsediff for Numba's (``sparsediff.backends.hugepages``);
``--malloc-tuned`` shows the same run with the threshold raised instead (no page faults at all:
an environment setting of the process, not something a library should change behind the user).

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

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import benchmarks.threads  # noqa: F401  (one BLAS thread, set before NumPy loads)

# isort: split
import numpy as np
import scipy.sparse as sp

DEFAULT_PROBLEMS = "fd1d:100000,bratu2d:90000,bratu2d:1000000"
#: ``--problems all``: the targets above plus every built-in problem at a moderate size
ALL_PROBLEMS = (
    DEFAULT_PROBLEMS
    + ",brusselator2d:20000,rectangular:100000,dense_row_col:2000,energy2d:90000,cavity2d:40000"
)
BACKENDS = {"c": "CVM", "numba": "NUMBA", "jax": "JAX"}  # jax: sd's graph compiled by XLA


# --- the problems: sparsediff.problems graphs, and the same functions in JAX for asdex --------


def fd1d_jax(prob):
    import jax.numpy as jnp

    n = prob.n
    h2 = 1.0 / (n + 1) ** 2

    def f(x):
        xp = jnp.pad(x, 1)
        return xp[:-2] - 2 * x + xp[2:] - h2 * (jnp.exp(x) + x**3)

    return f


def bratu2d_jax(prob, lam=5.0):
    """MINPACK-2 solid fuel ignition, as ``sparsediff.problems.bratu2d`` writes it."""
    import jax.numpy as jnp

    N = round(prob.n**0.5)
    hx = hy = 1.0 / (N + 1)

    def f(x):
        u = x.reshape((N, N))
        up = jnp.pad(u, 1)
        uxx = (2 * u - up[1:-1, :-2] - up[1:-1, 2:]) * (hy / hx)
        uyy = (2 * u - up[:-2, 1:-1] - up[2:, 1:-1]) * (hx / hy)
        return (uxx + uyy - hx * hy * lam * jnp.exp(u)).ravel()

    return f


def energy2d_jax(prob):
    import jax.numpy as jnp

    N = round(prob.n**0.5)
    c = jnp.asarray(np.linspace(0.5, 1.5, N * N))

    def f(x):
        u = x.reshape((N, N))
        up = jnp.pad(u, 1)
        return (
            0.5 * ((up[1:, 1:-1] - up[:-1, 1:-1]) ** 2).sum()
            + 0.5 * ((up[1:-1, 1:] - up[1:-1, :-1]) ** 2).sum()
            + jnp.exp(u).sum()
            - (c * x).sum()
        )

    return f


def cavity2d_jax(prob):
    from benchmarks.peers.jax_problems import cavity2d

    return cavity2d(round(prob.n**0.5))


JAX_VERSIONS = {
    "fd1d": fd1d_jax,
    "bratu2d": bratu2d_jax,
    "energy2d": energy2d_jax,
    "cavity2d": cavity2d_jax,
}


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


def _ready(value):
    """Wait for a JAX result (asynchronous dispatch); other values are ready."""
    data = getattr(value, "data", value)
    if hasattr(data, "block_until_ready"):
        data.block_until_ready()
    return value


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# --- one problem, in a child process ---------------------------------------------------------


def run_one(problem: str, n: int, backends: list[str], repeat: int, peers: bool, dense_max, mode):
    import pytensor
    from pytensor.gradient import jacobian as dense_jacobian

    import sparsediff as sd
    from sparsediff.problems import from_size

    warnings.simplefilter("ignore")
    prob = from_size(problem, n)
    x, expr, params, values = prob.x, prob.expression, list(prob.params), prob.param_values
    hessian = prob.kind == "hessian"
    # "residual": the function itself, or for a Hessian problem its gradient
    r = pytensor.grad(expr, x) if hessian else expr
    out = {"problem": problem, "n": prob.n, "kind": prob.kind, "rows": []}

    t0 = time.perf_counter()
    plan = sd.hessian_plan(expr, x) if hessian else sd.jacobian_plan(expr, x, mode=mode)
    out["plan_s"] = time.perf_counter() - t0
    out["plan_parts"] = {k: v for k, v in plan.timings.items()}
    out.update(
        nnz=plan.nnz,
        mode=("star" if hessian else plan.mode),
        n_colors=plan.n_colors,
        lower_bound=plan.lower_bound,
    )
    t0 = time.perf_counter()
    J = plan.build()
    out["build_s"] = time.perf_counter() - t0
    if hessian:
        out["mode"] = f"star, {plan.method_used}"

    rng = np.random.default_rng(0)
    xv = prob.x0 + rng.uniform(0.0, 0.1, prob.n)
    for backend in backends:
        pt_mode = BACKENDS[backend]
        row = {"backend": backend}
        t0 = time.perf_counter()
        fJ = pytensor.function([x, *params], J, mode=pt_mode)
        row["compile_J_s"] = time.perf_counter() - t0
        fr = pytensor.function([x, *params], r, mode=pt_mode)
        frJ = pytensor.function([x, *params], [r, J], mode=pt_mode)
        t0 = time.perf_counter()
        Jv = fJ(xv, *values)
        row["first_J_s"] = time.perf_counter() - t0
        fr(xv, *values)
        frJ(xv, *values)
        if prob.n <= 200_000:  # against the analytic derivative, sparse (O(nnz))
            ref = sp.csr_array(prob.jacobian(xv))
            if not sp.issparse(Jv):  # JAX: a BCSR
                Jv = sp.csr_array(
                    (np.asarray(Jv.data), np.asarray(Jv.indices), np.asarray(Jv.indptr)),
                    shape=Jv.shape,
                )
            diff = abs(sp.csr_array(Jv) - ref)
            row["max_rel_err"] = float(diff.max() / abs(ref).max())
        fns = {
            "r": lambda fr=fr: _ready(fr(xv, *values)),
            "J": lambda fJ=fJ: _ready(fJ(xv, *values)),
            "rJ": lambda frJ=frJ: [_ready(o) for o in frJ(xv, *values)],
        }
        if dense_max and prob.n <= dense_max and not hessian:
            fD = pytensor.function(
                [x, *params], dense_jacobian(expr, x, vectorize=True), mode=pt_mode
            )
            fD(xv, *values)
            fns["dense"] = lambda fD=fD: fD(xv, *values)
        med = interleaved_medians(fns, repeat)
        row.update({f"{k}_ms": v * 1e3 for k, v in med.items()})
        out["rows"].append(row)
    out["peak_rss_mb"] = peak_rss_mb()

    if peers and problem in JAX_VERSIONS:
        out["asdex"] = run_asdex(JAX_VERSIONS[problem](prob), xv, repeat, hessian)
    return out


def run_asdex(f, xv, repeat, hessian=False):
    try:
        import jax

        jax.config.update("jax_enable_x64", True)
        import asdex
        import jax.numpy as jnp
    except ImportError:
        return {"status": "not installed"}
    x0 = jnp.asarray(xv)
    t0 = time.perf_counter()
    if hessian:
        coloring = asdex.hessian_coloring(f, x0)
        jf = jax.jit(asdex.hessian_from_coloring(f, coloring))
        fr = jax.jit(jax.grad(f))
    else:
        coloring = asdex.jacobian_coloring(f, x0)
        jf = jax.jit(asdex.jacobian_from_coloring(f, coloring))
        fr = jax.jit(f)
    detect_s = time.perf_counter() - t0
    jf(x0).data.block_until_ready()
    fr(x0).block_until_ready()
    med = interleaved_medians(
        {
            "r": lambda: fr(x0).block_until_ready(),
            "J": lambda: jf(x0).data.block_until_ready(),
        },
        repeat,
    )
    return {
        "status": "ok",
        "detect_color_s": detect_s,
        "r_ms": med["r"] * 1e3,
        "J_ms": med["J"] * 1e3,
        "coloring": repr(coloring).splitlines()[0][:120],
    }


# --- driver ----------------------------------------------------------------------------------


def table(results: list[dict]) -> str:
    head = (
        "| problem | n | nnz | mode, colors (lb) | backend | residual ms | sparse J ms | J / r "
        "| bound | r + J in one fn ms | dense J ms | asdex r ms | asdex J ms "
        "| plan s (detect / color / pos) | build s | compile J s | first J call s | peak RSS MB |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for res in results:
        if "error" in res:
            lines.append(f"| {res['problem']} | {res['n']} | error: {res['error']} |")
            continue
        parts = res["plan_parts"]
        plan = (
            f"{res['plan_s']:.2f} ({parts.get('detection', parts.get('pattern', 0)):.2f} / "
            f"{parts.get('coloring', 0):.2f} / {parts.get('positions', 0):.2f})"
        )
        a = res.get("asdex", {})
        ar = f"{a['r_ms']:.3f}" if a.get("status") == "ok" else a.get("status", "-")
        aj = f"{a['J_ms']:.3f}" if a.get("status") == "ok" else "-"
        name = res["problem"] + (" (H vs ∇f)" if res.get("kind") == "hessian" else "")
        for row in res["rows"]:
            ratio = row["J_ms"] / row["r_ms"]
            dense = f"{row['dense_ms']:.3f}" if "dense_ms" in row else "-"
            lines.append(
                f"| {name} | {res['n']} | {res['nnz']} | {res['mode']}, "
                f"{res['n_colors']} ({res['lower_bound']}) | {row['backend']} "
                f"| {row['r_ms']:.3f} | {row['J_ms']:.3f} | {ratio:.2f} | {res['n_colors'] + 1} "
                f"| {row['rJ_ms']:.3f} | {dense} | {ar} | {aj} | {plan} | {res['build_s']:.2f} "
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
    ap.add_argument(
        "--malloc-tuned",
        action="store_true",
        help="run the children with glibc's mmap threshold raised (MALLOC_MMAP_THRESHOLD_): "
        "arrays over 32 MB are otherwise mmapped fresh, and page-faulted, on every call",
    )
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
    spec = ALL_PROBLEMS if args.problems == "all" else args.problems
    for item in spec.split(","):
        problem, size = item.strip().split(":")
        cmd = [sys.executable, __file__, "--child", f"{problem}:{size}", "--backends",
               args.backends, "--repeat", str(args.repeat), "--dense-max", str(args.dense_max),
               "--mode", args.mode]  # fmt: skip
        if args.no_peers:
            cmd.append("--no-peers")
        env = os.environ.copy()
        if args.malloc_tuned:
            env.update(MALLOC_MMAP_THRESHOLD_="1073741824", MALLOC_TRIM_THRESHOLD_="2147483648")
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            results.append({"problem": problem, "n": int(size), "error": " / ".join(tail)})
        else:
            results.append(json.loads(lines[-1][len("RESULT ") :]))
        for row in results[-1].get("rows", []):
            if "max_rel_err" in row:
                print(
                    f"{problem} n={size} {row['backend']}: max relative error vs analytic "
                    f"{row['max_rel_err']:.1e}",
                    file=sys.stderr,
                )
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
