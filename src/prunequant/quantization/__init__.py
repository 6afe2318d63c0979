"""Uniform N-bit quantization (2..16 bits): fake-quant wrappers, PTQ calibration, QAT, BN folding,
zero share, memory / performance density, 16-bit float variants and bit-width sweeps (seeds 000, 003)."""

from prunequant.quantization.bn_fold import fold_batchnorm
from prunequant.quantization.calibrate import calibrate
from prunequant.quantization.config import CALIBRATIONS, LayerQuant, QuantConfig
from prunequant.quantization.float_cast import FLOAT_FORMATS, cast_weights
from prunequant.quantization.memory import MemoryReport, memory_report
from prunequant.quantization.qat import qat, quantization_aware_finetune, refresh_weight_qparams
from prunequant.quantization.quantize import float_layers, quantize
from prunequant.quantization.quantizers import Quantizer, QuantizerSpec
from prunequant.quantization.sweep import SWEEP_COLUMNS, parse_bits, sweep_quantization
from prunequant.quantization.wrappers import (
    QuantAct,
    QuantConv1d,
    QuantConv2d,
    QuantConv3d,
    QuantConvTranspose1d,
    QuantConvTranspose2d,
    QuantConvTranspose3d,
    QuantLinear,
    activation_quantizers,
    is_quantized,
    quantized_layers,
)
from prunequant.quantization.zero_share import ZeroShare, zero_share

__all__ = [
    "CALIBRATIONS",
    "FLOAT_FORMATS",
    "SWEEP_COLUMNS",
    "LayerQuant",
    "MemoryReport",
    "QuantAct",
    "QuantConfig",
    "QuantConv1d",
    "QuantConv2d",
    "QuantConv3d",
    "QuantConvTranspose1d",
    "QuantConvTranspose2d",
    "QuantConvTranspose3d",
    "QuantLinear",
    "Quantizer",
    "QuantizerSpec",
    "ZeroShare",
    "activation_quantizers",
    "calibrate",
    "cast_weights",
    "float_layers",
    "fold_batchnorm",
    "is_quantized",
    "memory_report",
    "parse_bits",
    "qat",
    "quantization_aware_finetune",
    "quantize",
    "quantized_layers",
    "refresh_weight_qparams",
    "sweep_quantization",
    "zero_share",
]
