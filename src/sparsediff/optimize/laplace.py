"""The INLA / Laplace step in one graph, sparse, against the dense path users have today.

Model: a latent field ``x`` on an N×N grid with a proper GMRF prior of precision
``P(τ) = τ Q + ε I`` (``Q`` the grid graph Laplacian — an intrinsic CAR / ICAR structure; the
small ridge ``ε`` makes it proper) and Poisson counts ``y_i ~ Poisson(exp(x_i + o_i))``. The
negative log joint, up to constants, is

    f(x, τ) = Σ (exp(x + o) − y (x + o)) + ½ xᵀ P(τ) x − ½ log det P(τ)

(``log det P(τ) = Σ log(τ μ_k + ε)`` with the closed-form eigenvalues ``μ_k`` of the grid
Laplacian). The Laplace approximation of the marginal likelihood of τ is

    L(τ) = −f(x*(τ), τ) − ½ log det H(x*(τ), τ),    x* = argmin f,   H = ∇²ₓ f

and NUTS over τ needs ``dL/dτ``. Sparse: ``x*`` by :func:`sparsediff.optimize.minimize`, ``H``
by :func:`sparsediff.plans.hessian` at ``x*``, ``log det`` by :func:`sparsediff.linalg.logdet`, and
``pytensor.grad(L, τ)`` through all three. Dense (what a pymc-extras user has):
``pytensor.tensor.optimize.minimize`` (L-BFGS-B), ``pytensor.gradient.hessian`` and
``pt.linalg.cholesky``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.graph.replace import graph_replace

__all__ = ["LaplaceProblem", "dense_laplace", "icar_poisson", "sparse_laplace"]

RIDGE = 1e-3


@dataclass
class LaplaceProblem:
    """The model's graph: ``f(x, τ)`` with unknown ``x`` (n,) and hyperparameter ``tau``."""

    N: int
    x: pt.TensorVariable
    tau: pt.TensorVariable
    f: pt.TensorVariable
    y: np.ndarray

    @property
    def n(self) -> int:
        return self.N * self.N


def icar_poisson(N: int, seed: int = 0) -> LaplaceProblem:
    """The latent ICAR-like field with Poisson counts on an N×N grid (see the module doc)."""
    n = N * N
    rng = np.random.default_rng(seed)
    # a smooth true field, so counts have spatial structure
    s = np.linspace(0, 1, N)
    field = np.sin(2 * np.pi * s)[:, None] * np.cos(np.pi * s)[None, :]
    offset = np.log(3.0)
    y = rng.poisson(np.exp(offset + field.ravel())).astype(float)
    mu = 2.0 - 2.0 * np.cos(np.pi * np.arange(N) / N)  # eigenvalues of the 1-D path Laplacian
    eig = (mu[:, None] + mu[None, :]).ravel()  # of the grid Laplacian Q (Kronecker sum)

    x = pt.vector("x", shape=(n,))
    tau = pt.dscalar("tau")
    u = x.reshape((N, N))
    quad = ((u[1:, :] - u[:-1, :]) ** 2).sum() + ((u[:, 1:] - u[:, :-1]) ** 2).sum()  # xᵀQx
    eta = x + offset
    f = (
        (pt.exp(eta) - y * eta).sum()
        + 0.5 * tau * quad
        + 0.5 * RIDGE * (x * x).sum()
        - 0.5 * pt.log(tau * eig + RIDGE).sum()
    )
    f.name = "f"
    return LaplaceProblem(N, x, tau, f, y)


def sparse_laplace(problem: LaplaceProblem, mode=None, optimizer_kwargs=None):
    """``(x0, τ) -> (L, dL/dτ, success, nit)`` with sparsediff, compiled."""
    import sparsediff as sd

    x, tau, f = problem.x, problem.tau, problem.f
    x_star, success, info = sd.optimize.minimize(
        f, x, mode=mode, optimizer_kwargs=optimizer_kwargs, return_info=True
    )
    H = sd.hessian(f, x)
    f_star, H_star = graph_replace([f, H], {x: x_star}, strict=False)
    L = -f_star - 0.5 * sd.linalg.logdet(H_star)
    dL = pytensor.grad(L, tau)
    return pytensor.function([x, tau], [L, dL, success, info["nit"]], mode=mode)


def dense_laplace(problem: LaplaceProblem, mode=None):
    """The same with PyTensor's dense tools: ``(x0, τ) -> (L, dL/dτ, success)``, compiled."""
    from pytensor.gradient import hessian
    from pytensor.tensor.optimize import minimize

    x, tau, f = problem.x, problem.tau, problem.f
    x_star, success = minimize(
        f, x, method="L-BFGS-B", optimizer_kwargs={"tol": 1e-12, "options": {"maxiter": 10_000}}
    )
    H = hessian(f, x)
    f_star, H_star = graph_replace([f, H], {x: x_star}, strict=False)
    chol = pt.linalg.cholesky(H_star)
    L = -f_star - pt.log(pt.diag(chol)).sum()
    dL = pytensor.grad(L, tau)
    return pytensor.function([x, tau], [L, dL, success], mode=mode)


def _timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def demo(size: int = 100, dense_size: int = 24, backend=None, repeats: int = 3) -> int:
    """``python -m sparsediff demo laplace``: the INLA step value + gradient, sparse vs dense."""
    tau_value = 2.0
    problem = icar_poisson(size)
    n = problem.n
    print(f"Laplace / INLA step: latent ICAR field on a {size}x{size} grid, n = {n:,}, Poisson")
    print("  L(τ) = -f(x*(τ), τ) - ½ log det H(x*(τ), τ),  x* = sd.optimize.minimize(f, x)")
    (fn, t_build) = _timed(sparse_laplace, problem, backend)
    x0 = np.zeros(n)
    (out, t_first) = _timed(fn, x0, tau_value)
    # a new τ per timed call (as in a sampler): no factor cache serves it from the last call
    taus = tau_value * (1.0 + 1e-9 * np.arange(1, repeats + 1))
    runs = [_timed(fn, x0, t)[1] for t in taus]
    L, dL, ok, nit = out
    h = 1e-5 * tau_value
    fd = (fn(x0, tau_value + h)[0] - fn(x0, tau_value - h)[0]) / (2 * h)
    print(f"  build+compile {t_build:8.2f} s   first call {t_first:.2f} s")
    print(
        f"  value+gradient {np.median(runs):8.3f} s   median of {repeats}  "
        f"(Newton: {int(nit)} iterations, success={bool(ok)})"
    )
    print(f"  L = {float(L):.6f}   dL/dτ = {float(dL):.8f}   central difference {fd:.8f}")
    status = 0 if ok and np.isclose(dL, fd, rtol=1e-4, atol=1e-6) else 1

    if dense_size:
        small = icar_poisson(dense_size)
        m = small.n
        print(f"Side by side at n = {m:,} ({dense_size}x{dense_size}), value + gradient:")
        sparse_fn, t_sc = _timed(sparse_laplace, small, backend)
        dense_fn, t_dc = _timed(dense_laplace, small, backend)
        z0 = np.zeros(m)
        s_out = sparse_fn(z0, tau_value)
        d_out, _t_dfirst = _timed(dense_fn, z0, tau_value)
        s_runs, d_runs = [], []
        for t in taus:  # interleaved: both see the same machine load
            s_runs.append(_timed(sparse_fn, z0, t)[1])
            d_runs.append(_timed(dense_fn, z0, t)[1])
        ts, td = np.median(s_runs), np.median(d_runs)
        print(
            f"  sparsediff  {ts:9.4f} s   L = {float(s_out[0]):.8f}  dL/dτ = {float(s_out[1]):.8f}"
        )
        print(
            f"  dense       {td:9.4f} s   L = {float(d_out[0]):.8f}  dL/dτ = {float(d_out[1]):.8f}"
        )
        print(f"  speed-up    {td / ts:9.1f}x   (compile: sparse {t_sc:.1f} s, dense {t_dc:.1f} s)")
    return status
