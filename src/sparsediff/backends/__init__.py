"""Backend support for the sparse results of sparsediff.

* JAX (:mod:`sparsediff.backends.jax`): PyTensor has no JAX conversion for its sparse
  constructor ``CSM``; ours returns a ``jax.experimental.sparse.BCSR``. It is registered as soon
  as PyTensor's JAX dispatch is imported (lazily: importing sparsediff does not import JAX).
"""

from sparsediff.backends.jax import install_jax_hook

install_jax_hook()

__all__ = ["install_jax_hook"]
