"""JAX conversion of a scatter with constant, distinct indices as a gather.

sparsediff's decompression graphs place compressed values at plan-time positions with
``AdvancedIncSubtensor1`` (``x[idx] = y`` or ``x[idx] += y``, ``idx`` a constant). PyTensor converts
it to ``x.at[idx].set(y)``, an XLA scatter, which XLA's CPU backend runs element by element with
bounds and collision handling. When ``idx`` is constant with distinct entries, the same result
is a gather over ``x``'s positions: ``x + where(hit, y[src], 0)`` for an increment,
``where(hit, y[src], x)`` for a set, with ``src``/``hit`` computed once at conversion. That reads
every position of ``x``: for an increment (XLA's slowest scatter) it pays; for a set it is
chosen only when ``y`` covers at least :data:`MIN_COVER` of ``x`` (a sparse set, like
bratu2d's, is faster as XLA's scatter). Measured in one process, interleaved, one thread: the 2-D
Brusselator Jacobian (its decompression increments) 74 → 34 ms at n = 10⁶, 1.6 → 1.2 ms at
n = 10⁵. Any other case (non-constant or repeated indices, broadcasting, more dimensions) keeps
PyTensor's conversion. The results are identical. The row-block form
(:mod:`sparsediff.backends.jax_blocks`) is tried first: where it applies it is faster than both.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MIN_COVER", "register_scatter_as_gather"]

#: Use the gather form when ``len(y) >= MIN_COVER * len(x)``.
MIN_COVER = 0.5
_registered = False


def constant_indices(node) -> tuple[int, np.ndarray] | None:
    """``(n, idx)`` of a 1-D ``AdvancedIncSubtensor1`` with constant indices, all in bounds
    (negative ones wrapped, int64), or None: out-of-bounds indices keep PyTensor's own
    conversion (PyTensor raises, JAX would clip)."""
    from pytensor.graph.basic import Constant

    x_var, y_var, idx_var = node.inputs
    if not isinstance(idx_var, Constant) or x_var.type.ndim != 1 or y_var.type.ndim != 1:
        return None
    n = x_var.type.shape[0]
    idx = np.asarray(idx_var.data)
    if n is None or idx.ndim != 1 or y_var.type.shape[0] != idx.size:
        return None
    idx = idx.astype(np.int64)  # first: ``idx + n`` overflows a small dtype (uint8 indices)
    idx = np.where(idx < 0, idx + n, idx)
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        return None
    return n, idx


def _gather_form(op, node):
    """The gather-form JAX function for ``node``, or None when it does not apply."""
    import jax.numpy as jnp

    found = constant_indices(node)
    if found is None:
        return None
    n, idx = found
    setting = bool(op.set_instead_of_inc)
    if setting and idx.size < MIN_COVER * n:
        return None  # a sparse "set": XLA's scatter is the faster of the two there
    src = np.full(n, -1, dtype=np.int64)
    src[idx] = np.arange(idx.size)
    hit = src >= 0
    if np.count_nonzero(hit) != idx.size:
        return None  # repeated indices: last-wins / sums, keep the scatter
    src = np.where(hit, src, 0).astype(np.int32 if idx.size < 2**31 else np.int64)
    full = bool(hit.all())

    def gathered(x, y, *_constant_index):
        g = y.at[src].get(mode="promise_in_bounds")
        if full:
            return g if setting else x + g
        if setting:
            return jnp.where(hit, g, x)
        return x + jnp.where(hit, g, jnp.zeros((), dtype=g.dtype))

    return gathered


def register_scatter_as_gather() -> None:
    """Register the conversion (imports JAX; called by ``register_jax``)."""
    global _registered
    if _registered:
        return
    _registered = True
    from pytensor.link.jax.dispatch import jax_funcify
    from pytensor.link.jax.dispatch.subtensor import jax_funcify_IncSubtensor
    from pytensor.tensor.subtensor import AdvancedIncSubtensor1

    from sparsediff.backends.jax_blocks import block_form

    @jax_funcify.register(AdvancedIncSubtensor1)
    def jax_funcify_AdvancedIncSubtensor1(op, node, **kwargs):
        return (
            block_form(op, node)
            or _gather_form(op, node)
            or jax_funcify_IncSubtensor(op, node, **kwargs)
        )
