"""Split wide fused ``Elemwise`` kernels before Numba compiles them (issue #16).

PyTensor's ``FusionOptimizer`` fuses every connected elementwise subgraph into one
``Elemwise(Composite)``, with up to 1024 operands (inputs plus outputs). Numba's compile time
for such a kernel grows much faster than linearly with its operands (measured, fresh cache,
one kernel of ``k`` inputs and one output: k = 10 → 0.9 s, 40 → 3.1 s, 160 → 38 s; with ``k``
scalar nodes and two inputs, 160 nodes → 5.3 s): the many-equation residuals of DSGE models
and, worse, their batched JVPs (a 176-input, 16-output kernel for a 23-equation model) took a
minute or more to JIT on the first call. The C backend does not have this problem.

:func:`split_wide_composites` cuts such a kernel, after fusion and in Numba mode only (the
rewrite is registered with the ``numba`` tag alone), into a chain of kernels of at most
:data:`MAX_OPERANDS` operands each: the scalar graph is walked in topological order and a new
kernel starts when the next scalar node would push the current one over the limit. Values
passed from one kernel to the next become intermediate arrays, so the per-call cost grows by
a few memory passes. Nothing changes in the arithmetic. Exclude the rewrite by name
(``mode.excluding("sparsediff_split_wide_composites")``) to get PyTensor's kernels back.
"""

from __future__ import annotations

import pytensor.tensor as pt
from pytensor.graph.basic import Constant, Variable
from pytensor.graph.rewriting.basic import node_rewriter
from pytensor.graph.traversal import toposort
from pytensor.scalar import basic as ps
from pytensor.scalar.basic import Composite
from pytensor.tensor.elemwise import Elemwise

__all__ = [
    "MAX_OPERANDS",
    "SPLIT_POSITION",
    "narrow_associative",
    "split_scalar_graph",
    "split_wide_composites",
]

#: Operands (inputs + outputs) of one kernel at most: a few seconds of Numba compilation each
#: (above, 40 operands cost 3 s, 10 cost 0.9 s, most of it fixed per kernel).
MAX_OPERANDS = 32
#: In ``optdb``: after PyTensor's fusion (49) and its cleanups, before the in-place rewrites
#: (``AddDestroyHandler``, 49.5), so that the new kernels can still work in place.
SPLIT_POSITION = 49.3


def narrow_associative(
    inputs: list[Variable], outputs: list[Variable], width: int
) -> list[Variable]:
    """``outputs`` rebuilt with every ``add`` / ``mul`` of more than ``width`` operands written
    as a sum (product) of partial sums (products) of at most ``width`` operands: PyTensor
    flattens nested sums into one node, which alone could exceed the operand limit."""
    new: dict[Variable, Variable] = {v: v for v in inputs}
    for node in toposort(outputs, blockers=inputs):
        args = [new.get(i, i) for i in node.inputs]
        if isinstance(node.op, ps.Add | ps.Mul) and len(args) > width:
            while len(args) > width:
                args = [
                    args[k] if len(args[k : k + width]) == 1 else node.op(*args[k : k + width])
                    for k in range(0, len(args), width)
                ]
            outs = [node.op(*args)] if len(args) > 1 else args
        else:
            outs = node.op.make_node(*args).outputs
        new.update(zip(node.outputs, outs, strict=True))
    return [new[o] for o in outputs]


def split_scalar_graph(
    inputs: list[Variable], outputs: list[Variable], max_operands: int = MAX_OPERANDS
) -> list[list]:
    """Cut the scalar graph from ``inputs`` to ``outputs`` into chunks of scalar nodes.

    Chunks are consecutive runs of a topological order; a chunk's operands are the variables
    it reads from outside (graph inputs or values of earlier chunks) and those it produces
    that are read outside it (by later chunks, or as graph outputs). A node that alone exceeds
    the limit gets a chunk of its own.
    """
    nodes = list(toposort(outputs, blockers=inputs))
    position = {node: k for k, node in enumerate(nodes)}
    last_use: dict[Variable, int] = {}
    for k, node in enumerate(nodes):
        for i in node.inputs:
            last_use[i] = k
    final = set(outputs)

    chunks: list[list] = []
    current: list = []
    reads: set[Variable] = set()
    made: set[Variable] = set()

    def escaping(end: int) -> int:
        # values of the chunk still needed after node ``end`` (or graph outputs)
        return sum(1 for v in made if v in final or last_use.get(v, -1) > end)

    for node in nodes:
        k = position[node]
        new_reads = {
            i for i in node.inputs if not isinstance(i, Constant) and i not in made
        } - reads
        if current:
            n_reads = len(reads) + len(new_reads)
            n_out = escaping(k) + len(node.outputs)
            if n_reads + n_out > max_operands:
                chunks.append(current)
                current, reads, made = [], set(), set()
                new_reads = {i for i in node.inputs if not isinstance(i, Constant)}
        current.append(node)
        reads |= new_reads
        made.update(node.outputs)
    if current:
        chunks.append(current)
    return chunks


def _chunk_kernel(chunk: list, values: dict, final: set, later_reads: set):
    """One ``Elemwise(Composite)`` for ``chunk``; records the tensors it makes in ``values``."""
    made = {o for node in chunk for o in node.outputs}
    ext = []
    for node in chunk:
        for i in node.inputs:
            if not isinstance(i, Constant) and i not in made and i not in ext:
                ext.append(i)
    outs = [o for node in chunk for o in node.outputs if o in final or o in later_reads]
    fresh = {v: v.type() for v in ext}
    for node in chunk:
        new = node.op.make_node(*[fresh.get(i, i) for i in node.inputs])
        fresh.update(zip(node.outputs, new.outputs, strict=True))
    kernel = Elemwise(Composite([fresh[v] for v in ext], [fresh[o] for o in outs]))
    results = kernel(*[values[v] for v in ext], return_list=True)
    values.update(zip(outs, results, strict=True))


@node_rewriter([Elemwise])
def split_wide_composites(fgraph, node):
    """``Elemwise(Composite)`` with more than :data:`MAX_OPERANDS` operands → a chain of
    narrower ones computing the same outputs."""
    op = node.op
    if not isinstance(op.scalar_op, Composite) or op.inplace_pattern:
        return None
    if len(node.inputs) + len(node.outputs) <= MAX_OPERANDS:
        return None
    comp = op.scalar_op
    inputs, outputs = list(comp.fgraph.inputs), list(comp.fgraph.outputs)
    if any(o in inputs or isinstance(o, Constant) for o in outputs):
        return None
    outputs = narrow_associative(inputs, outputs, MAX_OPERANDS // 2)
    chunks = split_scalar_graph(inputs, outputs)
    if len(chunks) < 2:
        return None
    values: dict = dict(zip(inputs, node.inputs, strict=True))
    final = set(outputs)
    reads_after = [set() for _ in chunks]
    seen: set = set()
    for c in range(len(chunks) - 1, -1, -1):
        reads_after[c] = set(seen)
        for n in chunks[c]:
            seen.update(n.inputs)
    for chunk, later in zip(chunks, reads_after, strict=True):
        _chunk_kernel(chunk, values, final, later)
    new_outs = []
    for old_scalar, old in zip(outputs, node.outputs, strict=True):
        out = values[old_scalar]
        if out.type.broadcastable != old.type.broadcastable:
            out = pt.broadcast_to(out, old.shape)
        if out.dtype != old.dtype:
            out = out.astype(old.dtype)
        new_outs.append(out)
    return new_outs
