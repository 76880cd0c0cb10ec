"""The tools the harness compares, behind one small interface.

Each module exposes ``TOOLS``: a dict ``name -> build`` where ``build(case) -> Built`` sets a
tool up on one :class:`Case` (a problem at one size and its evaluation point), timing each setup
phase, or raises :class:`Skip` with the reason (missing package, too large for this tool, ...).
``Built.evaluate()`` computes the derivative at the point in the tool's own output format (what
is timed); ``Built.to_scipy(out)`` converts that output to a SciPy sparse matrix (used for the
correctness check, not timed); ``Built.residual()`` evaluates the tool's own residual (or cost).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from benchmarks.timing import Phase


class Skip(Exception):
    """This tool does not run on this case; the message says why."""


@dataclass
class Case:
    """One problem at one size, with the point where every tool evaluates its derivative."""

    family: str  #: key of sparsediff.problems.PROBLEMS
    size: int  #: the constructor's argument (n, or the grid side)
    problem: Any  #: sparsediff.problems.Problem
    x: np.ndarray  #: evaluation point
    params: tuple = ()  #: parameter values (PyTensor inputs after x)
    pattern: sp.csr_array | None = None  #: exact structural pattern (analytic)

    @property
    def n(self) -> int:
        return self.problem.n

    @property
    def m(self) -> int:
        return self.problem.m

    @property
    def hessian(self) -> bool:
        return self.problem.kind == "hessian"


@dataclass
class Built:
    """A tool set up on one case."""

    evaluate: Callable[[], Any]
    to_scipy: Callable[[Any], Any]
    residual: Callable[[], Any] | None = None
    residual_key: str | None = None  #: tools sharing one residual (JAX peers) share this key
    n_colors: int | None = None
    mode: str = ""  #: forward / reverse / star / dense / FD ...
    phases: dict[str, float] = field(default_factory=dict)  #: seconds per setup phase
    memory: dict[str, float] = field(default_factory=dict)  #: peak MiB per setup phase
    notes: list[str] = field(default_factory=list)
    tolerance: float = 1e-9  #: relative error accepted against the reference

    def record(self, name: str, phase: Phase) -> None:
        self.phases[name] = phase.seconds
        self.memory[name] = phase.peak_mb


def timed(built_phases: dict, built_memory: dict, name: str, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` as phase ``name``; store its seconds and peak MiB in the two dicts."""
    with Phase() as ph:
        out = fn()
    built_phases[name] = ph.seconds
    built_memory[name] = ph.peak_mb
    return out


def too_many_entries(n_colors: int, case: Case, limit: float, what: str) -> None:
    """Skip when the compressed matrix (colors × the longer side) would exceed ``limit``."""
    entries = n_colors * max(case.m, case.n)
    if entries > limit:
        raise Skip(
            f"{what}: {n_colors} colors × {max(case.m, case.n)} = {entries:.1e} compressed "
            f"entries ({8 * entries / 2**30:.1f} GiB) over the limit {limit:.0e}"
        )


def dense_memory_note(case: Case) -> str:
    gib = 8.0 * case.m * case.n / 2**30
    return f"dense {case.m}×{case.n} float64 needs {gib:,.1f} GiB for the result alone"


def relative_error(a, b) -> float:
    """max |a - b| / max(max |b|, 1e-300), on sparse or dense inputs."""
    a = sp.csr_array(a) if not isinstance(a, np.ndarray) else sp.csr_array(np.asarray(a))
    b = sp.csr_array(b) if not isinstance(b, np.ndarray) else sp.csr_array(np.asarray(b))
    if a.shape != b.shape:
        return math.inf
    diff = abs(a - b)
    scale = abs(b).max() if b.nnz else 0.0
    err = diff.max() if diff.nnz else 0.0
    return float(err / max(float(scale), 1e-300))


def import_all_tools() -> dict[str, Callable[[Case], Built]]:
    """Every tool, in the order the harness runs them (sparsediff first: the reference)."""
    from benchmarks.peers import (
        casadi_peer,
        dense_pytensor,
        jax_asdex,
        jax_sparsejac,
        scipy_fd,
        sparsediff_tool,
    )

    tools: dict[str, Callable[[Case], Built]] = {}
    for module in (
        sparsediff_tool,
        dense_pytensor,
        jax_asdex,
        jax_sparsejac,
        casadi_peer,
        scipy_fd,
    ):
        tools.update(module.TOOLS)
    return tools
