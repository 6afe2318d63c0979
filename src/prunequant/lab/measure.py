"""The measurements every model trial records: the task's metrics, counts, memory / PD, file size, latency.

Latency is of the model as deployed in fp32 eager PyTorch: BatchNorm folded into the convs, and for a
quantized model its fake-quant-rounded weights in plain layers (quantizers removed), so every trial is
timed on the same footing. Masked zeros and N-bit weights therefore run exactly as fast as the original;
only removed channels (structured) make dense kernels faster. int8 speed comes from the export stage.
"""

from __future__ import annotations

import copy
import tempfile
import warnings
from pathlib import Path
from typing import Any

from torch import nn

from prunequant.errors import UnsupportedLayerError
from prunequant.lab.env import Env
from prunequant.lab.ops import FLOAT_BITS, bits_or_none
from prunequant.lab.recipe import Recipe
from prunequant.profiling import profile
from prunequant.quantization import fold_batchnorm, is_quantized, memory_report, quantized_layers
from prunequant.tasks import run_model
from prunequant.training import evaluate


def evaluate_scores(model: nn.Module | Any, env: Env, recipe: Recipe) -> dict[str, Any]:
    """Test `score` (the budget metric), `loss` and every task metric (`metrics`), and `val_score`: the
    budget metric on the validation split. `model` may be any callable taking the task's inputs."""
    cap, metric = recipe.run.eval_batches, env.budget.metric.name
    test = evaluate(model, env.loaders.test, env.task, max_batches=cap)
    val = evaluate(model, env.loaders.val, env.task, max_batches=cap)
    return {
        "score": test.metrics[metric],
        "loss": test.loss,
        "metrics": dict(test.metrics),
        "val_score": val.metrics[metric],
    }


def density_score(env: Env, score: float | None) -> float | None:
    """The score performance density divides (seed 003): a higher-is-better fraction metric (accuracy,
    mIoU) in [0, 1]; None otherwise (PD is then not reported)."""
    spec = env.budget.metric
    if score is None or not spec.higher_is_better or spec.unit != "%" or not 0.0 <= score <= 1.0:
        return None
    return score


def measure(
    model: nn.Module,
    env: Env,
    recipe: Recipe,
    *,
    reference: nn.Module | None = None,
    w_bits: int = FLOAT_BITS,
    a_bits: int = FLOAT_BITS,
) -> dict[str, Any]:
    """Every metric column of a model trial (see prunequant.lab.store).

    nonzero_params counts the weights as computed: zeros made by quantization rounding count as zeros.
    `reference` (the original model) is timed interleaved with `model` (A B B A ...) for `speedup`;
    without it the model is the reference (speedup 1).
    """
    metrics: dict[str, Any] = evaluate_scores(model, env, recipe)
    counts = profile(model, env.sample, latency=False).total
    memory = memory_report(
        model,
        env.sample,
        bits_or_none(w_bits),
        bits_or_none(a_bits),
        accuracy=density_score(env, metrics["score"]),
    )
    metrics.update(
        params=counts["params"],
        nonzero_params=round(memory.weight_density * memory.params),
        macs=counts["macs"],
        effective_macs=counts["effective_macs"],
        w_bits=w_bits,
        a_bits=a_bits,
        weight_mb=memory.weight_mb,
        activation_mb=memory.activation_mb,
        pd=memory.pd,
        file_bytes=file_size(model),
        **timing(model, reference, env, recipe),
    )
    return metrics


def deployed_fp32(model: nn.Module) -> nn.Module:
    """A float copy as deployed: quantizers dropped (rounded weights kept), BatchNorm folded if possible."""
    if is_quantized(model):
        from prunequant.export.onnx_int8 import deployable

        return deployable(model, quantized_weights=True, activations="drop")[0]
    folded = copy.deepcopy(model).eval()
    try:
        fold_batchnorm(folded)
    except UnsupportedLayerError as err:
        warnings.warn(f"BatchNorm left unfolded for timing: {err}", stacklevel=2)
    return folded


def timing(model: nn.Module, reference: nn.Module | None, env: Env, recipe: Recipe) -> dict[str, float]:
    """latency_fp32_ms (median) and speedup vs `reference`, both as deployed, timed interleaved."""
    from prunequant.timing import compare

    candidate = deployed_fp32(model)
    baseline = candidate if reference is None else deployed_fp32(reference)
    batch, rounds = env.latency_batch, recipe.profile.repeats
    result = compare(
        {"baseline": lambda: run_model(baseline, batch), "candidate": lambda: run_model(candidate, batch)},
        rounds=rounds,
    )["candidate"]
    return {"latency_fp32_ms": result.median_ms, "speedup": result.speedup.value if reference else 1.0}


def file_size(model: nn.Module) -> int:
    """Bytes of the compressed model file: bit-packed codes for quantized weights, and zeros not stored."""
    from prunequant.export.storage import compressed_size_report

    if not any(layer.weight_quantizer is not None for _, layer in quantized_layers(model)):
        return int(compressed_size_report(model)["file_bytes"])
    from prunequant.export.storage.quantized_codec import save_quantized

    with tempfile.TemporaryDirectory(prefix="pq-size-") as folder:
        return int(save_quantized(model, Path(folder) / "model.pqz"))
