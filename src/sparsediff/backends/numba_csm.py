"""The sparse result on the Numba backend, boxed without scipy's per-call checks (issue #16).

PyTensor compiles ``CSM`` on Numba into a native struct that is boxed, when the compiled
graph returns it, by calling ``scipy.sparse.csr_matrix((data, indices, indptr), shape)``: the
constructor validates the structure in Python on every call (measured 18–41 µs per call on
this VM at load 5, up to 4× the residual's time at n = 10³). Where sparsediff's result is
only returned (nothing else in the graph reads it: the rewrite :func:`mark_returned_csm`,
Numba mode only, makes it a :class:`ReturnedSharedStructureCSM`), its structure, a constant,
is validated once by :func:`csr_attributes` when the graph is compiled, and its value is a
Numba type of its own (:class:`SharedCSRType`, :class:`SharedCSCType`: PyTensor's struct and
data model) whose box makes the matrix from those attributes (:class:`MatrixFromAttributes`;
2 µs per call measured, the Op included).

Why only where returned: PyTensor caches every Op's compiled function on disk, for all
programs; were sparsediff's types passed to PyTensor's own sparse Ops (``J.T``,
``structured_dot(J, v)`` in the same graph), those shared caches would refer to sparsediff's
classes. A result that the graph also reads keeps PyTensor's ``CSM`` implementation. The class
names here are part of the cache format: renaming one needs ``_CACHE_VERSION`` raised.
"""

from __future__ import annotations

from hashlib import sha256

import numpy as np
from numba.core import cgutils
from numba.extending import box, intrinsic, register_model
from pytensor.compile.aliasing import alias_root, view_tree_set
from pytensor.graph.basic import Constant
from pytensor.graph.fg import Output
from pytensor.graph.rewriting.basic import node_rewriter
from pytensor.graph.traversal import graph_inputs
from pytensor.link.numba.dispatch import basic as numba_basic
from pytensor.link.numba.dispatch.sparse.variable import (
    CSCMatrixType,
    CSMatrixModel,
    CSRMatrixType,
    _intrinsic_cs_codegen,
)

from sparsediff.decompression.assemble import (
    SharedStructureCSM,
    csr_attributes,
    matrix_from_attributes,
)

__all__ = [
    "RETURNED_POSITION",
    "MatrixFromAttributes",
    "ReturnedSharedStructureCSM",
    "SharedCSCType",
    "SharedCSRType",
    "mark_returned_csm",
    "register_numba_shared_csm",
]

#: In ``optdb``: after every rewrite that could add a client (the last merge is at 100).
RETURNED_POSITION = 101


#: Part of the compiled graph's cache key; raise it when the boxing changes.
_CACHE_VERSION = 2


class MatrixFromAttributes:
    """Picklable callable: ``(data, indices, indptr) -> matrix`` of a validated structure.

    Holds the class and the small attributes (shape, index flags); ``indices``/``indptr``
    are the compiled graph's read-only constants, boxed on every call, so nothing of size nnz
    is pickled into the compiled code.
    """

    def __init__(self, cls: type, attributes: dict, nnz: int):
        self.cls, self.nnz = cls, nnz
        self.attributes = {
            k: v for k, v in attributes.items() if k not in ("indices", "indptr", "data")
        }

    @property
    def key(self) -> tuple:
        return (self.cls.__name__, self.nnz, tuple(sorted(self.attributes.items())))

    def __call__(self, data, indices, indptr):
        out = matrix_from_attributes(self.cls, self.attributes, self.nnz, data)
        for a in (indices, indptr):  # Numba boxes its constants read-only; make sure of it
            if a.flags.writeable:
                a.flags.writeable = False
        out.indices, out.indptr = indices, indptr
        return out


class _Shared:
    """PyTensor's sparse struct type (same data model), boxed by :class:`MatrixFromAttributes`."""

    def __init__(self, data_type, indices_type, indptr_type, make: MatrixFromAttributes):
        self.make = make
        self.name = f"sparsediff_shared_{self.name}{make.key}"
        super().__init__(data_type, indices_type, indptr_type)
        self._key = (data_type, indices_type, indptr_type, make.key)


class SharedCSRType(_Shared, CSRMatrixType):
    """A ``csr_matrix`` struct: PyTensor's sparse Ops on Numba accept it as theirs."""


class SharedCSCType(_Shared, CSCMatrixType):
    """A ``csc_matrix`` struct: PyTensor's sparse Ops on Numba accept it as theirs."""


def _box_shared_csm(typ, val, c):
    struct = cgutils.create_struct_proxy(typ)(c.context, c.builder, value=val)
    args = [
        c.box(typ.data, struct.data),
        c.box(typ.indices, struct.indices),
        c.box(typ.indptr, struct.indptr),
    ]
    make = c.pyapi.unserialize(c.pyapi.serialize_object(typ.make))
    obj = c.pyapi.call_function_objargs(make, args)
    for a in args:
        c.pyapi.decref(a)
    return obj


for _type in (SharedCSRType, SharedCSCType):
    register_model(_type)(CSMatrixModel)
    box(_type)(_box_shared_csm)


def _shared_csm_constructor(make: MatrixFromAttributes, shape, format: str):
    rows, cols = np.int32(shape[0]), np.int32(shape[1])
    result_type = SharedCSRType if format == "csr" else SharedCSCType

    @intrinsic
    def shared_csm(typingctx, data, indices, indptr, shape):
        sig = result_type(data, indices, indptr, make)(data, indices, indptr, shape)
        return sig, _intrinsic_cs_codegen

    @numba_basic.numba_njit
    def shared_csm_constructor(data, indices, indptr, shape):
        return shared_csm(data, indices, indptr, (rows, cols))

    return shared_csm_constructor


class ReturnedSharedStructureCSM(SharedStructureCSM):
    """A :class:`SharedStructureCSM` whose result is only returned by the compiled graph.

    Only this Op gets the Numba types of this module: no other Op's compiled function (whose
    Numba cache PyTensor shares between all programs) ever takes them as an argument, so a
    cache never refers to sparsediff's types outside sparsediff's own functions.
    """


def _only_returned(fgraph, var) -> bool:
    """``var`` is one graph output, read by nothing else, that PyTensor will not deep-copy
    (the conditions of ``insert_deepcopy``: no alias of another output or of an input)."""
    clients = fgraph.clients.get(var, [])
    if len(clients) != 1 or not isinstance(clients[0][0].op, Output):
        return False
    views: set = set()
    view_tree_set(fgraph, alias_root(var), views)
    others = [o for o in fgraph.outputs if o is not var]
    inputs = [i for i in graph_inputs(fgraph.outputs) if i is not var]
    return not any(v in views for v in (*others, *inputs)) and not isinstance(
        alias_root(var), Constant
    )


@node_rewriter([SharedStructureCSM])
def mark_returned_csm(fgraph, node):
    """``SharedStructureCSM`` → :class:`ReturnedSharedStructureCSM` where only returned."""
    if type(node.op) is not SharedStructureCSM or not _only_returned(fgraph, node.outputs[0]):
        return None
    out = ReturnedSharedStructureCSM(node.op.format)(*node.inputs)
    out.tag = node.outputs[0].tag
    return [out]


def register_numba_shared_csm() -> None:
    """Compile a returned ``SharedStructureCSM`` to a struct boxed through its attributes."""
    from pytensor.link.numba.dispatch.basic import register_funcify_and_cache_key

    @register_funcify_and_cache_key(ReturnedSharedStructureCSM)
    def numba_funcify_ReturnedSharedStructureCSM(op, node=None, **kwargs):
        indices, indptr, shape = (i.data for i in node.inputs[1:])
        make = MatrixFromAttributes(*csr_attributes(op.format, indices, indptr, shape))
        # The function depends on the structure (shape, flags), not only on the Op's props:
        # PyTensor caches each Op's function under this key, and every graph's with it.
        key = f"sparsediff.ReturnedSharedStructureCSM v{_CACHE_VERSION} {op.format} {make.key}"
        return _shared_csm_constructor(make, shape, op.format), sha256(key.encode()).hexdigest()
