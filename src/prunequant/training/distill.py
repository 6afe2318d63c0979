"""Knowledge distillation from a teacher (the original model) into the student being fine-tuned.

The loss of a batch becomes ``(1 - weight) * task_loss + weight * kd``, where ``kd`` compares the
student's outputs with the teacher's on the same inputs: Hinton's KL on temperature-softened logits
(times T^2, so gradients keep their scale) for classification-like outputs, MSE or L1 for dense outputs,
plus MSE between named intermediate features when asked. The teacher runs in eval mode without gradients.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from prunequant.errors import ConfigError, ModelError
from prunequant.tasks import ClassificationTask, SegmentationTask, Task, describe, flatten_outputs, run_model
from prunequant.training.callbacks import Callback
from prunequant.validation import check_choice, check_fraction, check_positive

DISTILL_KINDS = ("auto", "kl", "mse", "l1")
"""auto: kl for classification and segmentation logits (or the task's `distill_kind`), else mse."""


@dataclass(frozen=True)
class Distillation:
    """How to distill during a fine-tune.

    Parameters
    ----------
    teacher:
        The reference model (usually the original, uncompressed one); it is never changed.
    weight:
        Share of the distillation term in the loss, in [0, 1] (1: distillation only).
    temperature:
        Softening temperature of the "kl" kind (the KL is multiplied by T^2).
    kind:
        "kl", "mse", "l1" on the outputs, or "auto" (see DISTILL_KINDS).
    features:
        Names of modules (as in `named_modules()`) whose outputs are matched by MSE as well; each must
        exist in both models with the same shape (a layer whose channels were pruned is refused).
    """

    teacher: nn.Module
    weight: float = 0.5
    temperature: float = 4.0
    kind: str = "auto"
    features: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.teacher, nn.Module):
            raise ConfigError(f"teacher must be a torch nn.Module, got {type(self.teacher).__name__}")
        check_fraction("distill weight", self.weight, allow_one=True)
        check_positive("distill temperature", self.temperature)
        check_choice("distill kind", self.kind, DISTILL_KINDS)
        if isinstance(self.features, str) or not all(isinstance(name, str) for name in self.features):
            raise ConfigError(f"distill features must be a list of module names, got {self.features!r}")
        object.__setattr__(self, "features", tuple(self.features))


def resolve_kind(kind: str, task: Task) -> str:
    """The output comparison "auto" stands for with `task`: the task's own `distill_kind` attribute if it
    has one, "kl" for classification and segmentation, "mse" otherwise."""
    if kind != "auto":
        return kind
    declared = getattr(task, "distill_kind", None)
    if declared is not None:
        return check_choice(f"task '{task.name}' distill_kind", declared, DISTILL_KINDS[1:])
    return "kl" if isinstance(task, (ClassificationTask, SegmentationTask)) else "mse"


def kl_distillation(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * KL(softmax(teacher / T) || softmax(student / T)) over dim 1 (classes), averaged over every
    other position: per sample for [B, C] logits, per pixel for [B, C, H, W]."""
    log_student = F.log_softmax(student / temperature, dim=1)
    log_teacher = F.log_softmax(teacher / temperature, dim=1)
    per_position = (log_teacher.exp() * (log_teacher - log_student)).sum(dim=1)
    return per_position.mean() * temperature**2


def distillation_loss(student: Any, teacher: Any, kind: str, temperature: float = 1.0) -> torch.Tensor:
    """The distillation term between two output structures (tensor, tuple or dict), averaged over their
    floating-point tensors; `kind` is "kl", "mse" or "l1". Mismatched structures raise ModelError."""
    check_choice("distill kind", kind, DISTILL_KINDS[1:])
    pairs = _float_pairs(student, teacher)
    terms = []
    for s, t in pairs:
        if kind == "kl":
            if s.dim() < 2:
                raise ModelError(f"distill kind 'kl' needs logits [batch, classes, ...], got {describe(s)}")
            terms.append(kl_distillation(s, t, temperature))
        elif kind == "mse":
            terms.append(F.mse_loss(s, t))
        else:
            terms.append(F.l1_loss(s, t))
    return torch.stack(terms).mean()


def _float_pairs(student: Any, teacher: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    s_all, t_all = flatten_outputs(student), flatten_outputs(teacher)
    if len(s_all) != len(t_all):
        raise ModelError(
            f"cannot distill: the student returned {describe(student)} but the teacher {describe(teacher)}"
        )
    pairs = [(s, t) for s, t in zip(s_all, t_all, strict=True) if s.is_floating_point()]
    for s, t in pairs:
        if s.shape != t.shape:
            raise ModelError(
                f"cannot distill: student output {describe(s)} differs from the teacher's {describe(t)}"
            )
    if not pairs:
        raise ModelError(f"cannot distill: the model returned no floating-point output ({describe(student)})")
    return pairs


class Distiller(Callback):
    """The Trainer side of a Distillation: feature hooks, the teacher's forward pass and the mixed loss.

    Through `extra_loss` it adds ``weight * (kd - task_loss)``, so the loss the Trainer minimises is
    ``(1 - weight) * task_loss + weight * kd``; each epoch's mean kd goes to the history as
    ``train_kd_loss``. The Trainer builds one when given `distill=`.
    """

    def __init__(self, config: Distillation) -> None:
        self.config = config
        self.kind = config.kind
        self._student: dict[str, torch.Tensor] = {}
        self._teacher: dict[str, torch.Tensor] = {}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._teacher_was_training = False
        self._kd_sum, self._batches = 0.0, 0

    def on_train_start(self, trainer: Any) -> None:
        if self.config.teacher is trainer.model:
            raise ConfigError("the distillation teacher is the model being trained; give a separate copy")
        self.kind = resolve_kind(self.config.kind, trainer.task)
        self._teacher_was_training = self.config.teacher.training
        self._remove_hooks()  # those of a fit that ended in an exception, if any
        self._handles = [
            *_capture(trainer.model, self.config.features, self._student, "student"),
            *_capture(self.config.teacher, self.config.features, self._teacher, "teacher"),
        ]

    def on_epoch_start(self, trainer: Any, epoch: int) -> None:
        self._kd_sum, self._batches = 0.0, 0

    def extra_loss(self, trainer: Any) -> torch.Tensor:
        teacher = self.config.teacher
        teacher.eval()
        with torch.no_grad():
            teacher_outputs = run_model(teacher, trainer.inputs)
        kd = distillation_loss(trainer.outputs, teacher_outputs, self.kind, self.config.temperature)
        if self.config.features:
            kd = kd + feature_loss(self._student, self._teacher, self.config.features)
        self._kd_sum += float(kd.detach())
        self._batches += 1
        return self.config.weight * (kd - trainer.loss)

    def on_epoch_end(self, trainer: Any, epoch: int, metrics: dict[str, float]) -> None:
        if self._batches:
            metrics["train_kd_loss"] = self._kd_sum / self._batches

    def on_train_end(self, trainer: Any) -> None:
        self._remove_hooks()
        self.config.teacher.train(self._teacher_was_training)

    def _remove_hooks(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._student.clear()
        self._teacher.clear()


def feature_loss(
    student: dict[str, torch.Tensor], teacher: dict[str, torch.Tensor], names: Sequence[str]
) -> torch.Tensor:
    """Mean over `names` of the MSE between captured student and teacher features (equal shapes only)."""
    terms = []
    for name in names:
        s, t = student.get(name), teacher.get(name)
        if s is None or t is None:
            raise ModelError(f"distill feature '{name}' was not computed in the forward pass of both models")
        if s.shape != t.shape:
            raise ModelError(
                f"distill feature '{name}' is {describe(s)} in the student but {describe(t)} in the teacher "
                "(pruning changed it); distill only features whose shape was kept"
            )
        terms.append(F.mse_loss(s, t))
    return torch.stack(terms).mean()


def _capture(
    model: nn.Module, names: Sequence[str], store: dict[str, torch.Tensor], role: str
) -> list[torch.utils.hooks.RemovableHandle]:
    """Forward hooks writing each named module's (first tensor) output into `store`."""
    modules = dict(model.named_modules())
    missing = [name for name in names if name not in modules]
    if missing:
        raise ConfigError(
            f"distill feature '{missing[0]}' is not a module of the {role}; "
            "give names as in model.named_modules()"
        )

    def hook(name: str):  # noqa: ANN202 - a forward hook factory
        def write(_module: nn.Module, _inputs: Any, output: Any) -> None:
            tensors = flatten_outputs(output)
            if tensors:
                store[name] = tensors[0]

        return write

    return [modules[name].register_forward_hook(hook(name)) for name in names]
