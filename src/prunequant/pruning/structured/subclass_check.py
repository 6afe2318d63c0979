"""Is a user subclass of a conv/linear/norm layer still prunable as its base class?

Subclasses often add behaviour (a "same"-padding child module, a weight standardisation). The dependency
graph treats them as one layer by role; this check runs the layer on a random input of its traced shape
and verifies that removing channels the way `layer_ops` does gives the channels the full layer gives.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from prunequant.pruning.structured.groups import IN, OUT
from prunequant.pruning.structured.layer_ops import keep_positions


def subclass_problem(module: nn.Module, role: str, input_shape: tuple[int, ...] | None) -> str | None:
    """None when `module` (a subclass of the layer class of `role`) prunes like its base class, else a
    short reason, e.g. "subclasses Conv2d but its forward does not follow its pruned channels"."""
    if input_shape is None or len(input_shape) < 2:
        return "is a layer subclass called on an input of unknown shape"
    base = next(cls.__name__ for cls in type(module).__mro__ if cls.__module__.startswith("torch."))
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(*input_shape, generator=generator)
    try:
        with torch.no_grad():
            exact = _check(copy.deepcopy(module).eval(), role, x)
    except Exception as exc:  # noqa: BLE001 - any failure means the subclass cannot be pruned as its base
        return f"subclasses {base} but fails once its channels are pruned ({type(exc).__name__})"
    return None if exact else f"subclasses {base} but its forward does not follow its pruned channels"


def _check(layer: nn.Module, role: str, x: torch.Tensor) -> bool:
    cdim = x.dim() - 1 if role in ("linear", "layer_norm") else 1
    channels_in = x.shape[cdim]
    reference = layer(x)
    if role in ("conv", "conv_transpose") and layer.groups > 1:
        if layer.groups != layer.in_channels:
            return True  # grouped: channel bookkeeping is the base class's; only depthwise has a cheap check
        multiplier = layer.out_channels // layer.in_channels
        pruned = copy.deepcopy(layer)
        keep_positions(pruned, OUT, torch.arange(multiplier, layer.out_channels))
        return _close(pruned(x[:, 1:]), reference[:, multiplier:])
    if role == "layer_norm":
        return True  # statistics over the kept channels differ by design; the shape bookkeeping is generic
    if role == "group_norm":
        per_group = layer.num_channels // layer.num_groups
        pruned = copy.deepcopy(layer)
        keep_positions(pruned, OUT, torch.arange(per_group, layer.num_channels))
        return _close(pruned(x[:, per_group:]), reference[:, per_group:])
    if role in ("batch_norm", "instance_norm"):
        pruned = copy.deepcopy(layer)
        keep_positions(pruned, OUT, torch.arange(1, channels_in))
        return _close(pruned(x[:, 1:]), reference[:, 1:])
    out_dim = reference.dim() - 1 if role == "linear" else 1
    keep_out = torch.arange(1, reference.shape[out_dim])
    pruned_out = copy.deepcopy(layer)
    keep_positions(pruned_out, OUT, keep_out)
    pruned_in = copy.deepcopy(layer)
    keep_positions(pruned_in, IN, torch.arange(1, channels_in))
    zeroed = x.index_fill(cdim, torch.tensor([0]), 0.0)
    return _close(pruned_out(x), reference.index_select(out_dim, keep_out)) and _close(
        pruned_in(x.narrow(cdim, 1, channels_in - 1)), layer(zeroed)
    )


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, atol=1e-4, rtol=1e-3)
