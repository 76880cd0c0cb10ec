"""sparsediff itself, on PyTensor's Numba (default), C (``CVM``) and JAX backends.

Detection (``jacobian_sparsity`` / ``hessian_sparsity``), the plan (coloring, mode, positions)
and the symbolic build are shared by the three backends of one case and reported on each row;
compilation and the first call are per backend. The residual is compiled in the same backend.
On JAX both the Jacobian and the residual are timed as jitted JAX functions
(``sparsediff.backends.jax_function.jax_callable``) on a ``jax.Array``, as the JAX peers are:
calling the PyTensor function instead adds its input filter and output wrapping (about 30 µs
for the residual and 50 µs for a Jacobian at n = 10³ here), which is not sparsediff's work.

``sparsediff[c,bidirectional]`` forces ``mode="bidirectional"`` (a star bicoloring: JVPs for
the column colors, VJPs for the row colors) on the C backend, so that its product count shows
next to the default plan's on every Jacobian problem (Hessian problems skip it).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from benchmarks.peers import Built, Case, Skip, too_many_entries
from benchmarks.timing import Phase

#: Largest compressed matrix (colors × the longer side) the harness lets sparsediff build.
MAX_COMPRESSED_ENTRIES = 1.2e8

BACKENDS = {"c": "CVM", "numba": None, "jax": "JAX"}

_shared: dict[int, dict] = {}


def available() -> str | None:
    try:
        import sparsediff

        sparsediff.jacobian_plan  # noqa: B018
        sparsediff.hessian_plan  # noqa: B018
    except (ImportError, AttributeError) as exc:
        return f"not available yet ({exc})"
    return None


def _plan(case: Case, mode: str = "auto") -> dict:
    """Detect, plan and build once per case (and mode); every backend reuses it."""
    key = (id(case), mode)
    if key in _shared:
        return _shared[key]
    if len(_shared) > 4:
        _shared.clear()
    import sparsediff as sd

    p = case.problem
    phases: dict[str, float] = {}
    memory: dict[str, float] = {}
    with Phase() as ph:
        if case.hessian:
            pattern = sd.hessian_sparsity(p.expression, p.x)
        else:
            pattern = sd.jacobian_sparsity(p.expression, p.x)
    phases["detection"], memory["detection"] = ph.seconds, ph.peak_mb
    with Phase() as ph:
        if case.hessian:
            plan = sd.hessian_plan(p.expression, p.x, sparsity=pattern)
        else:
            plan = sd.jacobian_plan(p.expression, p.x, mode=mode, sparsity=pattern)
    coloring_s = float(plan.timings.get("coloring", np.nan))
    phases["coloring"] = coloring_s
    phases["plan"] = ph.seconds - coloring_s
    memory["plan"] = ph.peak_mb
    if case.hessian:
        mode = "dense" if plan.dense else plan.kind
    elif plan.mode == "bidirectional":
        mode = f"bidirectional ({plan.n_jvps} JVP + {plan.n_vjps} VJP)"
    else:
        mode = ("dense " if plan.dense else "") + plan.mode
    entry = {"plan": plan, "phases": phases, "memory": memory, "mode": mode, "error": None}
    _shared[key] = entry
    try:
        width = case.n if plan.dense else plan.n_colors
        too_many_entries(width, case, MAX_COMPRESSED_ENTRIES, "sparsediff")
        with Phase() as ph:
            try:
                J = plan.build()
            except MemoryError as exc:  # sparsediff's own guard against huge compressed matrices
                raise Skip(f"sparsediff: {exc}") from None
        phases["build"], memory["build"] = ph.seconds, ph.peak_mb
        entry["J"] = J
        if case.hessian:
            mode = f"{plan.kind}, {plan.method_used}" if not plan.dense else "dense"
            entry["mode"] = mode
    except Skip as exc:
        entry["error"] = exc
    return entry


def _block(out):
    """Wait for JAX's asynchronous results (no-op for NumPy/SciPy outputs)."""
    data = getattr(out, "data", None)
    if hasattr(data, "block_until_ready"):
        data.block_until_ready()
    elif hasattr(out, "block_until_ready"):
        out.block_until_ready()
    return out


def _to_scipy(out):
    if sp.issparse(out):
        return sp.csr_array(out)
    if hasattr(out, "indptr") and hasattr(out, "indices"):  # jax.experimental.sparse.BCSR
        return sp.csr_array(
            (np.asarray(out.data), np.asarray(out.indices), np.asarray(out.indptr)),
            shape=tuple(out.shape),
        )
    if hasattr(out, "todense"):
        return sp.csr_array(np.asarray(out.todense()))
    return sp.csr_array(np.asarray(out))


def _builder(backend: str, mode: str = "auto"):
    pt_mode = BACKENDS[backend]

    def build(case: Case) -> Built:
        reason = available()
        if reason:
            raise Skip(reason)
        if backend == "jax":
            try:
                import jax  # noqa: F401
            except ImportError as exc:
                raise Skip(f"jax not installed ({exc})") from None
        import pytensor

        if mode != "auto" and case.hessian:
            raise Skip(f"mode={mode!r} is for Jacobians")
        entry = _plan(case, mode)
        plan = entry["plan"]
        if entry["error"] is not None:
            raise Skip(str(entry["error"]))
        p = case.problem
        inputs = [p.x, *p.params]
        args = [case.x, *case.params]
        built = Built(
            evaluate=lambda: None,
            to_scipy=_to_scipy,
            n_colors=int(plan.n_colors),
            mode=entry["mode"],
            phases=dict(entry["phases"]),
            memory=dict(entry["memory"]),
            residual_key=f"pytensor-{backend}",
            tolerance=1e-9,
        )
        with Phase() as ph:
            fJ = pytensor.function(inputs, entry["J"], mode=pt_mode)
        built.record("compile", ph)
        with Phase() as ph:
            _block(fJ(*args))
        built.record("first_call", ph)
        fr = pytensor.function(inputs, p.expression, mode=pt_mode)
        _block(fr(*args))
        if backend == "jax":  # jitted, as the JAX peers are timed
            import jax.numpy as jnp

            from sparsediff.backends.jax_function import jax_callable

            fJ, fr = jax_callable(fJ), jax_callable(fr)
            args = [jnp.asarray(a) for a in args]
            _block(fJ(*args))
            _block(fr(*args))
        built.evaluate = lambda: _block(fJ(*args))
        built.residual = lambda: _block(fr(*args))
        return built

    return build


TOOLS = {f"sparsediff[{b}]": _builder(b) for b in ("c", "numba", "jax")}
TOOLS["sparsediff[c,bidirectional]"] = _builder("c", "bidirectional")
