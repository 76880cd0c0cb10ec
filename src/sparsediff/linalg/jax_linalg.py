"""JAX conversions of the linalg Ops: ``jax.pure_callback`` to the host factorization.

A sparse variable cannot exist in a JAX graph, but our Ops take the CSR triple, so a JAX graph
holds only dense arrays. Each Op becomes one ``jax.pure_callback`` that runs the same ``perform``
on the host (SuperLU / CHOLMOD / qdldl; JAX has no exact sparse factorization on CPU — its
``jax.experimental.sparse.linalg.spsolve`` is itself a SciPy callback that refactors on every
call). Cost per call: copying ``data`` (nnz floats) and the right-hand sides to NumPy and the
result back, plus the factorization, which the content-keyed cache shares between the value and
its gradient as on the other backends. ``cholesky`` (a sparse output) has no JAX conversion.

Registered by :func:`sparsediff.backends.jax.register_jax`, i.e. when PyTensor's JAX dispatch is
imported, never earlier (importing sparsediff does not import JAX).
"""

from __future__ import annotations

import numpy as np

__all__ = ["register_linalg_jax"]


def register_linalg_jax() -> None:
    import jax
    from pytensor.link.jax.dispatch import jax_funcify

    from sparsediff.linalg.ops import CholeskyOp, LinalgOp

    @jax_funcify.register(LinalgOp)
    def jax_funcify_linalg(op, node=None, **kwargs):
        if isinstance(op, CholeskyOp):
            raise NotImplementedError(
                "sparsediff.linalg.cholesky returns a sparse matrix, which JAX graphs cannot "
                "hold; use the C or Numba backend"
            )
        out_type = node.outputs[0].type

        def host(*inputs):
            storage = [[None]]
            op.perform(node, [np.asarray(x) for x in inputs], storage)
            return np.asarray(storage[0][0], dtype=out_type.dtype)

        def result_shape(inputs):
            data, _indices, indptr, _shape = inputs[:4]
            if len(inputs) == 5:  # SpSolve: like b
                shp = inputs[4].shape
            elif out_type.ndim == 0:
                shp = ()
            elif op.__class__.__name__ == "InvDiag":
                shp = (indptr.shape[0] - 1,)
            else:  # InvOnPattern: like data
                shp = data.shape
            return jax.ShapeDtypeStruct(shp, out_type.dtype)

        def linalg_callback(*inputs):
            return jax.pure_callback(host, result_shape(inputs), *inputs, vmap_method="sequential")

        return linalg_callback
