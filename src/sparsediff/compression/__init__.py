"""Stage 3: compression — every color's product with the derivative in one PyTensor graph.

``seeds`` (the constant seed matrices of a coloring) → ``products`` (batched JVPs, VJPs and
Hessian-vector products by vectorizing one pushforward or pullback over the seeds, with the
vectorization rules of ``vectorize``/``vectorize_scan`` for Ops PyTensor would loop over per
color) → ``folding`` (everything that depends on the seeds alone, evaluated once at plan time).
"""

from sparsediff.compression.folding import DEFAULT_FOLD_LIMIT, fold_constants, graph_cost
from sparsediff.compression.products import (
    compressed_hvp,
    compressed_pullback,
    compressed_pushforward,
    isolate_inner_graphs,
    pushforward_through_pullback,
)
from sparsediff.compression.seeds import neutral_seed_matrix, seed_matrix

__all__ = [
    "DEFAULT_FOLD_LIMIT",
    "compressed_hvp",
    "compressed_pullback",
    "compressed_pushforward",
    "fold_constants",
    "graph_cost",
    "isolate_inner_graphs",
    "neutral_seed_matrix",
    "pushforward_through_pullback",
    "seed_matrix",
]
