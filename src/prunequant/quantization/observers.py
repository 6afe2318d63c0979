"""Range observers: per-batch statistics of a tensor, combined over batches into [lower, upper] bounds.

State lives in buffers (lower, upper, steps), so a model's state_dict carries it.
"""

from __future__ import annotations

import torch
from torch import nn

from prunequant.errors import ConfigError
from prunequant.validation import check_choice

STATISTICS = ("minmax", "absmax", "percentile")
AVERAGING = ("last", "extreme", "average")
_QUANTILE_LIMIT = 1 << 24  # torch.quantile's input size limit


class RangeObserver(nn.Module):
    """Tracks [lower, upper] per slice along `axis` (or per tensor when `axis` is None).

    Per batch: `statistic` "minmax" (min, max), "absmax" (-max|x|, max|x|) or "percentile" (the
    100-p and p percentiles, per tensor). Over batches, `averaging`:
    - "last": the latest batch only (weights: the current max|w|);
    - "extreme": the running min and max;
    - "average": seed 003 Alg. 2/3, l <- (l*t + min)/(t+1) after t batches, or with `ema_decay` d,
      l <- d*l + (1-d)*min. The first batch sets the bounds in every mode.
    """

    def __init__(
        self,
        statistic: str,
        averaging: str,
        *,
        channels: int = 1,
        axis: int | None = None,
        percentile: float = 99.99,
        ema_decay: float | None = None,
    ) -> None:
        super().__init__()
        self.statistic = check_choice("statistic", statistic, STATISTICS)
        self.averaging = check_choice("averaging", averaging, AVERAGING)
        if statistic == "percentile" and axis is not None:
            raise ConfigError("percentile ranges are per tensor; use statistic minmax or absmax per channel")
        self.axis = axis
        self.percentile = percentile
        self.ema_decay = ema_decay
        shape = () if axis is None else (channels,)
        self.register_buffer("lower", torch.zeros(shape))
        self.register_buffer("upper", torch.zeros(shape))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def reset(self) -> None:
        """Forget every batch seen."""
        self.lower.zero_()
        self.upper.zero_()
        self.steps.zero_()

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Fold the statistics of batch `x` into the bounds."""
        low, high = self._batch_range(x.detach().float())
        t = int(self.steps)
        if t == 0 or self.averaging == "last":
            self.lower.copy_(low)
            self.upper.copy_(high)
        elif self.averaging == "extreme":
            torch.minimum(self.lower, low, out=self.lower)
            torch.maximum(self.upper, high, out=self.upper)
        elif self.ema_decay is None:
            self.lower.copy_((self.lower * t + low) / (t + 1))
            self.upper.copy_((self.upper * t + high) / (t + 1))
        else:
            self.lower.lerp_(low, 1 - self.ema_decay)
            self.upper.lerp_(high, 1 - self.ema_decay)
        self.steps += 1

    @torch.no_grad()
    def fix(self, lower: float, upper: float) -> None:
        """Set the bounds to [lower, upper] (a known range), counting as one batch seen."""
        self.lower.fill_(lower)
        self.upper.fill_(upper)
        self.steps += 1

    def _batch_range(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.statistic == "percentile":
            flat = x.flatten()
            if flat.numel() > _QUANTILE_LIMIT:
                flat = flat[:: -(-flat.numel() // _QUANTILE_LIMIT)]
            q = torch.tensor([1 - self.percentile / 100, self.percentile / 100])
            low, high = torch.quantile(flat, q)
            return low, high
        rows = x.flatten() if self.axis is None else x.movedim(self.axis, 0).flatten(1)
        dim = None if self.axis is None else 1
        if self.statistic == "absmax":
            high = rows.abs().amax() if dim is None else rows.abs().amax(dim)
            return -high, high
        if dim is None:
            return rows.amin(), rows.amax()
        return rows.amin(dim), rows.amax(dim)

    def extra_repr(self) -> str:
        return f"statistic={self.statistic}, averaging={self.averaging}, axis={self.axis}"
