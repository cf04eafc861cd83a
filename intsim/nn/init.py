"""Weight initialisers (all draws from an explicit np.random.Generator)."""
import math

import numpy as np


def kaiming_uniform(shape, fan_in, rng, a=math.sqrt(5)):
    """PyTorch's default layer init: U(-b, b), b = sqrt(6 / ((1 + a^2) fan_in)).

    With a = sqrt(5) this is U(-1/sqrt(fan_in), 1/sqrt(fan_in)). float32.
    """
    bound = math.sqrt(6.0 / ((1.0 + a * a) * fan_in))
    return rng.uniform(-bound, bound, size=shape).astype(np.float32)


def bias_uniform(n, fan_in, rng):
    """PyTorch's default bias init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)). float32."""
    bound = 1.0 / math.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=n).astype(np.float32)


def he_normal(shape, fan, rng):
    """He (kaiming) normal init for ReLU nets: N(0, 2/fan). float32."""
    return (rng.standard_normal(size=shape) * math.sqrt(2.0 / fan)).astype(np.float32)


def child_rng(rng):
    """An independent Generator seeded by a draw from ``rng``.

    Unlike Generator.spawn, this depends only on rng's bit-generator state,
    so it is reproducible after restoring that state from a checkpoint.
    """
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a np.random.Generator, got {type(rng).__name__}")
    return np.random.default_rng(int(rng.integers(0, 2**63 - 1)))
