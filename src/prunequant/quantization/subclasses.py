"""User subclasses of conv / linear layers: quantized as their torch base class when they compute the same,
or as the base class after their one child module (a "same"-padding module), or refused with a reason.

The check runs the layer on a random input: `module(x)` against the base class's forward on `x` (or on
`child(x)`); a subclass whose forward does anything else (a weight standardisation, padding computed in
forward, an extra scale) stays float and is named, so that nothing is left float in silence.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from prunequant.quantization.wrappers import float_class


@dataclass(frozen=True)
class SubclassPlan:
    """How to quantize a layer subclass: `pre` names the child that runs before the base layer (None: the
    layer is its base class); `problem` says why it cannot be quantized (then it stays float)."""

    pre: str | None = None
    problem: str | None = None


def subclass_plan(module: nn.Module) -> SubclassPlan:
    """The SubclassPlan of `module`; torch's own classes need no check (SubclassPlan())."""
    base = float_class(type(module))
    if type(module) is base:
        return SubclassPlan()
    name = f"subclasses {base.__name__}"
    try:
        x = _example(module)
        with torch.no_grad():
            layer = copy.deepcopy(module).eval()
            output = layer(x)
            if _close(output, base.forward(layer, x)):
                return SubclassPlan()
            children = list(layer.named_children())
            if len(children) == 1 and _close(output, base.forward(layer, children[0][1](x))):
                return SubclassPlan(pre=children[0][0])
    except Exception as exc:  # noqa: BLE001 - any failure means the subclass cannot be run as its base
        return SubclassPlan(problem=f"{name} but fails on a random input ({type(exc).__name__}); left float")
    return SubclassPlan(
        problem=f"{name} but its forward computes something else than {base.__name__} (optionally after "
        "its one child module); left float"
    )


def _example(module: nn.Module) -> torch.Tensor:
    """A random input of 2 samples for `module`, with spatial sizes that every kernel fits."""
    generator = torch.Generator().manual_seed(0)
    if isinstance(module, nn.Linear):
        return torch.randn(2, module.in_features, generator=generator)
    spatial = [max(8, d * (k - 1) + 3) for k, d in zip(module.kernel_size, module.dilation, strict=True)]
    return torch.randn(2, module.in_channels, *spatial, generator=generator)


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return isinstance(a, torch.Tensor) and a.shape == b.shape and torch.allclose(a, b, atol=1e-5, rtol=1e-4)
