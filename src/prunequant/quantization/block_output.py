"""Block output quantizers: a residual sum or concatenation made inside a module's forward (MobileNetV2's
`out + x`, an Inception block's `torch.cat`) is quantized once, at the module's output, by a forward hook,
so that every consumer (the next conv and the next residual sum) reads the same integer tensor and
onnxruntime fuses the sum into QLinearAdd / QLinearConcat. The user's module code is untouched: the
quantizer is a child `block_output_quantizer`, recorded in checkpoint manifests, and the hook is re-attached
on load."""

from __future__ import annotations

from typing import Any

from torch import nn

from prunequant.models import register_module_codec
from prunequant.quantization.quantizers import Quantizer, QuantizerSpec

BLOCK_QUANTIZER = "block_output_quantizer"


class OutputQuantizer(Quantizer):
    """The activation quantizer of a module's output (asymmetric per tensor), applied by a forward hook."""


def _quantize_output(module: nn.Module, args: tuple, output: Any) -> Any:
    """Forward hook: the module's tensor output (or its fx proxy, when traced) through its quantizer."""
    quantizer = getattr(module, BLOCK_QUANTIZER)
    return output if isinstance(output, (tuple, list, dict)) else quantizer(output)


def attach_output_quantizer(module: nn.Module, spec: QuantizerSpec) -> OutputQuantizer:
    """Give `module` an OutputQuantizer child and the hook that applies it, IN PLACE; return the quantizer."""
    quantizer = OutputQuantizer(spec)
    module.add_module(BLOCK_QUANTIZER, quantizer)
    hook_output_quantizers(module)
    return quantizer


def hook_output_quantizers(model: nn.Module) -> None:
    """Attach the output hook to every module of `model` that has a block quantizer child but no hook
    (after a checkpoint load: hooks are not saved)."""
    for module in model.modules():
        if hasattr(module, BLOCK_QUANTIZER) and _quantize_output not in module._forward_hooks.values():
            module.register_forward_hook(_quantize_output)


def _from_config(config: dict[str, Any]) -> OutputQuantizer:
    spec = dict(config)
    if spec.get("fixed_range") is not None:
        spec["fixed_range"] = tuple(spec["fixed_range"])
    return OutputQuantizer(QuantizerSpec(**spec))


register_module_codec(OutputQuantizer, lambda quantizer: quantizer.spec.to_dict(), _from_config)
