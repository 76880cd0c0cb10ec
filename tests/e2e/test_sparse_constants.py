"""Users' graphs with ``pytensor.sparse`` constants (issue 19, item 1): latent Gaussian models as
PyMC writes their log-densities (a CAR prior ``z @ W``, an AR(1) process, a Gaussian random walk),
with hyperparameters in ``wrt`` as pymc-extras' Laplace puts them (a list, or one flat vector).

Every Hessian and Jacobian is compared with ``pytensor.gradient.hessian`` / ``jacobian`` of the
same model written with dense matrices (PyTensor cannot differentiate ``ps.dot(z, W)`` of a
vector ``z`` itself: see ``sparsediff/_sparse_ops.py``)."""

from __future__ import annotations

import warnings

import numpy as np
import pytensor
import pytensor.sparse as ps
import pytensor.tensor as pt
import pytest
import scipy.sparse as sp
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pytensor.gradient import jacobian
from pytensor.graph.replace import graph_replace

import sparsediff as sd

RTOL = 1e-10
N = 16


def _ring_lattice(n: int, seed: int = 0) -> sp.csr_matrix:
    """A symmetric 0/1 adjacency (a ring plus random chords): every node has a neighbour."""
    rng = np.random.default_rng(seed)
    rows = np.concatenate([np.arange(n), rng.integers(0, n, n // 3)])
    cols = np.concatenate([(np.arange(n) + 1) % n, rng.integers(0, n, n // 3)])
    A = sp.coo_matrix((np.ones(rows.size), (rows, cols)), shape=(n, n)).tocsr()
    A = ((A + A.T) > 0).astype(float)
    A.setdiag(0)
    A.eliminate_zeros()
    return sp.csr_matrix(A)


W = _ring_lattice(N)
_D = np.asarray(W.sum(axis=0)).ravel()
_DWD = (W / np.sqrt(_D)[:, None] / np.sqrt(_D)[None, :]).toarray()
_LAM = np.linalg.eigvalsh(_DWD)  # CAR's log-det eigenvalues: constants of the graph
_Y = np.random.default_rng(1).poisson(2.0, N).astype(float)
_DIFF = sp.csr_matrix(sp.eye(N - 1, N, 1) - sp.eye(N - 1, N))  # (z[1:] - z[:-1])
_NEXT = sp.csr_matrix(sp.eye(N - 1, N, 1))
_PREV = sp.csr_matrix(sp.eye(N - 1, N))


def _products(sparse: bool):
    """``left(v, A) = v @ A``, ``right(A, v) = A @ v`` (vector v): sparse or dense Ops."""
    if sparse:
        return (lambda v, A: ps.dot(v, A)), (lambda A, v: ps.dot(A, v))
    return (lambda v, A: pt.dot(v, A.toarray())), (lambda A, v: pt.dot(A.toarray(), v))


def car(z, theta, sparse: bool):
    """PyMC's CAR logp (``value[None, :]``, ``sp_sum``; the log-det from constant eigenvalues)
    plus a Poisson likelihood. theta = (log tau, alpha)."""
    tau, alpha = pt.exp(theta[0]), 0.9 * pt.tanh(theta[1])
    value = z[None, :]
    if sparse:
        Ws = ps.as_sparse_variable(W)
        D = ps.sp_sum(Ws, axis=0)
        Wdelta = ps.dot(value, Ws)
    else:
        D = pt.as_tensor(_D)
        Wdelta = pt.dot(value, W.toarray())
    tau_dot_delta = D[None, :] * value - alpha * Wdelta
    logquad = (tau * value * tau_dot_delta).sum(axis=-1)
    logdet = pt.log(1 - alpha * _LAM).sum()
    prior = 0.5 * (N * pt.log(tau) + logdet - logquad.sum())
    return prior + (_Y * z - pt.exp(z)).sum()


def car_vector(z, theta, sparse: bool):
    """The issue's form: ``z @ W`` of a vector (PyTensor itself cannot differentiate it)."""
    tau, alpha = pt.exp(theta[0]), 0.9 * pt.tanh(theta[1])
    left, _ = _products(sparse)
    quad = (z * (_D * z - alpha * left(z, W))).sum()
    return 0.5 * (N * pt.log(tau) - tau * quad) + (_Y * z - pt.exp(z)).sum()


def ar1(z, theta, sparse: bool):
    """AR(1) latent process (innovations through sparse lag operators) + Normal likelihood.
    theta = (log sigma, atanh rho)."""
    sigma, rho = pt.exp(theta[0]), pt.tanh(theta[1])
    _, right = _products(sparse)
    innov = right(_NEXT, z) - rho * right(_PREV, z)
    init = -0.5 * z[0] ** 2 * (1 - rho**2) / sigma**2 + 0.5 * pt.log(1 - rho**2)
    prior = (-0.5 * (innov / sigma) ** 2).sum() - N * pt.log(sigma) + init
    return prior + (-0.5 * (_Y - z) ** 2).sum()


def grw(z, theta, sparse: bool):
    """Gaussian random walk (a sparse difference operator) + Poisson likelihood.
    theta = (log sigma, mu): drift mu."""
    sigma, mu = pt.exp(theta[0]), theta[1]
    if sparse:
        steps = ps.structured_dot(ps.as_sparse_variable(_DIFF), z[:, None])[:, 0]
    else:
        steps = pt.dot(_DIFF.toarray(), z)
    prior = (-0.5 * ((steps - mu) / sigma) ** 2).sum() - (N - 1) * pt.log(sigma)
    return prior - 0.5 * z[0] ** 2 + (_Y * z - pt.exp(z)).sum()


MODELS = {"car": car, "car_vector": car_vector, "ar1": ar1, "grw": grw}


def _point(seed=3):
    rng = np.random.default_rng(seed)
    return rng.uniform(-0.5, 0.5, N), np.array([0.3, 0.4])


def _build(model, flat: bool):
    """(sparse cost, dense cost, wrt, inputs, values) for a model."""
    zv, tv = _point()
    if flat:
        x = pt.vector("x", shape=(N + 2,))
        costs = [model(x[:N], x[N:], sparse) for sparse in (True, False)]
        return costs[0], costs[1], x, [x], [np.concatenate([zv, tv])]
    z, theta = pt.vector("z", shape=(N,)), pt.vector("theta", shape=(2,))
    costs = [model(z, theta, sparse) for sparse in (True, False)]
    return costs[0], costs[1], [z, theta], [z, theta], [zv, tv]


def _dense(value):
    return np.asarray(value.todense() if hasattr(value, "todense") else value.toarray())


def _check(sparse_out, dense_out):
    sparse_out = sparse_out if isinstance(sparse_out, list) else [sparse_out]
    dense_out = dense_out if isinstance(dense_out, list) else [dense_out]
    for s, d in zip(sparse_out, dense_out, strict=True):
        d = np.asarray(d).reshape(_dense(s).shape)
        np.testing.assert_allclose(_dense(s), d, rtol=RTOL, atol=RTOL * max(1, np.abs(d).max()))


def _hessian_case(name, flat, mode="FAST_COMPILE", **kwargs):
    cost, cost_dense, wrt, inputs, values = _build(MODELS[name], flat)
    H = sd.hessian(cost, wrt, dense=False, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # JAX's BCSR, Numba's object mode: not under test
        got = pytensor.function(inputs, H, mode=mode)(*values)
    ref = pytensor.function(inputs, _dense_hessian(cost_dense, wrt), mode=mode)
    _check(got, ref(*values))
    return H


def _dense_hessian(cost, wrt):
    """``pytensor.gradient.hessian``'s blocks, vectorized (its scan is slow to compile)."""
    blocks = [
        jacobian(pytensor.grad(cost, w), w, vectorize=True)
        for w in (wrt if isinstance(wrt, list) else [wrt])
    ]
    return blocks if isinstance(wrt, list) else blocks[0]


#: (kind, method) pairs: every model meets both kinds and both HVP constructions once.
_HESSIAN_CASES = {
    ("car", False): ("star", "forward-over-reverse"),
    ("car", True): ("acyclic", "reverse-over-reverse"),
    ("car_vector", False): ("acyclic", "forward-over-reverse"),
    ("car_vector", True): ("star", "reverse-over-reverse"),
    ("ar1", False): ("star", "reverse-over-reverse"),
    ("ar1", True): ("acyclic", "forward-over-reverse"),
    ("grw", False): ("acyclic", "reverse-over-reverse"),
    ("grw", True): ("star", "forward-over-reverse"),
}


@pytest.mark.parametrize(("name", "flat"), list(_HESSIAN_CASES), ids=lambda v: str(v))
def test_hessian_fast_compile(name, flat):
    kind, method = _HESSIAN_CASES[name, flat]
    _hessian_case(name, flat, kind=kind, method=method)


@pytest.mark.parametrize(
    ("name", "flat"), [("car", True), ("car_vector", False), ("ar1", False), ("grw", True)]
)
def test_hessian_c_backend(name, flat):
    _hessian_case(name, flat, mode="CVM")


def test_minimal_crash_case():
    """The issue's graph: a parameter times a sparse product, both in wrt (it crashed)."""
    n = 50
    Wr = sp.random(n, n, density=0.1, format="csr", random_state=0)
    Wr = Wr + Wr.T
    z, a = pt.vector("z", shape=(n,)), pt.vector("a", shape=(1,))
    cost = (a[0] * (z * ps.dot(z, Wr))).sum()
    dense = (a[0] * (z * pt.dot(z, Wr.toarray()))).sum()
    H = sd.hessian(cost, [z, a], disconnected_inputs="ignore")
    values = [np.linspace(-1, 1, n), np.array([0.7])]
    got = pytensor.function([z, a], H, mode="FAST_COMPILE")(*values)
    ref = pytensor.gradient.hessian(dense, [z, a], disconnected_inputs="ignore")
    _check(got, pytensor.function([z, a], ref, mode="FAST_COMPILE")(*values))
    # the flat vector pymc-extras' Laplace differentiates: the a-z coupling is in H
    x = pt.vector("x", shape=(n + 1,))
    flat = graph_replace(cost, {z: x[:n], a: x[n:]}, strict=False)
    flat_dense = graph_replace(dense, {z: x[:n], a: x[n:]}, strict=False)
    xv = np.concatenate(values)
    got = pytensor.function([x], sd.hessian(flat, x), mode="FAST_COMPILE")(xv)
    ref = pytensor.function([x], pytensor.gradient.hessian(flat_dense, x), mode="FAST_COMPILE")
    _check(got, ref(xv))
    assert sd.hessian_sparsity(flat, x).nnz == sd.hessian_sparsity(flat_dense, x).nnz


@pytest.mark.parametrize(
    ("name", "mode"),
    [
        ("car", "forward"),
        ("car", "reverse"),
        ("car", "bidirectional"),
        ("car_vector", "auto"),
        ("ar1", "forward"),
        ("grw", "reverse"),
    ],
)
def test_jacobian_of_gradient(name, mode):
    """The gradient's Jacobian (sparse products and their transposes in the graph), every mode."""
    cost, cost_dense, wrt, inputs, values = _build(MODELS[name], flat=False)
    # the vector form needs sparsediff's rewrite to be differentiable at all
    grad = pt.concatenate([g.ravel() for g in pytensor.grad(_matrix(cost), wrt)])
    grad_dense = pt.concatenate([g.ravel() for g in pytensor.grad(cost_dense, wrt)])
    J = sd.jacobian(grad, wrt, mode=mode, dense=False)
    got = pytensor.function(inputs, J, mode="FAST_COMPILE")(*values)
    ref = jacobian(grad_dense, wrt, vectorize=True)
    _check(got, pytensor.function(inputs, ref, mode="FAST_COMPILE")(*values))


def _matrix(cost):
    from sparsediff._sparse_ops import matrix_sparse_products

    return matrix_sparse_products([cost])[0]


@pytest.mark.parametrize("mode", ["forward", "reverse", "bidirectional"])
def test_jacobian_vector_residual(mode):
    """A residual with ``ps.dot(W, z)`` of vectors and a parameter in wrt: every mode, C backend."""
    z, a = pt.vector("z", shape=(N,)), pt.vector("a", shape=(1,))
    F = a[0] * ps.dot(W, z**2) + pt.exp(z) - ps.dot(z, W) * z
    F_dense = a[0] * pt.dot(W.toarray(), z**2) + pt.exp(z) - pt.dot(z, W.toarray()) * z
    J = sd.jacobian(F, [z, a], mode=mode, dense=False)
    values = [np.linspace(-1, 1, N), np.array([0.7])]
    got = pytensor.function([z, a], J, mode="CVM")(*values)
    ref = pytensor.function([z, a], jacobian(F_dense, [z, a], vectorize=True), mode="CVM")
    _check(got, ref(*values))
    assert sd.jacobian_sparsity(F, z).nnz == sd.jacobian_sparsity(F_dense, z).nnz


def test_check_hessian_and_jacobian_of_vector_products():
    """sd.check_* differentiate the user's graph densely as the reference: they work on it."""
    cost, _, wrt, _, _ = _build(car_vector, flat=True)
    assert sd.check_hessian(cost, wrt, raise_on_failure=True)
    assert sd.check_jacobian(ps.dot(W, wrt[:N] ** 2) * wrt[N], wrt, raise_on_failure=True)


def test_minimize_laplace_mode_vector_product():
    """sd.optimize.minimize of the CAR objective with ``ps.dot(z, W)`` (PyTensor's own gradient
    of it fails): the mode and its gradient w.r.t. the hyperparameters equal the dense model's,
    and central differences."""
    z, theta = pt.vector("z", shape=(N,)), pt.vector("theta", shape=(2,))
    fns = []
    for sparse in (True, False):
        z_star, _ = sd.optimize.minimize(-car_vector(z, theta, sparse), z)
        outs = [z_star, pytensor.grad(z_star.sum(), theta)]
        fns.append(pytensor.function([z, theta], outs, mode="FAST_COMPILE"))
    z0, tv = np.zeros(N), np.array([0.3, 0.4])
    (zs, gs), (zd, gd) = fns[0](z0, tv), fns[1](z0, tv)
    np.testing.assert_allclose(zs, zd, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gs, gd, rtol=1e-8)
    h = 1e-6
    fd = [
        (fns[0](z0, tv + h * e)[0].sum() - fns[0](z0, tv - h * e)[0].sum()) / (2 * h)
        for e in np.eye(2)
    ]
    np.testing.assert_allclose(gs, fd, rtol=1e-5)


@settings(max_examples=5, deadline=None)
@given(
    n=st.integers(3, 30),
    m=st.integers(1, 12),
    density=st.floats(0.02, 0.5),
    seed=st.integers(0, 2**16),
    fmt=st.sampled_from(["csr", "csc"]),
)
@example(n=3, m=1, density=0.5, seed=0, fmt="csr")  # a zero row of W: dense over-approximates
def test_random_sparse_matrix_hessian(n, m, density, seed, fmt):
    """sum(a * log1p((z @ W)²)) for random sparse W (n, m): sparse == dense, exact pattern."""
    Wr = sp.random(n, m, density=density, format=fmt, random_state=seed)
    x = pt.vector("x", shape=(n + 1,))
    z, a = x[:n], x[n]
    cost = (a * pt.log1p(ps.dot(z, Wr) ** 2)).sum() + (z**4).sum()
    dense = (a * pt.log1p(pt.dot(z, Wr.toarray()) ** 2)).sum() + (z**4).sum()
    xv = np.random.default_rng(seed).uniform(-1, 1, n + 1)
    got = pytensor.function([x], sd.hessian(cost, x, dense=False), mode="FAST_COMPILE")(xv)
    ref = pytensor.function([x], _dense_hessian(dense, x), mode="FAST_COMPILE")
    _check(got, ref(xv))
    # The sparse W's pattern is exact; the dense copy's detection may over-approximate (a
    # constant matrix with zero entries, e.g. a zero row of W keeps z_i coupled to every z_j).
    # Never miss a nonzero, never exceed the dense detection.
    pattern = sd.hessian_sparsity(cost, x)
    assert (sp.csr_array(ref(xv) != 0) > pattern).nnz == 0
    assert (pattern > sd.hessian_sparsity(dense, x)).nnz == 0


def test_sparse_input_without_shape_is_a_clear_error():
    """A sparse input (data, not a constant) needs a static shape for the plan."""
    z = pt.vector("z", shape=(N,))
    Win = ps.csr_matrix("W", dtype="float64")
    with pytest.raises(ValueError, match="give its inputs static shapes"):
        sd.jacobian(ps.dot(Win, z**2), z)  # the expression's shape is unknown
    with pytest.raises(ValueError, match="sparse matrix W has no static shape"):
        sd.hessian((ps.dot(Win, z**2) * z).sum(), z)  # the cost's is known, W's is not


def test_sparse_input_with_shape():
    """A sparse input of static shape, not in wrt: its values are data (the pattern assumes
    every entry can be nonzero), the Jacobian is exact."""
    z = pt.vector("z", shape=(N,))
    Win = ps.csr_matrix("W", dtype="float64", shape=(N, N))
    F = ps.dot(Win, z**2) + pt.exp(z)
    J = sd.jacobian(F, z, dense=False)
    zv = np.linspace(-1, 1, N)
    got = pytensor.function([z, Win], J, mode="FAST_COMPILE")(zv, sp.csr_matrix(W))
    np.testing.assert_allclose(got.toarray(), W.toarray() * 2 * zv + np.diag(np.exp(zv)))


# --- marked backend subsets --------------------------------------------------------------------


@pytest.mark.numba
@pytest.mark.parametrize(("name", "flat"), [("car", False), ("car_vector", True)])
def test_numba_backend(name, flat):
    _hessian_case(name, flat, mode="NUMBA")


@pytest.mark.jax
def test_jax_sparse_input_same_error_as_pytensor():
    """PyTensor's JAX backend takes no scipy.sparse inputs (constants are fine): sparsediff's
    function fails exactly as the user's own graph does, not with a new error."""
    pytest.importorskip("jax")
    z = pt.vector("z", shape=(N,))
    Win = ps.csr_matrix("W", dtype="float64", shape=(N, N))
    F = ps.dot(Win, z**2) + pt.exp(z)
    values = (np.linspace(-1, 1, N), sp.csr_matrix(W))
    with pytest.raises(Exception) as plain:
        pytensor.function([z, Win], F, mode="JAX")(*values)
    J = sd.jacobian(F, z, dense=False)
    with pytest.raises(type(plain.value)) as ours:
        pytensor.function([z, Win], J, mode="JAX")(*values)
    assert str(ours.value).splitlines()[0] == str(plain.value).splitlines()[0]


@pytest.mark.jax
@pytest.mark.parametrize(("name", "flat"), [("car", False), ("car_vector", True), ("ar1", True)])
def test_jax_backend(name, flat):
    pytest.importorskip("jax")
    _hessian_case(name, flat, mode="JAX")
