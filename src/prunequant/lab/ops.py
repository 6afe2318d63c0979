"""Model transforms a trial applies in order ("steps"), each one function registered by op name.

An op takes the model, its step config and the Env, and returns an Applied: the (possibly new) model,
the Trainer callbacks that keep the transform during fine-tuning, its bit widths, and what it did.
Steps are plain JSON, e.g. {"op": "prune", "amount": 0.1, "scope": "global", "include_bias": true}.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from prunequant.errors import ConfigError
from prunequant.lab.env import Env
from prunequant.training import Callback

FLOAT_BITS = 32


@dataclass
class Applied:
    """The result of the steps so far."""

    model: nn.Module
    callbacks: list[Callback] = field(default_factory=list)
    w_bits: int = FLOAT_BITS
    a_bits: int = FLOAT_BITS
    info: dict[str, Any] = field(default_factory=dict)


Op = Callable[[Applied, dict[str, Any], Env], Applied]
_OPS: dict[str, Op] = {}


def register_op(name: str) -> Callable[[Op], Op]:
    """Register `fn(applied, step, env) -> Applied` as step op `name`."""

    def decorator(fn: Op) -> Op:
        _OPS[name] = fn
        return fn

    return decorator


def apply_steps(model: nn.Module, steps: list[dict[str, Any]], env: Env) -> Applied:
    """Apply every step in order to `model` (which may be changed in place)."""
    applied = Applied(model)
    for step in steps:
        if step["op"] not in _OPS:
            raise ConfigError(f"unknown step op {step['op']!r}; known: {', '.join(sorted(_OPS))}")
        applied = _OPS[step["op"]](applied, step, env)
    return applied


@register_op("prune")
def _prune(applied: Applied, step: dict[str, Any], env: Env) -> Applied:
    """Magnitude pruning (issue 3): `amount`, `scope`, `include_bias`, optional per-layer `overrides`."""
    from prunequant.pruning.unstructured import MaskCallback, prune_unstructured

    result = prune_unstructured(
        applied.model,
        step["amount"],
        step.get("scope", "global"),
        include_bias=step.get("include_bias", False),
        overrides=step.get("overrides") or None,
    )
    applied.callbacks.append(MaskCallback())
    applied.info["sparsity"] = result.sparsity
    unpruned = weight_layers(applied.model, {name.rsplit(".", 1)[0] for name in result.layers})
    if unpruned:
        applied.info["unpruned_layers"] = unpruned
    return applied


@register_op("quantize")
def _quantize(applied: Applied, step: dict[str, Any], env: Env) -> Applied:
    """Uniform quantization (issue 4): `w_bits`, `a_bits` (32 = float), `granularity`, `groups` bits."""
    from prunequant.quantization import QuantConfig, quantize, quantized_layers, zero_share

    w_bits, a_bits, groups = step["w_bits"], step.get("a_bits", FLOAT_BITS), step.get("groups", {})
    overrides = {
        pattern: {"w_bits": bits_or_none(bits)}
        for group, bits in groups.items()
        for pattern in (group, f"{group}.*")
    }
    config = QuantConfig(
        w_bits=bits_or_none(w_bits),
        a_bits=bits_or_none(a_bits),
        per_channel=step.get("granularity", "tensor") == "channel",
        quantize_input=a_bits < FLOAT_BITS,
        overrides=overrides or None,
    )
    calib = env.calibration(step.get("calib_batches", 4)) if a_bits < FLOAT_BITS else None
    applied.model = quantize(
        applied.model, config, calib, calib_batches=step.get("calib_batches", 4), task=env.task
    )
    applied.w_bits = max(groups.values()) if groups else w_bits
    applied.a_bits = a_bits
    applied.info["zero_share"] = zero_share(applied.model).share
    left_float = weight_layers(applied.model, {name for name, _ in quantized_layers(applied.model)})
    if left_float:
        applied.info["float_layers"] = left_float
    return applied


def weight_layers(model: nn.Module, done: set[str]) -> dict[str, str]:
    """{name: type} of the layers with a weight matrix or kernel (convolutions of every kind, linear) that
    are not in `done`: what a transform left as it was, named in the trial's result."""
    return {
        name: type(module).__name__
        for name, module in model.named_modules()
        if name not in done
        and isinstance(module, (nn.modules.conv._ConvNd, nn.Linear))
        and not any(name.startswith(f"{other}.") for other in done)
    }


def bits_or_none(bits: int) -> int | None:
    """A bit width for prunequant.quantization: None (keep float) for 32."""
    return None if bits >= FLOAT_BITS else bits


@register_op("channels")
def _channels(applied: Applied, step: dict[str, Any], env: Env) -> Applied:
    """Structured channel pruning with physical removal (issue 5): `amount`, `importance`, `allocation`,
    `round_to`, optional `per_layer` amounts; data-driven criteria read calibration batches."""
    from prunequant.pruning.structured import prune_channels

    calib = env.calibration(step.get("calib_batches", 4))
    result = prune_channels(
        applied.model,
        env.sample,
        step["amount"],
        step.get("importance", "l1"),
        step.get("allocation", "uniform"),
        step.get("round_to", 1),
        per_layer=step.get("per_layer") or None,
        calib_loader=calib,
        calib_batches=len(calib),
        return_result=True,
        task=env.task,
    )
    applied.model = result.model
    applied.info.setdefault("channels", []).append(result.meta())
    return applied
