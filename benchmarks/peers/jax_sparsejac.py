"""sparsejac (JAX): compressed forward-mode Jacobians from a *given* pattern.

sparsejac has no detection: it is given the exact (analytic) pattern, so its detection time is
zero by construction. Its coloring is NetworkX's greedy ``largest_first`` on the column
intersection graph, done when ``sparsejac.jacfwd`` is called (reported as coloring); the plan
is ``jax.jit`` of it, the first call compiles. Hessians: ``jacfwd`` of ``jax.grad`` (column
coloring, no symmetry). NetworkX is pure Python, so the tool stops at ``MAX_N``.
"""

from __future__ import annotations

import warnings

import numpy as np

from benchmarks.peers import Built, Case, Skip, too_many_entries
from benchmarks.peers.jax_asdex import bcoo_to_scipy, jax_residual
from benchmarks.peers.jax_problems import setup_jax
from benchmarks.timing import Phase

MAX_N = 120_000
#: Largest column intersection graph (an upper bound on its edges: the sum over rows of the
#: squared row counts) handed to NetworkX, which needs hundreds of bytes per edge.
MAX_EDGES = 4e6
MAX_COMPRESSED_ENTRIES = 1.2e8


def _closure_value(fn, name):
    for var, cell in zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=False):
        if var == name:
            return cell.cell_contents
    return None


def build(case: Case) -> Built:
    try:
        jax = setup_jax()
        import jax.experimental.sparse as jsparse
        import networkx  # noqa: F401 - imported before the timed coloring
        import sparsejac
    except ImportError as exc:
        raise Skip(f"not installed ({exc})") from None
    if case.n > MAX_N:
        raise Skip(f"n > {MAX_N}: NetworkX coloring (pure Python) is too slow/large")
    row_counts = np.diff(case.pattern.tocsr().indptr).astype(np.float64)
    edges = float((row_counts**2).sum())
    if edges > MAX_EDGES:
        raise Skip(
            f"column intersection graph of up to {edges:.1e} edges (> {MAX_EDGES:.0e}): "
            "too large for NetworkX"
        )
    f, x, residual = jax_residual(case)
    target = jax.grad(f) if case.hessian else f
    P = case.pattern.tocoo()
    sparsity = jsparse.BCOO(
        (np.ones(P.nnz), np.stack([P.row, P.col], axis=1).astype(np.int32)), shape=P.shape
    )
    built = Built(
        evaluate=lambda: None,
        to_scipy=bcoo_to_scipy,
        residual=residual,
        residual_key="jax",
        mode="forward (pattern given)",
        tolerance=1e-9,
    )
    built.phases["detection"] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Phase() as ph:
            jac = sparsejac.jacfwd(target, sparsity=sparsity)
        built.record("coloring", ph)
    n_colors = _closure_value(jac, "ncolors")
    built.n_colors = int(n_colors) if n_colors is not None else None
    if built.n_colors is not None:
        too_many_entries(built.n_colors, case, MAX_COMPRESSED_ENTRIES, "sparsejac")
    with Phase() as ph:
        fJ = jax.jit(jac)
    built.record("plan", ph)
    with Phase() as ph:
        fJ(x).data.block_until_ready()
    built.record("first_call", ph)

    def evaluate():
        out = fJ(x)
        out.data.block_until_ready()
        return out

    built.evaluate = evaluate
    return built


TOOLS = {"sparsejac": build}
