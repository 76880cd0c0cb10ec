"""The sparse result: ``pytensor.sparse.CSR``/``CSC`` with constant, shared structure.

The data comes from the gather (:mod:`sparsediff.decompression.lift`) or the substitution
(:mod:`sparsediff.decompression.substitution`); ``indices``/``indptr`` are read-only plan-time
constants that compiled functions share with the matrices they return.
"""

from __future__ import annotations

import numpy as np
import pytensor.sparse as ps
import pytensor.tensor as pt
import scipy.sparse
from pytensor.graph.basic import Constant, Variable
from pytensor.graph.rewriting.basic import node_rewriter
from pytensor.sparse.basic import CSM

from sparsediff.decompression.positions import Layout

__all__ = ["SharedStructureCSM", "assemble", "share_constant_csm_structure"]


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


def assemble(data: Variable, lay: Layout) -> Variable:
    """``pytensor.sparse.CSR(data, indices, indptr, shape)`` (or ``CSC``), constant structure.

    ``indices`` and ``indptr`` are read-only constants: compiled functions share them with the
    matrices they return instead of copying them on every call (see :class:`SharedStructureCSM`).
    """
    build = ps.CSR if lay.format == "csr" else ps.CSC
    return build(
        data,
        pt.constant(_frozen(lay.indices)),
        pt.constant(_frozen(lay.indptr)),
        pt.constant(np.asarray(lay.shape, dtype=np.int32)),
    )


class SharedStructureCSM(CSM):
    """``CSM`` whose ``indices``/``indptr`` are read-only constants, shared, not copied.

    PyTensor's ``CSM.perform`` copies ``indices`` and ``indptr`` on every call (O(nnz)) so that
    nobody can modify a constant through a returned matrix. When they are read-only arrays that
    protection comes for free: an in-place change of the structure of a returned matrix (e.g.
    ``J.indices[0] = 3`` or ``J.eliminate_zeros()``) raises instead of corrupting the next call;
    ``J.copy()`` gives a fully writable matrix. The rewrite ``share_constant_csm_structure``
    (specialize, i.e. the fast compile modes) swaps it in for sparsediff's results.
    """

    def perform(self, node, inputs, outputs):
        data, indices, indptr, shape = inputs
        cls = scipy.sparse.csr_matrix if self.format == "csr" else scipy.sparse.csc_matrix
        outputs[0][0] = cls(
            (data, indices, indptr), shape=(int(shape[0]), int(shape[1])), copy=False
        )


def _is_frozen_constant(var) -> bool:
    return (
        isinstance(var, Constant)
        and isinstance(var.data, np.ndarray)
        and not var.data.flags.writeable
    )


@node_rewriter([CSM])
def share_constant_csm_structure(fgraph, node):
    if type(node.op) is not CSM:
        return None
    _, indices, indptr, shape = node.inputs
    if not (
        _is_frozen_constant(indices) and _is_frozen_constant(indptr) and isinstance(shape, Constant)
    ):
        return None
    out = SharedStructureCSM(node.op.format)(*node.inputs)
    out.tag = node.outputs[0].tag
    return [out]
