"""Bitmask sparse encoding: bit-exact round trips and the byte accounting behind the codec choice."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from prunequant.errors import CheckpointError
from prunequant.export.storage import break_even_density, decode_sparse, encode_sparse
from prunequant.export.storage.sparse import sparse_nbytes


@pytest.mark.parametrize(
    "dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int8, torch.bool]
)
def test_round_trip_is_bit_exact(dtype):
    gen = torch.Generator().manual_seed(0)
    t = torch.where(torch.rand(3, 5, 7, generator=gen) > 0.6, torch.randn(3, 5, 7, generator=gen), 0.0)
    t = (t * 10).to(dtype) if dtype in (torch.int8, torch.bool) else t.to(dtype)
    d = encode_sparse(t)
    out = decode_sparse(d)
    assert out.dtype == dtype and out.shape == t.shape and torch.equal(out, t)
    assert d["values"].numel() == int(torch.count_nonzero(t)) and d["bitmask"].numel() == math.ceil(105 / 8)


def test_negative_zero_nan_and_inf_survive():
    t = torch.tensor([0.0, -0.0, float("nan"), float("inf"), 1e-45, 0.0, -2.5])
    out = decode_sparse(encode_sparse(t))
    assert torch.equal(out.view(torch.int32), t.view(torch.int32))  # every bit, -0.0 and NaN included


def test_bitmask_is_packbits_of_the_nonzeros():
    t = torch.tensor([[0.0, 1.0, 0.0, 2.0, 0.0, 0.0, 0.0, 0.0, 3.0, 0.0]])
    d = encode_sparse(t)
    assert d["bitmask"].tolist() == [0b01010000, 0b10000000]
    assert d["values"].tolist() == [1.0, 2.0, 3.0] and d["shape"].tolist() == [1, 10]
    assert np.array_equal(np.unpackbits(d["bitmask"].numpy(), count=10).astype(bool), (t != 0).numpy()[0])


def test_scalars_empty_and_views():
    assert torch.equal(decode_sparse(encode_sparse(torch.tensor(7))), torch.tensor(7))
    assert decode_sparse(encode_sparse(torch.zeros(0, 3))).shape == (0, 3)
    base = torch.arange(20.0).reshape(4, 5)
    view = base[:, 1:3].t()
    d = encode_sparse(view)
    assert torch.equal(decode_sparse(d), view) and d["values"].untyped_storage().nbytes() == 8 * 4


def test_corrupt_entries_raise_checkpoint_error():
    d = encode_sparse(torch.tensor([1.0, 0.0, 2.0]))
    with pytest.raises(CheckpointError, match="2 values for 1 set bits"):
        decode_sparse({**d, "bitmask": torch.tensor([0b10000000], dtype=torch.uint8)})
    with pytest.raises(CheckpointError, match="malformed"):
        decode_sparse({"values": d["values"]})


def test_break_even_density_is_computed():
    assert (
        break_even_density(4) == 31 / 32
        and break_even_density(2) == 15 / 16
        and break_even_density(1) == 7 / 8
    )
    # 1000 float32 entries: dense 4000 B; sparse = 125 mask + 4 * nnz + 8 shape bytes
    assert sparse_nbytes(1000, 966, 4, 1) == 3997 and sparse_nbytes(1000, 967, 4, 1) == 4001
