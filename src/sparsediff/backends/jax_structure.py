"""Sparse results whose constant structure stays out of the compiled JAX function.

A jitted function copies every array it returns into a fresh output buffer, constants included
(XLA has no way to return a constant without materializing it). sparsediff's ``indices`` and
``indptr`` are plan-time constants, so a ``BCSR`` returned from the jitted graph made XLA write
them on every call: at n = 10⁶ for the 2-D Bratu Jacobian that is 20 MB of ``indices`` and
4 MB of ``indptr`` per call next to 40 MB of data, i.e. a third more memory traffic than the
values alone.

:class:`SharedStructureBCSR` (a ``jax.experimental.sparse.BCSR``) and
:class:`SharedStructureBCOO` (a ``BCOO``, for CSC results) flatten, as pytrees, to their
``data`` alone: the structure travels in the pytree's static part, as device arrays made once
when the graph is converted. The jitted function then computes and returns only the data;
``indices``/``indptr`` of every returned matrix are the same (immutable) arrays, shared across
calls like the read-only constants of the C and Numba backends. Anything built from such a
matrix with other structure (e.g. ``J.to_bcoo()``, a tracer ``indices``) flattens as usual, and
a result returned through ``jax.vmap`` (data with a batch axis) comes back as a plain batched
``BCSR``/``BCOO`` with the structure broadcast.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["SharedStructure", "shared_structure_classes"]


class SharedStructure:
    """The constant structure of one sparse result: device arrays, compared by identity.

    As the static part of a pytree it must be hashable and cheap to compare; two results share
    a structure only when they come from the same conversion (the same object).
    """

    __slots__ = ("arrays", "indices_sorted", "unique_indices")

    def __init__(self, arrays: tuple, indices_sorted: bool, unique_indices: bool):
        self.arrays = arrays
        self.indices_sorted = indices_sorted
        self.unique_indices = unique_indices

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other

    def __repr__(self) -> str:
        shapes = ", ".join(str(tuple(a.shape)) for a in self.arrays)
        return f"SharedStructure({shapes})"


_classes: tuple | None = None


def shared_structure_classes() -> tuple[Any, Any]:
    """``(SharedStructureBCSR, SharedStructureBCOO)``, defined and registered on first use."""
    global _classes
    if _classes is not None:
        return _classes

    import jax
    import jax.experimental.sparse as jsp
    import jax.numpy as jnp

    def _concrete(a) -> bool:
        return not isinstance(a, jax.core.Tracer)

    def _batched(data, structure: SharedStructure) -> bool:
        """``data`` came back from ``jax.vmap`` (leading batch axes the structure lacks)."""
        is_array = isinstance(data, jax.Array | np.ndarray | jax.core.Tracer)
        return is_array and data.ndim > structure.arrays[0].ndim - (len(structure.arrays) == 1)

    @jax.tree_util.register_pytree_node_class
    class SharedStructureBCSR(jsp.BCSR):
        """A ``BCSR`` whose ``indices``/``indptr`` are constants shared by every result."""

        _structure: SharedStructure | None = None

        @classmethod
        def with_structure(cls, data, structure: SharedStructure, shape: tuple[int, ...]):
            obj = object.__new__(cls)
            obj.data = data
            obj.indices, obj.indptr = structure.arrays
            obj.shape = tuple(shape)
            obj.indices_sorted = structure.indices_sorted
            obj.unique_indices = structure.unique_indices
            obj._structure = structure
            return obj

        def _shares(self) -> bool:
            s = self._structure
            return (
                s is not None
                and self.indices is s.arrays[0]
                and self.indptr is s.arrays[1]
                and _concrete(self.indices)
            )

        def tree_flatten(self):
            if self._shares():
                return (self.data,), (self._structure, self.shape)
            return (self.data, self.indices, self.indptr), (None, self._info._asdict())

        @classmethod
        def tree_unflatten(cls, aux_data, children):
            structure, rest = aux_data
            if structure is not None:
                (data,) = children
                if _batched(data, structure):  # out of vmap: a plain batched BCSR
                    batch = tuple(data.shape[:-1])
                    indices, indptr = (
                        jnp.broadcast_to(a, batch + a.shape) for a in structure.arrays
                    )
                    return jsp.BCSR((data, indices, indptr), shape=batch + tuple(rest))
                return cls.with_structure(data, structure, rest)
            obj = object.__new__(cls)
            obj.data, obj.indices, obj.indptr = children
            obj.__dict__.update(**rest)
            return obj

    @jax.tree_util.register_pytree_node_class
    class SharedStructureBCOO(jsp.BCOO):
        """A ``BCOO`` whose ``indices`` are a constant shared by every result."""

        _structure: SharedStructure | None = None

        @classmethod
        def with_structure(cls, data, structure: SharedStructure, shape: tuple[int, ...]):
            obj = object.__new__(cls)
            obj.data = data
            (obj.indices,) = structure.arrays
            obj.shape = tuple(shape)
            obj.indices_sorted = structure.indices_sorted
            obj.unique_indices = structure.unique_indices
            obj._structure = structure
            return obj

        def _shares(self) -> bool:
            s = self._structure
            return s is not None and self.indices is s.arrays[0] and _concrete(self.indices)

        def tree_flatten(self):
            if self._shares():
                return (self.data,), (self._structure, self.shape)
            return (self.data, self.indices), (None, self._info._asdict())

        @classmethod
        def tree_unflatten(cls, aux_data, children):
            structure, rest = aux_data
            if structure is not None:
                (data,) = children
                if _batched(data, structure):  # out of vmap: a plain batched BCOO
                    batch = tuple(data.shape[:-1])
                    (indices,) = structure.arrays
                    indices = jnp.broadcast_to(indices, batch + indices.shape)
                    return jsp.BCOO((data, indices), shape=batch + tuple(rest))
                return cls.with_structure(data, structure, rest)
            obj = object.__new__(cls)
            obj.data, obj.indices = children
            obj.__dict__.update(**rest)
            return obj

    _classes = (SharedStructureBCSR, SharedStructureBCOO)
    return _classes


def csr_structure(indices: np.ndarray, indptr: np.ndarray) -> SharedStructure:
    """The shared structure of a CSR result (device arrays made now, outside any trace)."""
    import jax

    arrays = (jax.device_put(np.asarray(indices)), jax.device_put(np.asarray(indptr)))
    return SharedStructure(arrays, indices_sorted=False, unique_indices=False)


def csc_structure(
    indices: np.ndarray, indptr: np.ndarray, shape: tuple[int, int]
) -> SharedStructure:
    """The shared structure of a CSC result as a ``BCOO``: the COO indices that
    ``BCSR((data, indices, indptr), shape=shape[::-1]).to_bcoo().T`` has (computed once)."""
    import jax
    import jax.experimental.sparse as jsp

    indices, indptr = np.asarray(indices), np.asarray(indptr)
    ref = jsp.BCSR(
        (np.zeros(indices.size, dtype=np.float32), indices, indptr), shape=tuple(shape[::-1])
    )
    coo = ref.to_bcoo().T
    arrays = (jax.device_put(np.asarray(coo.indices)),)
    return SharedStructure(arrays, bool(coo.indices_sorted), bool(coo.unique_indices))
