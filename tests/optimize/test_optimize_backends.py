"""The default Numba backend and JAX give the C backend's numbers (marked subsets)."""

import numpy as np
import pytensor
import pytest

import sparsediff.optimize as so

from .problems import MODE, bratu, gmrf_poisson


def _root_graph(mode):
    x, lam, F, _, _ = bratu(4)
    xs, ok = so.root(F, x, mode=mode)
    loss = (xs**2).sum()
    return [x, lam], [xs, ok, pytensor.grad(loss, lam)]


def _minimize_graph(mode):
    x, tau, b, f, _, _ = gmrf_poisson(3)
    xs, ok = so.minimize(f, x, mode=mode)
    loss = (xs**2).sum()
    return [x, tau, b], [xs, ok, *pytensor.grad(loss, [tau, b])]


ROOT_ARGS = (np.zeros(16), 4.0)
MIN_ARGS = (np.zeros(9), 1.3, np.linspace(0, 1, 9))


def _reference(graph, args):
    inputs, outputs = graph(MODE)
    return pytensor.function(inputs, outputs, mode=MODE)(*args)


@pytest.mark.numba
@pytest.mark.parametrize(("graph", "args"), [(_root_graph, ROOT_ARGS), (_minimize_graph, MIN_ARGS)])
def test_numba_default_backend(graph, args):
    inputs, outputs = graph(None)  # inner function on the default backend too
    got = pytensor.function(inputs, outputs)(*args)
    for a, b in zip(got, _reference(graph, args), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.jax
@pytest.mark.parametrize(("graph", "args"), [(_root_graph, ROOT_ARGS), (_minimize_graph, MIN_ARGS)])
def test_jax_backend(graph, args):
    pytest.importorskip("jax")
    inputs, outputs = graph(MODE)  # the inner solve runs on the host, compiled with C
    got = pytensor.function(inputs, outputs, mode="JAX")(*args)
    for a, b in zip(got, _reference(graph, args), strict=True):
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-10, atol=1e-12)
