"""`quantize()`: a quantized copy of a float model, by module replacement (the user's code is untouched)."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable

from torch import nn
from torch.nn.utils.prune import BasePruningMethod

from prunequant.errors import ConfigError, UnsupportedLayerError
from prunequant.quantization.block_output import attach_output_quantizer
from prunequant.quantization.bn_fold import fold_batchnorm
from prunequant.quantization.calibrate import batch_inputs, calibrate
from prunequant.quantization.config import QuantConfig
from prunequant.quantization.gated_silu import gated
from prunequant.quantization.graph import BranchSites, branch_sites, input_consumers, link_integer_bias
from prunequant.quantization.quantizers import activation_spec, weight_spec
from prunequant.quantization.subclasses import subclass_plan
from prunequant.quantization.wrappers import (
    QuantAct,
    activation_quantizers,
    fixed_range,
    is_activation,
    is_quantized,
    wrapper_for,
)
from prunequant.tasks import BatchTransform, Inputs, Task, with_transform

FLOAT_LAYERS_ATTR = "prunequant_float_layers"
"""Attribute of a quantized model: {layer name: why it stays float} for each conv / linear left float."""
_EXCLUDED = "excluded by QuantConfig.exclude"
_FLOAT_ASKED = "float weights asked for (w_bits=None) and no input / output quantizer"


def quantize(
    model: nn.Module,
    config: QuantConfig | None = None,
    calib_loader: Iterable | None = None,
    *,
    calib_batches: int = 32,
    task: Task | None = None,
    transform_fn: BatchTransform | None = None,
    example_input: Inputs | None = None,
) -> nn.Module:
    """Return a fake-quantized deep copy of `model` (the original is left untouched).

    Placement follows qsparse: every nn.Conv2d / nn.Linear gets quantized weights (QuantConv2d /
    QuantLinear, sharing nothing with the original), every activation module (ReLU, ReLU6, LeakyReLU, SiLU,
    Hardswish, Sigmoid, Hardsigmoid, Tanh, GELU, ELU, Mish and their subclasses) is followed by an
    activation quantizer (QuantAct; calibrated asymmetric range, or the fixed [0, 1] / [-1, 1] of Sigmoid,
    Hardsigmoid and Tanh; an nn.SiLU becomes x * q(sigmoid(x)), GatedSiLU, so int8 runtimes run it as
    integer ops; in the zoo's ResNets the ReLU after each residual add quantizes the block
    output), and the conv/linear layers that read the model input also quantize it. With
    `config.quantize_residuals` (torch.fx tracing), block outputs are quantized too: a BN ending a conv
    branch without ReLU (ResNet's bn2 and projection shortcut, MobileNetV2's linear bottleneck) becomes
    QuantAct(bn) under its own name, a conv/linear without BN gets an `output_quantizer`, and a layer
    reading a residual sum, concatenation or pooling gets an `input_quantizer`, and a module whose forward
    returns a residual sum or concatenation (MobileNetV2's inverted residual) gets one `OutputQuantizer`
    on its output, shared by all its consumers; the model's logits stay float.

    Layers are found by role: subclasses of torch's conv / transposed conv / linear classes are quantized
    as their base class when they compute the same (or the same after their one child module, e.g. a
    padding module, which the wrapper keeps); any other subclass stays float, and every conv / linear left
    float is warned about and listed by `float_layers(qmodel)` with its reason. Other layer types stay
    float. In eval mode each conv/linear whose input scale is known adds its bias rounded to the int32
    grid of the int8 export (see `link_integer_bias`). With `calib_loader`, activation ranges are calibrated
    on `calib_batches` batches (PTQ); otherwise call `calibrate()` or train with
    `quantization_aware_finetune()` before evaluating.

    Models with several inputs: every conv/linear reading any input of `forward` quantizes it; `task`
    (default classification) splits each calibration batch into the inputs (tuple or dict) fed to the model;
    `transform_fn(batch) -> (inputs, target)` splits batches of any other shape instead.

    A `forward` torch.fx cannot trace (Python shape checks) is traced with torch.export on `example_input`
    (default: the first calibration batch's inputs), with a warning, so that the input is still quantized
    and BN folded; without an example input, the input and block outputs stay float, with a warning.
    """
    config = config or QuantConfig()
    _check_float(model)
    qmodel = copy.deepcopy(model)
    task = with_transform(task, transform_fn)
    example = example_input if example_input is not None else _first_inputs(calib_loader, task)
    if config.fold_bn:
        fold_batchnorm(qmodel, example)
    readers = _input_readers(qmodel, config, example)
    sites = _branch_sites(qmodel, config, example)
    floats: dict[str, str] = {}
    for name, module in list(qmodel.named_modules()):
        reads_float, ends_branch = name in readers or name in sites.readers, name in sites.outputs
        replacement = _quantized(name, module, config, reads_float, ends_branch, floats)
        if replacement is not None and name:
            qmodel.set_submodule(name, replacement)
        elif replacement is not None:  # the model is a single layer
            qmodel = replacement
    for name in sites.blocks:
        layer = config.for_layer(name)
        spec = None if layer is None else activation_spec(layer)
        if spec is not None:
            attach_output_quantizer(qmodel.get_submodule(name), spec)
    _report_float(qmodel, floats)
    link_integer_bias(qmodel)
    if calib_loader is not None and activation_quantizers(qmodel):
        calibrate(qmodel, calib_loader, calib_batches, task=task)
    return qmodel


def float_layers(qmodel: nn.Module) -> dict[str, str]:
    """{name: reason} of the conv / linear layers `quantize()` left float in `qmodel` (empty when none)."""
    return dict(getattr(qmodel, FLOAT_LAYERS_ATTR, {}))


def _report_float(qmodel: nn.Module, floats: dict[str, str]) -> None:
    """Record `floats` on the model and warn about those the config did not ask for."""
    object.__setattr__(qmodel, FLOAT_LAYERS_ATTR, dict(floats))
    unasked = {name: reason for name, reason in floats.items() if reason not in (_EXCLUDED, _FLOAT_ASKED)}
    if unasked:
        named = "; ".join(f"{name or 'the model'}: {reason}" for name, reason in unasked.items())
        warnings.warn(f"{len(unasked)} conv/linear layer(s) stay float: {named}", stacklevel=3)


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
    name: str,
    module: nn.Module,
    config: QuantConfig,
    reads_float: bool,
    ends_branch: bool,
    floats: dict[str, str],
) -> nn.Module | None:
    """The quantized replacement of `module`, or None to leave it as it is (a conv/linear left float is
    added to `floats` with its reason).

    `reads_float`: a conv/linear quantizes its input; `ends_branch`: the module's output is quantized.
    """
    layer = config.for_layer(name)
    wrapper = wrapper_for(module)
    if layer is None:
        if wrapper is not None:
            floats[name] = _EXCLUDED
        return None
    act = activation_spec(layer)
    if wrapper is not None:
        input_spec, output_spec = (act if flag else None for flag in (reads_float, ends_branch))
        if layer.w_bits is None and input_spec is None and output_spec is None:
            floats[name] = _FLOAT_ASKED
            return None
        plan = subclass_plan(module)
        if plan.problem is not None:
            floats[name] = plan.problem
            return None
        return wrapper.from_float(
            module,
            weight_spec(layer),
            input_spec,
            output_spec=output_spec,
            preserve_zeros=layer.preserve_zeros,
            pre=plan.pre,
        )
    if act is not None and is_activation(module):
        spec = activation_spec(layer, fixed_range(module))
        return QuantAct(gated(module, spec.bits), spec).train(module.training)
    if act is not None and ends_branch:
        return QuantAct(module, act).train(module.training)
    return None


def _first_inputs(calib_loader: Iterable | None, task: Task | None) -> Inputs | None:
    """The model inputs of the first calibration batch (the torch.export fallback's example), or None."""
    if calib_loader is None:
        return None
    batch = next(iter(calib_loader), None)
    return None if batch is None else batch_inputs(batch, task)


def _input_readers(model: nn.Module, config: QuantConfig, example: Inputs | None) -> set[str]:
    """Names of the conv/linear layers that will quantize the model input."""
    if not config.quantize_input:
        return set()
    try:
        layers, others = input_consumers(model, example)
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


def _branch_sites(model: nn.Module, config: QuantConfig, example: Inputs | None) -> BranchSites:
    """Where `quantize_residuals` places quantizers (none when it is off or the model cannot be traced)."""
    activations = config.a_bits is not None or any("a_bits" in o for o in (config.overrides or {}).values())
    if not (config.quantize_residuals and activations):
        return BranchSites((), ())
    try:
        return branch_sites(model, example)
    except UnsupportedLayerError as err:
        warnings.warn(f"residual and block outputs stay float: {err}", stacklevel=3)
        return BranchSites((), ())
