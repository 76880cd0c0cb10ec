"""``Scan``: the loop is unrolled *in Python, one inner propagation per step*.

The number of steps must be concrete. Sequence slices are the rows of the outer sequence's pattern
at that step; recurrent states (mit-mot, mit-sot, sit-sot, untraced sit-sot) are carried in a
buffer that follows ``Scan.perform`` exactly (circular storage included); non-sequences are the
outer patterns at every step. A ``while`` loop or a symbolic number of steps raises
:class:`NotConcrete` (conservative fallback with a warning).
"""

from __future__ import annotations

import numpy as np
from pytensor.graph.basic import Variable
from pytensor.scan.op import Scan
from pytensor.tensor.type import TensorType

from sparsediff.sparsity import pattern as pat
from sparsediff.sparsity.graph import concrete_inner_graph
from sparsediff.sparsity.registry import NotConcrete, RuleContext
from sparsediff.sparsity.rules.inner import concrete_shape, inner_shape, propagate_inner, stand_in

__all__ = ["scan_rule"]


class _Buffer:
    """The storage of one traced Scan output, as ``Scan.perform`` manages it."""

    def __init__(self, slots: list, mintap: int, n_steps: int, circular_fix: bool):
        self.slots = slots
        self.store = len(slots)
        self.mintap = mintap
        self.pos = (-mintap) % self.store if self.store else 0
        self.n_steps = n_steps
        self.circular_fix = circular_fix

    def read(self, tap: int):
        return self.slots[(self.pos + tap) % self.store]

    def write(self, tap: int, value) -> None:
        self.slots[(self.pos + tap) % self.store] = value

    def advance(self) -> None:
        self.pos = (self.pos + 1) % self.store

    def final(self) -> list:
        """Slots in output order (step 6 of ``Scan.perform``: rotate or clear the tail)."""
        if not self.circular_fix or self.n_steps == 0:
            return self.slots
        written = self.n_steps - self.mintap
        if self.store < written:
            return self.slots[self.pos :] + self.slots[: self.pos]
        if self.store > written:
            return self.slots[:written] + [None] * (self.store - written)
        return self.slots


def _rows(p: pat.Pattern | None, k: int, size: int) -> pat.Pattern | None:
    if p is None:
        return None
    block = p[k * size : (k + 1) * size]
    return block if block.nnz else None


def scan_rule(op: Scan, node, input_patterns, ctx: RuleContext):
    """Unroll the loop over its concrete number of steps (one inner propagation per step)."""
    info = op.info
    if info.as_while:
        raise NotConcrete("a while-loop Scan runs a value-dependent number of steps")
    n_steps_value = ctx.value(node.inputs[0])
    if n_steps_value is None:
        raise NotConcrete("the number of steps of the Scan is symbolic")
    n_steps = int(n_steps_value)
    outer = list(node.inputs)
    inner_inputs = list(op.inner_inputs)
    inner_outputs = list(op.inner_outputs)

    outer_seqs = op.outer_seqs(outer)
    seq_pats = input_patterns[1 : 1 + info.n_seqs]
    tap_groups = [*info.mit_mot_in_slices, *info.mit_sot_in_slices, *info.sit_sot_in_slices]
    n_tapped = len(tap_groups)
    outer_tapped = outer[1 + info.n_seqs : 1 + info.n_seqs + n_tapped]
    tapped_pats = input_patterns[1 + info.n_seqs : 1 + info.n_seqs + n_tapped]
    outer_untraced = op.outer_untraced_sit_sot(outer)
    untraced_offset = 1 + info.n_seqs + n_tapped
    untraced_pats = input_patterns[untraced_offset : untraced_offset + info.n_untraced_sit_sot]
    outer_nitsot = op.outer_nitsot(outer)
    outer_non_seqs = op.outer_non_seqs(outer)
    non_seq_pats = input_patterns[len(outer) - len(outer_non_seqs) :]

    # Stand-ins for the inner inputs, in inner-input order.
    stand_ins: list[Variable] = []
    k = 0
    seq_sizes = []
    for var in outer_seqs:
        shape = ctx.shape(var)[1:]
        stand_ins.append(stand_in(inner_inputs[k], shape, None))
        seq_sizes.append(int(np.prod(shape, dtype=np.int64)))
        k += 1
    slot_sizes = []
    for var, taps in zip(outer_tapped, tap_groups, strict=True):
        shape = ctx.shape(var)[1:]
        slot_sizes.append(int(np.prod(shape, dtype=np.int64)))
        for _ in taps:
            stand_ins.append(stand_in(inner_inputs[k], shape, None))
            k += 1
    for var in outer_untraced:
        stand_ins.append(stand_in(inner_inputs[k], concrete_shape(var, ctx), None))
        k += 1
    for var in outer_non_seqs:
        stand_ins.append(stand_in(inner_inputs[k], concrete_shape(var, ctx), var))
        k += 1
    assert k == len(inner_inputs)
    fgraph = concrete_inner_graph(inner_inputs, inner_outputs, stand_ins)

    # Buffers of the traced outputs: mit-mot, mit-sot, sit-sot (initialised from the outer
    # buffers), nit-sot (empty, of the requested length).
    buffers: list[_Buffer] = []
    for g, (var, taps) in enumerate(zip(outer_tapped, tap_groups, strict=True)):
        store = ctx.shape(var)[0]
        slots = [_rows(tapped_pats[g], s, slot_sizes[g]) for s in range(store)]
        buffers.append(_Buffer(slots, min(taps), n_steps, circular_fix=g >= info.n_mit_mot))
    for var in outer_nitsot:
        value = ctx.value(var)
        if value is None:
            raise NotConcrete("the length of a nit-sot output of the Scan is symbolic")
        buffers.append(_Buffer([None] * int(value), 0, n_steps, circular_fix=True))
    untraced = list(untraced_pats)

    n_mit_mot_outs = info.n_mit_mot_outs
    for step in range(n_steps):
        step_pats: list[pat.Pattern | None] = [
            _rows(p, step, size) for p, size in zip(seq_pats, seq_sizes, strict=True)
        ]
        for buffer, taps in zip(buffers, tap_groups, strict=False):
            step_pats.extend(buffer.read(t) for t in taps)
        step_pats.extend(untraced)
        step_pats.extend(non_seq_pats)
        outs = propagate_inner(fgraph, stand_ins, step_pats, ctx)
        # mit-mot outputs: written at their out-slices of their group's buffer.
        o = 0
        for g, out_slices in enumerate(info.mit_mot_out_slices):
            for tap in out_slices:
                buffers[g].write(tap, outs[o])
                o += 1
        # mit-sot, sit-sot, nit-sot: one value each, at the current position.
        for g in range(info.n_mit_mot, len(buffers)):
            buffers[g].write(0, outs[n_mit_mot_outs + g - info.n_mit_mot])
        n_traced = len(buffers) - info.n_mit_mot
        untraced = outs[n_mit_mot_outs + n_traced : n_mit_mot_outs + n_traced + len(untraced)]
        for buffer in buffers:
            buffer.advance()

    # Scan.infer_shape needs symbolic shapes: record the outputs' concrete shapes instead.
    inner_ctx = RuleContext(n_wrt=ctx.n_wrt)
    nit_sot_outs = op.inner_nitsot_outs(fgraph.outputs)
    elem_shapes = [ctx.shape(var)[1:] for var in outer_tapped]
    elem_shapes += [inner_shape(o, inner_ctx) for o in nit_sot_outs]
    results: list[pat.Pattern | None] = []
    for buffer, out, elem_shape in zip(buffers, node.outputs, elem_shapes, strict=False):
        slots = buffer.final()
        ctx.shapes.setdefault(out, (len(slots), *elem_shape))
        size = int(np.prod(elem_shape, dtype=np.int64))
        if all(s is None for s in slots):
            results.append(None)
        else:
            results.append(pat.stack(slots, [size] * len(slots), ctx.n_wrt))
    for var, out in zip(outer_untraced, op.outer_untraced_sit_sot_outs(node.outputs), strict=True):
        if isinstance(out.type, TensorType):
            ctx.shapes.setdefault(out, ctx.shape(var))
    results.extend(untraced)
    return results
