"""Native vectorization of ``Scan``: one loop over time, batched inside, not one loop per color.

``vectorize_graph`` wraps a ``Scan`` in a ``Blockwise``, which the C and Python backends run as
a Python loop over the batch: a pushforward or pullback through a ``Scan`` batched over the
colors would rerun the whole loop once per color. This rule builds a single ``Scan`` whose inner
graph is the original one vectorized: batched sequences, initial states and non-sequences carry
their batch axes right after the time axis (outer) or first (inner), and a state becomes batched
when its update depends on anything batched (found by a fixed point, the initial value then
broadcast). The batch shape must be static (it is: the number of colors) and the loop itself
(number of steps, ``while`` condition, untraced states, stored-output lengths) must stay
unbatched; otherwise PyTensor's ``Blockwise`` fallback is kept.

Registered by :mod:`sparsediff._register` (see ``VECTORIZE_RULES`` in
:mod:`sparsediff.compression.vectorize`).
"""

from __future__ import annotations

import pytensor.tensor as pt
from pytensor.graph.replace import vectorize_graph
from pytensor.scan.op import Scan
from pytensor.tensor.blockwise import vectorize_node_fallback
from pytensor.tensor.type import TensorType

__all__ = ["vectorize_scan"]


def _groups(op: Scan):
    """Outer-input, inner-input and inner-output index groups, one per loop quantity.

    Each group is ``(kind, outer_input, inner_inputs, inner_outputs, outer_output)``; states
    (mit-mot, mit-sot, sit-sot, untraced) have inner outputs, nit-sots have no inner inputs.
    """
    info = op.info
    groups = []
    outer, inner_in, inner_out, outer_out = 1, 0, 0, 0
    for _ in range(info.n_seqs):
        groups.append(("seq", outer, [inner_in], [], None))
        outer, inner_in = outer + 1, inner_in + 1
    for taps_in, taps_out in zip(info.mit_mot_in_slices, info.mit_mot_out_slices, strict=True):
        ins = list(range(inner_in, inner_in + len(taps_in)))
        outs = list(range(inner_out, inner_out + len(taps_out)))
        groups.append(("state", outer, ins, outs, outer_out))
        outer, inner_in, inner_out, outer_out = outer + 1, ins[-1] + 1, outs[-1] + 1, outer_out + 1
    for taps in (*info.mit_sot_in_slices, *info.sit_sot_in_slices):
        ins = list(range(inner_in, inner_in + len(taps)))
        groups.append(("state", outer, ins, [inner_out], outer_out))
        outer, inner_in, inner_out, outer_out = outer + 1, ins[-1] + 1, inner_out + 1, outer_out + 1
    for _ in range(info.n_nit_sot):
        groups.append(("nit_sot", outer, [], [inner_out], outer_out))
        outer, inner_out, outer_out = outer + 1, inner_out + 1, outer_out + 1
    for _ in range(info.n_untraced_sit_sot):
        groups.append(("untraced", outer, [inner_in], [inner_out], outer_out))
        outer, inner_in = outer + 1, inner_in + 1
        inner_out, outer_out = inner_out + 1, outer_out + 1
    for _ in range(info.n_non_seqs):
        groups.append(("non_seq", outer, [inner_in], [], None))
        outer, inner_in = outer + 1, inner_in + 1
    return groups


def _batch_shape(node, batch_inputs) -> tuple[int, ...] | None:
    """The common static batch shape of the batched inputs, or None when it is not static."""
    shape: list[int] = []
    for old, new in zip(node.inputs, batch_inputs, strict=True):
        k = new.type.ndim - old.type.ndim
        dims = new.type.shape[:k]
        if any(d is None for d in dims):
            return None
        dims = (1,) * (len(shape) - k) + tuple(dims)
        shape = [1] * (k - len(shape)) + shape
        for i, d in enumerate(dims):
            if d != 1:
                if shape[i] not in (1, d):
                    return None
                shape[i] = d
    return tuple(shape)


def _with_batch(var, core_ndim: int, batch: tuple[int, ...], time_axis: bool):
    """``var`` with exactly the batch axes ``batch``: leading, or right after a time axis."""
    k = var.type.ndim - core_ndim
    if k < len(batch):
        var = var.dimshuffle(*(["x"] * (len(batch) - k)), *range(var.type.ndim))
    if tuple(var.type.shape[: len(batch)]) != batch:
        core = [var.shape[i] for i in range(len(batch), var.type.ndim)]
        var = pt.broadcast_to(var, (*batch, *core))
    if time_axis:  # (*batch, T, ...) -> (T, *batch, ...)
        b = len(batch)
        var = var.dimshuffle(b, *range(b), *range(b + 1, var.type.ndim))
    return var


def _batched_type(core_type: TensorType, batch: tuple[int, ...]) -> TensorType:
    return TensorType(core_type.dtype, shape=(*batch, *core_type.shape))


def vectorize_scan(op: Scan, node, *batch_inputs):
    def fallback():
        return vectorize_node_fallback(op, node, *batch_inputs)

    old_inputs = node.inputs
    batched = [b.type.ndim > o.type.ndim for b, o in zip(batch_inputs, old_inputs, strict=True)]
    if not any(batched):  # vectorize_graph may visit a loop the batch does not reach
        return op.make_node(*batch_inputs)
    if batched[0] or any(
        b.type.ndim < o.type.ndim for b, o in zip(batch_inputs, old_inputs, strict=True)
    ):
        return fallback()
    batch = _batch_shape(node, batch_inputs)
    if not batch:
        return fallback()
    groups = _groups(op)
    inner_inputs, inner_outputs = list(op.inner_inputs), list(op.inner_outputs)

    # Which quantities carry the batch: batched outer inputs, and states whose update depends on
    # anything batched (a fixed point: batching one state can batch another).
    carries = {g[1]: batched[g[1]] for g in groups}
    while True:
        replace = {}
        for _, outer, ins, _, _ in groups:
            if carries[outer]:
                for i in ins:
                    var = inner_inputs[i]
                    if not isinstance(var.type, TensorType):
                        return fallback()
                    replace[var] = _batched_type(var.type, batch)(name=var.name)
        new_outputs = vectorize_graph(inner_outputs, replace) if replace else inner_outputs
        grew = False
        for kind, outer, _, outs, _ in groups:
            if outs and not carries[outer]:
                if any(new_outputs[j].type.ndim > inner_outputs[j].type.ndim for j in outs):
                    if kind == "untraced":
                        return fallback()
                    carries[outer], grew = True, True
        if not grew:
            break
    if op.info.as_while and new_outputs[-1].type.ndim != inner_outputs[-1].type.ndim:
        return fallback()
    if any(batched[g[1]] for g in groups if g[0] == "nit_sot"):
        return fallback()

    new_inner_inputs = [replace.get(var, var) for var in inner_inputs]
    final_outputs = list(new_outputs)
    new_outer = list(batch_inputs)
    for kind, outer, ins, outs, _ in groups:
        if not carries[outer]:
            continue
        if kind == "nit_sot":  # its outer input is the number of steps stored, unbatched
            core = inner_outputs[outs[0]].type.ndim
            final_outputs[outs[0]] = _with_batch(new_outputs[outs[0]], core, batch, False)
            continue
        core_ndim = old_inputs[outer].type.ndim
        new_outer[outer] = _with_batch(batch_inputs[outer], core_ndim, batch, kind != "non_seq")
        for j in outs:  # a state's update must have its input's exact type
            core = inner_outputs[j].type.ndim
            out = _with_batch(new_outputs[j], core, batch, False)
            final_outputs[j] = new_inner_inputs[ins[0]].type.filter_variable(out)

    new_op = Scan(
        new_inner_inputs,
        final_outputs,
        op.info,
        mode=op.mode,
        truncate_gradient=op.truncate_gradient,
        name=op.name,
        profile=op.profile,
        allow_gc=op.allow_gc,
        strict=op.strict,
    )
    outs = new_op(*new_outer, return_list=True)
    results = []
    b = len(batch)
    for out, old in zip(outs, node.outputs, strict=True):
        if out.type.ndim > old.type.ndim:  # (T, *batch, ...) -> (*batch, T, ...)
            out = out.dimshuffle(*range(1, b + 1), 0, *range(b + 1, out.type.ndim))
        results.append(out)
    return results
