"""Fold conv -> BatchNorm pairs into the conv (in place), so quantization sees the deployed weights."""

from __future__ import annotations

import copy

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from prunequant.quantization.graph import conv_bn_pairs
from prunequant.tasks import Inputs


def fold_batchnorm(model: nn.Module, example_input: Inputs | None = None) -> list[tuple[str, str]]:
    """Fold every BatchNorm fed only by a conv (1d/2d/3d; transposed with groups 1) into that conv, IN PLACE;
    return the (conv, bn) names.

    The conv gets w * gamma / sqrt(var + eps) and a bias beta + (b - mean) * gamma / sqrt(var + eps) from
    the running statistics; the BN becomes nn.Identity. The folded BN is frozen: later training (QAT)
    updates the conv, never BN statistics. Zero weights (pruned) stay zero. Needs a torch.fx-traceable
    model, or an `example_input` for the torch.export fallback (UnsupportedLayerError otherwise).
    """
    pairs = conv_bn_pairs(model, example_input)
    for conv_name, bn_name in pairs:
        conv, bn = model.get_submodule(conv_name), model.get_submodule(bn_name)
        folded = copy.deepcopy(conv)
        folded.weight, folded.bias = fuse_conv_bn_weights(
            conv.weight,
            conv.bias,
            bn.running_mean,
            bn.running_var,
            bn.eps,
            bn.weight,
            bn.bias,
            conv.transposed,
        )
        model.set_submodule(conv_name, folded)
        model.set_submodule(bn_name, nn.Identity())
    return pairs
