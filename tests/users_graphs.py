"""Graphs written the way the people who asked for sparse Jacobians write them, in plain PyTensor.

* a multi-sector CGE model (Cobb–Douglas production with ``pt.prod``, CES price aggregates,
  an income balance over all sectors and an aggregate income that enters every demand: a dense
  row *and* a dense column, so bidirectional mode wins);
* gEconpy-style DSGE systems: an RBC steady state, and a perfect-foresight system stacking
  ``T`` periods of the model's equations by shifts of one vector (block-banded);
* PyMC-style log-densities: ``pt.switch`` bounds checks, ``log1p``, ``logsumexp``, ``gammaln``
  and ``check_parameters``-style assertions (``pytensor.raise_op.Assert``);
* quadratic costs (constant Hessians) and piecewise-constant expressions (zero Jacobians);
* convolutions (the cases of sparsejac's own test suite);
* an ICAR (BYM-style) log-density on a lattice with a soft sum-to-zero constraint: a sparse
  Hessian plus a rank-one term (``sd.hessian(..., low_rank=True)``).
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import grad_not_implemented
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.raise_op import Assert
from pytensor.tensor.signal import convolve1d, convolve2d


def cge(n_sectors: int = 40, n_factors: int = 4, seed: int = 0, no_zeros: bool = False):
    """Residual and unknowns of a CGE model: ``n = S·F + 2·S + 1``.

    Unknowns: factor inputs ``f`` (S×F), prices ``p`` (S), outputs ``q`` (S), income ``Y``.
    ``no_zeros`` writes ``pt.prod(..., no_zeros_in_input=True)`` (JAX cannot run the general
    gradient of ``prod``).
    """
    S, F = n_sectors, n_factors
    rng = np.random.default_rng(seed)
    x = pt.vector("x", shape=(S * F + 2 * S + 1,))
    fac = x[: S * F].reshape((S, F))
    p, q, Y = x[S * F : S * F + S], x[S * F + S : S * F + 2 * S], x[-1]
    alpha = rng.dirichlet(np.ones(F), size=S)
    tfp = rng.uniform(0.5, 1.5, S)
    share = rng.uniform(0.2, 0.8, S)
    sigma = 0.6
    production = q - tfp * pt.prod(fac**alpha, axis=1, no_zeros_in_input=no_zeros)  # Cobb–Douglas
    ces = (share * p ** (1 - sigma) + (1 - share) * pt.roll(p, 1) ** (1 - sigma)) ** (
        1 / (1 - sigma)
    )
    prices = p - 0.9 * ces
    demand = (alpha * (p * q)[:, None] / fac).ravel() - Y / S  # Y enters every demand
    income = (p * q).sum() - Y  # a dense row
    return pt.concatenate([production, prices, demand, income[None]]), x


def cge_point(x, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.5, 1.5, x.type.shape)


def lattice_edges(N: int) -> tuple[np.ndarray, np.ndarray]:
    """The edges (i, j) of the N×N lattice graph (4-neighbour), as two index arrays."""
    idx = np.arange(N * N).reshape(N, N)
    ei = np.concatenate([idx[:, :-1].ravel(), idx[:-1, :].ravel()])
    ej = np.concatenate([idx[:, 1:].ravel(), idx[1:, :].ravel()])
    return ei, ej


def icar(N: int, hyper: bool = False, tau: float = 1.5, eps: float = 1e-3, seed: int = 0):
    """An ICAR log-density on the N×N lattice with Poisson counts, as PyMC writes it.

    ``Σ (y x − eˣ) − ½ τ Σ_edges (x_i − x_j)² − ½ (Σx / (eps·n))²``: the Hessian is
    ``−diag(eˣ) − τ L`` (a 5-point graph Laplacian) plus a rank-one term (the soft sum-to-zero
    constraint couples every pair). With ``hyper`` the unknowns are ``θ = [x, log τ]`` (a
    Gamma(1, 1)-like prior on τ): the precision couples τ with every ``x`` too.
    Returns ``(cost, wrt)``.
    """
    n = N * N
    ei, ej = lattice_edges(N)
    y = np.random.default_rng(seed).poisson(2.0, n).astype(float)
    if hyper:
        theta = pt.vector("theta", shape=(n + 1,))
        x, log_tau = theta[:n], theta[n]
        tau_v, wrt = pt.exp(log_tau), theta
    else:
        x = pt.vector("x", shape=(n,))
        tau_v, wrt = tau, x
    likelihood = (y * x - pt.exp(x)).sum()
    prior = -0.5 * tau_v * ((x[ei] - x[ej]) ** 2).sum()
    sum_to_zero = -0.5 * (x.sum() / (eps * n)) ** 2
    cost = likelihood + prior + sum_to_zero
    if hyper:
        cost = cost + 0.5 * (n - 1) * log_tau - tau_v
    return cost, wrt


def rbc_steady_state():
    """gEconpy's RBC steady state: 6 equations in (c, k, y, i, r, w) and parameters."""
    x = pt.vector("ss", shape=(6,))
    c, k, y, i, r, w = (x[j] for j in range(6))
    alpha, beta, delta = 0.35, 0.99, 0.025
    eqs = [
        y - k**alpha,
        r - alpha * k ** (alpha - 1),
        w - (1 - alpha) * k**alpha,
        1 - beta * (r + 1 - delta),
        i - delta * k,
        y - c - i,
    ]
    return pt.stack(eqs), x


def perfect_foresight(T: int = 50):
    """T periods of an RBC model with log utility, stacked into one residual by shifts of one
    vector: period t couples t-1, t, t+1 (block-banded, 3 variables per period)."""
    alpha, beta, delta, rho = 0.35, 0.99, 0.025, 0.9
    x = pt.vector("path", shape=(3 * T,))
    v = x.reshape((T, 3))
    c, k, z = pt.exp(v[:, 0]), pt.exp(v[:, 1]), v[:, 2]
    k_prev = pt.concatenate([pt.constant([10.0]), k[:-1]])
    z_prev = pt.concatenate([pt.constant([0.0]), z[:-1]])
    c_next = pt.concatenate([c[1:], c[-1:]])
    k_cur, z_next = k, pt.concatenate([z[1:], z[-1:]])
    euler = 1 / c - beta / c_next * (alpha * pt.exp(z_next) * k_cur ** (alpha - 1) + 1 - delta)
    budget = c + k - pt.exp(z) * k_prev**alpha - (1 - delta) * k_prev
    shock = z - rho * z_prev
    return pt.stack([euler, budget, shock], axis=1).ravel(), x


NK_VARIABLES = (
    "C", "L", "K", "I", "Y", "w", "r", "pi", "mc", "lam", "q", "A",
    "Rn", "pstar", "g1", "g2", "disp", "wstar", "h1", "h2", "pi_w", "G", "m",
)  # fmt: skip


def nk_perfect_foresight(T: int = 100):
    """A New Keynesian model (gEconpy's NK shape: Calvo prices and wages, investment adjustment
    costs, a Taylor rule, three AR(1) shocks) in perfect foresight: 23 equations of exp / log /
    power terms per period, ``T`` periods stacked by shifts of one vector (``n = 23·T``).

    Every unknown but the shocks is a log level; lags before the first period and leads after
    the last are the steady state (0, constants in the graph). Period ``t`` couples ``t-1``,
    ``t`` and ``t+1``. The economics is only as careful as the graph's shape needs: what
    matters here is a realistic mix of many distinct nonlinear equations, vectorized over
    periods (the graph gEconpy builds).
    """
    beta, sigma, phi, alpha, delta, psi = 0.99, 1.5, 1.0, 0.33, 0.025, 2.0
    theta_p, theta_w, eps_p, eps_w = 0.75, 0.75, 6.0, 6.0
    phi_pi, phi_y, rho_r, rho_a, rho_g, rho_m, g_ss = 1.5, 0.125, 0.8, 0.95, 0.9, 0.5, 0.2
    k = len(NK_VARIABLES)
    x = pt.vector("path", shape=(k * T,))
    v = x.reshape((T, k))
    now = {name: v[:, j] for j, name in enumerate(NK_VARIABLES)}
    zero = pt.zeros((1,))
    lag = {n: pt.concatenate([zero, c[:-1]]) for n, c in now.items()}
    lead = {n: pt.concatenate([c[1:], zero]) for n, c in now.items()}
    E = {n: pt.exp(c) for n, c in now.items()}
    El = {n: pt.exp(c) for n, c in lag.items()}
    Ef = {n: pt.exp(c) for n, c in lead.items()}
    sdf = beta * Ef["lam"] / E["lam"]
    growth = E["I"] / El["I"]
    growth_next = Ef["I"] / E["I"]
    eqs = [
        E["lam"] - E["C"] ** (-sigma),
        E["lam"] - beta * Ef["lam"] * E["Rn"] / Ef["pi"],
        E["q"] - sdf * (Ef["r"] + Ef["q"] * (1 - delta)),
        1
        - E["q"] * (1 - psi / 2 * (growth - 1) ** 2 - psi * (growth - 1) * growth)
        - sdf * Ef["q"] * psi * (growth_next - 1) * growth_next**2,
        E["K"] - (1 - delta) * El["K"] - E["I"] * (1 - psi / 2 * (growth - 1) ** 2),
        E["Y"] * E["disp"] - E["A"] * El["K"] ** alpha * E["L"] ** (1 - alpha),
        E["w"] - (1 - alpha) * E["mc"] * E["Y"] * E["disp"] / E["L"],
        E["r"] - alpha * E["mc"] * E["Y"] * E["disp"] / El["K"],
        E["Y"] - E["C"] - E["I"] - E["G"],
        E["g1"] - E["lam"] * E["mc"] * E["Y"] - beta * theta_p * Ef["pi"] ** eps_p * Ef["g1"],
        E["g2"] - E["lam"] * E["Y"] - beta * theta_p * Ef["pi"] ** (eps_p - 1) * Ef["g2"],
        eps_p * E["g1"] - (eps_p - 1) * E["pstar"] * E["g2"],
        1 - theta_p * E["pi"] ** (eps_p - 1) - (1 - theta_p) * E["pstar"] ** (1 - eps_p),
        E["disp"]
        - (1 - theta_p) * E["pstar"] ** (-eps_p)
        - theta_p * E["pi"] ** eps_p * El["disp"],
        E["h1"]
        - (E["w"] / E["wstar"]) ** (eps_w * (1 + phi)) * E["L"] ** (1 + phi)
        - beta * theta_w * Ef["pi_w"] ** (eps_w * (1 + phi)) * Ef["h1"],
        E["h2"]
        - E["lam"] * (E["w"] / E["wstar"]) ** eps_w * E["L"]
        - beta * theta_w * Ef["pi_w"] ** (eps_w - 1) * Ef["h2"],
        eps_w * E["h1"] - (eps_w - 1) * E["wstar"] * E["h2"],
        E["w"] ** (1 - eps_w)
        - theta_w * (El["w"] / E["pi"]) ** (1 - eps_w)
        - (1 - theta_w) * E["wstar"] ** (1 - eps_w),
        E["pi_w"] - E["w"] / El["w"] * E["pi"],
        E["Rn"]
        - El["Rn"] ** rho_r
        * (E["pi"] ** phi_pi * E["Y"] ** phi_y / beta) ** (1 - rho_r)
        * pt.exp(now["m"]),
        now["A"] - rho_a * lag["A"],
        now["G"] - (1 - rho_g) * np.log(g_ss) - rho_g * lag["G"] + pt.log1p(E["G"]) * 0.0,
        now["m"] - rho_m * lag["m"],
    ]
    return pt.stack(eqs, axis=1).ravel(), x


def nk_point(x, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.1, 0.1, x.type.shape)


def check_parameters(value, *conditions, msg: str = ""):
    """PyMC's ``check_parameters``: an ``Assert`` of all conditions on ``value``."""
    return Assert(msg)(value, pt.all(pt.stack([pt.all(c) for c in conditions])))


def latent_gaussian_logp(n: int = 30):
    """The logp of a latent Gaussian model as PyMC writes it: a Gaussian random walk prior on
    ``z``, a log-transformed scale, a Student-t-ish likelihood with ``gammaln``, a two-component
    mixture with ``logsumexp``, ``log1p`` and ``switch`` bounds checks."""
    theta = pt.vector("theta", shape=(n + 1,))
    z, log_sigma = theta[:n], theta[n]
    sigma = pt.exp(log_sigma)
    y = np.linspace(-1, 1, n)
    nu = 4.0
    walk = z[1:] - z[:-1]
    prior = pt.sum(-0.5 * (walk / sigma) ** 2 - pt.log(sigma) - 0.5 * np.log(2 * np.pi))
    prior = check_parameters(prior, sigma > 0, msg="sigma > 0")
    resid = (y - z) / sigma
    student = (
        pt.gammaln((nu + 1) / 2)
        - pt.gammaln(nu / 2)
        - 0.5 * np.log(nu * np.pi)
        - log_sigma
        - (nu + 1) / 2 * pt.log1p(resid**2 / nu)
    )
    student = pt.switch(pt.isnan(y), 0.0, student)
    comps = pt.stack([-0.5 * (z - 1.0) ** 2, -0.5 * (z + 1.0) ** 2 / 4 - np.log(2.0)], axis=0)
    mixture = pt.logsumexp(comps + np.log(0.5), axis=0)
    bound = pt.switch(pt.ge(sigma, 0), 0.0, -np.inf)
    logp = prior + student.sum() + mixture.sum() + bound + pt.gammaln(sigma + 1)
    return logp, theta


def latent_gaussian_point(theta, seed: int = 2) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.5, 0.5, theta.type.shape)


def gaussian_quadratic(n: int = 12):
    """A Gaussian log-density with a tridiagonal precision: constant Hessian ``-Q``."""
    x = pt.vector("x", shape=(n,))
    mu = np.linspace(0, 1, n)
    d = x - mu
    quad = 2.0 * (d**2).sum() - (d[1:] * d[:-1]).sum()
    return -0.5 * quad - 0.5 * n * np.log(2 * np.pi), x


def least_squares_quadratic(n: int = 12):
    """``‖A x − b‖²`` with a constant banded ``A``: Hessian ``2 AᵀA``."""
    x = pt.vector("x", shape=(n,))
    A = np.eye(n) + np.diag(np.full(n - 1, 0.5), 1) - np.diag(np.full(n - 2, 0.25), -2)
    b = np.arange(n, dtype=float)
    r = pt.dot(A, x) - b
    return (r**2).sum(), x


def torsion_quadratic(N: int = 4, c: float = 5.0):
    """MINPACK-2 elastic-plastic torsion (its quadratic objective on an N×N interior grid)."""
    x = pt.vector("v", shape=(N * N,))
    h = 1.0 / (N + 1)
    u = pt.zeros((N + 2, N + 2))
    u = pt.set_subtensor(u[1:-1, 1:-1], x.reshape((N, N)))
    dx = (u[1:, :] - u[:-1, :]) / h
    dy = (u[:, 1:] - u[:, :-1]) / h
    return 0.25 * h**2 * ((dx**2).sum() + (dy**2).sum()) - c * h**2 * x.sum(), x


def zero_jacobian(n: int = 8):
    """Only piecewise-constant Ops: the Jacobian is identically zero."""
    x = pt.vector("x", shape=(n,))
    return pt.floor(x) + pt.sign(x[::-1]) * pt.round(2 * x), x


def convolutions(n: int = 50, N: int = 20):
    """sparsejac's test cases: 'valid' and 'same' 1-D convolutions of length ``n`` with a 3-tap
    kernel, an N×N 'valid' 2-D convolution with a 3×3 kernel, and their squares."""
    x = pt.vector("x", shape=(n,))
    X = pt.vector("X", shape=(N * N,))
    k1 = np.array([1.0, -2.0, 1.0])
    k2 = np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
    return {
        "conv1d_valid": (convolve1d(x, k1, mode="valid"), x),
        "conv1d_same": (convolve1d(x, k1, mode="same"), x),
        "conv1d_same_squared": (convolve1d(x, k1, mode="same") ** 2, x),
        "conv2d_valid": (convolve2d(X.reshape((N, N)), np.ones((3, 3)), mode="valid"), X),
        "conv2d_valid_squared": (convolve2d(X.reshape((N, N)), k2, mode="valid") ** 2, X),
    }


def conv1d_window_pattern(n: int, k: int, mode: str, kernel=None) -> np.ndarray:
    """The analytic pattern of ``convolve1d(x, kernel, mode)`` with respect to ``x``."""
    full = np.zeros((n + k - 1, n), dtype=bool)
    taps = np.arange(k) if kernel is None else np.flatnonzero(np.asarray(kernel))
    for j in taps:
        full[np.arange(n) + j, np.arange(n)] = True
    if mode == "full":
        return full
    if mode == "valid":
        return full[min(n, k) - 1 : max(n, k)]
    start = k - 1 - k // 2  # 'same': PyTensor pads k // 2 zeros on the left
    return full[start : start + n]


# --- an Op with no forward route (first derivatives only) --------------------------------------


class _Cube(Op):
    """``x³`` whose pullback passes the cotangent through :class:`_Opaque` (an identity that
    cannot be differentiated): no pushforward, no double pullback."""

    __props__ = ()

    def make_node(self, x):
        x = pt.as_tensor_variable(x)
        return Apply(self, [x], [x.type()])

    def perform(self, node, inputs, outputs):
        outputs[0][0] = inputs[0] ** 3

    def pullback(self, inputs, outputs, grads):
        return [_Opaque()(grads[0]) * 3 * inputs[0] ** 2]

    def sparsity_rule(self, node, input_patterns, ctx):
        return [input_patterns[0]]  # elementwise


class _Opaque(Op):
    __props__ = ()

    def make_node(self, x):
        x = pt.as_tensor_variable(x)
        return Apply(self, [x], [x.type()])

    def perform(self, node, inputs, outputs):
        outputs[0][0] = inputs[0].copy()

    def pullback(self, inputs, outputs, grads):
        return [grad_not_implemented(self, 0, inputs[0])]


class FirstOrderOnly(_Cube):
    pass


def first_order_only(x):
    return FirstOrderOnly()(x)
