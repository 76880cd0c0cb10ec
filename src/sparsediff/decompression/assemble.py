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

__all__ = [
    "SharedStructureCSM",
    "assemble",
    "csr_attributes",
    "matrix_from_attributes",
    "share_constant_csm_structure",
]


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

    The structure is also *checked* once, not per call: scipy's constructor validates
    ``(data, indices, indptr)`` in Python on every call (index dtypes, ``indptr`` against the
    shape, ``prune``; measured 14–40 µs per call on this VM at load 5, up to 4 residuals at
    n = 10³). :func:`csr_attributes` runs that constructor and
    ``check_format(full_check=True)`` once per compiled node; each call then makes the matrix
    from those attributes and its new ``data`` (:func:`matrix_from_attributes`; 2 µs per call
    measured, the Op included), a plain ``csr_matrix``/``csc_matrix`` equal, attribute for
    attribute, to what the constructor would have made.
    """

    def prepare_node(self, node, storage_map, compute_map, impl):
        _node_attributes(node)

    def perform(self, node, inputs, outputs):
        data = inputs[0]
        outputs[0][0] = matrix_from_attributes(*_node_attributes(node), data)


def csr_attributes(
    format: str, indices: np.ndarray, indptr: np.ndarray, shape
) -> tuple[type, dict, int]:
    """``(class, attributes, nnz)`` of a scipy matrix of this structure, its data left out.

    The structure is validated here (scipy's constructor, then its full format check), and
    the index flags (sorted, canonical) computed, once. The attributes hold the arrays that
    constructor kept (``indices`` and ``indptr`` themselves, or views of them: a read-only
    constant stays shared and read-only). Raises ``ValueError`` where scipy would, and where
    scipy would prune the structure (trailing entries past ``indptr[-1]``: the data would
    have to be cut on every call).
    """
    cls = scipy.sparse.csr_matrix if format == "csr" else scipy.sparse.csc_matrix
    nnz = len(indices)
    template = cls(
        (np.zeros(nnz), indices, indptr), shape=(int(shape[0]), int(shape[1])), copy=False
    )
    template.check_format(full_check=True)
    if len(template.indices) != nnz:
        raise ValueError(f"indptr[-1] = {indptr[-1]} is not the number of indices, {nnz}")
    for a in (template.indices, template.indptr):
        a.setflags(write=False)
    template.has_sorted_indices, template.has_canonical_format  # noqa: B018 (cache the flags)
    attributes = dict(vars(template))
    del attributes["data"]
    return cls, attributes, nnz


def matrix_from_attributes(cls: type, attributes: dict, nnz: int, data: np.ndarray):
    """A ``cls`` matrix with the validated ``attributes`` and this call's ``data`` (no copy)."""
    if data.ndim != 1 or data.shape[0] != nnz:
        raise ValueError(f"data of shape {data.shape} for a structure of {nnz} entries")
    out = cls.__new__(cls)
    out.__dict__.update(attributes)
    out.data = data
    return out


def _node_attributes(node) -> tuple[type, dict, int]:
    """:func:`csr_attributes` of a ``SharedStructureCSM`` node, computed once per node."""
    try:
        return node.tag.sparsediff_csr_attributes
    except AttributeError:
        indices, indptr, shape = (i.data for i in node.inputs[1:])
        attributes = csr_attributes(node.op.format, indices, indptr, shape)
        node.tag.sparsediff_csr_attributes = attributes
        return attributes


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
    try:
        csr_attributes(node.op.format, indices.data, indptr.data, shape.data)
    except ValueError:  # an invalid structure: CSM's own checks raise on the first call
        return None
    out = SharedStructureCSM(node.op.format)(*node.inputs)
    out.tag = node.outputs[0].tag
    return [out]
