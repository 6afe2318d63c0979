"""Quantized drop-in modules: QuantConv1d/2d/3d, QuantConvTranspose1d/2d/3d and QuantLinear (fake-quant
weights, optional input and output quantizers) and QuantAct (a module followed by an activation quantizer),
registered for checkpoint manifests.

An exporter reads `layer.weight_quantizer` (symmetric per output channel: zero point 0, along
`layer.weight_axis`: 0 for convs and linears, 1 for transposed convs, whose weight is [in, out/groups, k...];
a grouped transposed conv shares each scale across its groups, as ONNX's per-axis DequantizeLinear does),
`layer.input_quantizer` / `layer.output_quantizer` and `act.act_quantizer` (asymmetric per tensor).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from prunequant.errors import ModelError
from prunequant.models import register_module_codec
from prunequant.models.codecs import codec_for, codec_of
from prunequant.quantization.block_output import OutputQuantizer
from prunequant.quantization.integer_bias import integer_bias
from prunequant.quantization.quantizers import Quantizer, QuantizerSpec

ACTIVATIONS: dict[str, type[nn.Module]] = {
    cls.__name__: cls
    for cls in (
        nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.SiLU, nn.Hardswish, nn.Sigmoid, nn.Hardsigmoid, nn.Tanh,
        nn.GELU, nn.ELU, nn.Mish,
    )
}  # fmt: skip
"""Activation modules (and their subclasses, whose forward QuantAct keeps) after which `quantize()` places an
activation quantizer."""
ABSORBED_ACTIVATIONS = (nn.ReLU, nn.ReLU6)
"""Activations onnxruntime folds into the integer conv / gemm before them (a clip of the output range), so
that layer's output needs no quantizer of its own; after any other activation it does."""
FIXED_RANGES: dict[type[nn.Module], tuple[float, float]] = {
    nn.Sigmoid: (0.0, 1.0),
    nn.Hardsigmoid: (0.0, 1.0),
    nn.Tanh: (-1.0, 1.0),
}
"""Output ranges known in advance (exact torch classes only: a subclass may change the forward)."""
_ACTIVATION_OPTIONS = {"LeakyReLU": ("negative_slope",), "GELU": ("approximate",), "ELU": ("alpha",)}


def is_activation(module: nn.Module) -> bool:
    """Whether `module` is one of ACTIVATIONS or a subclass of one."""
    return isinstance(module, tuple(ACTIVATIONS.values()))


def fixed_range(module: nn.Module) -> tuple[float, float] | None:
    """The known output range of `module` (Sigmoid, Hardsigmoid: [0, 1]; Tanh: [-1, 1]), else None."""
    return FIXED_RANGES.get(type(module))


SPEC_ROLES = ("weight", "input", "output")
"""The quantizers of a QuantConv2d / QuantLinear, stored in its manifest config as `<role>_spec`."""


class _WeightQuantMixin:
    """Shared by QuantConv2d and QuantLinear: masked, fake-quantized weight and optional input / output
    quantizers (the output one ends a branch that no BN or ReLU follows).

    In eval mode the bias is rounded to the int32 grid an integer runtime uses (`integer_bias()`) when the
    input scale is known: from the layer's own input quantizer, or from the activation quantizer and
    BatchNorm that `link_integer_bias()` found around it in the graph (plain references, not submodules).
    """

    weight_axis = 0
    weight: nn.Parameter
    bias: nn.Parameter | None
    bias_link: tuple[Quantizer | None, nn.BatchNorm2d | None] = (None, None)
    weight_mask: torch.Tensor | None
    weight_quantizer: Quantizer | None
    input_quantizer: Quantizer | None
    output_quantizer: Quantizer | None

    def __init__(
        self,
        *args: Any,
        weight_spec: QuantizerSpec | None = None,
        input_spec: QuantizerSpec | None = None,
        output_spec: QuantizerSpec | None = None,
        weight_mask: bool = False,
        pre: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.pre = pre  # the float layer (nn.Conv2d / nn.Linear / ...) next in the MRO
        channels, axis = self.weight.shape[self.weight_axis], self.weight_axis
        self.weight_quantizer = Quantizer(weight_spec, channels=channels, axis=axis) if weight_spec else None
        self.input_quantizer = Quantizer(input_spec) if input_spec else None
        self.output_quantizer = Quantizer(output_spec) if output_spec else None
        mask = torch.ones_like(self.weight, dtype=torch.bool) if weight_mask else None
        self.register_buffer("weight_mask", mask)

    def _float_op(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x if self.pre is None else self.get_submodule(self.pre)(x)
        y = self._float_op(self._quant_input(x), self.quantized_weight(), self.effective_bias())
        return self._quant_output(y)

    @classmethod
    def from_float(
        cls,
        module: nn.Module,
        weight_spec: QuantizerSpec | None,
        input_spec: QuantizerSpec | None = None,
        *,
        output_spec: QuantizerSpec | None = None,
        preserve_zeros: bool = True,
        pre: str | None = None,
    ) -> Any:
        """Wrap `module` (a layer of this wrapper's float class, or a subclass of it that computes the same),
        sharing its weight and bias; with `preserve_zeros` its zero weights are masked. `pre` names a child of
        `module` (e.g. a padding module) that runs before the layer (and before its input quantizer)."""
        has_mask = preserve_zeros and weight_spec is not None and bool((module.weight == 0).any())
        base = codec_for(float_class(cls).__name__).to_config(module)
        specs = {"weight_spec": weight_spec, "input_spec": input_spec, "output_spec": output_spec}
        layer = cls(**base, **specs, weight_mask=has_mask, pre=pre)
        if pre is not None:
            layer.add_module(pre, module.get_submodule(pre))
        layer.weight = module.weight
        layer.bias = module.bias
        if has_mask:
            layer.weight_mask.copy_(module.weight != 0)
        layer.to(module.weight.device).train(module.training)
        if layer.weight_quantizer is not None:
            layer.weight_quantizer.update(layer.masked_weight())
        return layer

    def masked_weight(self) -> torch.Tensor:
        """The float weight with the preserved zeros applied."""
        return self.weight if self.weight_mask is None else self.weight * self.weight_mask

    def quantized_weight(self) -> torch.Tensor:
        """The weight the layer computes with (fake-quantized; straight-through gradient to `weight`)."""
        weight = self.masked_weight()
        return weight if self.weight_quantizer is None else self.weight_quantizer(weight)

    def refresh_weight_qparams(self) -> None:
        """Recompute the weight scale from the current weight (not for moving-average ranges)."""
        quantizer = self.weight_quantizer
        if quantizer is not None and quantizer.spec.averaging == "last":
            quantizer.update(self.masked_weight())

    def integer_bias(self) -> torch.Tensor | None:
        """The bias on the int32 grid at input_scale * weight_scale (of the BN-folded layer, when a BN is
        linked), in this layer's output units; None when the input scale is unknown, the weights are not
        symmetric-quantized, either side is wider than 8 bits (those export as float, and int32 would
        overflow) or the activation ranges are not calibrated yet."""
        linked_input, norm = self.bias_link
        source = linked_input if self.input_quantizer is None else self.input_quantizer
        quantizer = self.weight_quantizer
        if source is None or source.observing or not source.calibrated:
            return None
        if quantizer is None or not quantizer.symmetric:
            return None
        if quantizer.bits > 8 or source.bits > 8:  # only 8-bit graphs run integer kernels (int32 bias)
            return None
        if self.weight_axis != 0:  # transposed convs run in float on onnxruntime (no integer kernel)
            return None
        if self.bias is None and norm is None:
            return None
        weight_scale = quantizer.scale.expand(self.weight.shape[0])
        return integer_bias(self.bias, weight_scale, source.scale, norm)

    def effective_bias(self) -> torch.Tensor | None:
        """The bias the layer adds: its float bias in training, `integer_bias()` (where known) in eval."""
        if self.training:
            return self.bias
        rounded = self.integer_bias()
        return self.bias if rounded is None else rounded

    def _quant_input(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.input_quantizer is None else self.input_quantizer(x)

    def _quant_output(self, y: torch.Tensor) -> torch.Tensor:
        return y if self.output_quantizer is None else self.output_quantizer(y)

    def quant_config(self) -> dict[str, Any]:
        """The quantization part of the manifest config."""
        specs = {
            f"{role}_spec": None if quantizer is None else quantizer.spec.to_dict()
            for role, quantizer in zip(
                SPEC_ROLES, (self.weight_quantizer, self.input_quantizer, self.output_quantizer), strict=True
            )
        }
        return {**specs, "weight_mask": self.weight_mask is not None, "pre": self.pre}


class _ConvQuantMixin(_WeightQuantMixin):
    _conv_forward: Any

    def _float_op(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return self._conv_forward(x, weight, bias)


class QuantConv1d(_ConvQuantMixin, nn.Conv1d):
    """nn.Conv1d with fake-quantized weights (and input / output, where `quantize()` places quantizers)."""


class QuantConv2d(_ConvQuantMixin, nn.Conv2d):
    """nn.Conv2d with fake-quantized weights (and input / output, where `quantize()` places quantizers)."""


class QuantConv3d(_ConvQuantMixin, nn.Conv3d):
    """nn.Conv3d with fake-quantized weights (and input / output, where `quantize()` places quantizers)."""


class _TransposedQuantMixin(_WeightQuantMixin):
    """Transposed convs: weight [in, out/groups, k...], so the output-channel axis of the weight is 1."""

    weight_axis = 1
    _transposed_op: Any
    stride: Any
    padding: Any
    output_padding: Any
    groups: int
    dilation: Any

    def _float_op(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        op = type(self)._transposed_op
        return op(x, weight, bias, self.stride, self.padding, self.output_padding, self.groups, self.dilation)


class QuantConvTranspose1d(_TransposedQuantMixin, nn.ConvTranspose1d):
    """nn.ConvTranspose1d with fake-quantized weights (per output channel: weight axis 1)."""

    _transposed_op = F.conv_transpose1d


class QuantConvTranspose2d(_TransposedQuantMixin, nn.ConvTranspose2d):
    """nn.ConvTranspose2d with fake-quantized weights (per output channel: weight axis 1)."""

    _transposed_op = F.conv_transpose2d


class QuantConvTranspose3d(_TransposedQuantMixin, nn.ConvTranspose3d):
    """nn.ConvTranspose3d with fake-quantized weights (per output channel: weight axis 1)."""

    _transposed_op = F.conv_transpose3d


class QuantLinear(_WeightQuantMixin, nn.Linear):
    """nn.Linear with fake-quantized weights (and input / output, where `quantize()` places quantizers)."""

    def _float_op(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return F.linear(x, weight, bias)


class QuantAct(nn.Module):
    """`activation` followed by `act_quantizer` (asymmetric per tensor).

    `activation` is a ReLU / ReLU6, or the module ending a conv branch that no ReLU follows: a BatchNorm
    (nn.Identity once folded) whose output feeds a residual addition or the next block.
    """

    def __init__(self, activation: nn.Module, spec: QuantizerSpec) -> None:
        super().__init__()
        self.activation = activation
        self.act_quantizer = Quantizer(spec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act_quantizer(self.activation(x))


FLOAT_LAYERS: dict[type[nn.Module], type[_WeightQuantMixin]] = {
    nn.Conv1d: QuantConv1d,
    nn.Conv2d: QuantConv2d,
    nn.Conv3d: QuantConv3d,
    nn.ConvTranspose1d: QuantConvTranspose1d,
    nn.ConvTranspose2d: QuantConvTranspose2d,
    nn.ConvTranspose3d: QuantConvTranspose3d,
    nn.Linear: QuantLinear,
}
"""torch layer class -> its quantized wrapper (a subclass of the torch class is matched by its base)."""
QUANT_LAYERS = tuple(FLOAT_LAYERS.values())


def float_class(cls: type[nn.Module]) -> type[nn.Module]:
    """The torch layer class `cls` is (a wrapper's float class, or the torch base of a user subclass)."""
    return next((base for base in cls.__mro__ if base in FLOAT_LAYERS), cls)


def wrapper_for(module: nn.Module) -> type[_WeightQuantMixin] | None:
    """The quantized wrapper of `module`'s layer class, found by role (its torch base class), or None."""
    if isinstance(module, QUANT_LAYERS):
        return None
    return FLOAT_LAYERS.get(float_class(type(module)))


def quantized_layers(model: nn.Module) -> list[tuple[str, Any]]:
    """(name, layer) of every quantized conv / transposed conv / linear in `model`."""
    return [(name, module) for name, module in model.named_modules() if isinstance(module, QUANT_LAYERS)]


def activation_quantizers(model: nn.Module) -> list[Quantizer]:
    """Every activation quantizer: the input / output quantizers of layers, those of QuantAct modules and
    the block output quantizers."""
    found = []
    for module in model.modules():
        if isinstance(module, OutputQuantizer):
            found.append(module)
        elif isinstance(module, QuantAct):
            found.append(module.act_quantizer)
        elif isinstance(module, QUANT_LAYERS):
            found.extend(q for q in (module.input_quantizer, module.output_quantizer) if q is not None)
    return found


def is_quantized(model: nn.Module) -> bool:
    """Whether `model` holds any quantized module."""
    return any(isinstance(module, (*QUANT_LAYERS, QuantAct, OutputQuantizer)) for module in model.modules())


def _layer_codec(cls: type[nn.Module], base: str) -> None:
    def to_config(layer: Any) -> dict[str, Any]:
        return {**codec_for(base).to_config(layer), **layer.quant_config()}

    def from_config(config: dict[str, Any]) -> nn.Module:
        config = dict(config)
        specs = {f"{role}_spec": config.pop(f"{role}_spec", None) for role in SPEC_ROLES}
        specs = {key: None if spec is None else QuantizerSpec(**spec) for key, spec in specs.items()}
        return cls(**config, **specs)

    register_module_codec(cls, to_config, from_config)


for _float, _wrapper in FLOAT_LAYERS.items():
    _layer_codec(_wrapper, _float.__name__)


def _act_config(act: QuantAct) -> dict[str, Any]:
    inner = act.activation
    codec, name = codec_of(inner), type(inner).__name__
    options = {key: getattr(inner, key) for key in _ACTIVATION_OPTIONS.get(name, ())}
    return {
        "activation": name,
        "activation_config": options if codec is None else codec.to_config(inner),
        "spec": act.act_quantizer.spec.to_dict(),
    }


def _act_from_config(config: dict[str, Any]) -> QuantAct:
    """An activation by name (with its options); a BN or nn.Identity through its own codec."""
    name, options = config["activation"], config.get("activation_config", {})
    codec = codec_for(name)
    if codec is None and name not in ACTIVATIONS:
        raise ModelError(
            f"a quantized activation of class {name} cannot be rebuilt: only {', '.join(ACTIVATIONS)}"
        )
    inner = ACTIVATIONS[name](**options) if codec is None else codec.from_config(dict(options))
    spec = dict(config["spec"])
    if spec.get("fixed_range") is not None:
        spec["fixed_range"] = tuple(spec["fixed_range"])
    return QuantAct(inner, QuantizerSpec(**spec))


register_module_codec(QuantAct, _act_config, _act_from_config)
