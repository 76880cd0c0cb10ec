"""Every process-wide registration is made once, by sparsediff._register (#12)."""

from __future__ import annotations

import subprocess
import sys

from pytensor.graph.replace import _vectorize_node

import sparsediff as sd
from sparsediff import _register
from sparsediff.compression.vectorize import VECTORIZE_RULES
from sparsediff.sparsity.registry import find_rule
from sparsediff.sparsity.rules import BUILTIN_RULES


def test_every_builtin_rule_is_registered():
    assert len(BUILTIN_RULES) >= 36
    for op_class, rule in BUILTIN_RULES.items():
        op = op_class.__new__(op_class)  # find_rule only looks at the class
        assert find_rule(op) is rule, op_class


def test_every_vectorization_rule_is_registered():
    assert {c.__name__ for c in VECTORIZE_RULES} >= {
        "Split",
        "Join",
        "IncSubtensor",
        "IfElse",
        "OpFromGraph",
        "Scan",
    }
    for op_class, rule in VECTORIZE_RULES.items():
        assert _vectorize_node.dispatch(op_class) is rule, op_class


def test_register_all_is_idempotent():
    _register.register_all()
    _register.register_all()
    assert sd.jacobian_sparsity is not None


def test_importing_any_module_first_works():
    """No import cycle hides behind function-level imports: every module imports on its own,
    first (all of sparsediff forgotten before each), in one fresh interpreter."""
    script = (
        "import importlib, pkgutil, sys\n"
        "import sparsediff\n"
        "names = [m.name for m in pkgutil.walk_packages(sparsediff.__path__, 'sparsediff.')]\n"
        "assert 'sparsediff.plans.jacobian' in names and 'sparsediff.coloring.orders' in names\n"
        "for name in names:\n"
        "    if name == 'sparsediff.__main__':\n"
        "        continue\n"
        "    for key in [k for k in sys.modules if k.split('.')[0] == 'sparsediff']:\n"
        "        del sys.modules[key]\n"
        "    importlib.import_module(name)\n"
        "print(len(names))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert int(out.stdout.split()[-1]) > 40
