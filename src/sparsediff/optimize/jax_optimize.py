"""JAX conversions of the optimize Ops: one ``jax.pure_callback`` each, to the host solver.

The Newton iterations, the sparse Jacobian/Hessian and the factorization run on the host in
the Op's own compiled inner function (its ``mode``; a sparse matrix cannot live in a JAX graph
anyway), exactly as on the C and Numba backends. The JAX graph holds only dense arrays: the
initial guess and parameters go in, ``(x*, success, nit, norm)`` come out; the gradient's
:class:`~sparsediff.optimize.ImplicitAdjoint` is a second callback, and the pullback of the
residual w.r.t. the parameters is an ordinary PyTensor graph that JAX compiles. Cost per call:
copying ``x`` and the parameters to NumPy and back. ``jax.grad`` of the compiled function is not
available (differentiate with ``pytensor.grad`` before compiling, as with any PyTensor graph).

Registered by :func:`sparsediff.backends.jax.register_jax`, when PyTensor's JAX dispatch is
imported.
"""

from __future__ import annotations

import numpy as np

__all__ = ["register_optimize_jax"]


def register_optimize_jax() -> None:
    import jax
    from pytensor.link.jax.dispatch import jax_funcify

    from sparsediff.optimize._core import ImplicitAdjoint, OptimizeOp

    def _structs(node):
        return tuple(
            jax.ShapeDtypeStruct(tuple(int(s) for s in out.type.shape or ()), out.type.dtype)
            for out in node.outputs
        )

    @jax_funcify.register(OptimizeOp)
    @jax_funcify.register(ImplicitAdjoint)
    def jax_funcify_optimize(op, node=None, **kwargs):
        structs = _structs(node)
        for out in node.outputs:
            if getattr(out.type, "shape", ()) and any(s is None for s in out.type.shape):
                raise NotImplementedError(f"{op}: JAX needs static output shapes")

        def host(*inputs):
            storage = [[None] for _ in node.outputs]
            op.perform(node, [np.asarray(v) for v in inputs], storage)
            return tuple(
                np.asarray(s[0], dtype=st.dtype).reshape(st.shape)
                for s, st in zip(storage, structs, strict=True)
            )

        def optimize_callback(*inputs):
            out = jax.pure_callback(host, structs, *inputs, vmap_method="sequential")
            return out if len(out) > 1 else out[0]

        return optimize_callback
