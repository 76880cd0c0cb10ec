"""Detected patterns against published / structurally known references.

* 2-D Brusselator, N = 6: SparseConnectivityTracer.jl's reference pattern (72×72, 432 nonzeros,
  MIT licence, see tests/data/README.md), in Julia's column-major state order.
* 2-D Bratu: exactly the 5-point stencil of the interior grid.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
import scipy.sparse as sp

import sparsediff as sd
from sparsediff import problems

DATA = Path(__file__).parent.parent / "data"


@pytest.fixture(autouse=True)
def _no_fallback():
    with warnings.catch_warnings():
        warnings.simplefilter("error", sd.SparsityWarning)
        yield


def sct_brusselator_reference() -> sp.csr_array:
    ref = np.load(DATA / "sct_Brusselator_N6_jacobian_pattern.npz")
    shape = tuple(int(s) for s in ref["shape"])
    return sp.csr_array(
        (np.ones(len(ref["rows"]), dtype=bool), (ref["rows"], ref["cols"])), shape=shape
    )


def brusselator_julia_order(N: int, A=1.0, B=1.0, alpha=1.0):
    """The SCT test problem written independently of sparsediff.problems: Julia's ``u[i, j, k]``
    column-major vec is NumPy's ``reshape((N, N, 2), order="F")``, i.e. ``reshape((2, N, N))``
    read as ``[k, j, i]`` and transposed. Periodic neighbours by concatenation, not ``roll``."""
    x = pt.vector("x", shape=(2 * N * N,))
    U = x.reshape((2, N, N)).transpose(2, 1, 0)  # [i, j, k]
    u, v = U[:, :, 0], U[:, :, 1]

    def shift(w, k, axis):  # np.roll(w, k, axis) for k = ±1
        if axis == 0:
            return pt.concatenate([w[-k:], w[:-k]], axis=0)
        return pt.concatenate([w[:, -k:], w[:, :-k]], axis=1)

    def lap(w):
        return shift(w, 1, 0) + shift(w, -1, 0) + shift(w, 1, 1) + shift(w, -1, 1) - 4 * w

    du = alpha * lap(u) + B + u * u * v - (A + 1) * u
    dv = alpha * lap(v) + A * u - u * u * v
    out = pt.stack([du, dv], axis=-1)  # [i, j, k]
    return out.transpose(2, 1, 0).ravel(), x  # back to Julia's vec order


def test_brusselator_n6_equals_sparseconnectivitytracer_reference():
    reference = sct_brusselator_reference()
    assert reference.shape == (72, 72) and reference.nnz == 432
    problem = problems.brusselator2d(6, A=1.0, B=1.0, alpha0=1.0, dx=1.0)
    detected = sd.jacobian_sparsity(problem.expression, problem.x)
    assert detected.nnz == 432
    assert (detected != reference).nnz == 0


def test_brusselator_n6_independent_formulation_equals_reference():
    expression, x = brusselator_julia_order(6)
    detected = sd.jacobian_sparsity(expression, x)
    assert (detected != sct_brusselator_reference()).nnz == 0


def test_brusselator_structural_not_numerical():
    """The trap: at the DifferentialEquations.jl initial condition u = 0 on a grid line, so the
    Jacobian has value zeros (du/dv = u²) where the structure has nonzeros. Detection is
    structural, so it keeps them; a pattern read off that Jacobian would not."""
    problem = problems.brusselator2d(6)
    detected = sd.jacobian_sparsity(problem.expression, problem.x)
    assert (detected != sct_brusselator_reference()).nnz == 0
    with pytensor.config.change_flags(mode="FAST_COMPILE"):
        jac = pytensor.function([problem.x], pt.jacobian(problem.expression, problem.x))
    numeric = jac(problem.x0) != 0
    assert numeric.sum() < detected.nnz
    assert not (numeric & ~detected.toarray()).any()


def five_point_stencil(nx: int, ny: int) -> sp.csr_array:
    """Interior-grid 5-point Laplacian pattern, k = j * nx + i, built from Kronecker products."""
    tx = sp.diags_array([1, 1, 1], offsets=[-1, 0, 1], shape=(nx, nx), dtype=bool)
    ty = sp.diags_array([1, 1, 1], offsets=[-1, 0, 1], shape=(ny, ny), dtype=bool)
    ex, ey = sp.eye_array(nx, dtype=bool), sp.eye_array(ny, dtype=bool)
    return sp.csr_array(sp.kron(ey, tx) + sp.kron(ty, ex), dtype=bool)


@pytest.mark.parametrize("lam_as_parameter", [False, True])
def test_bratu_is_exactly_the_five_point_stencil(lam_as_parameter):
    nx, ny = 30, 40
    problem = problems.bratu2d(nx, ny, lam_as_parameter=lam_as_parameter)
    detected = sd.jacobian_sparsity(problem.expression, problem.x)
    stencil = five_point_stencil(nx, ny)
    assert detected.shape == (nx * ny, nx * ny)
    assert detected.nnz == 5 * nx * ny - 2 * nx - 2 * ny
    assert (detected != stencil).nnz == 0


def test_bratu_independent_formulation_with_concatenation():
    nx, ny = 30, 40
    x = pt.vector("x", shape=(nx * ny,))
    u = x.reshape((ny, nx))
    zr, zc = pt.zeros((1, nx)), pt.zeros((ny, 1))
    up, down = pt.concatenate([zr, u[:-1]], 0), pt.concatenate([u[1:], zr], 0)
    left, right = pt.concatenate([zc, u[:, :-1]], 1), pt.concatenate([u[:, 1:], zc], 1)
    residual = 4 * u - up - down - left - right - 0.1 * pt.exp(u)
    detected = sd.jacobian_sparsity(residual, x)
    assert (detected != five_point_stencil(nx, ny)).nnz == 0
