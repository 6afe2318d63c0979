"""How each known op treats the channel dimension: the tables the dependency graph reads.

Ops not listed here are unknown: every channel group they touch is left unpruned, never guessed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from prunequant.errors import ConfigError
from prunequant.models.export_trace import op_name

ELEMENTWISE = frozenset(
    {
        # activations and other shape-preserving unary ops (extra args are scalars or dtypes)
        "relu", "relu_", "relu6", "sigmoid", "sigmoid_", "tanh", "hardtanh", "hardswish", "hardsigmoid",
        "silu", "gelu", "elu", "selu", "celu", "leaky_relu", "mish", "softplus", "dropout", "dropout1d",
        "dropout2d", "alpha_dropout", "feature_alpha_dropout", "contiguous", "clone", "detach", "float",
        "half", "double", "to", "type_as", "neg", "abs", "exp", "log", "sqrt", "rsqrt", "clamp", "clamp_min",
        "clamp_max", "clip", "sign", "square", "reciprocal", "erf",
        # torchvision.ops.stochastic_depth: drops whole samples (or the batch), never single channels
        "stochastic_depth",
        # binary ops with broadcasting (tensor operands tie their channels; scalars and size-1 dims do not)
        "add", "iadd", "add_", "sub", "isub", "sub_", "mul", "imul", "mul_", "truediv", "itruediv", "div",
        "div_", "pow", "maximum", "minimum", "floordiv",
    }
)  # fmt: skip

SPATIAL_FUNCTIONS: dict[str, int | None] = {
    "max_pool1d": 1, "avg_pool1d": 1, "adaptive_avg_pool1d": 1, "adaptive_max_pool1d": 1,
    "max_pool2d": 2, "avg_pool2d": 2, "adaptive_avg_pool2d": 2, "adaptive_max_pool2d": 2,
    "max_pool3d": 3, "avg_pool3d": 3, "adaptive_avg_pool3d": 3, "adaptive_max_pool3d": 3,
    "interpolate": None, "upsample": None, "upsample_nearest": None, "upsample_bilinear": None,
    "upsample_nearest1d": 1, "upsample_nearest2d": 2, "upsample_nearest3d": 3, "upsample_linear1d": 1,
    "upsample_bilinear2d": 2, "upsample_bicubic2d": 2, "upsample_trilinear3d": 3,
    "reflection_pad1d": 1, "reflection_pad2d": 2, "reflection_pad3d": 3,
    "replication_pad1d": 1, "replication_pad2d": 2, "replication_pad3d": 3,
}  # fmt: skip
"""Functions acting on the trailing N dimensions only (None: all after the channels), each channel alone."""

REDUCTIONS = frozenset({"mean", "sum", "amax", "amin", "std", "var", "logsumexp", "nansum", "nanmean"})
SPLITS = frozenset({"chunk", "split", "split_with_sizes", "tensor_split"})
CONCATS = frozenset({"cat", "concat", "concatenate"})
RESHAPES = frozenset({"view", "reshape"})
NON_TENSOR = frozenset({"size", "dim", "getattr", "numel", "_assert", "is_floating_point"})

ELEMENTWISE_MODULES: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish, nn.Hardswish,
    nn.Hardsigmoid, nn.Hardtanh, nn.Sigmoid, nn.Tanh, nn.Softplus, nn.Dropout, nn.Dropout1d, nn.Dropout2d,
    nn.Dropout3d, nn.AlphaDropout, nn.Identity,
)  # fmt: skip

SPATIAL_MODULES: dict[type[nn.Module], int | None] = {
    nn.MaxPool1d: 1, nn.AvgPool1d: 1, nn.AdaptiveAvgPool1d: 1, nn.AdaptiveMaxPool1d: 1,
    nn.MaxPool2d: 2, nn.AvgPool2d: 2, nn.AdaptiveAvgPool2d: 2, nn.AdaptiveMaxPool2d: 2,
    nn.MaxPool3d: 3, nn.AvgPool3d: 3, nn.AdaptiveAvgPool3d: 3, nn.AdaptiveMaxPool3d: 3,
    nn.Upsample: None, nn.UpsamplingNearest2d: 2, nn.UpsamplingBilinear2d: 2,
    nn.ZeroPad1d: 1, nn.ZeroPad2d: 2, nn.ZeroPad3d: 3, nn.ConstantPad1d: 1, nn.ConstantPad2d: 2,
    nn.ConstantPad3d: 3, nn.ReflectionPad1d: 1, nn.ReflectionPad2d: 2, nn.ReflectionPad3d: 3,
    nn.ReplicationPad1d: 1, nn.ReplicationPad2d: 2, nn.ReplicationPad3d: 3, nn.CircularPad1d: 1,
    nn.CircularPad2d: 2, nn.CircularPad3d: 3,
}  # fmt: skip
"""Modules acting on the trailing N dimensions only, each channel on its own."""


OP_KINDS = ("elementwise", "spatial")
_OWN_RULES = (nn.modules.conv._ConvNd, nn.Linear, nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def register_op(
    op: str | Callable[..., Any] | type[nn.Module], kind: str, *, dims: int | None = None
) -> None:
    """Teach the dependency graph how an op it does not know treats channels, so groups through it prune.

    Parameters
    ----------
    op:
        A function or method name as traced ("logsigmoid"), the function itself (torch.nn.functional.
        logsigmoid), or a weightless torch.nn layer class the tracer keeps whole (nn.Softsign); a
        user module class is traced through, so register the ops inside it instead.
    kind:
        "elementwise": each output channel is the same input channel (tensor operands of a binary op are
        tied channel by channel); "spatial": the op acts on the trailing `dims` dimensions only (None:
        all after the channels), each channel on its own, like pooling or resizing.
    dims:
        For "spatial" only.

    Returns
    -------
    None; the op is known to every later `dependency_groups` / `prune_channels` call in this process.
    ConfigError for an unknown kind, or for a layer type that has its own pruning rule.
    """
    global ELEMENTWISE, ELEMENTWISE_MODULES
    if kind not in OP_KINDS:
        raise ConfigError(f"kind must be one of {', '.join(OP_KINDS)}, got {kind!r}")
    if dims is not None and (
        kind != "spatial" or isinstance(dims, bool) or not isinstance(dims, int) or dims < 1
    ):
        raise ConfigError(f"dims is a positive integer for kind 'spatial' only, got {dims!r} for {kind!r}")
    if isinstance(op, type):
        if not issubclass(op, nn.Module) or issubclass(op, _OWN_RULES):
            raise ConfigError(f"{op.__name__} cannot be registered: give a weightless nn.Module class")
        if kind == "elementwise":
            ELEMENTWISE_MODULES = (*ELEMENTWISE_MODULES, op)
        else:
            SPATIAL_MODULES[op] = dims
        return
    name = op_name(op) if isinstance(op, str) or callable(op) else None
    if not name or not name.isidentifier():
        raise ConfigError(f"op must be a name, a function or an nn.Module class, got {op!r}")
    if kind == "elementwise":
        ELEMENTWISE = ELEMENTWISE | {name}
    else:
        SPATIAL_FUNCTIONS[name] = dims
