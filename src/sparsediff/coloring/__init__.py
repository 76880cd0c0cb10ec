"""Stage 2: color a sparsity pattern so that few JVPs/VJPs/HVPs recover it.

``color(pattern, kind)`` returns a :class:`Coloring` — ``"column"`` (forward mode), ``"row"``
(reverse mode), ``"star"`` and ``"acyclic"`` (Hessians), ``"bidirectional"`` (dense rows *and*
columns); :mod:`.select` says which algorithm and vertex orders each kind runs (its
``AUTO_*`` constants are the budgets of ``order="auto"``).

Modules: ``select`` (the policy: :func:`color`, orders tried, the best kept), ``graphs`` (the
bipartite / adjacency structures), ``orders`` and ``buckets`` (vertex orders), ``greedy``
(distance-2 and DSATUR), ``improve`` (greedy with tabu repair at a fixed number of colors, for
fewer colors than any order), ``star``, ``acyclic``, ``bicolor`` (the algorithms), ``result``
(:class:`Coloring`), ``validity`` (what a coloring argument is, :class:`ColoringError`) and
``checks`` (whether a coloring is valid for a pattern, naming the offending pair).
"""

from sparsediff.coloring.checks import check_coloring, is_valid_coloring
from sparsediff.coloring.orders import ORDERS
from sparsediff.coloring.result import Coloring, ColoringKind
from sparsediff.coloring.select import KINDS, color, lower_bound
from sparsediff.coloring.validity import ColoringError

__all__ = [
    "KINDS",
    "ORDERS",
    "Coloring",
    "ColoringError",
    "ColoringKind",
    "check_coloring",
    "color",
    "is_valid_coloring",
    "lower_bound",
]
