"""asdex (JAX): jaxpr-level sparsity detection, greedy coloring, compressed JVPs/VJPs/HVPs.

Phases: ``jacobian_sparsity`` / ``hessian_sparsity`` (detection), ``*_coloring_from_sparsity``
(coloring; asdex picks forward or reverse by the color counts, star coloring for Hessians),
``jax.jit(*_from_coloring(f, coloring))`` (plan), the first call (XLA compilation). The timed
call returns asdex's native BCOO and waits for it (``block_until_ready``); converting to SciPy
is not timed.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp

from benchmarks.peers import Built, Case, Skip, too_many_entries
from benchmarks.peers.jax_problems import FUNCTIONS, setup_jax
from benchmarks.timing import Phase

MAX_COMPRESSED_ENTRIES = 1.2e8


def bcoo_to_scipy(out) -> sp.csr_array:
    idx = np.asarray(out.indices)
    return sp.csr_array(
        sp.coo_array((np.asarray(out.data), (idx[:, 0], idx[:, 1])), shape=tuple(out.shape))
    )


def jax_residual(case: Case):
    """The jitted JAX residual (shared by the JAX peers) and the point on the device."""
    jax = setup_jax()
    import jax.numpy as jnp

    f = FUNCTIONS[case.family](case.size)
    x = jnp.asarray(case.x)
    fr = jax.jit(f)
    fr(x).block_until_ready()
    return f, x, (lambda: fr(x).block_until_ready())


def build(case: Case) -> Built:
    try:
        jax = setup_jax()
        import asdex
    except ImportError as exc:
        raise Skip(f"not installed ({exc})") from None
    f, x, residual = jax_residual(case)
    built = Built(
        evaluate=lambda: None,
        to_scipy=bcoo_to_scipy,
        residual=residual,
        residual_key="jax",
        tolerance=1e-9,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DenseColoringWarning: reported by the color count
        with Phase() as ph:
            if case.hessian:
                sparsity = asdex.hessian_sparsity(f, x)
            else:
                sparsity = asdex.jacobian_sparsity(f, x)
        built.record("detection", ph)
        with Phase() as ph:
            if case.hessian:
                coloring = asdex.hessian_coloring_from_sparsity(sparsity)
            else:
                coloring = asdex.jacobian_coloring_from_sparsity(sparsity)
        built.record("coloring", ph)
    built.n_colors = int(coloring.num_colors)
    built.mode = {"fwd": "forward", "rev": "reverse"}.get(coloring.mode, coloring.mode)
    if case.hessian:
        built.mode = f"star, {coloring.mode}"
    too_many_entries(built.n_colors, case, MAX_COMPRESSED_ENTRIES, "asdex")
    with Phase() as ph:
        if case.hessian:
            fJ = jax.jit(asdex.hessian_from_coloring(f, coloring))
        else:
            fJ = jax.jit(asdex.jacobian_from_coloring(f, coloring))
    built.record("plan", ph)
    with Phase() as ph:
        fJ(x).data.block_until_ready()
    built.record("first_call", ph)
    built.evaluate = _evaluator(fJ, x)
    return built


def _evaluator(fJ, x):
    def evaluate():
        out = fJ(x)
        out.data.block_until_ready()
        return out

    return evaluate


TOOLS = {"asdex": build}
