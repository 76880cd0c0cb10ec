"""JAX conversion of ``pytensor.sparse`` construction and products.

PyTensor 3.0.7 cannot compile a graph that *builds* a sparse matrix with ``mode="JAX"``: its
``CSM`` Op (``pytensor.sparse.CSR`` / ``CSC``) has no JAX conversion. We provide one:

* ``CSR(data, indices, indptr, shape)`` becomes ``jax.experimental.sparse.BCSR((data, indices,
  indptr), shape=shape)``; ``shape`` must be constant (it always is in sparsediff's results).
  With constant ``indices``/``indptr`` (sparsediff's results) it is a ``BCSR`` subclass whose
  structure stays out of the jitted function's outputs (:mod:`sparsediff.backends.jax_structure`).
  A compiled function then returns a ``BCSR`` (convert with ``scipy.sparse.csr_matrix((J.data,
  J.indices, J.indptr), shape=J.shape)`` or ``J.todense()``).
* ``CSC(...)`` is stored as the BCSR of the transpose and returned transposed, a ``BCOO``
  (JAX has no BCSC).
* sparsediff's ``Substitute`` (acyclic Hessians) becomes a ``lax.fori_loop`` over its levels;
* a constant-index ``AdvancedIncSubtensor1`` with distinct indices may become row blocks of
  elementwise selects (:mod:`sparsediff.backends.jax_blocks`) or a gather
  (:mod:`sparsediff.backends.jax_scatter`); loading the backend also keeps XLA's large buffers
  in the heap (:mod:`sparsediff.backends.jax_memory`);
* an ``OpFromGraph`` with constant inputs is converted with those constants in its inner graph
  (PyTensor traces them as tracers: the gradient of ``pt.pad`` failed);
* ``DeepCopyOp`` passes sparse values through (JAX values are immutable);
* ``structured_dot`` / ``dot`` of such a result with a dense operand, ``J.T`` (transpose) and
  ``dense_from_sparse`` are converted too, so a JAX graph can use the Jacobian, e.g. in a Newton
  step, without leaving JAX.

The registrations run when PyTensor's JAX dispatch module is imported (never earlier, so that
importing sparsediff does not import JAX): :func:`install_jax_hook` watches that import.
"""

from __future__ import annotations

import copy
import importlib.abc
import importlib.machinery
import sys

__all__ = ["install_jax_hook", "register_jax"]

_DISPATCH = "pytensor.link.jax.dispatch"
_registered = False


def register_jax() -> None:
    """Register the JAX conversions (imports JAX). Safe to call more than once."""
    global _registered
    if _registered:
        return
    _registered = True

    from sparsediff.backends.jax_memory import keep_large_buffers_in_heap

    keep_large_buffers_in_heap()  # XLA's per-call buffers: reuse them, do not page-fault them in

    import jax.experimental.sparse as jsp
    import jax.numpy as jnp
    import numpy as np
    from pytensor.graph.basic import Constant
    from pytensor.link.jax.dispatch import jax_funcify
    from pytensor.sparse.basic import CSM, DenseFromSparse, Transpose
    from pytensor.sparse.math import Dot, StructuredDot
    from pytensor.sparse.type import SparseTensorType

    from sparsediff.backends.jax_structure import (
        csc_structure,
        csr_structure,
        shared_structure_classes,
    )
    from sparsediff.decompression.substitution import Substitute, jax_funcify_substitute

    jax_funcify.register(Substitute)(jax_funcify_substitute)

    from sparsediff.backends.jax_scatter import register_scatter_as_gather

    register_scatter_as_gather()  # constant-index scatters of the decompression: gathers

    @jax_funcify.register(CSM)
    def jax_funcify_CSM(op, node, **kwargs):
        shape_var = node.inputs[3]
        if not isinstance(shape_var, Constant):
            raise NotImplementedError(
                "JAX conversion of a sparse constructor needs a constant shape"
            )
        shape = tuple(int(s) for s in np.asarray(shape_var.data))
        fmt = op.format
        indices_var, indptr_var = node.inputs[1:3]
        if isinstance(indices_var, Constant) and isinstance(indptr_var, Constant):
            # constant structure (sparsediff's results): kept out of the jitted function's
            # outputs, see sparsediff.backends.jax_structure
            shared_bcsr, shared_bcoo = shared_structure_classes()
            if fmt == "csr":
                structure = csr_structure(indices_var.data, indptr_var.data)

                def csm_shared(data, *_structure):
                    return shared_bcsr.with_structure(data, structure, shape)

            else:
                structure = csc_structure(indices_var.data, indptr_var.data, shape)

                def csm_shared(data, *_structure):
                    return shared_bcoo.with_structure(data, structure, shape)

            return csm_shared

        def csm(data, indices, indptr, _shape):
            if fmt == "csr":
                return jsp.BCSR((data, indices, indptr), shape=shape)
            # CSC of A is the CSR of Aᵀ
            return jsp.BCSR((data, indices, indptr), shape=shape[::-1]).to_bcoo().T

        return csm

    from pytensor.compile.builders import OpFromGraph
    from pytensor.link.jax.dispatch.basic import jax_funcify_OpFromGraph as _ofg

    @jax_funcify.register(OpFromGraph)
    def jax_funcify_OpFromGraph_with_constants(op, node=None, **kwargs):
        # PyTensor converts an OpFromGraph's inner graph with every input a tracer, so an inner
        # graph that needs a static value (the gradient of ``pt.pad``: slices by its
        # ``pad_width``) fails to trace even when the outer input is a constant. Put the outer
        # constants into a copy of the inner graph first (the function ignores those inputs).
        if node is None or not any(isinstance(i, Constant) for i in node.inputs):
            return _ofg(op, node=node, **kwargs)
        fgraph = op.fgraph.clone()
        for inner, outer in zip(fgraph.inputs, node.inputs, strict=True):
            if isinstance(outer, Constant) and fgraph.clients.get(inner):
                fgraph.replace(inner, inner.type.filter_variable(outer), import_missing=True)
        inlined = copy.copy(op)
        inlined.fgraph = fgraph
        return _ofg(inlined, node=node, **kwargs)

    from pytensor.compile.ops import DeepCopyOp
    from pytensor.link.jax.dispatch.basic import jax_funcify_DeepCopyOp as _dense_copy

    @jax_funcify.register(DeepCopyOp)
    def jax_funcify_DeepCopyOp(op, node=None, **kwargs):
        dense_copy = _dense_copy(op, node=node, **kwargs)

        def deepcopyop(x):
            # JAX values are immutable: a sparse value needs no copy (jnp.copy rejects it)
            return x if isinstance(x, jsp.BCSR | jsp.BCOO) else dense_copy(x)

        return deepcopyop

    def _is_sparse_value(x):
        return isinstance(x, jsp.BCSR | jsp.BCOO)

    @jax_funcify.register(Transpose)
    def jax_funcify_sparse_transpose(op, node, **kwargs):
        def transpose(x):
            if isinstance(x, jsp.BCSR):
                x = x.to_bcoo()
            return x.T

        return transpose

    @jax_funcify.register(DenseFromSparse)
    def jax_funcify_dense_from_sparse(op, node, **kwargs):
        def dense_from_sparse(x):
            return x.todense() if _is_sparse_value(x) else jnp.asarray(x)

        return dense_from_sparse

    @jax_funcify.register(Dot)
    @jax_funcify.register(StructuredDot)
    def jax_funcify_sparse_dot(op, node, **kwargs):
        if isinstance(node.outputs[0].type, SparseTensorType):
            raise NotImplementedError("JAX sparse dot only implemented for dense outputs")

        def sparse_dot(x, y):
            if isinstance(x, jsp.BCSR):
                x = x.to_bcoo()
            if isinstance(y, jsp.BCSR):
                y = y.to_bcoo()
            out = x @ y
            if _is_sparse_value(out):
                out = out.todense()
            return out

        return sparse_dot

    from sparsediff.linalg.jax_linalg import register_linalg_jax
    from sparsediff.optimize.jax_optimize import register_optimize_jax

    register_linalg_jax()
    register_optimize_jax()


class _Loader(importlib.abc.Loader):
    def __init__(self, wrapped):
        self._wrapped = wrapped

    def create_module(self, spec):
        return self._wrapped.create_module(spec)

    def exec_module(self, module):
        self._wrapped.exec_module(module)
        register_jax()


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname != _DISPATCH:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _Loader(spec.loader)
        return spec


def install_jax_hook() -> None:
    """Register the JAX conversions now if PyTensor's JAX dispatch is loaded, else on its import."""
    if _DISPATCH in sys.modules:
        register_jax()
        return
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
