"""Reconstruction and image-to-image generators: MSE or L1 loss, MSE and PSNR metrics (torchmetrics)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torchmetrics import MeanSquaredError
from torchmetrics.image import PeakSignalNoiseRatio

from prunequant.errors import DataError, ModelError
from prunequant.tasks.base import BatchTransform, Task, mismatch
from prunequant.tasks.fid import FID_SPEC, FrechetState, load_features
from prunequant.tasks.io import Inputs, Outputs
from prunequant.tasks.metric import MetricSpec
from prunequant.tasks.select import check_output_index, select_output
from prunequant.validation import check_choice, check_positive


class InputTargetTask(Task):
    """A task whose target may be the model's own input (autoencoders, VAEs).

    Parameters
    ----------
    target:
        ``"input"``: the target is the first element of the batch, which is also the input (the batch's
        own target, e.g. a class label, is ignored); ``"target"``: split as `Task` does (paired data,
        e.g. style transfer or denoising with a clean image).
    fid:
        A Fashion-MNIST classifier checkpoint (e.g. ``"builtin:fashion-mnist"``) adds the metric
        ``fid_fmnist``: the Fréchet distance between its features of the outputs and of the targets
        (prunequant.tasks.fid; not comparable to Inception FID). Empty: no FID.
    fid_pixels:
        ``"unit"`` (images in [0, 1]) or ``"normalized"`` (served as Fashion-MNIST's (x - mean) / std).
    transform_fn, target_key:
        See `Task`; a transform_fn takes precedence over `target`.
    """

    def __init__(
        self,
        *,
        target: str = "input",
        fid: str = "",
        fid_pixels: str = "unit",
        transform_fn: BatchTransform | None = None,
        target_key: str = "target",
    ) -> None:
        super().__init__(transform_fn=transform_fn, target_key=target_key)
        self.target_source = check_choice("target", target, ("input", "target"))
        self.fid_features = load_features(fid, fid_pixels) if fid else None
        if self.fid_features is not None:
            self.metrics = (*type(self).metrics, FID_SPEC)

    def fid_state(self) -> FrechetState | None:
        """A fresh FID-FMNIST accumulator, or None when the task was built without `fid`."""
        return FrechetState(self.fid_features) if self.fid_features is not None else None

    def split(self, batch: Any) -> tuple[Inputs, Any]:
        """(inputs, target); with ``target="input"`` both are the batch's first tensor."""
        if self.transform_fn is not None or self.target_source == "target":
            return super().split(batch)
        if isinstance(batch, torch.Tensor):
            first = batch
        elif isinstance(batch, Mapping):
            first = super().split(batch)[0] if self.target_key in batch else next(iter(batch.values()), None)
        elif isinstance(batch, (tuple, list)) and batch:
            first = batch[0]
        else:
            first = None
        if not isinstance(first, torch.Tensor):
            raise DataError(
                f"task '{self.name}' with target='input' needs a batch whose first item is the input tensor, "
                f"got {type(batch).__name__}; give the task a transform_fn or target='target'"
            )
        return first, first


class ReconstructionTask(InputTargetTask):
    """The model returns an image [batch, ...] of the target's shape.

    Parameters
    ----------
    loss:
        ``"mse"`` or ``"l1"``, mean over elements.
    data_range:
        Value range of the images for PSNR: 1.0 for [0, 1], 2.0 for tanh outputs in [-1, 1], 255 for bytes.
    primary:
        ``"mse"`` (default) or ``"psnr"``: the metric budgets and "best" follow.
    output_index:
        Which output is scored when the model returns several.
    target, fid, fid_pixels, transform_fn, target_key:
        See `InputTargetTask`.
    """

    name = "reconstruction"
    metrics = (
        MetricSpec("mse", "", False, "mean squared error"),
        MetricSpec("psnr", "dB", True, "PSNR"),
    )
    primary = "mse"

    def __init__(
        self,
        *,
        loss: str = "mse",
        data_range: float = 1.0,
        primary: str = "mse",
        output_index: int | str = 0,
        target: str = "input",
        fid: str = "",
        fid_pixels: str = "unit",
        transform_fn: BatchTransform | None = None,
        target_key: str = "target",
    ) -> None:
        super().__init__(
            target=target, fid=fid, fid_pixels=fid_pixels, transform_fn=transform_fn, target_key=target_key
        )
        self.loss_kind = check_choice("loss", loss, ("mse", "l1"))
        self.data_range = check_positive("data_range", data_range)
        self.primary = check_choice("primary", primary, tuple(m.name for m in self.metrics))
        self.output_index = check_output_index(output_index)

    def image(self, outputs: Outputs, target: Any) -> torch.Tensor:
        """The scored output, checked to have the target's shape; ModelError naming both otherwise."""
        expected = "an image of the target's shape"
        image = select_output(self, outputs, target, self.output_index, expected)
        if not isinstance(target, torch.Tensor) or image.shape != target.shape or image.dim() < 2:
            raise ModelError(mismatch(self, outputs, target, expected))
        return image

    def check(self, outputs: Outputs, target: Any) -> None:
        self.image(outputs, target)

    def loss(self, outputs: Outputs, target: Any) -> torch.Tensor:
        image = self.image(outputs, target)
        target = target.to(image.dtype)
        return F.mse_loss(image, target) if self.loss_kind == "mse" else F.l1_loss(image, target)

    def metric_state(self) -> _ReconstructionState:
        return _ReconstructionState(self)


class _ReconstructionState:
    """MSE over every element seen; PSNR per sample (over all its elements), averaged over samples; the
    FID-FMNIST of the images against the targets when the task has `fid`."""

    def __init__(self, task: ReconstructionTask) -> None:
        self.task = task
        self.mse = MeanSquaredError()
        self.psnr: PeakSignalNoiseRatio | None = None
        self.fid = task.fid_state()

    def update(self, outputs: Outputs, target: Any) -> None:
        image = self.task.image(outputs, target).detach().double().cpu()
        target = target.detach().double().cpu()
        if self.psnr is None:
            dims = tuple(range(1, image.dim()))
            self.psnr = PeakSignalNoiseRatio(
                data_range=self.task.data_range, dim=dims, reduction="elementwise_mean"
            )
        self.mse.update(image, target)
        self.psnr.update(image, target)
        if self.fid is not None:
            self.fid.update(image, target)

    def compute(self) -> dict[str, float]:
        if self.psnr is None:
            result = {"mse": float("nan"), "psnr": float("nan")}
        else:
            result = {"mse": float(self.mse.compute()), "psnr": float(self.psnr.compute())}
        if self.fid is not None:
            result[FID_SPEC.name] = self.fid.compute()
        return result
