"""Built-in problems: PyTensor graphs written the way users write them, with analytic derivatives.

They serve the demo, the tests and the benchmarks. Each analytic Jacobian or Hessian is built in
vectorized NumPy, O(nnz), so large sizes can be checked without any dense matrix. Ported from the
reference workloads (MINPACK-2 solid fuel ignition and flow in a driven cavity, the 2-D
Brusselator of SparseConnectivityTracer.jl / DifferentialEquations.jl).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytensor.tensor as pt
import scipy.sparse as sp
from pytensor.graph.basic import Variable


@dataclass(frozen=True)
class Problem:
    """A residual (``kind="jacobian"``) or a scalar cost (``kind="hessian"``) and its derivative."""

    name: str
    x: Variable
    expression: Variable
    x0: np.ndarray
    numpy_expression: Callable[..., np.ndarray]
    numpy_derivative: Callable[..., sp.csr_array]
    kind: str = "jacobian"
    params: tuple[Variable, ...] = ()
    param_values: tuple[np.ndarray, ...] = field(default=())

    @property
    def n(self) -> int:
        return int(self.x.type.shape[0])

    @property
    def m(self) -> int:
        """Rows of the derivative: equations for a residual, n for a Hessian."""
        return self.n if self.kind == "hessian" else int(np.prod(self.expression.type.shape))

    def residual_numpy(self, x: np.ndarray, *params) -> np.ndarray:
        """The expression evaluated in NumPy (cost for Hessian problems)."""
        return self.numpy_expression(x, *(params or self.param_values))

    def jacobian(self, x: np.ndarray, *params) -> sp.csr_array:
        """Analytic Jacobian (for a Hessian problem: the Hessian) as a CSR array."""
        return sp.csr_array(self.numpy_derivative(x, *(params or self.param_values)))

    hessian = jacobian

    def pattern(self) -> sp.csr_array:
        """Exact structural pattern, O(nnz): the analytic derivative's stored entries.

        The analytic derivatives store every structural entry explicitly (a value that happens
        to be zero at some point, e.g. ``du/dv = u²`` where ``u = 0`` in the Brusselator's
        initial condition, is still stored), so the pattern does not depend on the point.
        """
        d = self.jacobian(self.x0)
        d.sort_indices()
        return sp.csr_array(
            (np.ones(d.nnz, dtype=bool), d.indices.copy(), d.indptr.copy()), shape=d.shape
        )


def _vector(name: str, n: int) -> Variable:
    return pt.vector(name, shape=(n,), dtype="float64")


def _csr(rows, cols, vals, shape) -> sp.csr_array:
    out = sp.coo_array(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=shape
    ).tocsr()
    out.sum_duplicates()
    return out


# ---------------------------------------------------------------------------------------------
def fd1d(n: int) -> Problem:
    """``r_i = x_{i-1} - 2x_i + x_{i+1} - h²(exp(x_i) + x_i³)``, zero Dirichlet ends.

    Tridiagonal Jacobian, 3 colors.
    """
    h2 = 1.0 / (n + 1) ** 2
    x = _vector("x", n)
    padded = pt.concatenate([pt.zeros(1), x, pt.zeros(1)])
    residual = padded[:-2] - 2 * x + padded[2:] - h2 * (pt.exp(x) + x**3)

    def numpy_residual(z):
        p = np.concatenate([[0.0], z, [0.0]])
        return p[:-2] - 2 * z + p[2:] - h2 * (np.exp(z) + z**3)

    def numpy_jacobian(z):
        k = np.arange(n)
        diag = -2 - h2 * (np.exp(z) + 3 * z**2)
        return _csr(
            [k, k[1:], k[:-1]],
            [k, k[1:] - 1, k[:-1] + 1],
            [diag, np.ones(n - 1), np.ones(n - 1)],
            (n, n),
        )

    return Problem(f"fd1d(n={n})", x, residual, np.zeros(n), numpy_residual, numpy_jacobian)


# ---------------------------------------------------------------------------------------------
def bratu_start(nx: int, ny: int, lam: float = 5.0) -> np.ndarray:
    """MINPACK-2's standard starting point for the solid fuel ignition problem."""
    hx, hy = 1.0 / (nx + 1), 1.0 / (ny + 1)
    di = np.minimum(np.arange(1, nx + 1), nx - np.arange(1, nx + 1) + 1) * hx
    dj = np.minimum(np.arange(1, ny + 1), ny - np.arange(1, ny + 1) + 1) * hy
    return (lam / (lam + 1.0)) * np.sqrt(np.minimum(di[None, :], dj[:, None])).ravel()


def bratu2d(
    nx: int, ny: int | None = None, lam: float = 5.0, lam_as_parameter: bool = False
) -> Problem:
    """2-D Bratu = MINPACK-2 solid fuel ignition, ``-Δu = λ eᵘ`` on an nx×ny interior grid.

    ``F_k = (2u - u_L - u_R) hy/hx + (2u - u_B - u_T) hx/hy - hx hy λ exp(u)``, k = j*nx + i.
    With ``lam_as_parameter`` λ is a scalar PyTensor input (``params``).
    """
    ny = nx if ny is None else ny
    n = nx * ny
    hx, hy = 1.0 / (nx + 1), 1.0 / (ny + 1)
    x = _vector("x", n)
    lam_var = pt.scalar("lam", dtype="float64") if lam_as_parameter else lam
    u = x.reshape((ny, nx))
    up = pt.zeros((ny + 2, nx + 2))
    up = pt.set_subtensor(up[1:-1, 1:-1], u)
    uxx = (2 * u - up[1:-1, :-2] - up[1:-1, 2:]) * (hy / hx)
    uyy = (2 * u - up[:-2, 1:-1] - up[2:, 1:-1]) * (hx / hy)
    residual = (uxx + uyy - hx * hy * lam_var * pt.exp(u)).ravel()

    def numpy_residual(z, lam_value=lam):
        w = z.reshape(ny, nx)
        p = np.zeros((ny + 2, nx + 2))
        p[1:-1, 1:-1] = w
        a = (2 * w - p[1:-1, :-2] - p[1:-1, 2:]) * (hy / hx)
        b = (2 * w - p[:-2, 1:-1] - p[2:, 1:-1]) * (hx / hy)
        return (a + b - hx * hy * lam_value * np.exp(w)).ravel()

    def numpy_jacobian(z, lam_value=lam):
        k = np.arange(n)
        i, j = k % nx, k // nx
        rows, cols = [k], [k]
        vals = [2 * (hy / hx + hx / hy) - hx * hy * lam_value * np.exp(z)]
        for mask, off, v in (
            (i != 0, -1, -hy / hx),
            (i != nx - 1, 1, -hy / hx),
            (j != 0, -nx, -hx / hy),
            (j != ny - 1, nx, -hx / hy),
        ):
            rows.append(k[mask])
            cols.append(k[mask] + off)
            vals.append(np.full(int(mask.sum()), v))
        return _csr(rows, cols, vals, (n, n))

    params = (lam_var,) if lam_as_parameter else ()
    values = (np.asarray(lam),) if lam_as_parameter else ()
    return Problem(
        f"bratu2d({nx}x{ny})",
        x,
        residual,
        bratu_start(nx, ny, lam),
        numpy_residual,
        numpy_jacobian,
        params=params,
        param_values=values,
    )


# ---------------------------------------------------------------------------------------------
def brusselator2d(
    N: int, A: float = 3.4, B: float = 1.0, alpha0: float = 10.0, dx: float | None = None
) -> Problem:
    """2-D Brusselator reaction-diffusion right-hand side, periodic, 2N² unknowns.

    State order is Julia's column-major ``u[i, j, k]``: flat index ``i + N j + N² k`` (k = 0: u,
    k = 1: v), i.e. ``x.reshape((2, N, N))`` in C order is ``[k, j, i]``. Defaults are the
    DifferentialEquations.jl tutorial's; ``brusselator2d(N, A=1, B=1, alpha0=1, dx=1)`` is
    SparseConnectivityTracer.jl's test problem. 6 nonzeros per row.
    """
    dx = 1.0 / (N - 1) if dx is None else dx
    a = alpha0 / dx**2
    n = 2 * N * N
    x = _vector("x", n)
    state = x.reshape((2, N, N))
    u, v = state[0], state[1]

    def lap(w):
        return pt.roll(w, 1, 0) + pt.roll(w, -1, 0) + pt.roll(w, 1, 1) + pt.roll(w, -1, 1) - 4 * w

    du = a * lap(u) + B + u * u * v - (A + 1) * u
    dv = a * lap(v) + A * u - u * u * v
    rhs = pt.stack([du, dv]).ravel()

    def numpy_rhs(z):
        s = z.reshape(2, N, N)
        uu, vv = s[0], s[1]

        def nlap(w):
            return (
                np.roll(w, 1, 0) + np.roll(w, -1, 0) + np.roll(w, 1, 1) + np.roll(w, -1, 1) - 4 * w
            )

        return np.stack(
            [
                a * nlap(uu) + B + uu * uu * vv - (A + 1) * uu,
                a * nlap(vv) + A * uu - uu * uu * vv,
            ]
        ).ravel()

    def numpy_jacobian(z):
        s = z.reshape(2, N * N)
        uu, vv = s[0], s[1]
        cell = np.arange(N * N)
        i, j = cell % N, cell // N

        def idx(ii, jj, k):
            return (ii % N) + N * (jj % N) + N * N * k

        rows, cols, vals = [], [], []
        for k in (0, 1):
            r = idx(i, j, k)
            for di, dj in ((-1, 0), (1, 0), (0, 1), (0, -1)):
                rows.append(r)
                cols.append(idx(i + di, j + dj, k))
                vals.append(np.full(N * N, a))
        r0, r1 = idx(i, j, 0), idx(i, j, 1)
        rows += [r0, r0, r1, r1]
        cols += [r0, r1, r0, r1]
        vals += [-4 * a + 2 * uu * vv - (A + 1), uu * uu, A - 2 * uu * vv, -4 * a - uu * uu]
        return _csr(rows, cols, vals, (n, n))

    grid = np.linspace(0.0, 1.0, N)
    X, Y = np.meshgrid(grid, grid, indexing="ij")  # [i, j]
    start = np.stack([22 * Y * (1 - Y) ** 1.5, 27 * X * (1 - X) ** 1.5])  # [k, i, j]
    x0 = start.transpose(0, 2, 1).ravel()  # [k, j, i]
    return Problem(f"brusselator2d(N={N})", x, rhs, x0, numpy_rhs, numpy_jacobian)


# ---------------------------------------------------------------------------------------------
def energy2d(N: int, nonlinearity: str = "exp") -> Problem:
    """``E(u) = ½ Σ |∇u|² + Σ g(u) - Σ f u`` on an N×N grid (zero Dirichlet boundary).

    ``g`` is ``exp`` (default) or ``u⁴/4`` (``nonlinearity="quartic"``). The Hessian is the
    5-point Laplacian plus ``diag(g''(u))``: a star-coloring test.
    """
    if nonlinearity not in ("exp", "quartic"):
        raise ValueError(f"nonlinearity must be 'exp' or 'quartic', got {nonlinearity!r}")
    quartic = nonlinearity == "quartic"
    n = N * N
    x = _vector("x", n)
    f = np.linspace(0.5, 1.5, n)
    u = x.reshape((N, N))
    up = pt.pad(u, 1)
    cost = (
        0.5 * ((up[1:, 1:-1] - up[:-1, 1:-1]) ** 2).sum()
        + 0.5 * ((up[1:-1, 1:] - up[1:-1, :-1]) ** 2).sum()
        + ((u**4).sum() / 4 if quartic else pt.exp(u).sum())
        - (f * x).sum()
    )

    def numpy_cost(z):
        p = np.pad(z.reshape(N, N), 1)
        return (
            0.5 * ((p[1:, 1:-1] - p[:-1, 1:-1]) ** 2).sum()
            + 0.5 * ((p[1:-1, 1:] - p[1:-1, :-1]) ** 2).sum()
            + ((z**4).sum() / 4 if quartic else np.exp(z).sum())
            - (f * z).sum()
        )

    def numpy_hessian(z):
        k = np.arange(n)
        i, j = k % N, k // N
        rows, cols, vals = [k], [k], [4.0 + (3 * z**2 if quartic else np.exp(z))]
        for mask, off in ((i != 0, -1), (i != N - 1, 1), (j != 0, -N), (j != N - 1, N)):
            rows.append(k[mask])
            cols.append(k[mask] + off)
            vals.append(np.full(int(mask.sum()), -1.0))
        return _csr(rows, cols, vals, (n, n))

    suffix = ", quartic" if quartic else ""
    return Problem(
        f"energy2d(N={N}{suffix})",
        x,
        cost,
        np.zeros(n),
        numpy_cost,
        numpy_hessian,
        kind="hessian",
    )


# ---------------------------------------------------------------------------------------------
def cavity2d(nx: int, ny: int | None = None, R: float = 100.0) -> Problem:
    """MINPACK-2 flow in a driven cavity (``dfdcfj``), stream function ψ on an nx×ny interior grid.

    ``Δ²ψ - R (ψ_y (Δψ)_x - ψ_x (Δψ)_y) = 0`` on the unit square, ψ = 0 on the walls,
    ``∂ψ/∂n = 0`` except ``∂ψ/∂y = 1`` on the lid (y = 1). Central differences, scaled by
    ``hx² hy²`` as in MINPACK-2; k = j·nx + i. The walls are a ring of zeros around the grid and
    the normal derivative a ring of ghost cells beyond it (the mirror image of the first interior
    row or column, plus ``2 hy`` above the lid), written as a user would: ``set_subtensor`` into a
    padded zeros array, then shifted slices. The Jacobian is the 13-point stencil
    ``|di| + |dj| <= 2`` (13 colors, ``(i + 5j) mod 13``); the start is ψ = 0.
    """
    ny = nx if ny is None else ny
    if nx < 2 or ny < 2:
        raise ValueError(f"cavity2d needs at least a 2×2 grid, got {nx}×{ny}")
    n = nx * ny
    hx, hy = 1.0 / (nx + 1), 1.0 / (ny + 1)
    hx2, hy2 = hx * hx, hy * hy
    x = _vector("x", n)

    def padded(u, zeros, set_):
        """u with the wall ring (zeros) and the ghost ring around it: shape (ny + 4, nx + 4)."""
        p = set_(zeros, (slice(2, -2), slice(2, -2)), u)
        p = set_(p, (0, slice(2, -2)), u[0])  # below the bottom wall: ∂ψ/∂y = 0
        p = set_(p, (-1, slice(2, -2)), u[-1] + 2 * hy)  # above the lid: ∂ψ/∂y = 1
        p = set_(p, (slice(2, -2), 0), u[:, 0])  # left and right walls: ∂ψ/∂x = 0
        return set_(p, (slice(2, -2), -1), u[:, -1])

    def residual_of(p):
        """The MINPACK-2 equations from the padded grid (PyTensor or NumPy arrays alike)."""
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
        return (hx2 * hy2) * (biharmonic - R * convection)

    def pt_set(p, index, value):
        return pt.set_subtensor(p[index], value)

    def np_set(p, index, value):
        p[index] = value
        return p

    u = x.reshape((ny, nx))
    residual = residual_of(padded(u, pt.zeros((ny + 4, nx + 4)), pt_set)).ravel()

    def numpy_padded(w):
        return padded(w, np.zeros((ny + 4, nx + 4)), np_set)

    def numpy_residual(z):
        return residual_of(numpy_padded(z.reshape(ny, nx))).ravel()

    numpy_jacobian = _cavity_jacobian(nx, ny, R, numpy_padded)
    return Problem(
        f"cavity2d({nx}x{ny}, R={R:g})", x, residual, np.zeros(n), numpy_residual, numpy_jacobian
    )


def _cavity_jacobian(
    nx: int, ny: int, R: float, padded: Callable[[np.ndarray], np.ndarray]
) -> Callable[[np.ndarray], sp.csr_array]:
    """The driven cavity's analytic Jacobian in stencil form: 13 coefficients per row, O(n).

    On the padded grid every quantity of the residual is a constant stencil over the 13 offsets
    ``|di| + |dj| <= 2`` (Laplacians, centered differences, the biharmonic operator); the
    convective products ``f g`` differentiate to ``g ∂f + f ∂g``. The padded grid is then folded
    back onto x: a ghost cell is the mirrored interior value (its coefficient moves to that
    offset), a wall cell is zero (its coefficient is dropped). Every in-grid offset is stored,
    so the stored pattern does not depend on the point; with the offsets in (dj, di) order each
    row's columns come out sorted.
    """
    n = nx * ny
    hx, hy = 1.0 / (nx + 1), 1.0 / (ny + 1)
    hx2, hy2 = hx * hx, hy * hy
    offsets = [(dj, di) for dj in range(-2, 3) for di in range(-2 + abs(dj), 3 - abs(dj))]
    slot = {d: s for s, d in enumerate(offsets)}

    def stencil(terms: dict) -> np.ndarray:
        out = np.zeros(len(offsets))
        for d, w in terms.items():
            out[slot[d]] += w
        return out

    def lap(dj, di):
        return {(dj, di + 1): 1 / hx2, (dj, di - 1): 1 / hx2, (dj + 1, di): 1 / hy2,
                (dj - 1, di): 1 / hy2, (dj, di): -2 / hx2 - 2 / hy2}  # fmt: skip

    def combine(*parts):
        out: dict = {}
        for terms, w in parts:
            for d, v in terms.items():
                out[d] = out.get(d, 0.0) + w * v
        return out

    c = -2 / hx2 - 2 / hy2
    B = stencil(combine((lap(0, 1), 1 / hx2), (lap(0, -1), 1 / hx2), (lap(1, 0), 1 / hy2),
                        (lap(-1, 0), 1 / hy2), (lap(0, 0), c)))  # fmt: skip
    Lx = stencil(combine((lap(0, 1), 1 / (2 * hx)), (lap(0, -1), -1 / (2 * hx))))
    Ly = stencil(combine((lap(1, 0), 1 / (2 * hy)), (lap(-1, 0), -1 / (2 * hy))))
    Dy = stencil({(1, 0): 1 / (2 * hy), (-1, 0): -1 / (2 * hy)})
    Dx = stencil({(0, 1): 1 / (2 * hx), (0, -1): -1 / (2 * hx)})

    k = np.arange(n)
    i, j = k % nx, k // nx
    dj_ = np.array([d[0] for d in offsets])
    di_ = np.array([d[1] for d in offsets])
    ii, jj = i[:, None] + di_, j[:, None] + dj_
    in_x, in_y = (ii >= 0) & (ii < nx), (jj >= 0) & (jj < ny)
    mask = in_x & in_y
    # ghost cells (mirrored interior values): (row, slot) -> (row, slot of the mirror image)
    ghost = (((jj == -2) | (jj == ny + 1)) & in_x) | (((ii == -2) | (ii == nx + 1)) & in_y)
    g_row, g_slot = np.nonzero(ghost)
    jt = np.where(jj[ghost] == -2, 0, np.where(jj[ghost] == ny + 1, ny - 1, jj[ghost]))
    it = np.where(ii[ghost] == -2, 0, np.where(ii[ghost] == nx + 1, nx - 1, ii[ghost]))
    lookup = np.full((5, 5), -1)
    for d, s_ in slot.items():
        lookup[d[0] + 2, d[1] + 2] = s_
    g_target = lookup[jt - j[g_row] + 2, it - i[g_row] + 2]
    cols = k[:, None] + dj_ * nx + di_
    indices = cols[mask]
    indptr = np.concatenate([[0], np.cumsum(mask.sum(axis=1))])

    def numpy_jacobian(z):
        p = padded(z.reshape(ny, nx))
        near = np.stack([p[2 + a : 2 + a + ny, 2 + b : 2 + b + nx].ravel() for a, b in offsets], 1)
        lx, ly, dpdy, dpdx = near @ Lx, near @ Ly, near @ Dy, near @ Dx
        ext = B - R * (lx[:, None] * Dy + dpdy[:, None] * Lx - ly[:, None] * Dx)
        ext += R * dpdx[:, None] * Ly
        ext *= hx2 * hy2
        folded = np.where(mask, ext, 0.0)
        np.add.at(folded, (g_row, g_target), ext[g_row, g_slot])
        return sp.csr_array((folded[mask], indices.copy(), indptr.copy()), shape=(n, n))

    return numpy_jacobian


# ---------------------------------------------------------------------------------------------
def rectangular(n: int) -> Problem:
    """More equations than unknowns (m = 2n - 1): ``[x² - c, sin(x[1:] - x[:-1])]``."""
    x = _vector("x", n)
    c = np.linspace(1.0, 2.0, n)
    residual = pt.concatenate([x**2 - c, pt.sin(x[1:] - x[:-1])])

    def numpy_residual(z):
        return np.concatenate([z**2 - c, np.sin(z[1:] - z[:-1])])

    def numpy_jacobian(z):
        k = np.arange(n)
        d = np.cos(z[1:] - z[:-1])
        r = n + k[:-1]
        return _csr([k, r, r], [k, k[1:], k[:-1]], [2 * z, d, -d], (2 * n - 1, n))

    return Problem(
        f"rectangular(n={n})", x, residual, np.linspace(0.5, 1.0, n), numpy_residual, numpy_jacobian
    )


def dense_row_col(n: int) -> Problem:
    """A diagonal plus one dense column and one dense row.

    ``r_i = x_i² + c_i x_{n-1}`` for i < n - 1 and ``r_{n-1} = Σ x``: column coloring needs n
    colors (the dense row), row coloring n too (the dense column); bicoloring needs a few.
    """
    x = _vector("x", n)
    c = 1.0 + np.arange(n - 1) / n
    residual = pt.concatenate([x[:-1] ** 2 + c * x[-1], x.sum()[None]])

    def numpy_residual(z):
        return np.concatenate([z[:-1] ** 2 + c * z[-1], [z.sum()]])

    def numpy_jacobian(z):
        k = np.arange(n - 1)
        last = np.full(n - 1, n - 1)
        return _csr(
            [k, k, np.full(n, n - 1)],
            [k, last, np.arange(n)],
            [2 * z[:-1], c, np.ones(n)],
            (n, n),
        )

    return Problem(
        f"dense_row_col(n={n})",
        x,
        residual,
        np.linspace(0.5, 1.0, n),
        numpy_residual,
        numpy_jacobian,
    )


#: Name → constructor taking one size argument (n, or the grid side for 2-D problems).
PROBLEMS: dict[str, Callable[[int], Problem]] = {
    "fd1d": fd1d,
    "bratu2d": bratu2d,
    "brusselator2d": brusselator2d,
    "energy2d": energy2d,
    "cavity2d": cavity2d,
    "rectangular": rectangular,
    "dense_row_col": dense_row_col,
}


def _side(n: int) -> int:
    return max(2, round(float(np.sqrt(n))))


def from_size(name: str, n: int) -> Problem:
    """The problem ``name`` with about ``n`` unknowns (2-D grids: the nearest square side).

    ``brusselator2d`` has ``2N²`` unknowns, so ``N = round(sqrt(n / 2))``.
    """
    if name in ("bratu2d", "energy2d", "cavity2d"):
        return PROBLEMS[name](_side(n))
    if name == "brusselator2d":
        return brusselator2d(max(3, _side(n / 2)))
    if name in PROBLEMS:
        return PROBLEMS[name](n)
    raise KeyError(f"unknown problem {name!r}; known: {', '.join(PROBLEMS)}")
