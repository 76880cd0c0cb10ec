"""Built-in sparsity rules, one module per Op family; importing this registers them all."""

from sparsediff.sparsity.rules import (  # noqa: F401
    control,
    convolution,
    elemwise,
    indexing,
    products,
    reduce,
    scalar,
    structure,
)
