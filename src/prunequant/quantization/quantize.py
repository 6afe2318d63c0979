"""`quantize()`: a quantized copy of a float model, by module replacement (the user's code is untouched)."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable

from torch import nn
from torch.nn.utils.prune import BasePruningMethod

from prunequant.errors import ConfigError, UnsupportedLayerError
from prunequant.quantization.bn_fold import fold_batchnorm
from prunequant.quantization.calibrate import calibrate
from prunequant.quantization.config import QuantConfig
from prunequant.quantization.graph import BranchSites, branch_sites, input_consumers, link_integer_bias
from prunequant.quantization.quantizers import activation_spec, weight_spec
from prunequant.quantization.wrappers import (
    ACTIVATIONS,
    FLOAT_LAYERS,
    QuantAct,
    activation_quantizers,
    is_quantized,
)
from prunequant.tasks import BatchTransform, Task, with_transform


def quantize(
    model: nn.Module,
    config: QuantConfig | None = None,
    calib_loader: Iterable | None = None,
    *,
    calib_batches: int = 32,
    task: Task | None = None,
    transform_fn: BatchTransform | None = None,
) -> nn.Module:
    """Return a fake-quantized deep copy of `model` (the original is left untouched).

    Placement follows qsparse: every nn.Conv2d / nn.Linear gets quantized weights (QuantConv2d /
    QuantLinear, sharing nothing with the original), every nn.ReLU / nn.ReLU6 is followed by an activation
    quantizer (QuantAct; in the zoo's ResNets the ReLU after each residual add quantizes the block
    output), and the conv/linear layers that read the model input also quantize it. With
    `config.quantize_residuals` (torch.fx tracing), block outputs are quantized too: a BN ending a conv
    branch without ReLU (ResNet's bn2 and projection shortcut, MobileNetV2's linear bottleneck) becomes
    QuantAct(bn) under its own name, a conv/linear without BN gets an `output_quantizer`, and a layer
    reading a residual sum, concatenation or pooling gets an `input_quantizer`; the model's logits stay
    float. Other layer types stay float. In eval mode each conv/linear whose input scale is known adds its
    bias rounded to the int32 grid of the int8 export (see `link_integer_bias`). With `calib_loader`,
    activation ranges are calibrated on `calib_batches` batches (PTQ); otherwise call `calibrate()` or
    train with `quantization_aware_finetune()` before evaluating.

    Models with several inputs: every conv/linear reading any input of `forward` quantizes it; `task`
    (default classification) splits each calibration batch into the inputs (tuple or dict) fed to the model;
    `transform_fn(batch) -> (inputs, target)` splits batches of any other shape instead.
    """
    config = config or QuantConfig()
    _check_float(model)
    qmodel = copy.deepcopy(model)
    if config.fold_bn:
        fold_batchnorm(qmodel)
    readers = _input_readers(qmodel, config)
    sites = _branch_sites(qmodel, config)
    for name, module in list(qmodel.named_modules()):
        reads_float, ends_branch = name in readers or name in sites.readers, name in sites.outputs
        replacement = _quantized(name, module, config, reads_float=reads_float, ends_branch=ends_branch)
        if replacement is not None and name:
            qmodel.set_submodule(name, replacement)
        elif replacement is not None:  # the model is a single layer
            qmodel = replacement
    link_integer_bias(qmodel)
    if calib_loader is not None and activation_quantizers(qmodel):
        calibrate(qmodel, calib_loader, calib_batches, task=with_transform(task, transform_fn))
    return qmodel


def _check_float(model: nn.Module) -> None:
    """Refuse models that are already quantized or carry torch.nn.utils.prune reparametrisations."""
    if is_quantized(model):
        raise ConfigError("the model is already quantized; quantize its float version instead")
    hooks = (hook for module in model.modules() for hook in module._forward_pre_hooks.values())
    if any(isinstance(hook, BasePruningMethod) for hook in hooks):
        raise UnsupportedLayerError(
            "the model holds torch.nn.utils.prune reparametrisations, which cannot be copied; make them "
            "permanent first (prunequant's make_permanent or torch.nn.utils.prune.remove)"
        )


def _quantized(
    name: str, module: nn.Module, config: QuantConfig, *, reads_float: bool, ends_branch: bool
) -> nn.Module | None:
    """The quantized replacement of `module`, or None to leave it as it is.

    `reads_float`: a conv/linear quantizes its input; `ends_branch`: the module's output is quantized.
    """
    layer = config.for_layer(name)
    if layer is None:
        return None
    act = activation_spec(layer)
    if type(module) in FLOAT_LAYERS:
        input_spec, output_spec = (act if flag else None for flag in (reads_float, ends_branch))
        if layer.w_bits is None and input_spec is None and output_spec is None:
            return None
        wrapper, keep_zeros = FLOAT_LAYERS[type(module)], layer.preserve_zeros
        return wrapper.from_float(
            module, weight_spec(layer), input_spec, output_spec=output_spec, preserve_zeros=keep_zeros
        )
    if act is not None and (ends_branch or type(module) in ACTIVATIONS.values()):
        return QuantAct(module, act).train(module.training)
    return None


def _input_readers(model: nn.Module, config: QuantConfig) -> set[str]:
    """Names of the conv/linear layers that will quantize the model input."""
    if not config.quantize_input:
        return set()
    try:
        layers, others = input_consumers(model)
    except UnsupportedLayerError as err:
        warnings.warn(f"the model input stays float: {err}", stacklevel=3)
        return set()
    if others:
        warnings.warn(
            f"the model input stays float where {', '.join(others)} read(s) it; only Conv2d/Linear layers "
            "quantize their input",
            stacklevel=3,
        )
    return set(layers)


def _branch_sites(model: nn.Module, config: QuantConfig) -> BranchSites:
    """Where `quantize_residuals` places quantizers (none when it is off or the model cannot be traced)."""
    activations = config.a_bits is not None or any("a_bits" in o for o in (config.overrides or {}).values())
    if not (config.quantize_residuals and activations):
        return BranchSites((), ())
    try:
        return branch_sites(model)
    except UnsupportedLayerError as err:
        warnings.warn(f"residual and block outputs stay float: {err}", stacklevel=3)
        return BranchSites((), ())
