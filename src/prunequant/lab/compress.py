"""The model trial kinds: "baseline" (load or train the original, profile it) and "compress" (apply steps,
fine-tune at the original LR then refine at LR/10 if asked, measure)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from prunequant.errors import ModelError
from prunequant.lab.env import Env, environment, model_from_bytes, model_to_bytes
from prunequant.lab.measure import evaluate_scores, measure
from prunequant.lab.ops import apply_steps
from prunequant.lab.recipe import Recipe
from prunequant.lab.trials import TrialOutcome, TrialTask, register_kind
from prunequant.models import build_from_spec, load_checkpoint
from prunequant.profiling import profile
from prunequant.training import Callback, Trainer, evaluate, finetune_then_refine


def load_baseline_model(recipe: Recipe, env: Env) -> tuple[nn.Module, dict[str, Any], bool]:
    """(model, meta, needs_training): the recipe's checkpoint, or its zoo arch freshly built.

    A forward pass on one sample checks that the model fits the dataset's input shape and classes.
    """
    splits = env.splits
    if recipe.checkpoint_path:
        model, meta = load_checkpoint(recipe.checkpoint_path)
        if recipe.model.arch and meta.get("arch") not in (None, recipe.model.arch):
            raise ModelError(
                f"checkpoint {recipe.checkpoint_path} holds a {meta.get('arch')}, but the recipe says "
                f"arch = {recipe.model.arch!r}; fix one of them"
            )
        needs_training = False
    else:
        channels, _, size = splits.input_shape
        kwargs = {"num_classes": splits.num_classes, "in_channels": channels, "input_size": size}
        model = build_from_spec(recipe.model.arch, **kwargs, **recipe.model.kwargs)
        meta = {"arch": recipe.model.arch, "arch_kwargs": {**kwargs, **recipe.model.kwargs}}
        needs_training = True
    meta.update(input_shape=list(splits.input_shape), dataset=splits.name)
    _check_fits(model, env)
    return model, meta, needs_training


def _check_fits(model: nn.Module, env: Env) -> None:
    import torch

    model.eval()
    try:
        with torch.inference_mode():
            logits = model(env.sample)
    except RuntimeError as exc:
        raise ModelError(
            f"the model cannot run on {env.splits.name} inputs of shape {list(env.input_shape)} "
            f"({str(exc).splitlines()[0][:120]}); use a model built for this dataset"
        ) from None
    if logits.shape[-1] != env.splits.num_classes:
        raise ModelError(
            f"the model has {logits.shape[-1]} outputs but {env.splits.name} has {env.splits.num_classes} "
            "classes; use a model built for this dataset"
        )


@register_kind("baseline")
def run_baseline(task: TrialTask, callbacks: Sequence[Callback]) -> TrialOutcome:
    """Load (or train, with the [baseline] hyper-parameters) the original model; profile and measure it."""
    recipe = task.recipe
    env = environment(recipe)
    model, meta, needs_training = load_baseline_model(recipe, env)
    extra: dict[str, Any] = {"trained_in_run": needs_training}
    if needs_training:
        config = recipe.baseline.train_config(lr_schedule="cosine")
        extra["history"] = Trainer(model, env.loaders.train, env.loaders.val, config, callbacks).fit()
    report = profile(model, env.latency_batch, latency=True, repeats=recipe.profile.repeats)
    extra["profile"] = {"total": report.total, "groups": report.groups}
    extra["layers"] = [row["name"] for row in report.layers if row["type"] in ("Conv2d", "Linear")]
    metrics = measure(model, env, recipe)
    extra["val_top1"] = (  # the search pruner compares the Trainer's val_top1 with this
        metrics["val_score"]
        if recipe.run.metric == "top1"
        else evaluate(model, env.loaders.val, max_batches=recipe.run.eval_batches).top1
    )
    return TrialOutcome(metrics, extra, model_to_bytes(model, **meta))


@register_kind("compress")
def run_compress(task: TrialTask, callbacks: Sequence[Callback]) -> TrialOutcome:
    """Apply config["steps"] to the source model, optionally fine-tune + refine, then measure."""
    recipe, config = task.recipe, task.spec.config
    env = environment(recipe)
    model, meta = model_from_bytes(task.inputs[config["source"]])
    applied = apply_steps(model, config["steps"], env)
    extra: dict[str, Any] = {"steps": applied.info}
    finetune = config.get("finetune")
    if finetune:
        phases = _PhaseScores(env, recipe)
        finetune_model(applied.model, env, recipe, finetune, [*applied.callbacks, *callbacks, phases])
        extra["phases"] = phases.scores
    _finish(applied.model)
    reference, _ = model_from_bytes(task.inputs[config["source"]])
    metrics = measure(
        applied.model, env, recipe, reference=reference, w_bits=applied.w_bits, a_bits=applied.a_bits
    )
    meta["lab"] = {"stage": task.spec.stage, "config": config}
    return TrialOutcome(metrics, extra, model_to_bytes(applied.model, **meta))


def finetune_model(
    model: nn.Module, env: Env, recipe: Recipe, finetune: dict[str, Any], callbacks: Sequence[Callback]
) -> None:
    """Fine-tune `epochs` at `lr`, then `refine_epochs` at lr * refine_factor (QAT for quantized models)."""
    from prunequant.quantization import is_quantized, quantization_aware_finetune

    config = recipe.baseline.train_config(epochs=finetune["epochs"], lr=finetune["lr"])
    kwargs = dict(
        refine_epochs=finetune["refine_epochs"],
        refine_factor=recipe.baseline.refine_factor,
        callbacks=list(callbacks),
    )
    if is_quantized(model):
        quantization_aware_finetune(model, env.loaders.train, env.loaders.val, config, **kwargs)
    else:
        finetune_then_refine(model, env.loaders.train, env.loaders.val, config, **kwargs)


def _finish(model: nn.Module) -> None:
    """Bake pruning masks into the weights (the zeros stay) so the model saves and measures as it is."""
    from prunequant.pruning.unstructured import make_permanent

    make_permanent(model)


class _PhaseScores(Callback):
    """Test/val scores after each training phase: [fine-tune at LR, refine at LR/10]."""

    def __init__(self, env: Env, recipe: Recipe) -> None:
        self.env, self.recipe = env, recipe
        self.scores: list[dict[str, float]] = []

    def on_train_end(self, trainer: Trainer) -> None:
        scores = evaluate_scores(trainer.model, self.env, self.recipe)
        self.scores.append({**scores, "lr": trainer.config.lr, "epochs": trainer.config.epochs})
