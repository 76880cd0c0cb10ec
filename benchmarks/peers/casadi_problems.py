"""The built-in problems (sparsediff.problems, default parameters) as CasADi expressions.

``EXPRESSIONS[family](size, X)`` returns ``(x, expression)`` with ``X`` = ``casadi.MX`` or
``casadi.SX``. CasADi matrices are column-major: ``reshape(x, nx, ny)[i, j] = x[i + nx j]``,
which is exactly the problems' flat index ``k = j nx + i``. Padding uses structural zeros
(``X(r, c)``), so CasADi's sparsity detection sees the true stencil.
"""

from __future__ import annotations

import numpy as np


def _shift_rows(ca, X, w, step):
    """w[i - step, :] with zeros outside (step = +1: previous row)."""
    r, c = w.shape
    if step == 1:
        return ca.vertcat(X(1, c), w[0 : r - 1, :])
    return ca.vertcat(w[1:r, :], X(1, c))


def _shift_cols(ca, X, w, step):
    r, c = w.shape
    if step == 1:
        return ca.horzcat(X(r, 1), w[:, 0 : c - 1])
    return ca.horzcat(w[:, 1:c], X(r, 1))


def fd1d(n, X):
    import casadi as ca

    x = X.sym("x", n)
    h2 = 1.0 / (n + 1) ** 2
    left = ca.vertcat(X(1, 1), x[0 : n - 1])
    right = ca.vertcat(x[1:n], X(1, 1))
    return x, left - 2 * x + right - h2 * (ca.exp(x) + x**3)


def bratu2d(N, X, lam=5.0):
    import casadi as ca

    nx = ny = N
    hx, hy = 1.0 / (nx + 1), 1.0 / (ny + 1)
    x = X.sym("x", nx * ny)
    U = ca.reshape(x, nx, ny)
    ul, ur = _shift_rows(ca, X, U, 1), _shift_rows(ca, X, U, -1)
    ub, ut = _shift_cols(ca, X, U, 1), _shift_cols(ca, X, U, -1)
    F = (2 * U - ul - ur) * (hy / hx) + (2 * U - ub - ut) * (hx / hy) - hx * hy * lam * ca.exp(U)
    return x, ca.reshape(F, nx * ny, 1)


def brusselator2d(N, X, A=3.4, B=1.0, alpha0=10.0):
    import casadi as ca

    a = alpha0 / (1.0 / (N - 1)) ** 2
    NN = N * N
    x = X.sym("x", 2 * NN)
    u = ca.reshape(x[0:NN], N, N)  # [i, j]
    v = ca.reshape(x[NN : 2 * NN], N, N)

    def lap(w):
        up = ca.vertcat(w[N - 1, :], w[0 : N - 1, :])
        down = ca.vertcat(w[1:N, :], w[0, :])
        left = ca.horzcat(w[:, N - 1], w[:, 0 : N - 1])
        right = ca.horzcat(w[:, 1:N], w[:, 0])
        return up + down + left + right - 4 * w

    du = a * lap(u) + B + u * u * v - (A + 1) * u
    dv = a * lap(v) + A * u - u * u * v
    return x, ca.vertcat(ca.reshape(du, NN, 1), ca.reshape(dv, NN, 1))


def energy2d(N, X):
    import casadi as ca

    x = X.sym("x", N * N)
    f = ca.DM(np.linspace(0.5, 1.5, N * N))
    U = ca.reshape(x, N, N)
    P = ca.vertcat(X(1, N + 2), ca.horzcat(X(N, 1), U, X(N, 1)), X(1, N + 2))
    d1 = P[1 : N + 2, 1 : N + 1] - P[0 : N + 1, 1 : N + 1]
    d2 = P[1 : N + 1, 1 : N + 2] - P[1 : N + 1, 0 : N + 1]
    cost = 0.5 * ca.sumsqr(d1) + 0.5 * ca.sumsqr(d2) + ca.sum1(ca.sum2(ca.exp(U))) - ca.dot(f, x)
    return x, cost


def cavity2d(N, X, R=100.0):
    """MINPACK-2 driven cavity; rows of the padded grid are y (j), columns x (i), as in NumPy."""
    import casadi as ca

    nx = ny = N
    hx, hy = 1.0 / (nx + 1), 1.0 / (ny + 1)
    hx2, hy2 = hx * hx, hy * hy
    x = X.sym("x", nx * ny)
    V = ca.reshape(x, nx, ny).T  # [j, i]
    H, W = ny + 4, nx + 4
    core = ca.horzcat(V[:, 0], X(ny, 1), V, X(ny, 1), V[:, nx - 1])
    bottom = ca.horzcat(X(1, 2), V[0, :], X(1, 2))
    top = ca.horzcat(X(1, 2), V[ny - 1, :] + 2 * hy, X(1, 2))
    p = ca.vertcat(bottom, X(1, W), core, X(1, W), top)
    c = p[1 : H - 1, 1 : W - 1]
    lap = (p[1 : H - 1, 2:W] - 2 * c + p[1 : H - 1, 0 : W - 2]) / hx2 + (
        p[2:H, 1 : W - 1] - 2 * c + p[0 : H - 2, 1 : W - 1]
    ) / hy2
    h, w = ny + 2, nx + 2
    mid = lap[1 : h - 1, 1 : w - 1]
    lap_l, lap_r = lap[1 : h - 1, 0 : w - 2], lap[1 : h - 1, 2:w]
    lap_b, lap_t = lap[0 : h - 2, 1 : w - 1], lap[2:h, 1 : w - 1]
    biharmonic = (lap_r - 2 * mid + lap_l) / hx2 + (lap_t - 2 * mid + lap_b) / hy2
    dpdy = (p[3 : H - 1, 2 : W - 2] - p[1 : H - 3, 2 : W - 2]) / (2 * hy)
    dpdx = (p[2 : H - 2, 3 : W - 1] - p[2 : H - 2, 1 : W - 3]) / (2 * hx)
    convection = dpdy * (lap_r - lap_l) / (2 * hx) - dpdx * (lap_t - lap_b) / (2 * hy)
    F = (hx2 * hy2) * (biharmonic - R * convection)
    return x, ca.reshape(F.T, nx * ny, 1)


def rectangular(n, X):
    import casadi as ca

    x = X.sym("x", n)
    c = ca.DM(np.linspace(1.0, 2.0, n))
    return x, ca.vertcat(x**2 - c, ca.sin(x[1:n] - x[0 : n - 1]))


def dense_row_col(n, X):
    import casadi as ca

    x = X.sym("x", n)
    c = ca.DM(1.0 + np.arange(n - 1) / n)
    return x, ca.vertcat(x[0 : n - 1] ** 2 + c * x[n - 1], ca.sum1(x))


EXPRESSIONS = {
    "fd1d": fd1d,
    "bratu2d": bratu2d,
    "brusselator2d": brusselator2d,
    "energy2d": energy2d,
    "cavity2d": cavity2d,
    "rectangular": rectangular,
    "dense_row_col": dense_row_col,
}
