"""hessian_sparsity against the nonzeros of the dense ``pytensor.gradient.hessian``."""

from __future__ import annotations

import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
import scipy.sparse as sp
from pytensor.gradient import hessian

import sparsediff as sd

A_SPARSE = np.array(
    [[1.0, 0, 0, 2, 0, 0], [0, 0, 3, 0, 0, 0], [0, 1, 0, 0, 0, 1], [1, 0, 0, 0, 0, 0]]
)


def _scan_cost(x):
    out = pytensor.scan(
        lambda xi, acc: acc * 0.5 + pt.sin(xi) * xi,
        sequences=[x],
        outputs_info=[pt.ones(())],
        return_updates=False,
    )
    return (out**2).sum()


COSTS = {
    "chain": lambda x: ((x[1:] - x[:-1] ** 2) ** 2).sum() + (1 - x).sum(),
    "separable": lambda x: (pt.exp(x) + x**3).sum(),
    "linear_terms_only": lambda x: (3 * x).sum() + x[0],
    "constant_sparse_matrix": lambda x: pt.exp(pt.dot(A_SPARSE, x)).sum(),
    "products_of_pairs": lambda x: (x[::2] * x[1::2]).sum() + x[0] * x[5],
    "grid_energy": lambda x: (
        ((x.reshape((2, 3))[1:] - x.reshape((2, 3))[:-1]) ** 2).sum()
        + (pt.cos(x.reshape((2, 3))[:, 1:] * x.reshape((2, 3))[:, :-1])).sum()
    ),
    "log_sum_exp": lambda x: pt.log(pt.exp(x[:3]).sum()) + (x[3:] ** 2).sum(),
    "scan_recurrence": _scan_cost,  # the gradient is a Scan with mit-mot states
}


def dense_hessian_nonzeros(cost, x, n_points=8, seed=0, consider_constant=None):
    with pytensor.config.change_flags(mode="FAST_COMPILE"):
        fn = pytensor.function([x], hessian(cost, x, consider_constant=consider_constant))
    rng = np.random.default_rng(seed)
    truth = None
    for _ in range(n_points):
        nz = fn(rng.uniform(0.3, 1.7, size=x.type.shape)) != 0
        truth = nz if truth is None else truth | nz
    return truth


@pytest.mark.parametrize("name", list(COSTS))
def test_hessian_pattern_matches_dense_hessian(name):
    x = pt.vector("x", shape=(6,))
    cost = COSTS[name](x)
    with warnings.catch_warnings():
        warnings.simplefilter("error", sd.SparsityWarning)
        pattern = sd.hessian_sparsity(cost, x)
    assert isinstance(pattern, sp.csr_array) and pattern.dtype == bool
    assert pattern.shape == (6, 6)
    dense = pattern.toarray()
    np.testing.assert_array_equal(dense, dense.T)
    np.testing.assert_array_equal(dense, dense_hessian_nonzeros(cost, x))


def test_non_scalar_cost_raises():
    x = pt.vector("x", shape=(3,))
    with pytest.raises(ValueError, match="scalar"):
        sd.hessian_sparsity(x**2, x)


def test_hessian_wrt_list_gives_blocks():
    x = pt.vector("x", shape=(3,))
    y = pt.vector("y", shape=(2,))
    cost = (x[:2] * y).sum() + (x**2).sum()
    blocks = sd.hessian_sparsity(cost, [x, y])
    assert len(blocks) == 2 and all(len(row) == 2 for row in blocks)
    assert [[b.shape for b in row] for row in blocks] == [[(3, 3), (3, 2)], [(2, 3), (2, 2)]]
    np.testing.assert_array_equal(blocks[0][0].toarray(), np.eye(3, dtype=bool))
    np.testing.assert_array_equal(blocks[0][1].toarray(), np.eye(3, 2, dtype=bool))
    np.testing.assert_array_equal(blocks[1][0].toarray(), np.eye(2, 3, dtype=bool))
    assert blocks[1][1].nnz == 0
    full = sd.hessian_sparsity(pt.concatenate([x, y]).sum() * 0 + cost, [x, y])
    assert all(
        (a != b).nnz == 0
        for ra, rb in zip(blocks, full, strict=True)
        for a, b in zip(ra, rb, strict=True)
    )


def test_hessian_consider_constant():
    x = pt.vector("x", shape=(4,))
    z = x[::-1] ** 2
    cost = (x**2 * z).sum()
    cut = sd.hessian_sparsity(cost, x, consider_constant=[z]).toarray()
    np.testing.assert_array_equal(cut, np.eye(4, dtype=bool))
    np.testing.assert_array_equal(cut, dense_hessian_nonzeros(cost, x, consider_constant=[z]))
    full = sd.hessian_sparsity(cost, x).toarray()
    assert full.sum() > cut.sum()
