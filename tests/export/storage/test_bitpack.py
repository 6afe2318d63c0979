"""pack_bits / unpack_bits: exact round trips at every width, true bit-level sizes, clear errors."""

import pytest
import torch

from prunequant.errors import CheckpointError, ConfigError
from prunequant.export.storage.bitpack import pack_bits, packed_nbytes, unpack_bits


@pytest.mark.parametrize("bits", range(1, 17))
def test_round_trip_at_every_width_takes_ceil_n_bits_over_8_bytes(bits):
    gen = torch.Generator().manual_seed(bits)
    codes = torch.randint(0, 1 << bits, (3, 337), generator=gen)
    packed = pack_bits(codes, bits)
    assert packed.dtype == torch.uint8
    assert packed.numel() == (3 * 337 * bits + 7) // 8 == packed_nbytes(1011, bits)
    assert torch.equal(unpack_bits(packed, bits, 1011), codes.reshape(-1))


def test_layout_is_lsb_first_little_endian():
    assert pack_bits(torch.tensor([1, 2, 3]), 2).tolist() == [0b00111001]
    assert pack_bits(torch.tensor([0x1FF]), 9).tolist() == [0xFF, 0x01]
    assert pack_bits(torch.tensor([5, 7]), 3).tolist() == [0b00111101]
    assert pack_bits(torch.tensor([], dtype=torch.long), 5).numel() == 0
    assert unpack_bits(torch.tensor([], dtype=torch.uint8), 5, 0).numel() == 0


def test_extremes_survive():
    codes = torch.tensor([0, 65535, 1, 32768, 65534])
    assert torch.equal(unpack_bits(pack_bits(codes, 16), 16, 5), codes)


@pytest.mark.parametrize(("codes", "bits"), [([4], 2), ([-1], 8), ([0], 0), ([0], 17)])
def test_bad_codes_or_widths_are_config_errors(codes, bits):
    with pytest.raises(ConfigError):
        pack_bits(torch.tensor(codes), bits)


def test_wrong_packed_length_is_a_checkpoint_error():
    packed = pack_bits(torch.tensor([1, 2, 3]), 4)
    with pytest.raises(CheckpointError, match="corrupt"):
        unpack_bits(packed, 4, 5)
    with pytest.raises(CheckpointError):
        unpack_bits(packed.to(torch.int16), 4, 3)
