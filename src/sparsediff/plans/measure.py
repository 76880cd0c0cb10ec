"""What one VJP costs relative to one JVP on the graph at hand, measured at plan time.

``mode="auto"`` weighs VJPs by a cost ratio when it compares a star bicoloring (JVPs + VJPs)
with a one-directional coloring. The ratio depends on the graph: measured on sparse Jacobian
evaluations it ranged from 0.6 (2-D Bratu, whose pullback folds to fewer Ops) to 2.1 (2-D
Brusselator), median 1.7 (:data:`sparsediff.plans.jacobian.REVERSE_COST`). When the choice
would flip somewhere in that range, the plan measures the ratio on the graph itself:

* one JVP and one VJP (by the routes the plan's batched products take, with the tangent and
  cotangent as inputs, so that nothing folds away as constant) are compiled with
  ``FAST_COMPILE`` (no C or Numba compilation), on deterministic input values (floats uniform
  in [0.5, 1.5] from a fixed seed, integers 0);
* each is called once to warm up, then both are timed in turn (interleaved, so the machine's
  load hits both alike) until :data:`MEASURE_BUDGET_S` is spent or :data:`MEASURE_MAX_SAMPLES`
  samples each are taken (at least :data:`MEASURE_MIN_SAMPLES`); the ratio is the ratio of the
  medians.

Timing is noisy, so decisions that a measurement may change are only the close ones: a choice
that is the same at both ends of the range never triggers a measurement. Anything that stops
the measurement (an input without a static shape, an Op that fails on the made-up values)
leaves the default ratio in place and the reason in the plan.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import numpy as np
import pytensor
from pytensor.gradient import pullback, pushforward
from pytensor.graph.basic import Constant, Variable
from pytensor.graph.traversal import graph_inputs
from pytensor.tensor.type import TensorType

__all__ = [
    "MEASURE_BUDGET_S",
    "MEASURE_MAX_SAMPLES",
    "MEASURE_MIN_SAMPLES",
    "ProductCost",
    "measure_reverse_cost",
]

#: Seconds of timing (after compiling) one measurement may spend, both products together.
MEASURE_BUDGET_S = 0.2
#: Samples per product: at least the first (each sample lasts at least ``_MIN_SAMPLE_S``), at
#: most the second.
MEASURE_MIN_SAMPLES = 3
MEASURE_MAX_SAMPLES = 15
_MIN_SAMPLE_S = 0.002


@dataclass(frozen=True)
class ProductCost:
    """One measurement: seconds per JVP and per VJP (medians), or why there is none."""

    jvp_s: float | None = None
    vjp_s: float | None = None
    samples: int = 0
    seconds: float = 0.0  #: wall time of the whole measurement, compiling included
    reason: str | None = None  #: why nothing was measured

    @property
    def ratio(self) -> float | None:
        """Seconds of one VJP over seconds of one JVP (``None`` when not measured)."""
        if self.jvp_s is None or self.vjp_s is None or self.jvp_s <= 0:
            return None
        return self.vjp_s / self.jvp_s


def _values(inputs: list[Variable]) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    out = []
    for v in inputs:
        shape = getattr(v.type, "shape", None)
        if shape is None or any(s is None for s in shape):
            raise ValueError(f"input {v} has no static shape")
        dtype = np.dtype(v.type.dtype)
        if np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.complexfloating):
            out.append(rng.uniform(0.5, 1.5, shape).astype(dtype))
        else:
            out.append(np.zeros(shape, dtype=dtype))
    return out


def _jvp(expression, wrt, tangents, use_op_pushforward) -> Variable:
    """One JVP by the route the plan's forward mode takes (see ``compressed_pushforward``)."""
    from sparsediff.compression import forward_rules
    from sparsediff.compression.products import pushforward_through_pullback

    if use_op_pushforward == "auto" and forward_rules.has_forward_rule([expression]):
        (out,) = forward_rules.pushforward([expression], list(wrt), tangents)
        return out
    if use_op_pushforward is not False:
        try:
            out = pushforward(
                expression,
                list(wrt),
                tangents,
                use_op_pushforward=True,
                disconnected_outputs="ignore",
            )
            if isinstance(out.type, TensorType):
                return out
        except Exception:
            if use_op_pushforward is True:
                raise
    return pushforward_through_pullback(expression, list(wrt), tangents)


def _loops(fn, args) -> int:
    t0 = time.process_time()
    fn(*args)
    dt = max(time.process_time() - t0, 1e-7)
    return max(1, min(1000, int(np.ceil(_MIN_SAMPLE_S / dt))))


def measure_reverse_cost(
    expression: Variable,
    wrt: list[Variable],
    use_op_pushforward: bool | str = "auto",
    budget_s: float = MEASURE_BUDGET_S,
) -> ProductCost:
    """Seconds of one JVP and one VJP of ``expression`` with respect to ``wrt`` (see the module
    docstring for what is measured and how); never raises for a graph it cannot run."""
    from sparsediff import compression

    start = time.perf_counter()
    try:
        (expr,), ws = compression.isolate_inner_graphs([expression], wrt)
        tangents = [w.type() for w in ws]
        cotangent = expr.type()
        jvp = _jvp(expr, ws, tangents, use_op_pushforward)
        vjps = pullback(
            expr, ws, cotangent, disconnected_inputs="ignore", return_disconnected="zero"
        )
        inputs = [v for v in graph_inputs([jvp, *vjps]) if not isinstance(v, Constant)]
        inputs += [t for t in (*tangents, cotangent) if t not in inputs]
        args = _values(inputs)
        kw = {"mode": _mode(), "on_unused_input": "ignore"}
        f_jvp = pytensor.function(inputs, jvp, **kw)
        f_vjp = pytensor.function(inputs, vjps, **kw)
        loops = {"jvp": _loops(f_jvp, args), "vjp": _loops(f_vjp, args)}
    except Exception as err:  # a graph the made-up values (or FAST_COMPILE) cannot run
        return ProductCost(
            seconds=time.perf_counter() - start, reason=f"{type(err).__name__}: {err}"[:200]
        )
    samples: dict[str, list[float]] = {"jvp": [], "vjp": []}
    t_start = time.perf_counter()
    while len(samples["jvp"]) < MEASURE_MAX_SAMPLES:
        for name, fn in (("jvp", f_jvp), ("vjp", f_vjp)):
            t0 = time.process_time()
            for _ in range(loops[name]):
                fn(*args)
            samples[name].append((time.process_time() - t0) / loops[name])
        enough = len(samples["jvp"]) >= MEASURE_MIN_SAMPLES
        if enough and time.perf_counter() - t_start > budget_s:
            break
    return ProductCost(
        jvp_s=statistics.median(samples["jvp"]),
        vjp_s=statistics.median(samples["vjp"]),
        samples=len(samples["jvp"]),
        seconds=time.perf_counter() - start,
    )


def _mode():
    """``FAST_COMPILE``: Python thunks (no C or Numba code generated), the cheap rewrites."""
    from pytensor.compile.mode import Mode
    from pytensor.link.vm import VMLinker

    return Mode(linker=VMLinker(use_cloop=False, c_thunks=False), optimizer="fast_compile")
