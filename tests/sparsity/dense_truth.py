"""The numerical truth a detected pattern is compared with: dense Jacobians at random points."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.gradient import jacobian


def random_value(var, rng: np.random.Generator) -> np.ndarray:
    shape = tuple(var.type.shape)
    if any(s is None for s in shape):
        raise ValueError(f"test input {var} needs a static shape")
    if var.dtype.startswith("int"):
        return rng.integers(0, 3, size=shape).astype(var.dtype)
    if var.dtype == "bool":
        return rng.random(shape) < 0.5
    return rng.uniform(0.3, 1.7, size=shape).astype(var.dtype)


def dense_nonzeros(expression, wrt, inputs, n_points: int = 16, seed: int = 0):
    """Union over random points of the nonzeros of the dense Jacobian blocks, one per wrt."""
    wrt = list(wrt)
    flat = pt.as_tensor_variable(expression).ravel()
    blocks = jacobian(flat, wrt, disconnected_inputs="ignore", vectorize=True)
    blocks = [b.reshape((flat.shape[0], -1)) for b in blocks]
    with pytensor.config.change_flags(mode="FAST_COMPILE"):  # inner graphs too
        fn = pytensor.function(inputs, blocks, on_unused_input="ignore")
    rng = np.random.default_rng(seed)
    truth = None
    for _ in range(n_points):
        values = fn(*[random_value(v, rng) for v in inputs])
        nz = [np.asarray(v) != 0 for v in values]
        truth = nz if truth is None else [a | b for a, b in zip(truth, nz, strict=True)]
    return truth
