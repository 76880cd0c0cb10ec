"""Stage 4: decompression — from the compressed matrix to the nonzeros of the sparse result.

``positions`` (where each nonzero sits in the compressed matrix, computed once in NumPy) →
``lift`` (the gather, lifted through the elementwise Ops that produce the compressed matrix) or
``substitution`` (acyclic Hessians: a sequential pass along two-colored trees) → ``assemble``
(``pytensor.sparse.CSR``/``CSC`` with constant, shared ``indices`` and ``indptr``).
"""

from sparsediff.decompression.assemble import SharedStructureCSM, assemble
from sparsediff.decompression.lift import gather
from sparsediff.decompression.positions import (
    Layout,
    bidirectional_positions,
    forward_positions,
    layout,
    reverse_positions,
    star_positions,
)
from sparsediff.decompression.substitution import (
    Schedule,
    Substitute,
    substitute,
    substitution_schedule,
)

__all__ = [
    "Layout",
    "Schedule",
    "SharedStructureCSM",
    "Substitute",
    "assemble",
    "bidirectional_positions",
    "forward_positions",
    "gather",
    "layout",
    "reverse_positions",
    "star_positions",
    "substitute",
    "substitution_schedule",
]
