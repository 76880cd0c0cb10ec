"""Bad input to the graph-level functions: clear errors at build time or when the function runs."""

import numpy as np
import pytensor
import pytensor.sparse as ps
import pytensor.tensor as pt
import pytest
import scipy.sparse as sp

from sparsediff import linalg as sl

from .matrices import laplacian_2d
from .matrices import symbolic as sym


@pytest.mark.parametrize("fn", [sl.logdet, sl.inv_diag, sl.cholesky])
def test_dense_matrix_is_refused_with_a_pointer(fn):
    with pytest.raises(TypeError, match=r"pytensor\.tensor\.linalg"):
        fn(pt.dmatrix("A"))
    with pytest.raises(TypeError, match="needs a sparse matrix"):
        fn(np.eye(3))


def test_spsolve_build_time_errors():
    with pytest.raises(TypeError, match="needs a sparse matrix"):
        sl.spsolve(pt.dmatrix("A"), pt.dvector("b"))
    rect = ps.CSR(pt.dvector("d"), np.array([0, 1]), np.array([0, 1, 2]), (2, 3))
    with pytest.raises(ValueError, match="square"):
        sl.spsolve(rect, pt.dvector("b"))
    A, _, _ = sym(laplacian_2d(3))
    with pytest.raises(ValueError, match="rows for a 9x9"):
        sl.spsolve(A, pt.dvector("b", shape=(4,)))
    with pytest.raises(ValueError, match="vector or a matrix"):
        sl.spsolve(A, pt.tensor3("b"))
    with pytest.raises(ValueError, match="assume_a"):
        sl.spsolve(A, pt.dvector("b"), assume_a="sym")
    with pytest.raises(ValueError, match="positive definite"):
        sl.spsolve(A, pt.dvector("b"), backend="qdldl")


def test_runtime_errors():
    A, data, A0 = sym(laplacian_2d(3))
    b = pt.dvector("b")
    f = pytensor.function([data, b], sl.spsolve(A, b), mode="FAST_COMPILE")
    with pytest.raises(ValueError, match="right-hand side"):
        f(A0.data, np.ones(5))
    bad = A0.data.copy()
    bad[0] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        f(bad, np.ones(9))
    with pytest.raises(sl.SingularMatrixError):
        f(np.zeros_like(A0.data), np.ones(9))


def test_structurally_singular_at_runtime():
    A0 = sp.csr_matrix(([1.0, 2.0], ([0, 1], [0, 0])), shape=(2, 2))  # column 1 empty
    A, data, A0 = sym(A0)
    b = pt.dvector("b")
    f = pytensor.function([data, b], sl.spsolve(A, b), mode="FAST_COMPILE")
    with pytest.raises(sl.SingularMatrixError):
        f(A0.data, np.ones(2))
