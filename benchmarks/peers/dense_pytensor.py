"""Dense ``pytensor.gradient.jacobian`` / ``hessian``: what PyTensor users have today.

Two variants, both compiled with the C backend (``CVM``; Numba's JIT of these large graphs
takes tens of seconds and is not what is being compared): the default Scan over rows, and
``vectorize=True`` (all VJPs at once, n × n intermediate arrays). Above ``MAX_N`` unknowns the
tool is skipped and the row says how much memory the dense result alone would need.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from benchmarks.peers import Built, Case, Skip, dense_memory_note
from benchmarks.timing import Phase

#: Largest n (and m) the dense variants run at; vectorize needs several n × n arrays.
MAX_N = {"scan": 10_000, "vectorize": 10_000}
MODE = "CVM"


def _builder(variant: str):
    def build(case: Case) -> Built:
        if max(case.n, case.m) > MAX_N[variant]:
            raise Skip(f"n > {MAX_N[variant]}: {dense_memory_note(case)}")
        import pytensor
        from pytensor.gradient import grad, hessian, jacobian

        p = case.problem
        inputs = [p.x, *p.params]
        args = [case.x, *case.params]
        built = Built(
            evaluate=lambda: None,
            to_scipy=lambda out: sp.csr_array(np.asarray(out)),
            n_colors=case.n,
            mode=f"dense, {variant}",
            residual_key="pytensor-c",
            tolerance=1e-9,
        )
        with Phase() as ph:
            vectorize = variant == "vectorize"
            if case.hessian:
                if vectorize:
                    D = jacobian(grad(p.expression, p.x), p.x, vectorize=True)
                else:
                    D = hessian(p.expression, p.x)
            else:
                D = jacobian(p.expression, p.x, vectorize=vectorize)
        built.record("plan", ph)
        with Phase() as ph:
            fD = pytensor.function(inputs, D, mode=MODE)
        built.record("compile", ph)
        with Phase() as ph:
            fD(*args)
        built.record("first_call", ph)
        fr = pytensor.function(inputs, p.expression, mode=MODE)
        fr(*args)
        built.evaluate = lambda: fD(*args)
        built.residual = lambda: fr(*args)
        return built

    return build


TOOLS = {
    "dense pt.jacobian[scan]": _builder("scan"),
    "dense pt.jacobian[vectorize]": _builder("vectorize"),
}
