"""``mode="auto"`` skips the row coloring when forward already needs no more colors than the
row lower bound (reverse cannot win: forward wins ties) and no bicoloring will be tried."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt

import sparsediff as sd
from sparsediff import problems


def test_bound_reached_forward_skips_the_row_coloring():
    p = problems.bratu2d(8)
    plan = sd.jacobian_plan(p.expression, p.x)
    assert plan.mode == "forward" and plan.n_colors == 5 == plan.lower_bound
    assert plan.n_colors_reverse is None  # not computed
    assert "reverse would need" not in repr(plan)
    # the same plan forced to reverse still colors rows
    assert sd.jacobian_plan(p.expression, p.x, mode="reverse").n_colors == 5


def test_reverse_is_still_colored_when_it_can_win():
    x = pt.vector("x", shape=(30,))
    # a dense row: forward needs 30 colors, more than the row bound 2; reverse needs 2
    y = pt.concatenate([2 * x[1:], [x.sum()]])
    plan = sd.jacobian_plan(y, x)
    assert plan.n_colors_forward == 30 and plan.n_colors_reverse == 2
    assert plan.mode == "reverse"
    J = plan.build().eval({x: np.arange(1.0, 31.0)}).toarray()
    expected = np.vstack([2 * np.eye(30)[1:], np.ones((1, 30))])
    np.testing.assert_allclose(J, expected)
