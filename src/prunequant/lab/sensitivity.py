"""Per-layer sensitivity: prune or quantize ONE layer at a time and measure the budget metric on the
validation split (one trial per layer), and a pruning allocation derived from it.

Each trial's extra holds the scores per amount / bit width and `drop`: how much worse each is than the
unchanged model, in the metric's direction (positive = worse), the heatmap data of the report."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from torch import nn

from prunequant.errors import ConfigError
from prunequant.lab.env import environment, model_from_bytes
from prunequant.lab.runner import Session
from prunequant.lab.store import TrialRow
from prunequant.lab.trials import TrialOutcome, TrialSpec, TrialTask, register_kind
from prunequant.training import Callback, evaluate


@register_kind("sensitivity")
def run_layer_sensitivity(task: TrialTask, callbacks: Sequence[Callback]) -> TrialOutcome:
    """Validation score of the source model with only config["layer"] pruned at each amount (layer scope,
    no fine-tuning) and with only its weights quantized at each bit width (per channel)."""
    from prunequant.pruning.unstructured import prune_unstructured
    from prunequant.quantization import QuantConfig, quantize

    recipe, config = task.recipe, task.spec.config
    env = environment(recipe)
    model, _ = model_from_bytes(task.inputs[config["source"]], recipe.model.arch)
    layer, metric = config["layer"], env.budget.metric

    def score(candidate: nn.Module) -> float:
        result = evaluate(candidate, env.loaders.val, env.task, max_batches=config["max_batches"])
        return result.metrics[metric.name]

    by_amount = {}
    for amount in config["amounts"]:
        pruned = copy.deepcopy(model)
        prune_unstructured(pruned, 0.0, "layer", overrides={layer: amount})
        by_amount[str(amount)] = score(pruned)
    by_bits = {}
    for bits in config["bits"]:
        quant = QuantConfig(
            w_bits=None, a_bits=None, quantize_input=False, overrides={layer: {"w_bits": bits}}
        )
        by_bits[str(bits)] = score(quantize(model, quant))
    params = model.get_submodule(layer).weight.numel()
    reference = score(model)
    extra = {
        "layer": layer,
        "params": params,
        "metric": metric.name,
        "reference": reference,
        "amount": by_amount,
        "bits": by_bits,
        "drop": {
            axis: {level: metric.drop(reference, value) for level, value in scores.items()}
            for axis, scores in (("amount", by_amount), ("bits", by_bits))
        },
    }
    return TrialOutcome({}, extra)


def run_sensitivity(session: Session) -> None:
    recipe, baseline = session.recipe, session.baseline()
    section = recipe.sensitivity
    session.run(
        [
            TrialSpec(
                "sensitivity",
                f"sensitivity {layer}",
                {
                    "kind": "sensitivity",
                    "source": baseline.trial_id,
                    "layer": layer,
                    "amounts": list(section.amounts),
                    "bits": list(section.bits),
                    "max_batches": section.max_batches or recipe.run.eval_batches,
                },
            )
            for layer in baseline.extra["layers"]
        ]
    )


def allocate(
    rows: Sequence[TrialRow], target: float, tolerance: float, cap: float = 0.95
) -> dict[str, float]:
    """Per-layer amounts averaging `target` (weighted by layer size) that prune robust layers harder.

    A layer's robustness is the largest tested amount whose drop (in the metric's unit and direction)
    stays within `tolerance`; the amounts
    are min(cap, k * robustness) with k found by bisection so that the weighted mean equals `target` (or
    comes as close as `cap` allows). Layers never robust keep 0.
    """
    done = [row for row in rows if row.status == "done" and row.stage == "sensitivity"]
    if not done:
        raise ConfigError("sensitivity allocation needs the [sensitivity] stage results; add that stage")
    robust: dict[str, float] = {}
    sizes: dict[str, int] = {}
    for row in done:
        extra: dict[str, Any] = row.extra
        ok = [float(a) for a, drop in extra["drop"]["amount"].items() if drop <= tolerance]
        robust[extra["layer"]] = max(ok, default=0.0)
        sizes[extra["layer"]] = extra["params"]
    total = sum(sizes.values())
    if target <= 0 or not any(robust.values()):
        return {layer: target for layer in robust}

    def mean(k: float) -> float:
        return sum(sizes[n] * min(cap, k * robust[n]) for n in robust) / total

    low, high = 0.0, 1.0
    while mean(high) < target and high < 1e6:
        high *= 2
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if mean(mid) < target else (low, mid)
    return {layer: round(min(cap, high * robust[layer]), 4) for layer in robust}
