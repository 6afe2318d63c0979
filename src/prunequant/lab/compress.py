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
from prunequant.lab.recovery import recovery_options, recovery_record
from prunequant.lab.trials import TrialOutcome, TrialTask, register_kind
from prunequant.models import build_from_spec, load_checkpoint
from prunequant.models.registry import ARCH_ATTR
from prunequant.profiling import profile
from prunequant.tasks import as_args, describe, flatten_outputs, run_model
from prunequant.training import Callback, Trainer, finetune_then_refine


def load_baseline_model(recipe: Recipe, env: Env) -> tuple[nn.Module, dict[str, Any], bool]:
    """(model, meta, needs_training): the recipe's checkpoint, or its arch freshly built.

    A zoo arch loads a prunequant checkpoint as recorded in it, or a plain state_dict (weights_only load)
    into the arch built with the recipe's kwargs. A `module:factory` arch is built with the recipe's
    kwargs and filled from the checkpoint, either kind. The arch's spec goes into the meta, so every
    trial rebuilds it. A forward pass on example inputs checks that the model fits the data and the task.
    """
    arch, path = recipe.model.arch, recipe.checkpoint_path
    kwargs = {**_shape_kwargs(env), **recipe.model.kwargs}  # the recipe's kwargs win
    meta: dict[str, Any] = {}
    if path and ":" not in arch:
        model, meta = load_checkpoint(
            path, state_dict_model=(lambda: build_from_spec(arch, **kwargs)) if arch else None
        )
        if arch and meta.get("arch") not in (None, arch):
            raise ModelError(
                f"checkpoint {path} holds a {meta.get('arch')}, but the recipe says "
                f"arch = {arch!r}; fix one of them"
            )
    else:
        model = build_from_spec(arch, **kwargs)
        if path:
            model, meta = load_checkpoint(path, model=model)
    stamp = getattr(model, ARCH_ATTR)
    meta = {**meta, "arch": stamp["name"], "arch_kwargs": stamp["kwargs"]}
    shapes = [list(t.shape[1:]) for t in as_args(env.sample)]
    meta.update(input_shape=shapes[0] if len(shapes) == 1 else shapes, dataset=env.name)
    _check_fits(model, env)
    return model, meta, not path


def _shape_kwargs(env: Env) -> dict[str, int]:
    """num_classes / in_channels / input_size of a registered dataset (a user factory takes its kwargs)."""
    if env.splits is None:
        return {}
    channels, _, size = env.splits.input_shape
    return {"num_classes": env.splits.num_classes, "in_channels": channels, "input_size": size}


def _check_fits(model: nn.Module, env: Env) -> None:
    """Run the model on example inputs; the task checks that its outputs fit the targets."""
    import torch

    inputs, target = env.example
    model.eval()
    try:
        with torch.inference_mode():
            outputs = run_model(model, inputs)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ModelError(
            f"the model cannot run on {env.name} inputs {describe(inputs)} "
            f"({str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__}); "
            "use a model built for this data"
        ) from None
    env.task.check(outputs, target)
    first = flatten_outputs(outputs)[0]  # [batch, classes] scores; dense/multi-output tasks checked above
    if env.splits is not None and first.dim() == 2 and first.shape[-1] != env.splits.num_classes:
        raise ModelError(
            f"the model has {first.shape[-1]} outputs but {env.name} has "
            f"{env.splits.num_classes} classes; use a model built for this dataset"
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
        trainer = Trainer(model, env.loaders.train, env.loaders.val, config, callbacks, task=env.task)
        extra["history"] = trainer.fit()
    report = profile(model, env.latency_batch, latency=True, repeats=recipe.profile.repeats)
    extra["profile"] = {"total": report.total, "groups": report.groups}
    extra["layers"] = [row["name"] for row in report.layers if row["type"] in ("Conv2d", "Linear")]
    extra["task"] = env.task.describe()
    metrics, deployment = measure(model, env, recipe)
    extra["deploy"] = deployment.info
    return TrialOutcome(metrics, extra, model_to_bytes(model, **meta), files=deployment.files)


@register_kind("compress")
def run_compress(task: TrialTask, callbacks: Sequence[Callback]) -> TrialOutcome:
    """Apply config["steps"] to the source model, optionally fine-tune + refine, then measure."""
    recipe, config = task.recipe, task.spec.config
    env = environment(recipe)
    model, meta = model_from_bytes(task.inputs[config["source"]], recipe.model.arch)
    applied = apply_steps(model, config["steps"], env)
    extra: dict[str, Any] = {"steps": applied.info}
    reference, _ = model_from_bytes(task.inputs[config["source"]], recipe.model.arch)
    finetune = config.get("finetune")
    if finetune:
        phases = _PhaseScores(env, recipe)
        callbacks = [*applied.callbacks, *callbacks, phases]
        recovery = finetune_model(applied.model, env, recipe, finetune, callbacks, teacher=reference)
        extra["phases"] = phases.scores
        if recovery:
            extra["recovery"] = recovery
    _finish(applied.model)
    metrics, deployment = measure(
        applied.model, env, recipe, reference=reference, w_bits=applied.w_bits, a_bits=applied.a_bits
    )
    extra["deploy"] = deployment.info
    meta["lab"] = {"stage": task.spec.stage, "config": config}
    return TrialOutcome(metrics, extra, model_to_bytes(applied.model, **meta), files=deployment.files)


def finetune_model(
    model: nn.Module,
    env: Env,
    recipe: Recipe,
    finetune: dict[str, Any],
    callbacks: Sequence[Callback],
    *,
    teacher: nn.Module | None = None,
) -> dict[str, Any]:
    """Fine-tune `epochs` at `lr`, then `refine_epochs` at lr * refine_factor (QAT for quantized models),
    with the plan's [finetune] recovery options (distillation from `teacher`, the trial's original model).

    Returns what recovery did (prunequant.lab.recovery.recovery_record), {} when none was asked.
    """
    from prunequant.quantization import is_quantized, quantization_aware_finetune

    options = recovery_options(finetune, teacher)
    config = recipe.baseline.train_config(
        epochs=finetune["epochs"], lr=finetune["lr"], early_stopping_patience=options.early_stop_patience
    )
    kwargs = dict(
        refine_epochs=finetune["refine_epochs"],
        refine_factor=recipe.baseline.refine_factor,
        callbacks=list(callbacks),
        distill=options.distill,
        bn_recalibrate=options.bn_recalibrate,
    )
    train = quantization_aware_finetune if is_quantized(model) else finetune_then_refine
    result = train(model, env.loaders.train, env.loaders.val, config, task=env.task, **kwargs)
    return recovery_record(options, env.task, result)


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
