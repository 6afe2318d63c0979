"""One pruning function per layer type: keep only the given positions of a layer's output or input dimension
(or, for a module padding zero channels, of its padded channels).

Each function rewrites the layer in place into an ordinary layer of the smaller shape (new Parameters,
updated `out_channels`/`in_features`/... attributes), so the model stays a plain nn.Module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from prunequant.errors import UnsupportedLayerError
from prunequant.models.resnet_cifar import ZeroPadShortcut
from prunequant.pruning.structured.groups import IN, OUT, PAD_BACK, PAD_FRONT


@dataclass(frozen=True)
class LayerOps:
    """How to read the size of, and keep positions of, each member role of a layer type (`out`, `in`, or
    `pad_front` / `pad_back` for the zero channels a module pads in)."""

    size: Callable[[nn.Module, str], int]
    prune: Mapping[str, Callable[[nn.Module, torch.Tensor], None]]


def _set_param(module: nn.Module, name: str, value: torch.Tensor) -> None:
    old = getattr(module, name)
    setattr(module, name, nn.Parameter(value.detach().clone(), requires_grad=old.requires_grad))


def _slice(module: nn.Module, names: tuple[str, ...], keep: torch.Tensor, dim: int = 0) -> None:
    """Keep `keep` along `dim` of each named parameter or buffer that exists (None entries are skipped)."""
    for name in names:
        tensor = getattr(module, name, None)
        if tensor is None:
            continue
        sliced = tensor.detach().index_select(dim, keep)
        if isinstance(tensor, nn.Parameter):
            _set_param(module, name, sliced)
        else:
            setattr(module, name, sliced.clone())


def _conv_size(conv: nn.modules.conv._ConvNd, role: str) -> int:
    return conv.out_channels if role == OUT else conv.in_channels


def _conv_out(conv: nn.modules.conv._ConvNd, keep: torch.Tensor) -> None:
    """Keep output channels `keep` of a conv ([out, in/groups, k...]) or a transposed conv
    ([in, out/groups, k...]); a depthwise layer loses the input channels of the removed outputs too."""
    groups = conv.groups
    depthwise = groups > 1 and groups == conv.in_channels
    multiplier = conv.out_channels // conv.in_channels if depthwise else 1
    if not conv.transposed:
        _slice(conv, ("weight",), keep)
    elif depthwise:  # weight [in, multiplier, k...]: whole input rows go with their outputs
        _slice(conv, ("weight",), torch.unique(keep // multiplier))
    else:
        _set_param(conv, "weight", _per_group(conv.weight.detach(), keep, groups, conv.out_channels, dim=1))
    _slice(conv, ("bias",), keep)
    conv.out_channels = len(keep)
    if depthwise:
        conv.in_channels = conv.groups = len(keep) // multiplier


def _conv_in(conv: nn.modules.conv._ConvNd, keep: torch.Tensor) -> None:
    weight = conv.weight.detach()
    if conv.transposed:  # input channels are dim 0 for any number of groups
        _set_param(conv, "weight", weight.index_select(0, keep))
    else:
        _set_param(conv, "weight", _per_group(weight, keep, conv.groups, conv.in_channels, dim=1))
    conv.in_channels = len(keep)


def _per_group(
    weight: torch.Tensor, keep: torch.Tensor, groups: int, channels: int, dim: int
) -> torch.Tensor:
    """Keep channel positions `keep` (of `channels`, in `groups` blocks) of a weight whose `dim` holds one
    block's channels and whose dim 0 holds the groups one after the other."""
    if groups == 1:
        return weight.index_select(dim, keep)
    per_group, rows = channels // groups, weight.shape[0] // groups
    parts = []
    for g in range(groups):
        local = keep[(keep >= g * per_group) & (keep < (g + 1) * per_group)] - g * per_group
        parts.append(weight[g * rows : (g + 1) * rows].index_select(dim, local))
    if len({part.shape[dim] for part in parts}) != 1:
        raise UnsupportedLayerError(f"grouped conv would keep unequal channels per group ({keep.tolist()})")
    return torch.cat(parts)


def _linear_out(linear: nn.Linear, keep: torch.Tensor) -> None:
    _slice(linear, ("weight", "bias"), keep)
    linear.out_features = len(keep)


def _linear_in(linear: nn.Linear, keep: torch.Tensor) -> None:
    _slice(linear, ("weight",), keep, dim=1)
    linear.in_features = len(keep)


def _norm_out(norm: nn.Module, keep: torch.Tensor) -> None:
    _slice(norm, ("weight", "bias", "running_mean", "running_var"), keep)
    norm.num_features = len(keep)


def _group_norm_out(norm: nn.GroupNorm, keep: torch.Tensor) -> None:
    per_group = norm.num_channels // norm.num_groups
    if len(keep) % per_group or len(torch.unique(keep // per_group)) * per_group != len(keep):
        raise UnsupportedLayerError(f"GroupNorm can only lose whole groups of {per_group} channels")
    _slice(norm, ("weight", "bias"), keep)
    norm.num_channels, norm.num_groups = len(keep), len(keep) // per_group


def _layer_norm_out(norm: nn.LayerNorm, keep: torch.Tensor) -> None:
    _slice(norm, ("weight", "bias"), keep)
    norm.normalized_shape = (len(keep),)


def _prelu_out(prelu: nn.PReLU, keep: torch.Tensor) -> None:
    _slice(prelu, ("weight",), keep)
    prelu.num_parameters = len(keep)


def _pad_size(pad: ZeroPadShortcut, role: str) -> int:
    return pad.front if role == PAD_FRONT else pad.back


def _pad_front(pad: ZeroPadShortcut, keep: torch.Tensor) -> None:
    """Padded zeros are all alike: keeping `keep` of them is padding len(keep)."""
    pad.front = len(keep)


def _pad_back(pad: ZeroPadShortcut, keep: torch.Tensor) -> None:
    pad.back = len(keep)


_OPS: dict[type[nn.Module], LayerOps] = {
    nn.modules.conv._ConvNd: LayerOps(_conv_size, {OUT: _conv_out, IN: _conv_in}),
    nn.Linear: LayerOps(
        lambda m, role: m.out_features if role == OUT else m.in_features, {OUT: _linear_out, IN: _linear_in}
    ),
    nn.modules.batchnorm._NormBase: LayerOps(lambda m, role: m.num_features, {OUT: _norm_out}),
    nn.GroupNorm: LayerOps(lambda m, role: m.num_channels, {OUT: _group_norm_out}),
    nn.LayerNorm: LayerOps(lambda m, role: m.normalized_shape[0], {OUT: _layer_norm_out}),
    nn.PReLU: LayerOps(lambda m, role: m.num_parameters, {OUT: _prelu_out}),
    ZeroPadShortcut: LayerOps(_pad_size, {PAD_FRONT: _pad_front, PAD_BACK: _pad_back}),
}


def _ops_of(module: nn.Module | None) -> LayerOps | None:
    for cls in type(module).__mro__:
        if cls in _OPS:
            return _OPS[cls]
    return None


def ops_for(module: nn.Module) -> LayerOps:
    ops = _ops_of(module)
    if ops is None:
        raise UnsupportedLayerError(f"no pruning function for {type(module).__name__}")
    return ops


def keep_positions(module: nn.Module, role: str, keep: torch.Tensor) -> None:
    """Rewrite `module` in place so that its `role` dimension keeps only positions `keep`, in that order
    (ascending, or as a routed region reads them)."""
    function = ops_for(module).prune.get(role)
    if function is None:
        raise UnsupportedLayerError(f"{type(module).__name__} has no {role!r} dimension to prune")
    function(module, keep)


def rewrites_pad(module: nn.Module | None, front: int, back: int) -> bool:
    """Whether pruning can rewrite the zero-channel counts of `module`, and they are `front` and `back`
    (so the pad a traced graph shows inside `module` follows the rewrite)."""
    ops = _ops_of(module)
    if ops is None or not {PAD_FRONT, PAD_BACK} <= set(ops.prune):
        return False
    return ops.size(module, PAD_FRONT) == front and ops.size(module, PAD_BACK) == back


def dimension_size(module: nn.Module, role: str) -> int:
    """Current length of `module`'s `role` dimension."""
    return ops_for(module).size(module, role)
