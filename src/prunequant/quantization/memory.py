"""Operating memory and performance density (seed 003 Table 4): Mb of weights + Mb of activations.

- Weight Mb = sum over ALL parameters of non-zero elements x bits / 1e6 (the count behind seed 003's
  ResNet-32 figure: torchinfo's total_params in qsparse's memory calculator). A quantized weight uses its
  quantizer's bits and the zeros of the weight it computes with; every other parameter (float weights,
  biases, BN) uses `w_bits`, or 32 when that is None.
- Activation Mb = sum over activation sites of non-zero elements x bits / 1e6 for ONE input (seed 003 note
  4). The sites are where `quantize()` places activation quantizers: the model input, the output of every
  ReLU / ReLU6 and, with `quantize_residuals`, the block outputs (the BN or conv ending a branch without
  ReLU, e.g. ResNet's bn2 and projection shortcut) and the inputs of layers reading a residual sum,
  concatenation or pooling. A quantized model counts its own quantizers (at their bits) and its float
  ReLUs; a float model counts the sites of `quantize(model)` with the default config (only the model
  input and ReLUs when torch.fx cannot trace it). Float sites use `a_bits` (or 32).
- PD = accuracy in percent / (weight Mb + activation Mb).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from prunequant.errors import UnsupportedLayerError
from prunequant.quantization.config import check_bits
from prunequant.quantization.graph import branch_sites
from prunequant.quantization.modes import eval_mode
from prunequant.quantization.quantizers import Quantizer
from prunequant.quantization.wrappers import (
    ACTIVATIONS,
    QUANT_LAYERS,
    QuantAct,
    is_quantized,
    quantized_layers,
)
from prunequant.tasks import Inputs, batch_size_of, run_model
from prunequant.validation import check_fraction

FLOAT_BITS = 32


@dataclass(frozen=True)
class MemoryReport:
    """Weight and activation memory in megabits (1e6 bits), their sparsity, and performance density."""

    weight_mb: float
    activation_mb: float
    params: int
    weight_density: float
    activation_elements: float
    activation_sparsity: float
    accuracy: float | None = None
    pd: float | None = None

    @property
    def total_mb(self) -> float:
        return self.weight_mb + self.activation_mb

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total_mb": self.total_mb}


@torch.no_grad()
def memory_report(
    model: nn.Module,
    example_input: Inputs,
    w_bits: int | None = None,
    a_bits: int | None = None,
    accuracy: float | None = None,
) -> MemoryReport:
    """Memory of `model` (float or quantized) for one input; `accuracy` (a fraction, e.g. top-1) gives PD.

    `example_input` is a batch (a tensor, tuple or dict of tensors); activation figures are divided by
    its batch size.
    """
    check_bits("w_bits", w_bits)
    check_bits("a_bits", a_bits)
    if accuracy is not None:
        accuracy = check_fraction("accuracy", accuracy, allow_one=True)
    with eval_mode(model):
        weight_bits, params, nonzero_params = _weight_bits(model, w_bits or FLOAT_BITS)
        act_bits, elements, nonzero = _activation_bits(model, example_input, a_bits or FLOAT_BITS)
    batch = batch_size_of(example_input)
    weight_mb, activation_mb = weight_bits / 1e6, act_bits / batch / 1e6
    total = weight_mb + activation_mb
    return MemoryReport(
        weight_mb=weight_mb,
        activation_mb=activation_mb,
        params=params,
        weight_density=nonzero_params / params if params else 0.0,
        activation_elements=elements / batch,
        activation_sparsity=1 - nonzero / elements if elements else 0.0,
        accuracy=accuracy,
        pd=100 * accuracy / total if accuracy is not None and total else None,
    )


def _weight_bits(model: nn.Module, other_bits: int) -> tuple[int, int, int]:
    """(bits, elements, non-zero elements) over every parameter."""
    quantized = {id(layer.weight): layer for _, layer in quantized_layers(model) if layer.weight_quantizer}
    bits = elements = nonzero = 0
    for param in model.parameters():
        layer = quantized.get(id(param))
        tensor = param if layer is None else layer.quantized_weight()
        count = int(torch.count_nonzero(tensor))
        bits += count * (other_bits if layer is None else layer.weight_quantizer.bits)
        elements, nonzero = elements + param.numel(), nonzero + count
    return bits, elements, nonzero


Site = tuple[nn.Module, int, bool]
"""(module, bits, whether the site is the module's input rather than its output)."""


def _activation_sites(model: nn.Module, float_bits: int) -> list[Site]:
    """The activation sites of `model` (the model input is handled by `_activation_bits`)."""
    wrapped = {id(module.activation) for module in model.modules() if isinstance(module, QuantAct)}
    sites: list[Site] = []
    for module in model.modules():
        if isinstance(module, QuantAct):
            sites.append((module, module.act_quantizer.bits, False))
        elif type(module) in ACTIVATIONS.values() and id(module) not in wrapped:
            sites.append((module, float_bits, False))
        elif isinstance(module, QUANT_LAYERS):
            quantizers = (module.input_quantizer, module.output_quantizer)
            sites.extend((quantizer, quantizer.bits, False) for quantizer in quantizers if quantizer)
    if is_quantized(model):
        return sites
    try:
        found = branch_sites(model)
    except UnsupportedLayerError:
        return sites
    sites.extend((model.get_submodule(name), float_bits, False) for name in found.outputs)
    sites.extend((model.get_submodule(name), float_bits, True) for name in found.readers)
    return sites


def _activation_bits(model: nn.Module, example: Inputs, float_bits: int) -> tuple[int, int, int]:
    """(bits, elements, non-zero elements) over the activation sites of one forward pass of `example`.

    The model input counts at `float_bits`, unless an input quantizer is fed that very tensor (its output
    is then the input site).
    """
    totals = [0, 0, 0]
    model_input: list[torch.Tensor] = []
    quantized_input = [False]

    def record(tensor: torch.Tensor, bits: int) -> None:
        count = int(torch.count_nonzero(tensor))
        totals[0] += count * bits
        totals[1] += tensor.numel()
        totals[2] += count

    def output_site(module: nn.Module, args: tuple, out: torch.Tensor, bits: int) -> None:
        if isinstance(module, Quantizer) and args and args[0] is model_input[0]:
            quantized_input[0] = True
        record(out, bits)

    handles = [model.register_forward_pre_hook(lambda _m, args: model_input.append(args[0]))]
    for module, bits, at_input in _activation_sites(model, float_bits):
        if at_input:
            hook = module.register_forward_pre_hook(lambda _m, args, b=bits: record(args[0], b))
        else:
            hook = module.register_forward_hook(lambda m, args, out, b=bits: output_site(m, args, out, b))
        handles.append(hook)
    try:
        run_model(model, example)  # a tuple / dict of inputs too (only the first is counted as input)
    finally:
        for handle in handles:
            handle.remove()
    if not quantized_input[0]:
        record(model_input[0], float_bits)
    return totals[0], totals[1], totals[2]
