"""`python -m sparsediff demo` at a small size: the table, Newton's iterations, the picture."""

import pytest

from sparsediff.__main__ import main


def test_demo_small(capsys, tmp_path):
    args = ["demo", "--size", "20", "--backend", "CVM"]
    plot = None
    try:
        import matplotlib  # noqa: F401

        plot = tmp_path / "pattern.png"
        args += ["--plot", str(plot)]
    except ImportError:
        pass
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "n = 400 unknowns" in out
    assert "nnz = 1,920" in out
    assert "5 colors (lower bound 5" in out
    for word in ("plan+build", "compile", "Jacobian", "dense Jacobian would need"):
        assert word in out
    assert "converged" in out
    newton = next(line for line in out.splitlines() if "iterations, final ‖F‖" in line)
    nit = int(newton.split("iterations")[0].split()[-1])
    assert 1 <= nit <= 6
    assert float(newton.split("final ‖F‖ = ")[1].split(",")[0]) <= 1e-8
    if plot is not None:
        assert plot.stat().st_size > 1000


def test_demo_rejects_tiny_size():
    with pytest.raises(SystemExit):
        main(["demo", "--size", "1"])
