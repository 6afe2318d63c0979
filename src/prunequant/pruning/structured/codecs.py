"""Checkpoint codecs for the per-channel layers structured pruning can shrink beyond the built-in ones."""

from __future__ import annotations

from torch import nn

from prunequant.models import register_module_codec


def _instance_norm_config(norm: nn.InstanceNorm1d | nn.InstanceNorm2d) -> dict:
    return {
        "num_features": norm.num_features,
        "eps": norm.eps,
        "momentum": norm.momentum,
        "affine": norm.affine,
        "track_running_stats": norm.track_running_stats,
    }


for _cls in (nn.InstanceNorm1d, nn.InstanceNorm2d):
    register_module_codec(_cls, _instance_norm_config, lambda config, cls=_cls: cls(**config))
register_module_codec(
    nn.PReLU, lambda prelu: {"num_parameters": prelu.num_parameters}, lambda config: nn.PReLU(**config)
)
