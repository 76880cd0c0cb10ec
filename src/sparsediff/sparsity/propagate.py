"""Stage 1: walk a PyTensor graph once and propagate boolean CSR patterns through its Ops.

The graph is first made concrete (:mod:`sparsediff.sparsity.graph`); each node's rule (found
in :mod:`sparsediff.sparsity.registry`) maps its input patterns to output patterns; an Op
without a rule gets a dense block where its ``connection_pattern`` connects, with a warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedGrad, DisconnectedInputError
from pytensor.graph.basic import Apply, Variable
from pytensor.graph.fg import FunctionGraph
from pytensor.graph.traversal import ancestors
from pytensor.sparse.type import SparseTensorType
from pytensor.tensor.random.op import RandomVariable
from scipy import sparse as sp

from sparsediff._heap import freed_memory_reused
from sparsediff._sparse_ops import matrix_sparse_products, sparse_depends_on_wrt
from sparsediff._validate import as_wrt_list
from sparsediff.sparsity import pattern as pat
from sparsediff.sparsity.graph import prepare_graph, wrt_seeds
from sparsediff.sparsity.registry import NotConcrete, RuleContext, SparsityWarning, find_rule

#: Largest pattern (in stored entries) a conservative dense fallback may create.
MAX_FALLBACK_NNZ = 200_000_000


def _fallback(node: Apply, input_patterns, ctx: RuleContext, reason: str, message=None):
    """Dense blocks where ``connection_pattern`` connects: every output element depends on
    every entry any connected input depends on."""
    ctx.warn(
        message
        or f"sparsediff has no exact sparsity rule for {node.op} ({reason}); assuming every "
        "output element depends on every input element. Register one with "
        f"@sparsediff.register_sparsity_rule({type(node.op).__name__}) to get an exact pattern."
    )
    try:
        connection = node.op.connection_pattern(node)
    except Exception:
        connection = [[True] * len(node.outputs) for _ in node.inputs]
    outputs = []
    for j, out in enumerate(node.outputs):
        present = [p for i, p in enumerate(input_patterns) if p is not None and connection[i][j]]
        if not present or not _differentiable(out):
            outputs.append(None)
            continue
        cols = np.unique(np.concatenate([p.indices for p in present]))
        size = ctx.size(out)
        if size * cols.size > MAX_FALLBACK_NNZ:
            raise MemoryError(
                f"the conservative pattern of {node.op} would hold {size * cols.size:,} entries; "
                "register an exact sparsity rule for this Op"
            )
        indices = np.tile(cols, size)
        indptr = np.arange(size + 1, dtype=np.int64) * cols.size
        outputs.append(
            sp.csr_array((np.ones(indices.size, bool), indices, indptr), shape=(size, ctx.n_wrt))
        )
    return outputs


def _differentiable(var: Variable) -> bool:
    dtype = getattr(var.type, "dtype", None)
    return dtype in pt.type.continuous_dtypes


def _value_dependent_message(node: Apply, seeds) -> str | None:
    """A warning for an Op whose index/shape input is computed from the values of ``wrt``."""
    for inp in node.inputs:
        if inp.owner is None or _differentiable(inp):
            continue
        sources = [v for v in ancestors([inp]) if v in seeds]
        if sources:
            names = ", ".join(sorted({v.name or str(v) for v in sources}))
            return (
                f"value-dependent index: the index {inp} of {node.op} is computed from the values "
                f"of {names}, so which elements it selects is only known at run time; the "
                "pattern assumes every output element of this Op depends on every element it "
                "could select (it may be much denser than the Jacobian at any one point)"
            )
    return None


def check_random_variables(fgraph: FunctionGraph, wrt: Sequence[Variable]) -> None:
    """Random draws are unknown inputs of the pattern (warning); draws whose distribution
    parameters depend on ``wrt`` have no derivative (error, as in ``pytensor.grad``)."""
    random_nodes = [n for n in fgraph.apply_nodes if isinstance(n.op, RandomVariable)]
    if not random_nodes:
        return
    wrt_set = set(wrt)
    for node in random_nodes:
        params = [i for i in node.inputs if _differentiable(i)]
        if any(v in wrt_set for v in ancestors(params)):
            raise ValueError(
                f"the distribution parameters of the random variable {node.op} depend on wrt: "
                "random draws have no derivative (pytensor.grad refuses them too). "
                "Reparametrize, e.g. mu + sigma * pt.random.normal(size=...) instead of "
                "pt.random.normal(mu, sigma)"
            )
    names = ", ".join(sorted({str(n.op) for n in random_nodes}))
    warnings.warn(
        f"the graph draws random numbers ({names}): the pattern treats the draws as unknown "
        "inputs that do not depend on wrt, and each compiled call may draw new ones",
        SparsityWarning,
        stacklevel=4,  # past jacobian_sparsity, to its caller
    )


def disconnected_wrt(
    expression: Variable, wrt: Sequence[Variable], consider_constant: Sequence[Variable] = ()
) -> list[Variable]:
    """The ``wrt`` variables that ``expression`` does not depend on in the graph (as
    ``pytensor.grad`` sees it: ``disconnected_grad`` and ``consider_constant`` cut)."""
    blocked = set(consider_constant)
    reached = set()
    stack = [expression]
    while stack:
        var = stack.pop()
        if var in reached or var in blocked:
            continue
        reached.add(var)
        if var.owner is not None and not isinstance(var.owner.op, DisconnectedGrad):
            stack.extend(var.owner.inputs)
    return [w for w in wrt if w not in reached]


def _handle_disconnected(
    expression, wrt_list, consider_constant, disconnected_inputs, what="Jacobian", stacklevel=4
) -> None:
    if disconnected_inputs not in ("raise", "warn", "ignore"):
        raise ValueError(
            f"disconnected_inputs must be 'raise', 'warn' or 'ignore', got {disconnected_inputs!r}"
        )
    if disconnected_inputs == "ignore":
        return
    for w in disconnected_wrt(expression, wrt_list, consider_constant):
        message = (
            f"wrt {w} is not part of the computational graph of {expression}: its {what} "
            "block is all zeros"
        )
        if disconnected_inputs == "raise":
            raise DisconnectedInputError(
                f"{message}. If that is intended, pass disconnected_inputs='ignore' (an "
                "all-zero block, silently) or 'warn' (with a warning)"
            )
        warnings.warn(
            f"{message} (disconnected_inputs='ignore' silences this)", stacklevel=stacklevel
        )


def propagate(
    fgraph: FunctionGraph,
    seeds: dict[Variable, pat.Pattern],
    n_wrt: int,
    outputs_only: bool = False,
) -> dict[Variable, pat.Pattern | None]:
    """Patterns of every variable of ``fgraph``, given the patterns of some of its inputs.

    ``outputs_only``: keep only the patterns of ``fgraph.outputs`` (the others are dropped once
    their last client has run): at n = 10⁶ the intermediate patterns of a stencil hold several
    times the final one, and memory touched for the first time is what a first plan pays for.
    """
    patterns: dict[Variable, pat.Pattern | None] = dict(seeds)
    ctx = RuleContext(n_wrt=n_wrt, propagate=propagate, defer_unions=True)
    order = fgraph.toposort()
    outputs = set(fgraph.outputs)
    uses: dict[Variable, int] | None = None
    if outputs_only:
        uses = {}
        for node in order:
            for v in node.inputs:
                uses[v] = uses.get(v, 0) + 1
        for v in fgraph.outputs:
            uses[v] = uses.get(v, 0) + 1  # never dropped
    for node in order:
        _propagate_node(node, patterns, seeds, ctx, n_wrt)
        for v in node.outputs:
            if isinstance(patterns.get(v), pat.Deferred) and not _merge_later(fgraph, v, outputs):
                patterns[v] = patterns[v].merge()
        if uses is not None:
            for v in node.inputs:
                uses[v] -= 1
                if uses[v] == 0:
                    patterns.pop(v, None)
            for v in node.outputs:
                if v not in uses:  # an output nothing reads
                    patterns.pop(v, None)
    for v, p in patterns.items():  # kept intermediates (outputs_only=False): merged too
        if isinstance(p, pat.Deferred):
            patterns[v] = p.merge()
    return patterns


def _merge_later(fgraph: FunctionGraph, var: Variable, outputs) -> bool:
    """Whether the :class:`~sparsediff.sparsity.pattern.Deferred` union of ``var`` can stay
    unmerged: its one client is an elemwise node, which flattens it into its own union. With
    two clients or more each would merge it again; any other rule reads CSR arrays."""
    if var in outputs:
        return False
    clients = fgraph.clients.get(var, ())
    if len(clients) != 1:
        return False
    node = clients[0][0]
    return isinstance(node, Apply) and find_rule(node.op) is _elemwise_rule()


def _elemwise_rule():
    from sparsediff.sparsity.rules.elemwise import elemwise_rule

    return elemwise_rule


def _propagate_node(node: Apply, patterns, seeds, ctx: RuleContext, n_wrt: int) -> None:
    """The patterns of the outputs of ``node``, written into ``patterns``."""
    input_patterns = [patterns.get(v) for v in node.inputs]
    if all(p is None for p in input_patterns):
        return
    if find_rule(node.op) is not _elemwise_rule():  # a Deferred reaches elemwise rules only
        input_patterns = [p.merge() if isinstance(p, pat.Deferred) else p for p in input_patterns]
    if not any(_differentiable(out) for out in node.outputs):
        return  # integer/boolean results (Shape, comparisons...) carry no derivative
    if any(isinstance(out.type, SparseTensorType) for out in node.outputs):
        # its pattern would be a dense block over all m·n entries, its products one sparse
        # matrix per color: see sparsediff/_sparse_ops.py
        raise sparse_depends_on_wrt(node.op, "computes a sparse matrix from wrt")
    rule = find_rule(node.op)
    if rule is None:
        outputs = _fallback(node, input_patterns, ctx, "no rule is registered")
    else:
        try:
            outputs = rule(node.op, node, input_patterns, ctx)
        except NotConcrete as exc:
            message = _value_dependent_message(node, seeds)
            merged = [p.merge() if isinstance(p, pat.Deferred) else p for p in input_patterns]
            outputs = _fallback(node, merged, ctx, str(exc), message)
    for out, p in zip(node.outputs, outputs, strict=True):
        if (
            p is None
            or not _differentiable(out)
            or (not isinstance(p, pat.Deferred) and p.nnz == 0)
        ):
            patterns[out] = None
            continue
        size = ctx.size(out)
        if p.shape != (size, n_wrt):
            raise AssertionError(
                f"sparsity rule of {node.op} returned shape {p.shape}, expected {(size, n_wrt)}"
            )
        patterns[out] = p


def jacobian_sparsity(
    expression: Variable,
    wrt: Variable | Sequence[Variable],
    *,
    consider_constant: Sequence[Variable] = (),
    disconnected_inputs: str = "ignore",
) -> sp.csr_array | list[sp.csr_array]:
    """The global sparsity pattern of the Jacobian of ``expression`` with respect to ``wrt``.

    Returns a boolean ``scipy.sparse.csr_array`` of shape ``(expression.size, wrt.size)``
    (rows in C order of ``expression.ravel()``), or a list of them when ``wrt`` is a list.
    The pattern holds for every value of the inputs: it may over-approximate, it never
    misses a nonzero. Other inputs of the graph are unknown values, not constants.
    ``disconnected_inputs`` ("raise", "warn", "ignore") says what a ``wrt`` that is not in
    the graph gets; this internal function defaults to "ignore" (an empty block), the public
    ``sparsediff.jacobian_sparsity`` to "raise".
    """
    (expression,) = matrix_sparse_products([pt.as_tensor_variable(expression)])
    wrt_list, as_list = as_wrt_list(wrt)
    _handle_disconnected(expression, wrt_list, consider_constant, disconnected_inputs)
    with freed_memory_reused(small_pages=True):  # see sparsediff._heap
        return _jacobian_blocks(expression, wrt_list, as_list, consider_constant)


def _jacobian_blocks(expression, wrt_list, as_list, consider_constant):
    fgraph, fresh_wrt = prepare_graph([expression], wrt_list, consider_constant)
    check_random_variables(fgraph, fresh_wrt)
    seeds, offsets = wrt_seeds(fresh_wrt)
    n_wrt = offsets[-1]
    out = fgraph.outputs[0]
    patterns = propagate(fgraph, seeds, n_wrt, outputs_only=True)
    ctx = RuleContext(n_wrt=n_wrt)
    try:
        # The propagated pattern knows its size (some Ops, e.g. Scan, only infer it symbolically).
        n_rows = patterns[out].shape[0] if patterns.get(out) is not None else ctx.size(out)
    except NotConcrete:
        raise ValueError(
            f"the shape of the expression {expression} could not be determined from the static "
            "shapes of its inputs; give the other inputs static shapes too"
        ) from None
    full = patterns.get(out)
    if full is None:
        full = pat.empty(n_rows, n_wrt)
    full = pat.as_pattern(full)
    if len(fresh_wrt) == 1:
        blocks = [full]  # no column slicing: it would copy the whole pattern
    else:
        blocks = [full[:, offsets[k] : offsets[k + 1]] for k in range(len(fresh_wrt))]
        blocks = [sp.csr_array(b, dtype=bool) for b in blocks]
    for b in blocks:
        b.sort_indices()
    return blocks if as_list else blocks[0]


def hessian_sparsity(
    cost: Variable,
    wrt: Variable | Sequence[Variable],
    *,
    consider_constant: Sequence[Variable] = (),
    disconnected_inputs: str = "raise",
) -> sp.csr_array | list[list[sp.csr_array]]:
    """The symmetric sparsity pattern of the Hessian of a scalar ``cost``.

    Computed as the Jacobian pattern of the symbolic gradient, symmetrized. For a list of
    ``wrt`` the result is the list of lists of blocks ``H[i][j]``, like ``pt.hessian``.
    A ``wrt`` the cost does not depend on raises ``DisconnectedInputError``
    (``disconnected_inputs="raise"``, the default, as in ``pytensor.gradient.hessian``), or
    gets all-zero blocks with a warning (``"warn"``) or silently (``"ignore"``).
    """
    cost = pt.as_tensor_variable(cost)
    if cost.type.ndim != 0:
        raise ValueError(
            f"hessian_sparsity needs a scalar cost, got {cost} with {cost.type.ndim} dimensions; "
            "reduce it (e.g. with .sum()) or use jacobian_sparsity of its gradient"
        )
    (cost,) = matrix_sparse_products([cost])  # PyTensor cannot differentiate vector ones
    wrt_list, as_list = as_wrt_list(wrt)
    _handle_disconnected(
        cost, wrt_list, consider_constant, disconnected_inputs, what="Hessian", stacklevel=4
    )
    with freed_memory_reused(small_pages=True):  # see sparsediff._heap
        return _hessian_blocks(cost, wrt_list, as_list, consider_constant)


def _hessian_blocks(cost, wrt_list, as_list, consider_constant):
    grads = pytensor.grad(
        cost,
        wrt_list,
        consider_constant=list(consider_constant) or None,
        disconnected_inputs="ignore",
    )
    gradient = pt.concatenate([g.ravel() for g in grads]) if len(grads) > 1 else grads[0].ravel()
    blocks = jacobian_sparsity(gradient, wrt_list, consider_constant=consider_constant)
    full = pat.as_pattern(sp.hstack(blocks, format="csr"))
    full = pat.as_pattern(full + full.T)
    if not as_list:
        return full
    sizes = [int(np.prod(w.type.shape, dtype=np.int64)) for w in wrt_list]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    return [
        [
            pat.as_pattern(full[offsets[i] : offsets[i + 1], offsets[j] : offsets[j + 1]])
            for j in range(len(sizes))
        ]
        for i in range(len(sizes))
    ]
