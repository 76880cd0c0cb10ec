"""Every backend compiles the sparse results and gives the same matrix: C, Numba, JAX."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.sparse as psp
import pytensor.tensor as pt
import pytest
import scipy.sparse as sp
from pytensor.tensor.blockwise import Blockwise

import sparsediff as sd
from tests.jacobian_helpers import bratu2d, dense_reference, fd1d


def _energy(x):
    return (pt.exp(x[1:]) * x[:-1] ** 2).sum() + (x**4).sum()


def _graphs():
    r, x = bratu2d(6)
    J = sd.jacobian(r, x)
    Jr = sd.jacobian(r, x, mode="reverse", format="csc")
    H = sd.hessian(_energy(x), x)
    return x, r, [J, Jr, H]


def _reference(x, r, xv):
    (J,) = dense_reference(r, x, [x], [xv])
    H = pytensor.function([x], pytensor.gradient.hessian(_energy(x), x), mode="FAST_COMPILE")(xv)
    return [J, J, H]


def _check_outputs(outputs, reference):
    for got, ref in zip(outputs, reference, strict=True):
        dense = got.toarray() if sp.issparse(got) else np.asarray(got.todense())
        np.testing.assert_allclose(dense, ref, rtol=1e-12, atol=1e-12)


def test_c_backend_no_python_loops():
    x, r, outs = _graphs()
    fn = pytensor.function([x], [r, *outs], mode="CVM")
    xv = np.random.default_rng(0).uniform(0, 0.5, 36)
    _, *vals = fn(xv)
    assert all(sp.issparse(v) for v in vals)
    assert vals[0].format == "csr" and vals[1].format == "csc"
    _check_outputs(vals, _reference(x, r, xv))
    assert not [n for n in fn.maker.fgraph.apply_nodes if isinstance(n.op, Blockwise)]
    # the residual pads with an Alloc; the Jacobians alone allocate nothing but their output
    # (an Alloc of one constant value is the data array itself, written in place)
    fgraph = pytensor.function([x], outs, mode="CVM").maker.fgraph
    names = {type(n.op).__name__ for n in fgraph.apply_nodes}
    assert not {"AllocEmpty", "Scan"} & names, names
    for node in fgraph.apply_nodes:
        if type(node.op).__name__ == "Alloc":
            clients = fgraph.clients[node.outputs[0]]
            assert [type(c.op).__name__ for c, _ in clients] == ["AdvancedIncSubtensor1"]
            assert clients[0][0].op.inplace


def test_c_backend_split_join_graph_has_no_blockwise():
    r, x = fd1d(20)  # concatenate: Join in the pushforward, Split in the pullback
    for mode in ("forward", "reverse"):
        J = sd.jacobian(r, x, mode=mode)
        fn = pytensor.function([x], J, mode="CVM")
        assert not [n for n in fn.maker.fgraph.apply_nodes if isinstance(n.op, Blockwise)]
        xv = np.linspace(0, 1, 20)
        np.testing.assert_allclose(
            fn(xv).toarray(), dense_reference(r, x, [x], [xv])[0], rtol=1e-12, atol=1e-14
        )


@pytest.mark.numba
def test_numba_backend():
    x, r, outs = _graphs()
    v = pt.vector("v", shape=(36,))
    Jv = psp.structured_dot(outs[0], v[:, None]).ravel()
    fn = pytensor.function([x, v], [*outs, Jv], mode="NUMBA")
    xv = np.random.default_rng(1).uniform(0, 0.5, 36)
    *vals, jv = fn(xv, np.ones(36))
    assert all(sp.issparse(val) for val in vals)
    ref = _reference(x, r, xv)
    _check_outputs(vals, ref)
    np.testing.assert_allclose(jv, ref[0] @ np.ones(36), rtol=1e-12)


@pytest.mark.jax
def test_jax_backend_returns_bcsr():
    jsp = pytest.importorskip("jax.experimental.sparse")
    x, r, outs = _graphs()
    v = pt.vector("v", shape=(36,))
    J = outs[0]
    extra = [psp.structured_dot(J, v[:, None]).ravel(), J.T, psp.dense_from_sparse(J)]
    fn = pytensor.function([x, v], [*outs, *extra], mode="JAX")
    xv = np.random.default_rng(2).uniform(0, 0.5, 36)
    Jval, Jrval, Hval, jv, JT, dense = fn(xv, np.ones(36))
    assert isinstance(Jval, jsp.BCSR) and isinstance(Hval, jsp.BCSR)
    assert isinstance(Jrval, jsp.BCOO)  # CSC: the transpose of a BCSR
    ref = _reference(x, r, xv)
    _check_outputs([Jval, Jrval, Hval], ref)
    np.testing.assert_allclose(jv, ref[0] @ np.ones(36), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(JT.todense()), ref[0].T, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(dense), ref[0], rtol=1e-12)
    # the BCSR converts to SciPy without densifying
    csr = sp.csr_array((np.asarray(Jval.data), np.asarray(Jval.indices), np.asarray(Jval.indptr)))
    np.testing.assert_allclose(csr.toarray(), ref[0], rtol=1e-12)
