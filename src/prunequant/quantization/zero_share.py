"""Zero share: how many weights quantization itself rounds to zero (seed 000 Table II)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import torch
from torch import nn

from prunequant.errors import ConfigError
from prunequant.quantization.config import QuantConfig
from prunequant.quantization.modes import eval_mode
from prunequant.quantization.quantize import quantize
from prunequant.quantization.wrappers import is_quantized, quantized_layers


@dataclass(frozen=True)
class ZeroShare:
    """Counts over the quantized weight tensors.

    `prior_zeros` were zero before quantization (pruned); `new_zeros` were non-zero and quantize to 0.
    """

    total: int
    prior_zeros: int
    new_zeros: int

    @property
    def share(self) -> float:
        """new_zeros / total: the seed's figure (0.07% at 16 bits ... 33.8% at 6 bits)."""
        return self.new_zeros / self.total if self.total else 0.0

    @property
    def share_of_nonzero(self) -> float:
        """new_zeros / weights that were non-zero: the share that pruned zeros do not dilute."""
        nonzero = self.total - self.prior_zeros
        return self.new_zeros / nonzero if nonzero else 0.0

    def to_dict(self) -> dict[str, float]:
        return {**asdict(self), "share": self.share, "share_of_nonzero": self.share_of_nonzero}


@torch.no_grad()
def zero_share(model: nn.Module, w_bits: int | None = None, *, per_channel: bool = True) -> ZeroShare:
    """Zero share of a quantized model's weights, or of a float model's weights quantized to `w_bits`."""
    if not is_quantized(model):
        if w_bits is None:
            raise ConfigError("the model is not quantized; pass w_bits to count the zeros of that bit width")
        config = QuantConfig(w_bits=w_bits, a_bits=None, per_channel=per_channel, quantize_input=False)
        model = quantize(model, config)
    with eval_mode(model):
        return count_zeros(
            (layer.masked_weight(), layer.quantized_weight())
            for _, layer in quantized_layers(model)
            if layer.weight_quantizer is not None
        )


def count_zeros(pairs: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> ZeroShare:
    """ZeroShare over (weight before, weight after) pairs of equal shape."""
    total = prior = new = 0
    for before, after in pairs:
        was_zero = before == 0
        total += before.numel()
        prior += int(was_zero.sum())
        new += int(((after == 0) & ~was_zero).sum())
    return ZeroShare(total=total, prior_zeros=prior, new_zeros=new)
