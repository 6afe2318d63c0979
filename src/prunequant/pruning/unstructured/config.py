"""UnstructuredConfig: what magnitude pruning removes, validated when built."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from prunequant.errors import ConfigError
from prunequant.validation import check_choice, check_fraction

SCOPES = ("global", "layer")


@dataclass(frozen=True)
class UnstructuredConfig:
    """Percentile magnitude pruning (seed 000 III.B; global vs layer scope from seed 002).

    `amount` is the target share of zeros over the pruned tensors: exactly round(amount * n) of them.
    `scope="layer"` takes the percentile inside each tensor, `"global"` over all of them pooled.
    `overrides` maps fnmatch patterns of module (or parameter) names to their own per-layer amount;
    `exclude` lists patterns never pruned. `keep_first_last` leaves the first conv/linear and the last
    linear dense (the names appear in the result). `include_bias` prunes biases too (seed 000 does).
    """

    amount: float
    scope: str = "global"
    include_bias: bool = False
    exclude: tuple[str, ...] = ()
    overrides: Mapping[str, float] = field(default_factory=dict)
    keep_first_last: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "amount", check_fraction("amount", self.amount))
        check_choice("scope", self.scope, SCOPES)
        if isinstance(self.exclude, str):
            object.__setattr__(self, "exclude", (self.exclude,))
        exclude = tuple(self.exclude)
        if not all(isinstance(pattern, str) and pattern for pattern in exclude):
            raise ConfigError(f"exclude must be non-empty name patterns, got {exclude!r}")
        object.__setattr__(self, "exclude", exclude)
        overrides = dict(self.overrides or {})
        for pattern, amount in overrides.items():
            if not isinstance(pattern, str) or not pattern:
                raise ConfigError(f"override keys must be non-empty name patterns, got {pattern!r}")
            overrides[pattern] = check_fraction(f"overrides[{pattern!r}]", amount)
        object.__setattr__(self, "overrides", MappingProxyType(overrides))

    def with_amount(self, amount: float) -> UnstructuredConfig:
        """The same config with another target amount (schedules step through amounts this way)."""
        return replace(self, amount=amount)

    def to_dict(self) -> dict:
        return {
            "amount": self.amount,
            "scope": self.scope,
            "include_bias": self.include_bias,
            "exclude": list(self.exclude),
            "overrides": dict(self.overrides),
            "keep_first_last": self.keep_first_last,
        }
