"""Test matrices for sparsediff.linalg: random SPD and unsymmetric, 2-D Laplacians, helpers."""

from __future__ import annotations

import numpy as np
import pytensor.sparse as ps
import pytensor.tensor as pt
import scipy.sparse as sp

from sparsediff.linalg import available_backends

#: every SPD backend that imports here (SuperLU always; CHOLMOD and qdldl when installed)
SPD_BACKENDS = available_backends()


def laplacian_2d(m: int, shift: float = 1.0) -> sp.csr_matrix:
    """5-point Laplacian on an m×m grid plus ``shift``·I (SPD), CSR with sorted indices."""
    T = sp.diags([-np.ones(m - 1), 2 * np.ones(m), -np.ones(m - 1)], [-1, 0, 1])
    eye = sp.eye(m)
    A = sp.kron(T, eye) + sp.kron(eye, T) + shift * sp.eye(m * m)
    A = sp.csr_matrix(A)
    A.sort_indices()
    return A


def random_spd(n: int, density: float, seed: int) -> sp.csr_matrix:
    """A random sparse SPD matrix: B Bᵀ-free construction, symmetric + diagonally dominant."""
    rng = np.random.default_rng(seed)
    B = sp.random(n, n, density=density, random_state=rng, data_rvs=rng.standard_normal)
    S = B + B.T
    S = S + sp.diags(np.asarray(abs(S).sum(axis=1)).ravel() + 0.5 + rng.random(n))
    S = sp.csr_matrix(S)
    S.sort_indices()
    return S


def random_general(n: int, density: float, seed: int) -> sp.csr_matrix:
    """A random sparse unsymmetric nonsingular matrix (a shifted random pattern)."""
    rng = np.random.default_rng(seed)
    B = sp.random(n, n, density=density, random_state=rng, data_rvs=rng.standard_normal)
    A = B + sp.diags(2.0 + rng.random(n)) + sp.diags(rng.standard_normal(n - 1), 1)
    A = sp.csr_matrix(A)
    A.sort_indices()
    return A


def symbolic(A: sp.spmatrix, fmt: str = "csr"):
    """A pytensor sparse variable with A's (constant) pattern and a symbolic data vector."""
    A = sp.csr_matrix(A) if fmt == "csr" else sp.csc_matrix(A)
    A.sort_indices()
    data = pt.dvector("data")
    build = ps.CSR if fmt == "csr" else ps.CSC
    return build(data, A.indices, A.indptr, A.shape), data, A


def rebuild(A: sp.spmatrix, data: np.ndarray) -> np.ndarray:
    """Dense matrix with A's pattern (and format) and the given data."""
    return type(A)((data, A.indices, A.indptr), shape=A.shape).toarray()


def central_fd(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central finite differences of scalar f at x (vector)."""
    g = np.empty_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = eps
        g[i] = (f(x + e) - f(x - e)) / (2 * eps)
    return g
