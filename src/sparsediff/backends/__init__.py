"""Backend support: JAX conversions of sparse results, and the huge-pages allocator hook.

* :mod:`sparsediff.backends.jax`: PyTensor has no JAX conversion for its sparse constructor
  ``CSM``; ours returns a ``jax.experimental.sparse.BCSR`` (registered lazily, when PyTensor's
  JAX dispatch is imported, by :mod:`sparsediff._register`).
* :mod:`sparsediff.backends.hugepages`: transparent huge pages for large Numba outputs.
"""

from sparsediff.backends.hugepages import enable_numba_hugepages
from sparsediff.backends.jax import install_jax_hook, register_jax
from sparsediff.backends.jax_function import jax_callable, leading_axis_shardings

__all__ = [
    "enable_numba_hugepages",
    "install_jax_hook",
    "jax_callable",
    "leading_axis_shardings",
    "register_jax",
]
