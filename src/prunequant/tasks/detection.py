"""Object detection: a user decode function turns the model's heads into boxes; mAP@0.5 via COCOeval.

Loaders yield ``(images, targets)`` where targets is a list per image of ``{"boxes": [N, 4] xyxy,
"labels": [N]}``; use `collate_detection` as the DataLoader's collate_fn, since targets are ragged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from prunequant.errors import ConfigError, ModelError
from prunequant.tasks.base import BatchTransform, Task, mismatch
from prunequant.tasks.coco_map import BoxMAP
from prunequant.tasks.io import Outputs, describe
from prunequant.tasks.metric import MetricSpec
from prunequant.tasks.registry import resolve_callable
from prunequant.validation import check_int_range

Detections = list[dict[str, torch.Tensor]]


def collate_detection(samples: Sequence[Sequence[Any]]) -> tuple[Any, ...]:
    """DataLoader collate_fn for samples ``(image, ..., target)``: inputs stacked, targets kept as a list.

    Parameters
    ----------
    samples:
        Dataset items, each ``(input, ..., target_dict)``.

    Returns
    -------
    ``(stacked_input, ..., [target_dict, ...])``.
    """
    columns = list(zip(*samples, strict=True))
    return (*(torch.stack(list(column)) for column in columns[:-1]), list(columns[-1]))


def _resolve(spec: Any, options: Mapping[str, Any] | None, what: str) -> Callable[..., Any]:
    resolved = resolve_callable(spec, what)
    return resolved(**options) if options is not None else resolved


class DetectionTask(Task):
    """Boxes from the user's decoder, scored by mAP@0.5 (and mAP@[.5:.95]) with pycocotools.

    Parameters
    ----------
    decode:
        ``decode(outputs) -> [{"boxes": [N, 4] xyxy, "scores": [N], "labels": [N]}, ...]`` (one dict per
        image), or ``"package.module:name"`` naming it.
    loss:
        Optional ``loss(outputs, targets) -> scalar tensor`` (or ``"package.module:name"``); needed only to
        train or fine-tune (without it, scoring reports a NaN loss and `describe()` says ``has_loss``).
    decode_options, loss_options:
        When given, `decode` / `loss` name factories called with these keyword options to make the callable.
    max_detections:
        Highest-scoring boxes per image and class that count for mAP (COCO: 100).
    transform_fn, target_key:
        See `Task`.
    """

    name = "detection"
    metrics = (
        MetricSpec("map50", "%", True, "mAP@0.5"),
        MetricSpec("map", "%", True, "mAP@[.5:.95]"),
    )
    primary = "map50"

    def __init__(
        self,
        *,
        decode: Callable[[Outputs], Detections] | str | None = None,
        loss: Callable[[Outputs, Any], torch.Tensor] | str | None = None,
        decode_options: Mapping[str, Any] | None = None,
        loss_options: Mapping[str, Any] | None = None,
        max_detections: int = 100,
        transform_fn: BatchTransform | None = None,
        target_key: str = "target",
    ) -> None:
        super().__init__(transform_fn=transform_fn, target_key=target_key)
        if decode is None:
            raise ConfigError(
                "task 'detection' needs decode: a function from the model's outputs to per-image "
                "{boxes, scores, labels} dicts, e.g. decode = 'mypkg.yolo:decode'"
            )
        self.decode = _resolve(decode, decode_options, "decode function")
        self.loss_fn = None if loss is None else _resolve(loss, loss_options, "detection loss")
        self.max_detections = check_int_range("max_detections", max_detections, 1, 1_000_000)

    def detections(self, outputs: Outputs, target: Any) -> Detections:
        """The decoded detections, checked per image against `target`; ModelError naming both otherwise."""
        _check_targets(self, outputs, target)
        decoded = _call_user(self.decode, "decode", outputs, target)
        keys = ("boxes", "scores", "labels")
        if not isinstance(decoded, (list, tuple)) or len(decoded) != len(target) or not all(
            isinstance(d, Mapping) and all(isinstance(d.get(k), torch.Tensor) for k in keys) for d in decoded
        ):
            raise ModelError(
                f"task 'detection': decode must return one {{boxes, scores, labels}} dict per image "
                f"({len(target)} images), but for the model's {describe(outputs)} it returned "
                f"{describe(decoded)}; fix the decode function or the model"
            )
        for d in decoded:
            n = d["boxes"].numel() // 4
            if d["boxes"].numel() % 4 or d["scores"].numel() != n or d["labels"].numel() != n:
                raise ModelError(
                    f"task 'detection': decode returned {describe(d)}; boxes must be [N, 4] with N scores "
                    "and N labels"
                )
        return list(decoded)

    def check(self, outputs: Outputs, target: Any) -> None:
        self.detections(outputs, target)

    def loss(self, outputs: Outputs, target: Any) -> torch.Tensor:
        """The user loss; without one, NaN when scoring (no gradient) and ConfigError when training."""
        _check_targets(self, outputs, target)
        if self.loss_fn is not None:
            return _call_user(self.loss_fn, "loss", outputs, target)
        if torch.is_grad_enabled():
            raise ConfigError(
                "task 'detection' has no loss to train with; give loss = 'mypkg.module:loss', a function "
                "(outputs, targets) -> scalar tensor"
            )
        return torch.tensor(float("nan"))

    def describe(self) -> dict[str, Any]:
        """Task summary, with whether a training loss was given."""
        return {**super().describe(), "has_loss": self.loss_fn is not None}

    def metric_state(self) -> _DetectionState:
        return _DetectionState(self)


def _check_targets(task: Task, outputs: Outputs, target: Any) -> None:
    ok = isinstance(target, (list, tuple)) and all(
        isinstance(t, Mapping) and isinstance(t.get("boxes"), torch.Tensor)
        and isinstance(t.get("labels"), torch.Tensor) for t in target
    )
    if not ok:
        raise ModelError(mismatch(
            task, outputs, target,
            "targets as a list of {boxes, labels} dicts, one per image (collate_fn=collate_detection)",
        ))


def _call_user(fn: Callable[..., Any], what: str, outputs: Outputs, target: Any) -> Any:
    """`fn(outputs)` (decode) or `fn(outputs, target)` (loss); its failures become one ModelError."""
    try:
        return fn(outputs, target) if what == "loss" else fn(outputs)
    except Exception as exc:
        raise ModelError(
            f"task 'detection': {what} failed on the model's {describe(outputs)} for {len(target)} images "
            f"({type(exc).__name__}: {exc}); check that {what} fits the model's heads"
        ) from exc


class _DetectionState:
    def __init__(self, task: DetectionTask) -> None:
        self.task = task
        self.map = BoxMAP(task.max_detections)

    def update(self, outputs: Outputs, target: Any) -> None:
        self.map.update(self.task.detections(outputs, target), list(target))

    def compute(self) -> dict[str, float]:
        return self.map.compute()
