"""Stage 2: color a sparsity pattern so that few JVPs/VJPs/HVPs recover it.

``color(pattern, kind)`` returns a :class:`Coloring`:

- ``kind="column"``: structurally orthogonal column groups (forward mode, one JVP per color);
- ``kind="row"``: the same for rows (reverse mode, one VJP per color);
- ``kind="star"``: a star coloring of the symmetric structure ``P ∪ Pᵀ`` (Hessians, one HVP per
  color, every entry recovered directly);
- ``kind="acyclic"``: an acyclic coloring of ``P ∪ Pᵀ`` (Hessians, fewer colors than star,
  entries recovered by substitution along two-colored trees; :mod:`.acyclic`);
- ``kind="bidirectional"``: a star bicoloring (Jacobians with dense rows *and* columns: column
  colors for JVPs, row colors for VJPs, 0 neutral; ``n_colors`` counts the products;
  :mod:`.bicolor`).

``order`` picks the greedy vertex order (:data:`ORDERS`), a tuple of them (the best is kept), an
explicit permutation, or ``"auto"`` (the default), which tries :data:`AUTO_ORDERS` in turn and
keeps the fewest colors — the first to reach the fewest on ties, so the result is deterministic.
Acyclic and bidirectional ``auto`` run their algorithm with every order and keep the fewest
colors (products), stopping at 2 (acyclic) or 1 (bidirectional).
Column/row ``auto`` stops as soon as an order reaches the lower bound (the most nonzeros in a
row, resp. column): nothing can beat it. Otherwise it refines the best result by iterated greedy
(recoloring class by class, which never adds colors; :data:`AUTO_RECOLOR_PASSES`) and reports
the number of passes in ``Coloring.recolor_passes``. On very large graphs (more than
:data:`AUTO_WORK_LIMIT` neighbour visits per sweep) it tries only :data:`AUTO_ORDERS_LARGE`
and fewer passes. Star ``auto`` runs the star algorithm with every order (stopping at the cheap
bound of :func:`lower_bound`), then — only if that can still be beaten — a distance-2 coloring
of ``P ∪ Pᵀ ∪ I`` (a valid star coloring too) the same way. For an explicit star order both
algorithms run with that order and the smaller result is kept (ties: the star algorithm).

Modules: ``select`` (the policy: :func:`color`, orders tried, the best kept), ``graphs`` (the
bipartite / adjacency structures), ``orders`` and ``buckets`` (vertex orders), ``greedy``
(distance-2 and DSATUR), ``star``, ``acyclic``, ``bicolor`` (the algorithms), ``result``
(:class:`Coloring`), ``validity`` (what a coloring argument is, :class:`ColoringError`) and
``checks`` (whether a coloring is valid for a pattern, naming the offending pair).
"""

from sparsediff.coloring.checks import check_coloring, is_valid_coloring
from sparsediff.coloring.orders import ORDERS
from sparsediff.coloring.result import Coloring, ColoringKind
from sparsediff.coloring.select import (
    AUTO_ORDERS,
    AUTO_ORDERS_BIDIRECTIONAL,
    AUTO_ORDERS_LARGE,
    AUTO_RECOLOR_PASSES,
    AUTO_RECOLOR_PASSES_LARGE,
    AUTO_RECOLOR_PATIENCE,
    AUTO_RECOLOR_PATIENCE_LARGE,
    AUTO_WORK_LIMIT,
    KINDS,
    color,
    lower_bound,
)
from sparsediff.coloring.validity import ColoringError

__all__ = [
    "AUTO_ORDERS",
    "AUTO_ORDERS_BIDIRECTIONAL",
    "AUTO_ORDERS_LARGE",
    "AUTO_RECOLOR_PASSES",
    "AUTO_RECOLOR_PASSES_LARGE",
    "AUTO_RECOLOR_PATIENCE",
    "AUTO_RECOLOR_PATIENCE_LARGE",
    "AUTO_WORK_LIMIT",
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
