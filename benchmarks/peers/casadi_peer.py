"""CasADi, with MX (matrix graph) and SX (scalar graph) expressions.

The problems are written once in CasADi (``casadi_problems``). Phases: building the
expression (``graph``, reported in the notes, not in the totals, like the PyTensor graphs),
``jacobian_sparsity`` (detection; for Hessians, of the gradient, as CasADi does),
``Sparsity.uni_coloring`` of the pattern and of its transpose, or ``star_coloring`` for
Hessians (coloring; CasADi colors again inside ``jacobian``/``hessian`` by its own rules, the
count reported is the smaller of the two directions), ``casadi.jacobian`` / ``hessian`` and
``casadi.Function`` (plan + compile), the first call. Calls take and return ``DM``; converting to
SciPy is not timed. SX expressions are scalar graphs: above ``MAX_N_SX`` they are skipped.
"""

from __future__ import annotations

import scipy.sparse as sp

from benchmarks.peers import Built, Case, Skip, too_many_entries
from benchmarks.peers.casadi_problems import EXPRESSIONS
from benchmarks.timing import Phase

MAX_N_SX = 120_000
MAX_COMPRESSED_ENTRIES = 1.2e8


def _builder(kind: str):
    def build(case: Case) -> Built:
        try:
            import casadi as ca
        except ImportError as exc:
            raise Skip(f"not installed ({exc})") from None
        if kind == "SX" and case.n > MAX_N_SX:
            raise Skip(f"n > {MAX_N_SX}: SX scalar graph too large for this run")
        X = getattr(ca, kind)
        with Phase() as graph:
            x, F = EXPRESSIONS[case.family](case.size, X)
        xdm = ca.DM(case.x)
        built = Built(
            evaluate=lambda: None,
            to_scipy=lambda out: sp.csr_array(out.tocsc()),
            residual_key=f"casadi-{kind}",
            tolerance=1e-9,
        )
        built.notes.append(f"expression built in {graph.seconds:.2f} s")
        with Phase() as ph:
            if case.hessian:
                S = ca.jacobian_sparsity(ca.gradient(F, x), x)
            else:
                S = ca.jacobian_sparsity(F, x)
        built.record("detection", ph)
        with Phase() as ph:
            if case.hessian:
                n_colors = int(S.star_coloring(1, 2**31 - 1).size2())
                mode = "star"
            else:
                n_fwd = int(S.uni_coloring().size2())
                n_rev = int(S.T.uni_coloring(S).size2())
                n_colors = min(n_fwd, n_rev)
                mode = "forward" if n_fwd <= n_rev else "reverse"
        built.record("coloring", ph)
        built.n_colors, built.mode = n_colors, mode
        too_many_entries(n_colors, case, MAX_COMPRESSED_ENTRIES, f"CasADi {kind}")
        with Phase() as ph:
            if case.hessian:
                D, _ = ca.hessian(F, x)
            else:
                D = ca.jacobian(F, x)
        built.record("plan", ph)
        with Phase() as ph:
            fJ = ca.Function("J", [x], [D])
            fr = ca.Function("r", [x], [F])
        built.record("compile", ph)
        with Phase() as ph:
            fJ(xdm)
        built.record("first_call", ph)
        fr(xdm)
        built.evaluate = lambda: fJ(xdm)
        built.residual = lambda: fr(xdm)
        return built

    return build


TOOLS = {"CasADi MX": _builder("MX"), "CasADi SX": _builder("SX")}
