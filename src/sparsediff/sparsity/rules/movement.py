"""Ops that keep, move or copy elements: identities, reshapes, indexing reads, joins, allocs.

Except for identities, each rule runs the Op itself on element indices
(:mod:`sparsediff.sparsity.rules.trace`) and reads off where every output element came from.
"""

from __future__ import annotations

from sparsediff.sparsity.rules.trace import copy_rule


def first_input_rule(op, node, input_patterns, ctx):
    """Ops whose (every) output is its first input, unchanged."""
    return [input_patterns[0]] * len(node.outputs)


#: Ops that read their first input's elements only (views, indexing, repeats, allocs).
first_is_data_rule = copy_rule([0])
#: ``MakeVector``: every input is one element of the output.
make_vector_rule = copy_rule(None)


def join_rule(op, node, input_patterns, ctx):
    return copy_rule(range(1, len(node.inputs)))(op, node, input_patterns, ctx)
