"""Shared helpers for the stage 3/4 tests: references, tolerances, small test problems."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import scipy.sparse as sp
from pytensor.gradient import jacobian as dense_jacobian

RTOL = 1e-12


def greedy_coloring(pattern, kind: str) -> np.ndarray:
    """Plain greedy distance-2 coloring (natural order): a valid column/row/star coloring."""
    p = sp.csr_array(pattern, dtype=bool)
    if kind == "row":
        p = sp.csr_array(p.T)
    pc = p.tocsc()
    n = p.shape[1]
    colors = -np.ones(n, dtype=np.int64)
    for j in range(n):
        forbidden = set()
        for r in pc.indices[pc.indptr[j] : pc.indptr[j + 1]]:
            forbidden.update(colors[p.indices[p.indptr[r] : p.indptr[r + 1]]].tolist())
        c = 0
        while c in forbidden:
            c += 1
        colors[j] = c
    return colors


def random_value(var, rng) -> np.ndarray:
    shape = tuple(var.type.shape)
    if var.dtype.startswith("int"):
        return rng.integers(0, 3, size=shape).astype(var.dtype)
    return rng.uniform(0.3, 1.7, size=shape).astype(var.dtype)


def dense_reference(expression, wrt, inputs, values, mode="FAST_COMPILE"):
    """Dense Jacobian blocks ``(expression.size, w.size)`` via ``pytensor.gradient.jacobian``."""
    wrt_list = list(wrt) if isinstance(wrt, list | tuple) else [wrt]
    flat = expression.ravel() if expression.ndim != 1 else expression
    try:
        blocks = dense_jacobian(flat, wrt_list, disconnected_inputs="ignore", vectorize=True)
    except Exception:  # graphs PyTensor cannot vectorize (Scan, ...): row by row
        blocks = dense_jacobian(flat, wrt_list, disconnected_inputs="ignore", vectorize=False)
    with pytensor.config.change_flags(mode=mode):
        fn = pytensor.function(inputs, blocks, on_unused_input="ignore")
    sizes = [int(np.prod(w.type.shape, dtype=np.int64)) for w in wrt_list]
    return [np.asarray(b).reshape(-1, size) for b, size in zip(fn(*values), sizes, strict=True)]


def assert_matches(sparse_values, dense_blocks, rtol=RTOL):
    for s, d in zip(sparse_values, dense_blocks, strict=True):
        assert sp.issparse(s), type(s)
        got = s.toarray()
        assert got.shape == d.shape
        scale = max(np.abs(d).max(initial=0.0), 1.0)
        err = np.abs(got - d).max(initial=0.0)
        assert err <= rtol * scale, f"max error {err:.3e} (scale {scale:.3e})"


# --- small test problems (the benchmark problems in miniature) -------------------------------


def fd1d(n: int):
    """1-D finite differences, zero Dirichlet ends: tridiagonal Jacobian, 3 colors."""
    x = pt.vector("x", shape=(n,))
    h2 = 1.0 / (n + 1) ** 2
    xp = pt.concatenate([pt.zeros((1,)), x, pt.zeros((1,))])
    r = xp[:-2] - 2 * x + xp[2:] - h2 * (pt.exp(x) + x**3)
    return r, x


def bratu2d(N: int, lam: float = 6.0):
    """2-D Bratu on an N×N grid (5-point Laplacian − λ·exp(u)): n = N², 5 colors."""
    x = pt.vector("x", shape=(N * N,))
    h2 = 1.0 / (N + 1) ** 2
    u = x.reshape((N, N))
    up = pt.set_subtensor(pt.zeros((N + 2, N + 2))[1:-1, 1:-1], u)
    lap = 4 * u - up[:-2, 1:-1] - up[2:, 1:-1] - up[1:-1, :-2] - up[1:-1, 2:]
    return (lap - h2 * lam * pt.exp(u)).ravel(), x


def bratu2d_pattern(N: int) -> sp.csr_array:
    t = sp.diags_array([1.0, 1.0, 1.0], offsets=[-1, 0, 1], shape=(N, N))
    eye = sp.eye_array(N)
    return sp.csr_array((sp.kron(t, eye) + sp.kron(eye, t)).astype(bool))


def bratu2d_colors(N: int) -> np.ndarray:
    i, j = np.divmod(np.arange(N * N), N)
    return (i + 2 * j) % 5
