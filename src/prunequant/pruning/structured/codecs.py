"""Checkpoint codecs for the layers structured pruning can shrink beyond the built-in ones (instance/group/
layer norms, BatchNorm3d, PReLU; convs of every kind are in prunequant.models.codecs), so pruned models
reload by shape."""

from __future__ import annotations

from torch import nn

from prunequant.models import register_module_codec


def _norm_config(norm: nn.modules.batchnorm._NormBase) -> dict:
    return {
        "num_features": norm.num_features,
        "eps": norm.eps,
        "momentum": norm.momentum,
        "affine": norm.affine,
        "track_running_stats": norm.track_running_stats,
    }


def _register(cls: type[nn.Module], to_config) -> None:
    register_module_codec(cls, to_config, lambda config, cls=cls: cls(**config))


for _cls in (nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d, nn.BatchNorm3d):
    _register(_cls, _norm_config)
_register(
    nn.GroupNorm,
    lambda norm: {"num_groups": norm.num_groups, "num_channels": norm.num_channels, "eps": norm.eps,
                  "affine": norm.affine},
)  # fmt: skip
_register(
    nn.LayerNorm,
    lambda norm: {"normalized_shape": list(norm.normalized_shape), "eps": norm.eps,
                  "elementwise_affine": norm.elementwise_affine, "bias": norm.bias is not None},
)  # fmt: skip
_register(nn.PReLU, lambda prelu: {"num_parameters": prelu.num_parameters})
