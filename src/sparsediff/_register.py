"""Every process-wide registration sparsediff makes with PyTensor, in one place.

Imported once, by ``sparsediff/__init__.py``; nothing else registers anything at import time.
Each line says why the registration exists:

1. **Sparsity rules** (:data:`sparsediff.sparsity.rules.BUILTIN_RULES`) into sparsediff's own
   ``singledispatch`` registry: detection needs one rule per Op family.
2. **Forward rules** (:data:`sparsediff.compression.forward_rules.FORWARD_RULES`: ``Prod``,
   ``ProdWithoutZeros``) into sparsediff's pushforward registry: PyTensor 3.0.7 cannot push a
   tangent forward through them, so forward and bidirectional mode would not build.
3. **Vectorization rules** (:data:`sparsediff.compression.vectorize.VECTORIZE_RULES`: ``Split``,
   uneven ``Join``, ``IncSubtensor``, ``IfElse``, ``OpFromGraph``, ``Scan``, and the
   ``pytensor.sparse`` Ops of :mod:`sparsediff.compression.vectorize_sparse`) into PyTensor's
   ``_vectorize_node``: without them ``vectorize_graph`` wraps these Ops in a ``Blockwise``, which
   the C and Python backends run as one Python loop iteration per color (and which cannot hold
   a sparse input at all: a graph with ``ps.dot(z, W)`` did not build).
4. **The rewrite** ``share_constant_csm_structure`` (specialize): compiled functions hand out
   sparsediff's constant ``indices``/``indptr`` read-only instead of copying them (O(nnz)) on
   every call.
5. **Numba dispatch** for ``Substitute`` (acyclic Hessians): a native kernel instead of object
   mode; for a ``SharedStructureCSM`` the graph only returns (marked so by the rewrite
   ``sparsediff_mark_returned_csm``, ``optdb``, Numba mode only, after the last merge): the
   result boxed from its structure validated once, not through scipy's per-call checks
   (:mod:`sparsediff.backends.numba_csm`); and for the
   ``sd.linalg`` Ops: object mode by design (one call into SuperLU, CHOLMOD or
   qdldl per Op), without PyTensor's generic object-mode warning.
6. **JAX dispatch** (``CSM`` → ``BCSR``, ``Substitute``, sparse ``dot``/transpose/copy): PyTensor
   has no JAX conversion for sparse construction. Installed as an import hook, so importing
   sparsediff does not import JAX.
7. **Lazy Jacobians** (:mod:`sparsediff.plans.lazy`): the product, block and diagonal rewrites in
   ``canonicalize`` (it runs in every mode, ``FAST_COMPILE`` too) so that ``J @ v`` becomes
   one JVP before any plan exists, and the expansion of the lazy node into ``optdb`` after
   ``stabilize`` (``fast_run`` and ``fast_compile``), so that the pattern is detected on the
   simplified graph; without them a lazy node would be expanded unsimplified in ``perform``.
8. **The rewrite** ``sparsediff_split_wide_composites`` (``optdb``, Numba mode only, after
   fusion): fused ``Elemwise`` kernels wider than 32 operands become chains of narrower ones;
   Numba's compile time grows much faster than linearly with a kernel's operands, and the
   batched JVPs of many-equation models (DSGE) took a minute to JIT
   (:mod:`sparsediff.backends.numba_fusion`).

Not registered here because it is not a registration at import: the huge-pages hook on CPython's
raw allocator (:mod:`sparsediff.backends.hugepages`) is installed by the first ``build()``, as it
changes the process's allocator (``SPARSEDIFF_NUMBA_HUGEPAGES=0`` opts out); nor glibc's mmap and
trim thresholds (:mod:`sparsediff.backends.jax_memory`), raised when PyTensor's JAX backend is
first loaded so that XLA reuses its large buffers (``SPARSEDIFF_JAX_MALLOC=0`` opts out).
"""

from __future__ import annotations

from pytensor.compile import optdb
from pytensor.graph.replace import _vectorize_node
from pytensor.graph.rewriting.basic import in2out
from pytensor.tensor.rewriting.basic import register_canonicalize, register_specialize

from sparsediff.backends.jax import install_jax_hook
from sparsediff.backends.numba_csm import (
    RETURNED_POSITION,
    mark_returned_csm,
    register_numba_shared_csm,
)
from sparsediff.backends.numba_fusion import SPLIT_POSITION, split_wide_composites
from sparsediff.compression.forward_rules import FORWARD_RULES, register_forward_rule
from sparsediff.compression.vectorize import VECTORIZE_RULES
from sparsediff.decompression.affine_rows import register_numba_affine_rows
from sparsediff.decompression.assemble import share_constant_csm_structure
from sparsediff.decompression.substitution import register_numba_substitute
from sparsediff.linalg.ops import register_numba_linalg
from sparsediff.plans.lazy import (
    EXPAND_POSITION,
    expand_lazy_jacobian,
    lazy_jacobian_block,
    lazy_jacobian_diagonal,
    lazy_jacobian_product,
)
from sparsediff.sparsity.rules import register_builtin_rules

__all__ = ["register_all"]

_done = False


def register_all() -> None:
    """Make every registration above (idempotent)."""
    global _done
    if _done:
        return
    _done = True
    register_builtin_rules()
    for op_class, rule in FORWARD_RULES.items():
        register_forward_rule(op_class)(rule)
    for op_class, rule in VECTORIZE_RULES.items():
        _vectorize_node.register(op_class, rule)
    try:
        register_specialize(share_constant_csm_structure)
    except ValueError:  # registered by an earlier copy of sparsediff (its modules re-imported)
        pass
    register_numba_substitute()
    register_numba_affine_rows()
    register_numba_shared_csm()
    register_numba_linalg()
    _register_lazy()
    _register_split()
    install_jax_hook()


def _register_split() -> None:
    try:
        optdb.register(
            "sparsediff_split_wide_composites",
            in2out(split_wide_composites, name="sparsediff_split_wide_composites"),
            "numba",
            position=SPLIT_POSITION,
        )
    except ValueError:  # registered by an earlier copy of sparsediff
        pass
    try:
        optdb.register(
            "sparsediff_mark_returned_csm",
            in2out(mark_returned_csm, name="sparsediff_mark_returned_csm"),
            "numba",
            position=RETURNED_POSITION,
        )
    except ValueError:  # registered by an earlier copy of sparsediff
        pass


def _register_lazy() -> None:
    try:
        register_canonicalize(lazy_jacobian_product)
        register_canonicalize(lazy_jacobian_diagonal)
        register_canonicalize(lazy_jacobian_block)
        optdb.register(
            "sparsediff_expand_lazy_jacobian",
            in2out(expand_lazy_jacobian, name="sparsediff_expand_lazy_jacobian"),
            "fast_run",
            "fast_compile",
            position=EXPAND_POSITION,
        )
    except ValueError:  # registered by an earlier copy of sparsediff
        pass


register_all()
