"""Finite-difference gradient checks (float64, FP datapath) of the token layers model
files use (TokenLinear, Tokens, Patches1d, PositionEmbedding, TokenMean) and of a
residual Block, and the values of the reshapes."""
import numpy as np
import pytest

import intsim
from intsim import nn
from intsim.models import Block
from gradcheck import check_grads

FP = intsim.FP()


@pytest.fixture
def rng():
    return np.random.default_rng(2468)


def test_token_linear_on_rows_and_tokens(rng):
    check_grads(nn.TokenLinear(5, 3, True, FP, rng), rng.standard_normal((2, 4, 5)), rng)
    check_grads(nn.TokenLinear(5, 3, False, FP, rng), rng.standard_normal((3, 5)), rng)


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (2, 3, 7)])
def test_tokens(rng, shape):
    check_grads(nn.Tokens(), rng.standard_normal(shape), rng)
    x = rng.standard_normal(shape).astype(np.float32)
    t = nn.Tokens().forward(x)
    assert t.shape == (shape[0], int(np.prod(shape[2:])), shape[1])
    np.testing.assert_array_equal(t[1, -1], x.reshape(shape[0], shape[1], -1)[1, :, -1])


def test_patches1d(rng):
    check_grads(nn.Patches1d(4), rng.standard_normal((2, 3, 12)), rng)
    x = np.arange(2 * 3 * 8, dtype=np.float32).reshape(2, 3, 8)
    p = nn.Patches1d(4).forward(x)
    assert p.shape == (2, 2, 12)
    np.testing.assert_array_equal(p[1, 1], np.concatenate([x[1, c, 4:8] for c in range(3)]))


def test_position_embedding_and_token_mean(rng):
    check_grads(nn.PositionEmbedding(4, 3, rng), rng.standard_normal((2, 4, 3)), rng)
    check_grads(nn.TokenMean(), rng.standard_normal((2, 4, 3)), rng)


def test_a_residual_block_of_named_layers(rng):
    block = Block([("norm", nn.LayerNorm(6)), ("fc", nn.TokenLinear(6, 6, True, FP, rng)),
                   ("gelu", nn.GELU())], residual=True)
    check_grads(block, rng.standard_normal((2, 3, 6)), rng)
    with pytest.raises(ValueError, match="repeat"):
        Block([("a", nn.GELU()), ("a", nn.ReLU())])
