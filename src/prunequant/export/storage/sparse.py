"""Bitmask sparse encoding: one bit per entry (packed 8 per byte) plus the nonzero values, bit-exact."""

from __future__ import annotations

import math

import numpy as np
import torch

from prunequant.errors import CheckpointError

_SAME_SIZE_INT = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def nonzero_mask(t: torch.Tensor) -> torch.Tensor:
    """Flat bool mask of the entries whose bits are not all zero (so -0.0 counts as a value and survives)."""
    flat = t.detach().reshape(-1)
    if flat.is_floating_point() and flat.element_size() in _SAME_SIZE_INT:
        flat = flat.view(_SAME_SIZE_INT[flat.element_size()])
    return flat != 0


def encode_sparse(t: torch.Tensor) -> dict[str, torch.Tensor]:
    """{"bitmask": np.packbits of the nonzero mask (uint8), "values": the nonzeros in order, "shape": int64}.

    The values keep `t`'s dtype; the tensor is moved to CPU.
    """
    mask = nonzero_mask(t).cpu()
    values = t.detach().reshape(-1).cpu()[mask].clone()
    return {
        "bitmask": torch.from_numpy(np.packbits(mask.numpy())),
        "values": values,
        "shape": torch.tensor(list(t.shape), dtype=torch.int64),
    }


def decode_sparse(data: dict[str, torch.Tensor]) -> torch.Tensor:
    """Inverse of encode_sparse: the exact original tensor (dtype, shape and every bit)."""
    try:
        bitmask, values, shape = data["bitmask"], data["values"], [int(d) for d in data["shape"].tolist()]
    except (KeyError, AttributeError, TypeError) as exc:
        raise CheckpointError(f"sparse entry is malformed (missing or bad {exc}); re-save the file") from None
    numel = math.prod(shape)
    if bitmask.dtype != torch.uint8 or bitmask.numel() != (numel + 7) // 8:
        raise CheckpointError(
            f"sparse bitmask holds {bitmask.numel()} bytes, not {(numel + 7) // 8} for {shape}"
        )
    mask = torch.from_numpy(np.unpackbits(bitmask.numpy(), count=numel).astype(bool))
    if int(mask.sum()) != values.numel():
        raise CheckpointError(
            f"sparse entry has {values.numel()} values for {int(mask.sum())} set bits; corrupt"
        )
    out = torch.zeros(numel, dtype=values.dtype)
    out[mask] = values
    return out.reshape(shape)


def sparse_nbytes(numel: int, nonzeros: int, element_size: int, ndim: int) -> int:
    """Raw bytes of an encoding: ceil(numel / 8) mask bytes + the values + 8 bytes per shape dimension."""
    return (numel + 7) // 8 + nonzeros * element_size + 8 * ndim


def break_even_density(element_size: int) -> float:
    """Density below which bitmask + values beat dense storage, ignoring the shape: 1 - 1 / (8 * bytes).

    n/8 + d*n*b < n*b  <=>  d < 1 - 1/(8b): 31/32 for float32, 15/16 for float16, 7/8 for int8.
    """
    return 1.0 - 1.0 / (8 * element_size)
