"""One validation path for user input: wrt, expressions, patterns (sparsediff._validate)."""

import numpy as np
import pytensor.tensor as pt
import pytest
import scipy.sparse as sp

import sparsediff as sd
from sparsediff._validate import as_expression, as_wrt_list, check_wrt, static_shape_of
from sparsediff.sparsity.pattern import as_pattern


def test_check_wrt_says_what_is_wrong():
    assert check_wrt(pt.matrix("x", shape=(2, 3))) == (2, 3)
    with pytest.raises(TypeError, match="PyTensor variables"):
        check_wrt(np.zeros(3))
    with pytest.raises(TypeError, match="floating-point"):
        check_wrt(pt.ivector("i", shape=(3,)))
    with pytest.raises(ValueError, match=r'pt.tensor\("v", shape=\(3,\)\)'):
        check_wrt(pt.vector("v"))


def test_as_wrt_list_and_every_entry_point_share_it():
    x = pt.vector("x", shape=(3,))
    assert as_wrt_list(x) == ([x], False)
    assert as_wrt_list((x,)) == ([x], True)
    with pytest.raises(ValueError, match="empty list"):
        as_wrt_list([])
    with pytest.raises(ValueError, match="twice"):
        as_wrt_list([x, x])
    # the same message from detection, plans and Hessians
    for entry in (sd.jacobian_sparsity, sd.jacobian_plan):
        with pytest.raises(ValueError, match="no static shape"):
            entry(pt.exp(x), pt.vector("v"))
    with pytest.raises(ValueError, match="no static shape"):
        sd.hessian_plan(x.sum(), pt.vector("v"))


def test_expression_shape_is_inferred_or_refused():
    x = pt.vector("x", shape=(3,))
    y = pt.concatenate([x, x])
    assert static_shape_of(y) == (6,)
    assert as_expression(y).type.shape == (6,)
    with pytest.raises(TypeError, match="floating-point"):
        as_expression(pt.lt(x, 1))
    with pytest.raises(ValueError, match="cannot be determined"):
        static_shape_of(pt.vector("free"))


def test_as_pattern_is_canonical_and_checks_shape():
    stored_zero = sp.csr_array((np.array([1.0, 0.0]), np.array([0, 1]), np.array([0, 2])), (1, 2))
    p = as_pattern(stored_zero, (1, 2))
    assert p.dtype == bool and p.nnz == 1 and p.has_sorted_indices
    assert as_pattern([[0, 2], [3, 0]]).nnz == 2
    with pytest.raises(ValueError, match=r"sparsity must be two-dimensional \(2, 2\)"):
        as_pattern(np.ones(4), (2, 2), "sparsity")
    with pytest.raises(ValueError, match=r"has shape \(2, 2\), expected \(2, 3\)"):
        as_pattern(np.eye(2), (2, 3))
    with pytest.raises(TypeError, match=r"scipy\.sparse matrix or an array"):
        as_pattern(object.__new__(_Unconvertible), (2, 2), "sparsity")


def test_as_pattern_trusts_scipys_canonical_flag_and_still_canonicalizes_the_rest(monkeypatch):
    """A pattern SciPy has already found canonical is not checked again (the plan passes the
    detected pattern through four calls); unsorted, duplicated or zero entries still are."""
    import scipy.sparse._compressed as compressed

    canonical = sp.csr_array(sp.random(50, 40, density=0.2, random_state=0, format="csr") != 0)
    assert canonical.has_canonical_format  # computed, and cached on the object
    calls = []
    check = compressed.csr_has_canonical_format
    monkeypatch.setattr(
        compressed, "csr_has_canonical_format", lambda *a: calls.append(1) or check(*a)
    )
    out = as_pattern(canonical, (50, 40))
    again = as_pattern(out)
    assert calls == []
    for p in (out, again):
        assert p.has_canonical_format and (p != canonical).nnz == 0
    # unsorted and duplicated entries, and stored zeros, with no cached flag: canonicalized
    messy = sp.csr_array(
        (np.array([1.0, 1.0, 0.0, 1.0]), np.array([2, 0, 1, 2]), np.array([0, 4])), (1, 3)
    )
    p = as_pattern(messy)
    assert calls and p.indices.tolist() == [0, 2] and p.data.all()
    # a zero stored in a canonical pattern is dropped, the flag kept
    zero = sp.csr_array((np.array([1.0, 0.0]), np.array([0, 1]), np.array([0, 2])), (1, 2))
    assert zero.has_canonical_format
    p = as_pattern(zero)
    assert p.nnz == 1 and p.indices.tolist() == [0] and p.has_canonical_format


class _Unconvertible:
    def __array__(self, *args, **kwargs):
        raise RuntimeError("no")
