"""benchmarks/gpu_check.py runs anywhere: on the CPU at a tiny size it checks and prints a table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("jax")

pytestmark = pytest.mark.jax

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_check_runs_on_cpu_at_tiny_size(tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + str(ROOT)
    out_json = tmp_path / "rows.json"
    cmd = [sys.executable, "-m", "benchmarks.gpu_check", "--device", "cpu", "--sizes", "400"]
    cmd += ["--budget", "0.05", "--repeats", "3", "--json", str(out_json)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    table = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    names = [line.split("|")[1].strip() for line in table[1:]]
    assert names == ["bratu2d", "energy2d (star)", "energy2d (acyclic)"]
    rows = json.loads(out_json.read_text())["rows"]
    assert [r["ok"] for r in rows] == [True, True, True]
    for r in rows:
        assert r["out_device"].lower().startswith(("tfrt_cpu", "cpu"))
        assert r["rel_err"] <= 1e-10
        assert r["J_ms"][0] > 0 and r["r_ms"][0] > 0
