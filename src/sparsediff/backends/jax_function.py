"""The jitted JAX function inside a PyTensor function compiled with ``mode="JAX"``.

Calling a compiled PyTensor function goes through PyTensor's input filter, which turns every
argument into a NumPy array: a ``jax.Array`` sharded over a device mesh arrives on one device,
and the outputs come back with whatever placement XLA chose. PyTensor 3.0.7's JAX linker keeps
the ``jax.jit`` of the converted graph as ``fn.vm.jit_fn`` (inputs: the graph's inputs in order,
outputs: a tuple), undocumented. :func:`jax_callable` exposes it as an ordinary JAX function, so
JAX's own machinery applies: ``in_shardings``/``out_shardings``, ``jax.vmap``,
``.lower(...).compile()``, multi-host arrays under ``jax.distributed``.

Nothing sparsediff adds to the JAX graph needs a host: the gathers and scatters have constant
indices, ``BCSR`` construction only wraps arrays, ``Substitute`` is a ``lax.fori_loop``. So
GSPMD partitions the compressed products like any other stencil code. It does *not* guess a
sharding for the sparse data (a gather with constant indices is replicated by default), so ask
for one: :func:`leading_axis_shardings` builds ``out_shardings`` that split every output array
along its first axis where that axis divides evenly (the Jacobian's ``data``) and replicate the
rest (``indices``/``indptr`` are constants kept out of the outputs, see
:mod:`sparsediff.backends.jax_structure`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["jax_callable", "leading_axis_shardings"]


def jax_callable(fn: Any, **jit_kwargs: Any) -> Callable:
    """Return the JAX function of a PyTensor function compiled with ``mode="JAX"``.

    The result takes the explicit inputs of ``fn`` as JAX (or NumPy) arrays, in order, and
    returns what ``fn`` returns (one value, or a list as a tuple), as JAX values: a sparse
    Jacobian is a ``jax.experimental.sparse.BCSR``. It is ``jax.jit`` of PyTensor's jitted graph
    with ``jit_kwargs`` (e.g. ``in_shardings``, ``out_shardings``, ``donate_argnums``), so a
    sharded input stays sharded. Functions with shared variables or updates are refused (their
    values live in PyTensor's storage, outside the JAX function).
    """
    import jax

    vm = getattr(fn, "vm", None)
    inner = getattr(vm, "jit_fn", None)
    linker = getattr(getattr(fn, "maker", None), "linker", None)
    if inner is None or type(linker).__name__ != "JAXLinker":
        raise TypeError(
            "jax_callable needs a function compiled with pytensor.function(..., mode='JAX'); "
            f"got {type(fn).__name__} with linker {type(linker).__name__}"
        )
    maker = fn.maker
    if any(getattr(i, "implicit", False) for i in maker.inputs) or any(
        getattr(i, "update", None) is not None for i in maker.inputs
    ):
        raise NotImplementedError(
            "jax_callable: the function has shared variables or updates; pass their values as "
            "explicit inputs instead"
        )
    static = tuple(getattr(linker, "scalar_shape_inputs", ()))
    single = bool(getattr(fn, "unpack_single", False))

    def call(*args):
        outs = inner(*args)
        return outs[0] if single else tuple(outs)

    if static:
        jit_kwargs.setdefault("static_argnums", static)
    return jax.jit(call, **jit_kwargs)


def leading_axis_shardings(outputs: Any, sharding: Any) -> Any:
    """``out_shardings`` for ``outputs`` (a pytree of arrays or ``jax.ShapeDtypeStruct``).

    ``sharding`` is a ``jax.sharding.NamedSharding`` that splits axis 0 (e.g.
    ``NamedSharding(mesh, PartitionSpec("x"))``). Each leaf whose first axis divides evenly by the
    number of pieces gets ``sharding``; the others (scalars, ``indptr``, a ``data`` of odd
    length) are replicated over the same mesh. Use ``jax.eval_shape`` to get ``outputs``
    without computing them.
    """
    import jax
    from jax.sharding import NamedSharding, PartitionSpec

    if not isinstance(sharding, NamedSharding):
        raise TypeError(f"expected a jax.sharding.NamedSharding, got {type(sharding).__name__}")
    spec = tuple(sharding.spec)
    if not spec or spec[0] is None:
        raise ValueError(f"sharding {sharding.spec} does not split axis 0")
    names = spec[0] if isinstance(spec[0], tuple) else (spec[0],)
    pieces = 1
    for name in names:
        pieces *= int(sharding.mesh.shape[name])
    replicated = NamedSharding(sharding.mesh, PartitionSpec())
    row = NamedSharding(sharding.mesh, PartitionSpec(spec[0]))

    def choose(leaf):
        shape = getattr(leaf, "shape", ())
        return row if len(shape) >= 1 and shape[0] % pieces == 0 else replicated

    return jax.tree_util.tree_map(choose, outputs)
