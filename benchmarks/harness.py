"""Benchmark harness: sparsediff against dense PyTensor, asdex, sparsejac, CasADi and SciPy.

    python -m benchmarks.harness --quick          # a few minutes: n ≈ 10³ and 10⁴
    python -m benchmarks.harness                  # full: n ≈ 10³ … 10⁶ (under an hour, 2 cores)
    python benchmarks/harness.py --problems bratu2d --sizes 1000,100000 --tools sparsediff,asdex

For every problem and size, one fresh subprocess (so peak memory and JIT caches are its own)
sets every tool up, timing each phase and its peak resident memory (detection, coloring,
plan/build, compilation, first call), checks every tool's matrix against sparsediff's (and
sparsediff's against the problem's analytic derivative) *before* timing it, then times all the
derivative evaluations and every tool's own residual evaluation interleaved, call after call,
in that one process (median and min–max over at least ``--repeats`` samples).

Writes ``benchmarks/results/latest.md`` (table + machine + command), ``latest.json`` (raw
numbers) and ``latest.png`` (log-log time against n). A missing optional tool (jax, asdex,
sparsejac, casadi, matplotlib: ``pip install -e '.[bench]'``) is reported, not fatal.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
import traceback
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import benchmarks.threads  # (one BLAS thread, set before NumPy loads)

# isort: split
import numpy as np

PROBLEM_ORDER = [
    "fd1d",
    "bratu2d",
    "brusselator2d",
    "energy2d",
    "cavity2d",
    "rectangular",
    "dense_row_col",
]
FULL_SIZES = [1_000, 10_000, 100_000, 1_000_000]
QUICK_SIZES = [1_000, 10_000]
#: Problems whose every tool needs about n colors: no point going far beyond 10⁴.
MAX_SIZE = {"dense_row_col": 10_000}
#: Problems run at these default sizes only (the driven cavity: 10⁴ and 10⁵, so that the full
#: harness does not grow by a fifth problem family at every size).
ONLY_SIZES = {"cavity2d": (10_000, 100_000)}
RESULTS = Path(__file__).resolve().parent / "results"


# --------------------------------------------------------------------------------------------
# One case, in a child process
# --------------------------------------------------------------------------------------------


def make_case(family: str, n: int):
    from benchmarks.peers import Case
    from sparsediff import problems

    problem = problems.from_size(family, n)
    if family in ("bratu2d", "energy2d", "cavity2d"):
        size = math.isqrt(problem.n)
    elif family == "brusselator2d":
        size = math.isqrt(problem.n // 2)
    else:
        size = problem.n
    rng = np.random.default_rng(0)
    x = problem.x0 + rng.uniform(0.0, 0.1, problem.n)
    params = tuple(np.asarray(v) for v in problem.param_values)
    return Case(family, size, problem, x, params, problem.pattern())


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip().replace("\n", " ")
    return text[:300]


#: Substrings of the tools that run on XLA.
JAX_TOOLS = ("jax", "asdex", "sparsejac")


def _jax_allocator_first() -> None:
    """Set glibc's policy for XLA's buffers (:mod:`sparsediff.backends.jax_memory`) before any
    tool starts XLA, as in a process that loads sparsediff's JAX backend first. Its one-arena
    part only reaches threads that have not allocated yet; applied later (when the sparsediff
    JAX tool happened to be set up after a peer), XLA's worker threads kept their own arenas and
    the large buffers of every JAX tool were faulted in again depending on the process's history
    (fd1d n = 10⁶: asdex 13–23 ms against 6.5–8 ms, sparsediff's JAX Jacobian 4.2–12 against
    3.2–3.9 ms)."""
    from sparsediff.backends.jax_memory import keep_large_buffers_in_heap

    keep_large_buffers_in_heap()


def run_case(family: str, n: int, tool_names: list[str], repeats: int, budget_s: float) -> dict:
    import warnings

    warnings.simplefilter("ignore")
    from benchmarks.peers import Skip, import_all_tools, relative_error
    from benchmarks.timing import Phase, interleaved

    if any(k in name for name in tool_names for k in JAX_TOOLS):
        _jax_allocator_first()
    t_start = time.perf_counter()
    case = make_case(family, n)
    p = case.problem
    analytic = p.jacobian(case.x, *case.params)
    out: dict = {
        "problem": family,
        "n": p.n,
        "m": p.m,
        "nnz": int(case.pattern.nnz),
        "kind": p.kind,
        "name": p.name,
        "lower_bound": _lower_bounds(case.pattern),
        "tools": {},
    }
    tools = import_all_tools()
    built_ok: dict = {}
    reference = None
    reference_tool = "analytic"
    for name in tool_names:
        row: dict = {"status": "ok"}
        out["tools"][name] = row
        try:
            built = tools[name](case)
        except Skip as exc:
            row.update(status="skipped", reason=str(exc))
            continue
        except Exception as exc:  # a tool failing is a result, not a crash of the harness
            row.update(status="error", reason=_short(exc), trace=traceback.format_exc()[-2000:])
            continue
        row.update(
            n_colors=built.n_colors,
            mode=built.mode,
            phases=built.phases,
            memory=built.memory,
            notes=built.notes,
        )
        try:
            with Phase() as ph:
                value = built.evaluate()
            row["memory"]["eval"] = ph.peak_mb
            J = built.to_scipy(value)
            row["err_analytic"] = relative_error(J, analytic)
            if reference is None and name.startswith("sparsediff"):
                if row["err_analytic"] <= 1e-9:
                    reference, reference_tool = J, name
                else:
                    row.update(status="wrong", reason="differs from the analytic derivative")
            if reference is not None and name != reference_tool:
                row["err_reference"] = relative_error(J, reference)
            row["reference"] = reference_tool
            err = row.get("err_reference", row["err_analytic"])
            if not err <= built.tolerance:
                row.update(
                    status="wrong",
                    reason=f"relative error {err:.1e} against {reference_tool} "
                    f"(tolerance {built.tolerance:.0e})",
                )
        except Exception as exc:
            row.update(status="error", reason=_short(exc), trace=traceback.format_exc()[-2000:])
        if row["status"] == "ok":
            built_ok[name] = built

    fns = {}
    residual_of = {}
    for name, built in built_ok.items():
        fns[name] = built.evaluate
        if built.residual is not None:
            key = f"residual[{built.residual_key or name}]"
            fns.setdefault(key, built.residual)
            residual_of[name] = key
    if fns:
        stats = interleaved(fns, repeats=repeats, budget_s=budget_s)
        out["residuals"] = {k: s.as_dict() for k, s in stats.items() if k.startswith("residual[")}
        for name in built_ok:
            row = out["tools"][name]
            row["eval"] = stats[name].as_dict()
            if name in residual_of:
                r = stats[residual_of[name]]
                row["residual"] = r.as_dict()
                row["residual_key"] = residual_of[name]
                row["ratio"] = stats[name].median / r.median
    out["wall_s"] = time.perf_counter() - t_start
    return out


def _lower_bounds(P) -> dict:
    """Most nonzeros in a row (any column coloring needs that many) and in a column (rows)."""
    if P.nnz == 0:
        return {"forward": 0, "reverse": 0}
    return {
        "forward": int(np.diff(P.tocsr().indptr).max()),
        "reverse": int(np.diff(P.tocsc().indptr).max()),
    }


# --------------------------------------------------------------------------------------------
# The driver
# --------------------------------------------------------------------------------------------


def tool_list(selection: str | None) -> list[str]:
    from benchmarks.peers import import_all_tools

    names = list(import_all_tools())
    if not selection:
        return names
    wanted = [s.strip().lower() for s in selection.split(",") if s.strip()]
    chosen = [n for n in names if any(w in n.lower() for w in wanted)]
    if not chosen:
        raise SystemExit(f"no tool matches {selection!r}; tools: {', '.join(names)}")
    return chosen


def _child_rss_gib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 2**20
    except (OSError, ValueError):
        pass
    return 0.0


def run_child(family, n, tools, repeats, budget_s, timeout_s, max_memory_gib) -> dict:
    """Run one case in a subprocess; kill it past ``timeout_s`` or ``max_memory_gib`` RSS."""
    import tempfile

    cmd = [
        sys.executable,
        "-m",
        "benchmarks.harness",
        "--child",
        f"{family}:{n}",
        "--tools",
        ";".join(tools),  # tool names may hold commas
        "--repeats",
        str(repeats),
        "--budget",
        str(budget_s),
    ]
    root = Path(__file__).resolve().parent.parent
    env = os.environ.copy()
    env["PYTHONPATH"] = str(root) + os.pathsep + env.get("PYTHONPATH", "")
    t0 = time.perf_counter()
    killed = None
    peak = 0.0
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, cwd=root, env=env)
        while proc.poll() is None:
            time.sleep(0.25)
            peak = max(peak, _child_rss_gib(proc.pid))
            if peak > max_memory_gib:
                killed = f"killed: resident memory above {max_memory_gib:g} GiB"
            elif time.perf_counter() - t0 > timeout_s:
                killed = f"timed out after {timeout_s:.0f} s"
            if killed:
                proc.kill()
                proc.wait()
                break
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    wall = time.perf_counter() - t0
    if killed:
        return {"problem": family, "n": n, "error": killed, "wall_s": wall}
    lines = [ln for ln in stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = (stderr or stdout).strip().splitlines()[-4:]
        return {
            "problem": family,
            "n": n,
            "error": f"exit {proc.returncode}: " + " / ".join(tail),
            "wall_s": wall,
        }
    res = json.loads(lines[-1][len("RESULT ") :])
    res["peak_rss_gib"] = peak
    return res


def run_tools_apart(family, n, tools, repeats, budget_s, timeout_s, max_memory_gib, why) -> dict:
    """The case again with one process per tool, after its shared process was killed (``why``).

    A dense tool's n² memory at n = 10⁴ (the driven cavity, the dense row and column) passed
    the memory cap of the process holding every tool and lost every tool's row; run apart,
    each tool keeps its own row, timed against its own residual in its own process, and only
    the one that passes the cap alone is marked. The result says so (``"apart"``), and the
    tables mark the case: its times come from different processes."""
    merged: dict | None = None
    rows: dict = {}
    residuals: dict = {}
    peak, wall = 0.0, 0.0
    for tool in tools:
        res = run_child(family, n, [tool], repeats, budget_s, timeout_s, max_memory_gib)
        wall += res.get("wall_s", 0.0)
        peak = max(peak, res.get("peak_rss_gib", 0.0))
        if "error" in res:
            rows[tool] = {"status": "error", "reason": f"{res['error']} (run alone)"}
            continue
        if merged is None:
            merged = res
        rows[tool] = res["tools"][tool]
        for key, stats in res.get("residuals", {}).items():
            residuals.setdefault(key, stats)  # the first tool's (sparsediff's) process
    if merged is None:
        return {"problem": family, "n": n, "error": f"{why}; every tool alone failed too"}
    merged.update(tools=rows, residuals=residuals, peak_rss_gib=peak, wall_s=wall, apart=why)
    return merged


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = None
    try:
        with open("/proc/meminfo") as fh:
            mem = int(fh.readline().split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        pass
    versions = {}
    for mod in ("numpy", "scipy", "pytensor", "numba", "jax", "asdex", "sparsejac", "casadi"):
        try:
            from importlib.metadata import version

            versions[mod] = version(mod)
        except Exception:
            versions[mod] = "not installed"
    try:
        import sparsediff

        versions["sparsediff"] = sparsediff.__version__
    except Exception:
        versions["sparsediff"] = "not importable"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem, 1) if mem else None,
        "python": platform.python_version(),
        "versions": versions,
        "load_avg": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "blas_threads": benchmarks.threads.blas_threads(),
    }


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def _s(v, digits=2):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{v:.{digits}f}"


def _ms(v):
    if v is None:
        return "–"
    v *= 1e3
    if v >= 100:
        return f"{v:.0f}"
    if v >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def _mib(v):
    return "–" if v is None or not math.isfinite(v) else f"{v:.0f}"


def summary(results: list[dict]) -> str:
    """One row per problem and size: each tool's median J in ms, and × its own residual."""
    names: list[str] = []
    for res in results:
        for name in res.get("tools", {}):
            if name not in names:
                names.append(name)
    short = {n: n.replace("dense pt.jacobian", "dense").replace("sparsediff", "sd") for n in names}
    lines = [
        "| problem | n | nnz | colors sd (lb) | residual ms (C) | "
        + " | ".join(short[n] for n in names)
        + " |",
        "|---|---:|---:|---|---:|" + "---:|" * len(names),
    ]
    for res in results:
        if "error" in res:
            lines.append(f"| {res['problem']} | {res['n']} | run failed: {res['error']} |")
            continue
        lb = res["lower_bound"]
        sd_row = next(
            (r for k, r in res["tools"].items() if k.startswith("sparsediff") and "n_colors" in r),
            None,
        )
        colors = "–"
        if sd_row is not None:
            mode = sd_row.get("mode") or ""
            bound = lb["reverse"] if mode.startswith("reverse") else lb["forward"]
            colors = f"{sd_row['n_colors']} ({bound})"
        resid = res.get("residuals", {}).get("residual[pytensor-c]")
        cells = []
        for name in names:
            row = res["tools"].get(name)
            if row is None:
                cells.append("")
            elif row["status"] == "ok":
                ratio = f" (×{row['ratio']:.1f})" if "ratio" in row else ""
                cells.append(_ms(row["eval"]["median"]) + ratio)
            elif row["status"] == "skipped":
                cells.append("–")
            else:
                cells.append(row["status"])
        mark = "*" if res.get("apart") else ""
        lines.append(
            f"| {res['problem']} | {res['n']}{mark} | {res['nnz']} | {colors} "
            f"| {_ms(resid['median']) if resid else '–'} | " + " | ".join(cells) + " |"
        )
    if any(res.get("apart") for res in results):
        lines += [
            "",
            "\\* one process per tool: the process holding every tool was killed "
            "(resident memory above the cap); each time is against the tool's own residual in "
            "its own process.",
        ]
    return "\n".join(lines)


def _blas_threads_line(threads: dict | None) -> str:
    if not threads:
        return "not recorded"
    values = set(threads.values())
    if len(values) == 1:
        return f"{values.pop()} ({', '.join(threads)})"
    return ", ".join(f"{k}={v}" for k, v in threads.items())


def header(meta: dict) -> list[str]:
    """Where, when and how the numbers were measured."""
    return [
        f"Measured {meta['date']} on {meta['machine']['cpu']} ({meta['machine']['cores']} cores, "
        f"{meta['machine']['memory_gib']} GiB), Python {meta['machine']['python']}; "
        + ", ".join(f"{k} {v}" for k, v in meta["machine"]["versions"].items())
        + ".",
        "",
        f"BLAS threads: {_blas_threads_line(meta['machine'].get('blas_threads'))}.",
        "",
        "XLA's buffers: a case process that runs a JAX tool sets glibc's mmap/trim thresholds "
        "and one malloc arena before any tool starts XLA (`sparsediff.backends.jax_memory`, "
        "what a process that loads sparsediff's JAX backend first gets); every tool of that "
        "process runs under it.",
        "",
        f"Command: `{meta['command']}` ({meta['wall_min']:.1f} min; load average at the start "
        f"{meta['load_start']}, at the end {meta['load_end']}).",
        "",
        "Median time per Jacobian (Hessian) evaluation in ms, and in parentheses the ratio to "
        "the same tool's own residual (cost) evaluation; – : not run (see the list at the end).",
    ]


def markdown(results: list[dict], meta: dict) -> str:
    lines = [
        *header(meta),
        "",
        summary(results),
        "",
        "All phases:",
        "",
        "| problem | n | tool | mode | colors (lb) | detect s | color s | plan+compile s "
        "| first call s | J ms: median [min–max] | own residual ms | J / r "
        "| peak MiB detect / setup / eval | rel. error |",
        "|---|---:|---|---|---|---:|---:|---:|---:|---|---:|---:|---|---:|",
    ]
    skipped = []
    for res in results:
        if "error" in res:
            lines.append(f"| {res['problem']} | {res['n']} | all | run failed: {res['error']} |")
            continue
        lb = res["lower_bound"]
        for name, row in res["tools"].items():
            if row["status"] != "ok":
                skipped.append(
                    f"- {res['problem']} n={res['n']}, {name}: {row['status']}: "
                    f"{row.get('reason', '')}"
                )
                continue
            ph, mem = row["phases"], row["memory"]
            mode = row.get("mode") or ""
            if res["kind"] == "hessian":
                bound = lb["forward"]
            else:
                bound = lb["reverse"] if mode.startswith("reverse") else lb["forward"]
            colors = f"{row['n_colors']} ({bound})" if row.get("n_colors") is not None else "–"
            setup = sum(ph.get(k, 0.0) for k in ("plan", "build", "compile"))
            setup_mem = max(
                [mem.get(k, 0.0) for k in ("plan", "build", "compile", "first_call")] or [0.0]
            )
            ev = row["eval"]
            res_ms = _ms(row["residual"]["median"]) if "residual" in row else "–"
            ratio = f"{row['ratio']:.1f}" if "ratio" in row else "–"
            err = row.get("err_reference", row.get("err_analytic"))
            lines.append(
                f"| {res['problem']} | {res['n']} | {name} | {mode} | {colors} "
                f"| {_s(ph.get('detection'))} | {_s(ph.get('coloring'), 3)} | {_s(setup)} "
                f"| {_s(ph.get('first_call'), 3)} "
                f"| {_ms(ev['median'])} [{_ms(ev['min'])}–{_ms(ev['max'])}] | {res_ms} | {ratio} "
                f"| {_mib(mem.get('detection'))} / {_mib(setup_mem)} / {_mib(mem.get('eval'))} "
                f"| {err:.0e} |"
            )
    lines += [
        "",
        "Columns: *colors (lb)*: Jacobian-vector products per evaluation (JVPs, VJPs, HVPs or "
        "finite differences; n for the dense tools) and the lower bound for that direction "
        "(most nonzeros in a row for forward/column colorings, in a column for reverse; for "
        "star colorings of Hessians the most nonzeros in a row is shown for reference). "
        "*detect s* is zero for tools that are given the pattern (sparsejac, SciPy). "
        "*plan+compile s*: coloring excluded, building the derivative graph and compiling it. "
        "*first call* includes JIT compilation (Numba, XLA). *J ms* is the steady evaluation "
        "in the tool's own output format (SciPy CSR for sparsediff and SciPy, dense ndarray, "
        "BCOO for JAX peers, CasADi DM), timed interleaved with every other tool and "
        "residual in one process. *own residual*: the same function in the same tool "
        "(compiled PyTensor function in that backend, jitted JAX, CasADi Function, NumPy); "
        "*J / r* their ratio. *peak MiB*: peak resident memory above the phase's start, "
        "during detection, during setup (plan, build, compile, first call) and during one "
        "evaluation. *rel. error*: max |J − J_ref| / max |J_ref| against sparsediff's matrix "
        "(sparsediff's own row: against the analytic derivative).",
    ]
    if skipped:
        lines += ["", "Not run:", "", *skipped]
    return "\n".join(lines) + "\n"


README = RESULTS.parent.parent / "README.md"
README_PLOT = Path("docs") / "benchmarks.png"  # relative to the README
README_START = "<!-- harness:start -->"
README_END = "<!-- harness:end -->"


def update_readme(results: list[dict], meta: dict, png: Path, readme: Path = README) -> str:
    """Put the summary table (with its date, machine and command) and the plot in the README.

    The table replaces what lies between the ``harness:start``/``harness:end`` markers; the
    plot is copied to ``docs/benchmarks.png``, which the README shows.
    """
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        raise SystemExit(f"{readme} has no {README_START} … {README_END} markers")
    lines = header(meta)
    lines[-1] = lines[-1].replace(" (see the list at the end)", "")
    block = "\n".join(
        [
            README_START,
            *lines,
            "",
            summary(results),
            "",
            f"![Evaluation time against n]({README_PLOT.as_posix()})",
            "",
            "All phases (detection, coloring, compile, first call, peak memory, errors): the "
            "`.md` the command writes under `benchmarks/results/`.",
            README_END,
        ]
    )
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(head + block + tail)
    if not png.exists():
        return f"updated {readme} (no plot to copy)"
    target = readme.parent / README_PLOT
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(png.read_bytes())
    return f"updated {readme} and {target}"


def plot(results: list[dict], path: Path) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib not installed: no plot"
    families = [f for f in PROBLEM_ORDER if any(r.get("problem") == f for r in results)]
    if not families:
        return "nothing to plot"
    cols = min(3, len(families))
    rows = math.ceil(len(families) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 4.2 * rows), squeeze=False)
    styles: dict[str, dict] = {}
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, family in zip(axes.ravel(), families, strict=False):
        series: dict[str, list] = {}
        residual: dict[int, float] = {}
        for res in results:
            if res.get("problem") != family or "tools" not in res:
                continue
            for name, row in res["tools"].items():
                if row.get("status") == "ok":
                    series.setdefault(name, []).append((res["n"], row["eval"]["median"]))
            key = "residual[pytensor-c]"
            if key in res.get("residuals", {}):
                residual[res["n"]] = res["residuals"][key]["median"]
        for name, pts in series.items():
            pts.sort()
            if name not in styles:
                i = len(styles)
                styles[name] = {
                    "color": palette[i % len(palette)],
                    "marker": "os^vD<>ph*"[i % 10],
                    "linestyle": "-" if name.startswith("sparsediff") else "--",
                    "linewidth": 2.2 if name.startswith("sparsediff") else 1.2,
                }
            ax.loglog(*zip(*pts, strict=True), label=name, **styles[name])
        if residual:
            pts = sorted(residual.items())
            ax.loglog(*zip(*pts, strict=True), color="k", linestyle=":", label="residual (C)")
        ax.set_title(family)
        ax.set_xlabel("n (unknowns)")
        ax.set_ylabel("seconds per evaluation")
        ax.grid(True, which="both", alpha=0.3)
    for ax in axes.ravel()[len(families) :]:
        ax.axis("off")
    handles, labels = [], []
    for ax in axes.ravel():
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=min(6, len(labels)), fontsize=8)
    fig.suptitle("Sparse Jacobian / Hessian evaluation time (median), log-log")
    fig.tight_layout(rect=(0, 0.07 + 0.02 * math.ceil(len(labels) / 6), 1, 0.96))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.harness",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--quick", action="store_true", help="n ≈ 10³ and 10⁴ only (a few minutes)")
    ap.add_argument("--problems", default=",".join(PROBLEM_ORDER))
    ap.add_argument("--sizes", default=None, help="approximate n, comma-separated")
    ap.add_argument("--tools", default=None, help="substrings of tool names, comma-separated")
    ap.add_argument("--repeats", type=int, default=7, help="timing samples per tool (≥ 7)")
    ap.add_argument("--budget", type=float, default=None, help="seconds of timing per case")
    ap.add_argument("--timeout", type=float, default=None, help="seconds per case (process)")
    ap.add_argument(
        "--max-memory", type=float, default=10.0, help="GiB of RSS per case before it is killed"
    )
    ap.add_argument("--out", default=str(RESULTS / "latest"), help="path stem of the outputs")
    ap.add_argument("--list", action="store_true", help="list the tools and exit")
    ap.add_argument("--render", default=None, help="rewrite .md and .png from this .json")
    ap.add_argument(
        "--readme",
        action="store_true",
        help="also put the summary table and plot in README.md (between its harness markers)",
    )
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.list:
        from benchmarks.peers import import_all_tools

        print("\n".join(import_all_tools()))
        return 0
    if args.render:
        data = json.loads(Path(args.render).read_text())
        stem = Path(args.render).with_suffix("")
        stem.with_suffix(".md").write_text(markdown(data["results"], data["meta"]))
        note = plot(data["results"], stem.with_suffix(".png"))
        print(f"wrote {stem.with_suffix('.md')}" + (f" ({note})" if note else ", .png"))
        if args.readme:
            print(update_readme(data["results"], data["meta"], stem.with_suffix(".png")))
        return 0
    budget = args.budget if args.budget is not None else (3.0 if args.quick else 15.0)
    if args.child:
        family, n = args.child.split(":")
        tools = [t for t in args.tools.split(";") if t]
        res = run_case(family, int(n), tools, max(1, args.repeats), budget)
        print("RESULT " + json.dumps(res, default=float))
        return 0

    tools = tool_list(args.tools)
    families = [f.strip() for f in args.problems.split(",") if f.strip()]
    unknown = set(families) - set(PROBLEM_ORDER)
    if unknown:
        ap.error(f"unknown problems {sorted(unknown)}; known: {', '.join(PROBLEM_ORDER)}")
    if args.sizes:
        sizes = [int(float(s)) for s in args.sizes.split(",")]
    else:
        sizes = QUICK_SIZES if args.quick else FULL_SIZES
    timeout = args.timeout or (240.0 if args.quick else 900.0)
    out_stem = Path(args.out)
    out_stem.parent.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    load_start = _load()
    results = []
    for family in families:
        for n in sizes:
            if n > MAX_SIZE.get(family, math.inf) and not args.sizes:
                continue
            if family in ONLY_SIZES and n not in ONLY_SIZES[family] and not args.sizes:
                continue
            print(f"[harness] {family} n≈{n} ...", file=sys.stderr, flush=True)
            res = run_child(family, n, tools, args.repeats, budget, timeout, args.max_memory)
            if res.get("error", "").startswith("killed") and len(tools) > 1:
                print(f"[harness]   {res['error']}: again, one tool per process", file=sys.stderr)
                res = run_tools_apart(
                    family, n, tools, args.repeats, budget, timeout, args.max_memory, res["error"]
                )
            results.append(res)
            _progress(res)
    meta = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "command": shlex.join(
            ["python", "-m", "benchmarks.harness", *(sys.argv[1:] if argv is None else argv)]
        ),
        "wall_min": (time.perf_counter() - started) / 60,
        "load_start": load_start,
        "load_end": _load(),
    }
    text = markdown(results, meta)
    out_stem.with_suffix(".md").write_text(text)
    out_stem.with_suffix(".json").write_text(
        json.dumps({"meta": meta, "results": results}, indent=1, default=float)
    )
    note = plot(results, out_stem.with_suffix(".png"))
    print(text)
    print(f"wrote {out_stem.with_suffix('.md')}, .json" + ("" if note else ", .png"))
    if note:
        print(note)
    if args.readme:
        print(update_readme(results, meta, out_stem.with_suffix(".png")))
    return 0


def _load() -> str:
    if not hasattr(os, "getloadavg"):
        return "?"
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def _progress(res: dict) -> None:
    if "error" in res:
        print(f"[harness]   failed: {res['error']}", file=sys.stderr, flush=True)
        return
    parts = []
    for name, row in res["tools"].items():
        if row["status"] == "ok":
            parts.append(f"{name} {row['eval']['median'] * 1e3:.3g} ms")
        else:
            parts.append(f"{name} {row['status']}")
    print(f"[harness]   n={res['n']} ({res['wall_s']:.0f} s): " + "; ".join(parts), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
