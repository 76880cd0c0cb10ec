"""GPU check of the JAX backend: values against the CPU, J / residual and absolute times.

    python -m benchmarks.gpu_check                      # the GPU (jax[cuda]), n = 10⁵, 10⁶, 10⁷
    python -m benchmarks.gpu_check --device cpu --sizes small   # anywhere, n ≈ 10³ and 10⁴
    python -m benchmarks.gpu_check --sizes 100000,1000000 --problems bratu2d

For 2-D Bratu (Jacobian) and the 2-D energy (Hessian, star and acyclic coloring) at each size:
the plan and the symbolic build run on the CPU (they are NumPy), the compiled function
(``pytensor.function(..., mode="JAX")``, taken out of PyTensor with
:func:`sparsediff.backends.jax_function.jax_callable` so that its inputs stay on the device) is
run on the chosen device. The derivative is checked against the problem's analytic derivative,
computed in NumPy on the CPU (structure exactly, values to ``--rtol``), *before* timing; then the
derivative and the residual (the same expression compiled the same way) are timed interleaved,
call after call, with ``block_until_ready`` (median, min–max). The table goes to stdout as
markdown, with the device, the date and the versions; ``--json`` writes the raw numbers too.
Exit status 1 if any check failed.

Nothing here needs a GPU: with ``--device cpu`` it measures the CPU path (the repository's test
runs it so at a tiny size). Keep one BLAS/XLA thread on a shared CPU machine
(``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false``); on a GPU nothing needs setting.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import benchmarks.threads  # noqa: F401  (one BLAS thread, set before NumPy loads)

# isort: split
import numpy as np

SIZES = {"small": [1_000, 10_000], "full": [100_000, 1_000_000, 10_000_000]}
CASES = {
    "bratu2d": [("bratu2d", "auto")],
    "energy2d": [("energy2d", "star"), ("energy2d", "acyclic")],
}


def pick_device(kind: str):
    """The JAX device to run on: ``gpu``, ``cpu`` or ``auto`` (a GPU where there is one)."""
    import jax

    if kind == "cpu":
        return jax.devices("cpu")[0]
    try:
        gpus = jax.devices("gpu")
    except RuntimeError:
        gpus = []
    if gpus:
        return gpus[0]
    if kind == "gpu":
        raise SystemExit("no GPU visible to JAX (install jax[cuda12] and check nvidia-smi)")
    return jax.devices("cpu")[0]


def _block(out):
    import jax

    return jax.block_until_ready(out)


def _interleaved(fns: dict, repeats: int, budget_s: float) -> dict:
    """Median, min, max (ms) of each callable, timed in turn, call after call."""
    samples: dict[str, list[float]] = {k: [] for k in fns}
    t_end = time.perf_counter() + budget_s
    while True:
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - t)
        done = min(len(s) for s in samples.values())
        if done >= repeats and time.perf_counter() > t_end:
            break
        if done >= 50 * repeats:
            break
    return {k: (1e3 * statistics.median(s), 1e3 * min(s), 1e3 * max(s)) for k, s in samples.items()}


def check_case(family: str, kind: str, n: int, device, repeats: int, budget_s: float, rtol: float):
    import jax
    import pytensor
    import scipy.sparse as sp

    import sparsediff as sd
    from sparsediff import problems
    from sparsediff.backends.jax_function import jax_callable

    row: dict = {"problem": family, "kind": kind, "n_req": n, "device": str(device)}
    t0 = time.perf_counter()
    p = problems.from_size(family, n)
    if p.kind == "hessian":
        plan = sd.hessian_plan(p.expression, p.x, kind=kind)
    else:
        plan = sd.jacobian_plan(p.expression, p.x)
    D = plan.build()
    row.update(n=p.n, colors=int(plan.n_colors), plan_build_s=time.perf_counter() - t0)

    t0 = time.perf_counter()
    fJ = jax_callable(pytensor.function([p.x], D, mode="JAX"))
    fr = jax_callable(pytensor.function([p.x], p.expression, mode="JAX"))
    x_host = p.x0 + np.random.default_rng(0).uniform(0.0, 0.1, p.n)
    x = jax.device_put(x_host, device)
    J = _block(fJ(x))
    _block(fr(x))
    row["compile_first_call_s"] = time.perf_counter() - t0
    row["out_device"] = str(next(iter(J.data.devices())))

    got = sp.csr_array(
        (np.asarray(J.data), np.asarray(J.indices), np.asarray(J.indptr)), shape=tuple(J.shape)
    )
    ref = p.jacobian(x_host)  # analytic, NumPy, on the CPU
    ref.sort_indices()
    got.sort_indices()
    same_structure = np.array_equal(got.indptr, ref.indptr) and np.array_equal(
        got.indices, ref.indices
    )
    scale = max(float(np.abs(ref.data).max()), 1e-300)
    err = float(np.abs(got.data - ref.data).max()) / scale if same_structure else float("inf")
    row.update(nnz=int(ref.nnz), rel_err=err, ok=bool(same_structure and err <= rtol))
    if not row["ok"]:
        row["error"] = "structure differs" if not same_structure else f"rel. error {err:.2e}"
        return row

    times = _interleaved(
        {"J": lambda: _block(fJ(x)), "r": lambda: _block(fr(x))}, repeats, budget_s
    )
    row.update(J_ms=times["J"], r_ms=times["r"], ratio=times["J"][0] / times["r"][0])
    return row


def _fmt_ms(t) -> str:
    med, lo, hi = t
    return f"{med:.3g} ({lo:.3g}–{hi:.3g})"


def render(rows: list[dict], header: dict) -> str:
    lines = [
        f"GPU check of sparsediff's JAX backend — {header['date']}, device: {header['device']}",
        f"({header['versions']}; {header['command']})",
        "",
        "| problem | n | colors | nnz | J ms (min–max) | residual ms | J / r | max rel. err |"
        " build s | compile+1st s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        name = f"{r['problem']} ({r['kind']})" if r["kind"] != "auto" else r["problem"]
        if "J_ms" not in r:
            lines.append(f"| {name} | {r.get('n', r['n_req'])} | | | FAILED: {r['error']} |||||")
            continue
        lines.append(
            f"| {name} | {r['n']} | {r['colors']} | {r['nnz']} | {_fmt_ms(r['J_ms'])} | "
            f"{_fmt_ms(r['r_ms'])} | {r['ratio']:.2f} | {r['rel_err']:.1e} | "
            f"{r['plan_build_s']:.1f} | {r['compile_first_call_s']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=("auto", "gpu", "cpu"), default="auto")
    ap.add_argument(
        "--sizes", default="full", help="'small', 'full' or approximate n, comma-separated"
    )
    ap.add_argument("--problems", default="bratu2d,energy2d")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--budget", type=float, default=2.0, help="seconds of timing per case")
    ap.add_argument("--rtol", type=float, default=1e-10)
    ap.add_argument("--json", default=None, help="also write the raw rows here")
    args = ap.parse_args(argv)

    import jax

    jax.config.update("jax_enable_x64", True)
    sizes = SIZES.get(args.sizes) or [int(float(s)) for s in args.sizes.split(",")]
    device = pick_device(args.device)
    header = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "device": f"{device.platform}: {getattr(device, 'device_kind', device)}",
        "versions": f"jax {jax.__version__}, python {platform.python_version()}",
        "command": "python -m benchmarks.gpu_check " + " ".join(argv or sys.argv[1:]),
    }
    rows = []
    for family in args.problems.split(","):
        for fam, kind in CASES[family]:
            for n in sizes:
                try:
                    row = check_case(fam, kind, n, device, args.repeats, args.budget, args.rtol)
                except Exception as exc:  # report and go on: one size failing is a result
                    row = {"problem": fam, "kind": kind, "n_req": n, "ok": False}
                    row["error"] = f"{type(exc).__name__}: {exc}"[:200].replace("\n", " ")
                rows.append(row)
                print(
                    f"[gpu_check] {fam} {kind} n≈{n}: "
                    + (f"J/r {row['ratio']:.2f}" if row.get("ok") else f"FAILED {row['error']}"),
                    file=sys.stderr,
                    flush=True,
                )
    print(render(rows, header))
    if args.json:
        Path(args.json).write_text(json.dumps({"header": header, "rows": rows}, indent=1))
    return 0 if all(r.get("ok") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
