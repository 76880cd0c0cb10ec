"""Ops with inner graphs: ``IfElse``, ``Scan`` and ``OpFromGraph`` (with or without overrides).

* ``IfElse``: each output joins the patterns of its two branches; the condition adds nothing
  (``pytensor.grad`` treats it as piecewise constant). A constant condition keeps only the
  branch it takes.
* ``OpFromGraph``: the inner graph is copied with the concrete shapes (and constant values) of
  the outer inputs and detection recurses into it. When the Op overrides its gradient
  (``pullback=`` or a subclass ``pullback`` method), the pattern is read off the override
  instead, because that is what ``pytensor.grad`` differentiates with: the override's input
  cotangents are a linear map of the output cotangents, whose Jacobian structure, transposed,
  is the pattern of the Op.
* ``Scan``: the loop is unrolled *in Python, one inner propagation per step*, with a concrete
  number of steps. Sequence slices are the rows of the outer sequence's pattern at that step;
  recurrent states (mit-mot, mit-sot, sit-sot, untraced sit-sot) are carried in a buffer that
  follows ``Scan.perform`` exactly (circular storage included); non-sequences are the outer
  patterns at every step. A ``while`` loop or a symbolic number of steps raises
  :class:`NotConcrete` (conservative fallback with a warning).
"""

from __future__ import annotations

import contextvars
import warnings
from collections.abc import Sequence

import numpy as np
from pytensor.compile.builders import OpFromGraph
from pytensor.gradient import DisconnectedGrad, DisconnectedType, ZeroGrad
from pytensor.graph.basic import Constant, Variable
from pytensor.graph.fg import FunctionGraph
from pytensor.graph.null_type import NullType
from pytensor.graph.replace import clone_replace
from pytensor.graph.rewriting.basic import dfs_rewriter
from pytensor.graph.rewriting.utils import rewrite_graph
from pytensor.graph.traversal import ancestors
from pytensor.ifelse import IfElse
from pytensor.scan.op import Scan
from pytensor.tensor.type import TensorType, continuous_dtypes

from sparsediff.sparsity import pattern as pat
from sparsediff.sparsity.registry import NotConcrete, RuleContext, register_sparsity_rule

# --------------------------------------------------------------------------------------------
# Concrete copies of inner graphs


def _stand_in(var: Variable, shape: tuple[int, ...] | None, outer: Variable | None):
    """What replaces an inner input: the outer constant, or a fresh variable of concrete shape."""
    if outer is not None and isinstance(outer, Constant) and shape is not None:
        value = np.asarray(outer.data)
        if isinstance(var.type, TensorType) and value.shape == tuple(shape):
            return Constant(var.type.clone(shape=tuple(shape)), value.astype(var.type.dtype))
    if shape is not None and isinstance(var.type, TensorType):
        return var.type.clone(shape=tuple(shape))()
    return var.type()


def concrete_inner_graph(
    inner_inputs: Sequence[Variable],
    inner_outputs: Sequence[Variable],
    stand_ins: Sequence[Variable],
) -> FunctionGraph:
    """A canonical copy of an inner graph whose inputs are ``stand_ins``.

    Like :func:`sparsediff.sparsity.propagate.prepare_graph`: plain ``OpFromGraph`` nodes are
    inlined, ``zero_grad``/``disconnected_grad`` become fresh inputs, and shapes fold.
    """
    from sparsediff.sparsity.propagate import _inline_plain_ofg

    outputs = clone_replace(list(inner_outputs), dict(zip(inner_inputs, stand_ins, strict=True)))
    fresh = [s for s in stand_ins if not isinstance(s, Constant)]
    fresh_set = set(fresh)
    others = [
        v
        for v in ancestors(outputs)
        if v.owner is None and not isinstance(v, Constant) and v not in fresh_set
    ]
    fgraph = FunctionGraph(inputs=[*fresh, *others], outputs=outputs, clone=False)
    dfs_rewriter(_inline_plain_ofg).rewrite(fgraph)
    cut = [
        node.outputs[0]
        for node in fgraph.toposort()
        if isinstance(node.op, ZeroGrad | DisconnectedGrad)
    ]
    for var in cut:
        replacement = var.type()
        fgraph.add_input(replacement)
        fgraph.replace(var, replacement, import_missing=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rewrite_graph(fgraph, include=("ShapeOpt", "canonicalize"))
    return fgraph


def _propagate_inner(
    fgraph: FunctionGraph,
    stand_ins: Sequence[Variable],
    patterns: Sequence[pat.Pattern | None],
    ctx: RuleContext,
) -> list[pat.Pattern | None]:
    seeds = {
        s: p
        for s, p in zip(stand_ins, patterns, strict=True)
        if p is not None and not isinstance(s, Constant)
    }
    if not seeds:
        return [None] * len(fgraph.outputs)
    result = ctx.propagate(fgraph, seeds, ctx.n_wrt)
    return [result.get(o) for o in fgraph.outputs]


def inner_shape(var: Variable, ctx: RuleContext) -> tuple[int, ...]:
    """The concrete shape of a variable of a concrete inner graph.

    ``ctx.shape`` first; when ``infer_shape`` cannot work on integers (an Op with an inner graph
    inside), the symbolic shape is folded to constants with the shape rewrites.
    """
    try:
        return ctx.shape(var)
    except NotConcrete:
        pass
    import pytensor.tensor as pt

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        folded = rewrite_graph(
            pt.as_tensor_variable(var.shape), include=("ShapeOpt", "canonicalize")
        )
    if not isinstance(folded, Constant):
        raise NotConcrete(f"the shape of {var} is not known at plan time")
    shape = tuple(int(s) for s in np.asarray(folded.data))
    ctx.shapes[var] = shape
    return shape


def _concrete_shape(var: Variable, ctx: RuleContext) -> tuple[int, ...] | None:
    if not isinstance(var.type, TensorType):
        return None
    return ctx.shape(var)


# --------------------------------------------------------------------------------------------
# IfElse


@register_sparsity_rule(IfElse)
def ifelse_rule(op: IfElse, node, input_patterns, ctx: RuleContext):
    """Union of both branches; the condition contributes nothing; a constant one picks."""
    n = op.n_outs
    cond = ctx.value(node.inputs[0])
    then_patterns = input_patterns[1 : 1 + n]
    else_patterns = input_patterns[1 + n : 1 + 2 * n]
    outputs = []
    for k, out in enumerate(node.outputs):
        then_var, else_var = node.inputs[1 + k], node.inputs[1 + n + k]
        if cond is not None:
            outputs.append(then_patterns[k] if bool(cond) else else_patterns[k])
            continue
        shape = ctx.shape(out) if isinstance(out.type, TensorType) else None
        for var in (then_var, else_var):
            if shape is not None and ctx.shape(var) != shape:
                raise NotConcrete(
                    f"the branches of {op} have different shapes {ctx.shape(then_var)} and "
                    f"{ctx.shape(else_var)}"
                )
        outputs.append(pat.union([then_patterns[k], else_patterns[k]]))
    return outputs


# --------------------------------------------------------------------------------------------
# OpFromGraph

#: OpFromGraph instances whose override is being analysed (guards self-referencing overrides).
_IN_OVERRIDE: contextvars.ContextVar[frozenset] = contextvars.ContextVar(
    "sparsediff_ofg_in_override", default=frozenset()
)


def has_pullback_override(op: OpFromGraph) -> bool:
    """Whether ``pytensor.grad`` uses something else than the inner graph's own gradient."""
    return op.pullback_overrides is not None or type(op).pullback is not OpFromGraph.pullback


def _ofg_stand_ins(op: OpFromGraph, node, ctx: RuleContext) -> list[Variable]:
    return [
        _stand_in(inner, _concrete_shape(outer, ctx), outer)
        for inner, outer in zip(op.inner_inputs, node.inputs, strict=True)
    ]


def _record_shapes(outputs: Sequence[Variable], fgraph: FunctionGraph, ctx: RuleContext) -> None:
    """Outer output shapes from the concrete inner graph (``infer_shape`` of Ops with inner
    graphs wants symbolic shapes, not the integers the rules have)."""
    inner_ctx = RuleContext(n_wrt=ctx.n_wrt)
    for out, inner in zip(outputs, fgraph.outputs, strict=True):
        if isinstance(out.type, TensorType) and out not in ctx.shapes:
            try:
                ctx.shapes[out] = inner_shape(inner, inner_ctx)
            except NotConcrete:
                pass


def ofg_override_pattern(op: OpFromGraph, node, input_patterns, ctx: RuleContext):
    """The pattern ``pytensor.grad`` sees: the transposed structure of the override's pullback.

    The override is applied to stand-ins of the inputs, outputs and output cotangents (all of
    concrete shape). Input cotangent ``i`` is linear in the output cotangents; the Jacobian
    pattern of that map with respect to cotangent ``j`` is the transpose of block ``(j, i)``
    of the Op's Jacobian.
    """
    from sparsediff.sparsity.propagate import jacobian_sparsity

    inputs = _ofg_stand_ins(op, node, ctx)
    outputs = [_stand_in(o, _concrete_shape(o, ctx), None) for o in node.outputs]
    differentiable = [
        isinstance(o.type, TensorType) and o.type.dtype in continuous_dtypes for o in node.outputs
    ]
    cotangents = [
        o.type() if d else DisconnectedType()()
        for o, d in zip(outputs, differentiable, strict=True)
    ]
    grads = op.pullback(inputs, outputs, cotangents)
    connected = [g for g, d in zip(cotangents, differentiable, strict=True) if d]
    parts: list[list[pat.Pattern]] = [[] for _ in connected]
    for i, (grad, p) in enumerate(zip(grads, input_patterns, strict=True)):
        if p is None or isinstance(grad.type, DisconnectedType):
            continue
        if isinstance(grad.type, NullType):
            raise NotImplementedError(f"the gradient override of {op} is undefined for input {i}")
        blocks = jacobian_sparsity(grad, connected)
        for j, block in enumerate(blocks):
            if block.nnz:
                parts[j].append(pat.combine_rows(block.T.tocsr(), p))
    by_output = iter(pat.union(ps) for ps in parts)
    return [next(by_output) if d else None for d in differentiable]


@register_sparsity_rule(OpFromGraph)
def ofg_rule(op: OpFromGraph, node, input_patterns, ctx: RuleContext):
    """Override-aware: what ``pytensor.grad`` differentiates with decides the pattern; without
    an override, detection recurses into the inner graph (concrete shapes and constants)."""
    stand_ins = _ofg_stand_ins(op, node, ctx)
    fgraph = concrete_inner_graph(op.inner_inputs, op.inner_outputs, stand_ins)
    _record_shapes(node.outputs, fgraph, ctx)
    active = _IN_OVERRIDE.get()
    if has_pullback_override(op) and op not in active:
        token = _IN_OVERRIDE.set(active | {op})
        try:
            return ofg_override_pattern(op, node, input_patterns, ctx)
        except NotConcrete:
            raise
        except Exception as exc:
            ctx.warn(
                f"could not derive the sparsity pattern of {op} from its gradient override "
                f"({type(exc).__name__}: {exc}); using the pattern of its inner graph, which "
                "may differ from what pytensor.grad computes"
            )
        finally:
            _IN_OVERRIDE.reset(token)
    return _propagate_inner(fgraph, stand_ins, input_patterns, ctx)


# --------------------------------------------------------------------------------------------
# Scan


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


@register_sparsity_rule(Scan)
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
        stand_ins.append(_stand_in(inner_inputs[k], shape, None))
        seq_sizes.append(int(np.prod(shape, dtype=np.int64)))
        k += 1
    slot_sizes = []
    for var, taps in zip(outer_tapped, tap_groups, strict=True):
        shape = ctx.shape(var)[1:]
        slot_sizes.append(int(np.prod(shape, dtype=np.int64)))
        for _ in taps:
            stand_ins.append(_stand_in(inner_inputs[k], shape, None))
            k += 1
    for var in outer_untraced:
        stand_ins.append(_stand_in(inner_inputs[k], _concrete_shape(var, ctx), None))
        k += 1
    for var in outer_non_seqs:
        stand_ins.append(_stand_in(inner_inputs[k], _concrete_shape(var, ctx), var))
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
        outs = _propagate_inner(fgraph, stand_ins, step_pats, ctx)
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
