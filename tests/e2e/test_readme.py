"""The README's ```python blocks run, so its examples cannot rot.

Each block runs in a fresh namespace, in order, with PyTensor's default mode set to
``FAST_COMPILE`` (no C or Numba compilation wait). A block preceded by a
``<!-- skip-test ... -->`` comment is not run (names only, heavy dependencies).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytensor
import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
_BLOCK = re.compile(r"(?P<before>[^\n]*)\n```python\n(?P<code>.*?)\n```", re.DOTALL)


def readme_blocks() -> list[tuple[int, str, bool]]:
    """``(line, code, skipped)`` for every ```python block of the README."""
    text = README.read_text(encoding="utf-8")
    blocks = []
    for match in _BLOCK.finditer(text):
        line = text.count("\n", 0, match.start("code")) + 1
        skipped = match.group("before").strip().startswith("<!-- skip-test")
        blocks.append((line, match.group("code"), skipped))
    return blocks


BLOCKS = readme_blocks()


def test_readme_has_examples():
    assert sum(not skipped for _, _, skipped in BLOCKS) >= 4


@pytest.mark.parametrize(
    ("line", "code", "skipped"), BLOCKS, ids=[f"README.md:{b[0]}" for b in BLOCKS]
)
def test_readme_block_runs(line, code, skipped, capsys):
    if skipped:
        pytest.skip("marked <!-- skip-test --> in the README")
    compiled = compile("\n" * (line - 1) + code, str(README), "exec")
    with pytensor.config.change_flags(mode="FAST_COMPILE"), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # e.g. PyTensor's missing-BLAS note
        exec(compiled, {"__name__": "__readme__"})
    assert capsys.readouterr().out or "print(" not in code
