"""Small problems shared by the optimize tests: analytic residuals, NumPy twins for SciPy."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import scipy.sparse as sp

MODE = "CVM"


def bratu(N: int = 5):
    """2-D Bratu ``A u - h² λ exp(u) = 0`` with parameter λ; NumPy residual and Jacobian."""
    n = N * N
    T = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(N, N))
    A = sp.csr_matrix(sp.kronsum(T, T))
    h2 = 1.0 / (N + 1) ** 2
    x = pt.vector("x", shape=(n,))
    lam = pt.dscalar("lam")
    u = pt.set_subtensor(pt.zeros((N + 2, N + 2))[1:-1, 1:-1], x.reshape((N, N)))
    Au = 4 * u[1:-1, 1:-1] - u[:-2, 1:-1] - u[2:, 1:-1] - u[1:-1, :-2] - u[1:-1, 2:]
    F = Au.ravel() - h2 * lam * pt.exp(x)

    def F_np(z, lam_value):
        return A @ z - h2 * lam_value * np.exp(z)

    def J_np(z, lam_value):
        return (A - sp.diags(h2 * lam_value * np.exp(z))).toarray()

    return x, lam, F, F_np, J_np


def gmrf_poisson(N: int = 4, seed: int = 0):
    """``f(x; τ, b) = Σ exp(x + b) − y(x + b) + ½ τ xᵀQx + ½ ε xᵀx``, Q a 2-D grid Laplacian."""
    n = N * N
    T = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(N, N)).tolil()
    T[0, 0] = T[-1, -1] = 1.0
    Q = sp.csr_matrix(sp.kronsum(T.tocsr(), T.tocsr()))
    y = np.random.default_rng(seed).poisson(2.0, size=n).astype(float)
    x = pt.vector("x", shape=(n,))
    tau = pt.dscalar("tau")
    b = pt.vector("b", shape=(n,))
    u = x.reshape((N, N))
    quad = ((u[1:, :] - u[:-1, :]) ** 2).sum() + ((u[:, 1:] - u[:, :-1]) ** 2).sum()  # xᵀQx
    eta = x + b
    f = (pt.exp(eta) - y * eta).sum() + 0.5 * tau * quad + 0.5e-2 * (x * x).sum()

    def f_np(z, tau_value, b_value):
        e = z + b_value
        return float((np.exp(e) - y * e).sum() + 0.5 * tau_value * z @ (Q @ z) + 0.5e-2 * z @ z)

    def g_np(z, tau_value, b_value):
        return np.exp(z + b_value) - y + tau_value * (Q @ z) + 1e-2 * z

    return x, tau, b, f, f_np, g_np


def compile_fn(inputs, outputs):
    return pytensor.function(inputs, outputs, mode=MODE)


def central_difference(fn, values: list, index: int, h: float = 1e-6) -> np.ndarray:
    """d fn / d values[index] by central differences (each side a full re-solve)."""
    base = np.asarray(values[index], dtype=float)
    grad = np.zeros(base.shape)
    for k in np.ndindex(base.shape or ()):
        plus = [v.copy() if isinstance(v, np.ndarray) else v for v in values]
        minus = [v.copy() if isinstance(v, np.ndarray) else v for v in values]
        p, m = base.copy(), base.copy()
        p[k] += h
        m[k] -= h
        plus[index], minus[index] = p, m
        grad[k] = (float(fn(*plus)) - float(fn(*minus))) / (2 * h)
    return grad
