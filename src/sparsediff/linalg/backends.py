"""Which library factors a sparse matrix: the available backends and the user's choice.

Three libraries, each the tool made for its job (no factorization is written here):

* ``"superlu"`` — SciPy's SuperLU (``scipy.sparse.linalg.splu``). Always there; the only
  backend for general (unsymmetric) matrices, and the last fallback for SPD ones (factored in
  its symmetric mode, diagonal pivots, which for an SPD matrix is an LDLᵀ).
* ``"cholmod"`` — CHOLMOD (supernodal Cholesky, via scikit-sparse). The fastest SPD path; it
  needs the system SuiteSparse (Debian/Ubuntu: ``apt-get install libsuitesparse-dev``) and then
  ``pip install "scikit-sparse<0.5"`` (0.5 needs SuiteSparse 7, Debian 12 ships 5.12).
* ``"qdldl"`` — QDLDL (LDLᵀ with AMD ordering; PyPI wheels for Linux, macOS and Windows). The
  pip-only SPD path.

``"auto"`` resolves, for SPD matrices, to the first of cholmod, qdldl, superlu that imports; for
general matrices to superlu. The choice is made when a graph is *built* (it becomes a property
of the Op), so a compiled function keeps the backend it was built with.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
from collections.abc import Iterator

__all__ = ["available_backends", "backend", "resolve_backend", "use_backend"]

BACKENDS = ("superlu", "cholmod", "qdldl")
_SPD_PREFERENCE = ("cholmod", "qdldl", "superlu")
_MODULES = {"superlu": "scipy.sparse.linalg", "cholmod": "sksparse.cholmod", "qdldl": "qdldl"}
_default: list[str] = ["auto"]


@functools.cache
def _importable(name: str) -> bool:
    try:
        importlib.import_module(_MODULES[name])
    except Exception:  # ImportError, or a broken shared library (OSError)
        return False
    return True


def available_backends() -> tuple[str, ...]:
    """The factorization backends that import in this environment, fastest SPD path first."""
    return tuple(b for b in _SPD_PREFERENCE if _importable(b))


def resolve_backend(name: str | None, assume_a: str) -> str:
    """The concrete backend for ``name`` (``None`` = the current default) and ``assume_a``.

    Raises ``ValueError`` for an unknown name, ``ImportError`` for a backend that is not
    installed, and ``ValueError`` for an SPD-only backend asked to factor a general matrix.
    """
    if assume_a not in ("gen", "pos"):
        raise ValueError(f"assume_a must be 'gen' or 'pos', got {assume_a!r}")
    name = _default[-1] if name is None else name
    if name == "auto":
        if assume_a == "gen":
            return "superlu"
        return next(b for b in _SPD_PREFERENCE if _importable(b))
    if name not in BACKENDS:
        raise ValueError(f"unknown factorization backend {name!r}; choose from {BACKENDS}")
    if assume_a == "gen" and name != "superlu":
        raise ValueError(
            f"backend {name!r} factors symmetric positive definite matrices only; "
            "use assume_a='pos' or backend='superlu'"
        )
    if not _importable(name):
        hint = {
            "cholmod": 'apt-get install libsuitesparse-dev && pip install "scikit-sparse<0.5"',
            "qdldl": "pip install qdldl",
        }.get(name, "")
        raise ImportError(f"factorization backend {name!r} is not installed ({hint})")
    return name


def backend(assume_a: str = "pos") -> str:
    """The backend a new Op would use now for ``assume_a`` (``"pos"``: SPD, ``"gen"``: LU)."""
    return resolve_backend(None, assume_a)


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Within the block, build linalg Ops with ``name`` ("auto", "superlu", "cholmod", "qdldl").

    Only graphs built inside the block are affected; ``backend=`` on a function call wins.
    """
    if name != "auto":
        resolve_backend(name, "pos")  # fail early on unknown / missing names
    _default.append(name)
    try:
        yield
    finally:
        _default.pop()
