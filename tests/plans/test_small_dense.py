"""Small systems (issue #16): ``mode="dense"`` and ``auto``'s fallback to it.

``mode="dense"`` computes ``pytensor.gradient.jacobian`` in the graph and gathers it into the
detected pattern: the same CSR result as every other mode, equal to the dense Jacobian.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

import sparsediff as sd
from tests import users_graphs as ug
from tests.jacobian_helpers import assert_matches, bratu2d, dense_reference, fd1d

common = importlib.import_module("sparsediff.plans.common")


def _check(expression, wrt, backend, mode="dense", inputs=None, values=None, **kw):
    wrt_list = list(wrt) if isinstance(wrt, list) else [wrt]
    inputs = inputs or wrt_list
    rng = np.random.default_rng(0)
    values = values or [rng.uniform(0.5, 1.5, v.type.shape) for v in inputs]
    J = sd.jacobian(expression, wrt, mode=mode, **kw)
    got = pytensor.function(inputs, J, mode=backend)(*values)
    got = got if isinstance(got, list) else [got]
    assert_matches(got, dense_reference(expression, wrt_list, inputs, values))
    pattern = sd.jacobian_plan(expression, wrt, mode=mode, **kw).pattern
    for g, p in zip(got, pattern if isinstance(pattern, list) else [pattern], strict=True):
        assert g.format == kw.get("format", "csr")
        assert g.nnz == p.nnz  # the pattern's structure, not the dense matrix's
    return got


@pytest.mark.parametrize("backend", ["FAST_COMPILE", "CVM"])
@pytest.mark.parametrize(
    "problem",
    [lambda: fd1d(30), lambda: bratu2d(5), lambda: ug.perfect_foresight(8), lambda: ug.cge(4)],
    ids=["fd1d", "bratu2d", "dsge", "cge"],
)
def test_dense_mode_equals_dense_jacobian(problem, backend):
    F, x = problem()
    _check(F, x, backend)


def test_dense_mode_csc_matrix_expression_and_list_wrt():
    a = pt.matrix("a", shape=(3, 2))
    b = pt.vector("b", shape=(2,))
    F = pt.exp(a) * b + a[:, ::-1] ** 2  # a (3, 2) expression: rows in C order
    _check(F, [a, b], "FAST_COMPILE", format="csc")
    _check(F, a, "CVM", inputs=[a, b])


def test_dense_mode_with_parameters():
    x = pt.vector("x", shape=(6,))
    theta = pt.vector("theta", shape=(6,))
    F = pt.sin(x * theta) + pt.roll(x, 1) * theta.sum()
    _check(F, x, "CVM", inputs=[x, theta])


@pytest.mark.numba
def test_dense_mode_numba_backend():
    F, x = ug.cge(3)
    _check(F, x, "NUMBA")


def test_dense_mode_repr_and_counts():
    F, x = fd1d(12)
    plan = sd.jacobian_plan(F, x, mode="dense")
    assert plan.mode == "dense" and plan.dense and plan.coloring is None
    assert plan.n_vjps == 12 and plan.n_jvps == 0 and plan.lower_bound is None
    assert "dense (pytensor.gradient.jacobian, 12 VJPs" in repr(plan)
    assert plan.nnz == 3 * 12 - 2


def test_dense_mode_rejects_a_coloring_and_dense_false():
    F, x = fd1d(12)
    with pytest.raises(ValueError, match="mode='dense'"):
        sd.jacobian_plan(F, x, mode="dense", coloring=np.arange(12) % 3)
    with pytest.raises(ValueError, match="mode='dense'"):
        sd.jacobian_plan(F, x, mode="dense", dense=False)


def test_dense_mode_lazy():
    F, x = ug.cge(3)
    v = ug.cge_point(x)
    J = sd.jacobian(F, x, mode="dense", lazy=True)
    got = pytensor.function([x], J, mode="FAST_COMPILE")(v)
    assert_matches([got], dense_reference(F, [x], [x], [v]))


# --------------------------------------------------------------------------------------------
# auto: dense below the measured threshold, sparse above; explicit modes never fall back
# --------------------------------------------------------------------------------------------


def _side_below() -> int:
    return int(np.sqrt(common.SMALL_DENSE_MAX_ENTRIES["c"]))


@pytest.fixture
def c_config():
    """``pytensor.config.mode = "CVM"``: the backend whose measurements set a threshold."""
    with pytensor.config.change_flags(mode="CVM"):
        yield


def test_auto_picks_dense_below_the_threshold_and_says_why(c_config):
    n = _side_below()
    F, x = fd1d(n)
    plan = sd.jacobian_plan(F, x)
    assert plan.mode == "dense" and plan.dense_reason is not None, plan
    assert "small system" in repr(plan) and f"{n}×{n}" in repr(plan)
    assert "c backend" in repr(plan)


def test_auto_stays_sparse_above_the_threshold(c_config):
    F, x = fd1d(_side_below() + 1)
    plan = sd.jacobian_plan(F, x)
    assert plan.mode == "forward" and plan.n_colors == 3 and plan.dense_reason is None, plan


@pytest.mark.parametrize("backend", ["FAST_COMPILE", "CVM"])
def test_auto_dense_values_equal_dense_jacobian(c_config, backend):
    F, x = ug.perfect_foresight(6)
    assert sd.jacobian_plan(F, x).mode == "dense"
    _check(F, x, backend, mode="auto")


@pytest.mark.parametrize("config_mode", ["NUMBA", "FAST_COMPILE"])
def test_no_fallback_where_none_was_measured_cheaper(config_mode):
    # Numba: the dense graph's first call (its compilation) measured longer; FAST_COMPILE,
    # JAX: not measured
    with pytensor.config.change_flags(mode=config_mode):
        F, x = fd1d(20)
        plan = sd.jacobian_plan(F, x)
    assert plan.mode == "forward" and plan.dense_reason is None, plan


@pytest.mark.parametrize("mode", ["forward", "reverse", "bidirectional"])
def test_explicit_modes_never_fall_back(c_config, mode):
    F, x = fd1d(20)
    plan = sd.jacobian_plan(F, x, mode=mode)
    assert plan.mode == mode and plan.dense_reason is None and not plan.dense


def test_dense_false_and_a_coloring_keep_auto_sparse(c_config):
    F, x = fd1d(20)
    assert sd.jacobian_plan(F, x, dense=False).mode == "forward"
    c = sd.color(sd.jacobian_sparsity(F, x), kind="column")
    assert sd.jacobian_plan(F, x, coloring=c).mode == "forward"


def test_tiny_and_dense_patterns_keep_the_identity_seed_path(c_config):
    x = pt.vector("x", shape=(3,))
    plan = sd.jacobian_plan(pt.sin(x) * x.sum(), x)  # density 1: identity seeds, as before
    assert plan.dense and plan.mode in ("forward", "reverse") and plan.dense_reason is None
