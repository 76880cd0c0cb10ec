"""A Jacobian evaluated with ``x`` sharded over two (host) devices.

JAX fixes its device count at start-up, so each case runs in a fresh interpreter with
``XLA_FLAGS=--xla_force_host_platform_device_count=2``. The child checks the sharded result
against the single-device one and reports the sharding of the output's arrays: the test asserts
that ``data`` really is split over both devices, not only that the values agree.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("jax")

pytestmark = pytest.mark.jax

CHILD = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import jax
    jax.config.update("jax_enable_x64", True)
    import pytensor
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    import sparsediff as sd
    from sparsediff import problems
    from sparsediff.backends.jax_function import jax_callable, leading_axis_shardings

    family, n, kind = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    p = problems.from_size(family, n)
    if p.kind == "hessian":
        J = sd.hessian_plan(p.expression, p.x, kind=kind).build()
    else:
        J = sd.jacobian_plan(p.expression, p.x).build()
    fn = pytensor.function([p.x], J, mode="JAX")
    x = p.x0 + np.linspace(0.0, 0.1, p.n)
    reference = fn(x)                      # through PyTensor: one device
    mesh = Mesh(np.array(jax.devices()), ("d",))
    rows = NamedSharding(mesh, P("d"))
    xs = jax.device_put(x, rows)
    f = jax_callable(fn)
    out_shardings = leading_axis_shardings(jax.eval_shape(f, xs), rows)
    g = jax_callable(fn, out_shardings=out_shardings)
    Js = g(xs)
    hlo = g.lower(xs).compile().as_text()
    expected = p.jacobian(x)
    got = np.asarray(Js.todense())
    print(json.dumps({
        "devices": len(jax.devices()),
        "x_devices": len(xs.sharding.device_set),
        "data_spec": list(Js.data.sharding.spec),
        "data_devices": len(Js.data.sharding.device_set),
        "data_shard_len": [int(s.data.shape[0]) for s in Js.data.addressable_shards],
        "nnz": int(Js.data.shape[0]),
        "equal_unsharded": bool(
            np.array_equal(np.asarray(Js.data), np.asarray(reference.data))
            and np.array_equal(np.asarray(Js.indices), np.asarray(reference.indices))
            and np.array_equal(np.asarray(Js.indptr), np.asarray(reference.indptr))
        ),
        "err_analytic": float(np.abs(got - expected.toarray()).max()),
        "partitions": "num_partitions=2" in hlo or "num_partitions = 2" in hlo,
    }))
    """
)


def _run(family: str, n: int, kind: str = "auto") -> dict:
    env = dict(os.environ)
    # the device count first: XLA stops at a token that is not a flag
    flags = env.get("XLA_FLAGS", "")
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count=2 {flags}".strip()
    env["JAX_PLATFORMS"] = "cpu"
    src = str(Path(__file__).resolve().parents[2] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, family, str(n), kind],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("family", "n", "kind"),
    [("bratu2d", 1024, "auto"), ("brusselator2d", 512, "auto"), ("energy2d", 1024, "acyclic")],
)
def test_sharded_equals_unsharded_and_is_partitioned(family, n, kind):
    r = _run(family, n, kind)
    assert r["devices"] == 2
    assert r["x_devices"] == 2
    assert r["equal_unsharded"]
    assert r["err_analytic"] < 1e-9
    # the output really is split: each device holds half of the data
    assert r["data_spec"] == ["d"]
    assert r["data_devices"] == 2
    assert r["data_shard_len"] == [r["nnz"] // 2, r["nnz"] // 2]
    assert r["partitions"]
