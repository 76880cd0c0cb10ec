"""Every rule, checked against the dense Jacobian's nonzeros at random points."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import sparsediff as sd
from tests.sparsity.catalogue import CASES
from tests.sparsity.dense_truth import dense_nonzeros


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_pattern_matches_dense_jacobian(case):
    expression, wrt, inputs = case.build()
    with warnings.catch_warnings():
        warnings.simplefilter("error", sd.SparsityWarning)
        patterns = sd.jacobian_sparsity(expression, wrt)
    reference = expression if case.reference is None else case.reference(*inputs)
    truth = dense_nonzeros(reference, wrt, inputs)
    for w, p, t in zip(wrt, patterns, truth, strict=True):
        assert isinstance(p, sp.csr_array) and p.dtype == bool
        assert p.shape == t.shape, (w, p.shape, t.shape)
        dense = p.toarray()
        missing = np.argwhere(t & ~dense)
        assert missing.size == 0, (
            f"{case.name}: pattern misses nonzeros {missing[:5].tolist()} of {w}"
        )
        if case.exact:
            extra = np.argwhere(dense & ~t)
            assert extra.size == 0, (
                f"{case.name}: pattern has extra entries {extra[:5].tolist()} of {w}"
            )
