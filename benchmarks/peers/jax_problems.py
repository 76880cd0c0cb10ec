"""The built-in problems (sparsediff.problems, default parameters) in jax.numpy.

Same math as the PyTensor graphs: ``FUNCTIONS[family](size)`` returns ``f(x)`` (a residual, or a
scalar cost for ``energy2d``), where ``size`` is the argument of the problems' constructor.
"""

from __future__ import annotations

import numpy as np


def fd1d(n: int):
    import jax.numpy as jnp

    h2 = 1.0 / (n + 1) ** 2

    def f(x):
        xp = jnp.pad(x, 1)
        return xp[:-2] - 2 * x + xp[2:] - h2 * (jnp.exp(x) + x**3)

    return f


def bratu2d(N: int, lam: float = 5.0):
    import jax.numpy as jnp

    nx = ny = N
    hx, hy = 1.0 / (nx + 1), 1.0 / (ny + 1)

    def f(x):
        u = x.reshape(ny, nx)
        up = jnp.pad(u, 1)
        uxx = (2 * u - up[1:-1, :-2] - up[1:-1, 2:]) * (hy / hx)
        uyy = (2 * u - up[:-2, 1:-1] - up[2:, 1:-1]) * (hx / hy)
        return (uxx + uyy - hx * hy * lam * jnp.exp(u)).ravel()

    return f


def brusselator2d(N: int, A: float = 3.4, B: float = 1.0, alpha0: float = 10.0):
    import jax.numpy as jnp

    a = alpha0 / (1.0 / (N - 1)) ** 2

    def lap(w):
        return (
            jnp.roll(w, 1, 0) + jnp.roll(w, -1, 0) + jnp.roll(w, 1, 1) + jnp.roll(w, -1, 1) - 4 * w
        )

    def f(x):
        s = x.reshape(2, N, N)
        u, v = s[0], s[1]
        du = a * lap(u) + B + u * u * v - (A + 1) * u
        dv = a * lap(v) + A * u - u * u * v
        return jnp.stack([du, dv]).ravel()

    return f


def energy2d(N: int):
    import jax.numpy as jnp

    fvec = jnp.asarray(np.linspace(0.5, 1.5, N * N))

    def f(x):
        u = x.reshape(N, N)
        up = jnp.pad(u, 1)
        return (
            0.5 * jnp.sum((up[1:, 1:-1] - up[:-1, 1:-1]) ** 2)
            + 0.5 * jnp.sum((up[1:-1, 1:] - up[1:-1, :-1]) ** 2)
            + jnp.sum(jnp.exp(u))
            - jnp.sum(fvec * x)
        )

    return f


def cavity2d(N: int, R: float = 100.0):
    """MINPACK-2 driven cavity: ghost cells by ``.at[].set`` into zeros, then shifted slices."""
    import jax.numpy as jnp

    nx = ny = N
    hx, hy = 1.0 / (nx + 1), 1.0 / (ny + 1)
    hx2, hy2 = hx * hx, hy * hy

    def f(x):
        u = x.reshape(ny, nx)
        p = jnp.zeros((ny + 4, nx + 4)).at[2:-2, 2:-2].set(u)
        p = p.at[0, 2:-2].set(u[0]).at[-1, 2:-2].set(u[-1] + 2 * hy)
        p = p.at[2:-2, 0].set(u[:, 0]).at[2:-2, -1].set(u[:, -1])
        c = p[1:-1, 1:-1]
        lap = (p[1:-1, 2:] - 2 * c + p[1:-1, :-2]) / hx2 + (
            p[2:, 1:-1] - 2 * c + p[:-2, 1:-1]
        ) / hy2
        mid = lap[1:-1, 1:-1]
        lap_l, lap_r, lap_b, lap_t = lap[1:-1, :-2], lap[1:-1, 2:], lap[:-2, 1:-1], lap[2:, 1:-1]
        biharmonic = (lap_r - 2 * mid + lap_l) / hx2 + (lap_t - 2 * mid + lap_b) / hy2
        dpdy = (p[3:-1, 2:-2] - p[1:-3, 2:-2]) / (2 * hy)
        dpdx = (p[2:-2, 3:-1] - p[2:-2, 1:-3]) / (2 * hx)
        convection = dpdy * (lap_r - lap_l) / (2 * hx) - dpdx * (lap_t - lap_b) / (2 * hy)
        return ((hx2 * hy2) * (biharmonic - R * convection)).ravel()

    return f


def rectangular(n: int):
    import jax.numpy as jnp

    c = jnp.asarray(np.linspace(1.0, 2.0, n))

    def f(x):
        return jnp.concatenate([x**2 - c, jnp.sin(x[1:] - x[:-1])])

    return f


def dense_row_col(n: int):
    import jax.numpy as jnp

    c = jnp.asarray(1.0 + np.arange(n - 1) / n)

    def f(x):
        return jnp.concatenate([x[:-1] ** 2 + c * x[-1], jnp.sum(x)[None]])

    return f


FUNCTIONS = {
    "fd1d": fd1d,
    "bratu2d": bratu2d,
    "brusselator2d": brusselator2d,
    "energy2d": energy2d,
    "cavity2d": cavity2d,
    "rectangular": rectangular,
    "dense_row_col": dense_row_col,
}


def setup_jax():
    """Import JAX with float64 enabled (the problems are double precision)."""
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax
