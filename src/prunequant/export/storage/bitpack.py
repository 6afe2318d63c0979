"""True bit packing: n codes of b bits take ceil(n * b / 8) bytes (any b in 1..16, not rounded up to bytes).

Code i occupies bits [i*b, (i+1)*b) of the stream, least significant bit first, bytes little-endian.
"""

from __future__ import annotations

import numpy as np
import torch

from prunequant.errors import CheckpointError, ConfigError
from prunequant.validation import check_int_range

MAX_BITS = 16


def packed_nbytes(count: int, bits: int) -> int:
    """Bytes that `count` codes of `bits` bits take once packed."""
    return (count * bits + 7) // 8


def pack_bits(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack integer `codes` in [0, 2^bits) (any shape, read flat) into a uint8 tensor."""
    check_int_range("bits", bits, 1, MAX_BITS)
    flat = codes.detach().reshape(-1).cpu().long()
    if flat.numel() and (int(flat.min()) < 0 or int(flat.max()) >= 1 << bits):
        raise ConfigError(
            f"codes must lie in [0, {(1 << bits) - 1}] to pack in {bits} bits, "
            f"got [{int(flat.min())}, {int(flat.max())}]"
        )
    as_bytes = flat.numpy().astype("<u2").view(np.uint8).reshape(-1, 2)
    bit_columns = np.unpackbits(as_bytes, axis=1, bitorder="little")[:, :bits]
    return torch.from_numpy(np.packbits(bit_columns.reshape(-1), bitorder="little"))


def unpack_bits(packed: torch.Tensor, bits: int, count: int) -> torch.Tensor:
    """The `count` int64 codes that `pack_bits(codes, bits)` stored in `packed`."""
    check_int_range("bits", bits, 1, MAX_BITS)
    check_int_range("count", count, 0, 1 << 62)
    if packed.dtype != torch.uint8 or packed.numel() != packed_nbytes(count, bits):
        raise CheckpointError(
            f"packed codes hold {packed.numel()} {packed.dtype} values, not {packed_nbytes(count, bits)} "
            f"uint8 for {count} codes of {bits} bits; the file may be corrupt"
        )
    stream = np.unpackbits(packed.cpu().numpy(), count=count * bits, bitorder="little")
    bit_columns = np.zeros((count, MAX_BITS), dtype=np.uint8)
    bit_columns[:, :bits] = stream.reshape(count, bits)
    codes = np.packbits(bit_columns, axis=1, bitorder="little").view("<u2").reshape(-1)
    return torch.from_numpy(codes.astype(np.int64))
