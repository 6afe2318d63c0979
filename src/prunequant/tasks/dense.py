"""Dense regression and optical / scene flow: L1, L2 or EPE loss; end-point error and KITTI outlier rate.

torchmetrics has no end-point error, so the two metrics are written here (`endpoint_error`, `is_outlier`)
and tested against hand computations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from prunequant.errors import ConfigError, ModelError
from prunequant.tasks.base import BatchTransform, Task, mismatch
from prunequant.tasks.io import Outputs
from prunequant.tasks.metric import MetricSpec
from prunequant.tasks.select import check_output_index, select_output
from prunequant.validation import check_choice, check_positive

LOSSES = ("l1", "l2", "epe")


def endpoint_error(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-pixel L2 norm of the error vector over the channel axis: [B, K, H, W] -> [B, H, W]."""
    return torch.linalg.vector_norm(prediction - target, dim=1)


def is_outlier(
    error: torch.Tensor, target: torch.Tensor, pixels: float = 3.0, fraction: float = 0.05
) -> torch.Tensor:
    """KITTI Fl outliers: end-point error > `pixels` AND > `fraction` of the true vector's magnitude."""
    return (error > pixels) & (error > fraction * torch.linalg.vector_norm(target, dim=1))


class DenseRegressionTask(Task):
    """Per-pixel vectors [batch, K, H, W] (any K), with an optional validity mask for sparse ground truth.

    The target is a tensor [B, K, H, W], a ``(target, valid)`` pair or a dict with ``"flow"``/``"target"``
    and ``"valid"``/``"mask"``; valid is [B, H, W] or [B, 1, H, W] (bool or 0/1). Non-finite target pixels
    are invalid too. Metrics pool every valid pixel of the data set.

    Parameters
    ----------
    loss:
        ``"l1"`` (mean |error| per component), ``"l2"`` (mean squared error per component) or ``"epe"``
        (mean end-point error), all over valid pixels.
    output_index:
        Which output is scored when the model returns several (a coarse-to-fine pyramid): position or key.
    multiscale_weights:
        Optional loss weights, one per output of a pyramid: the loss is their weighted sum, each scale
        against the target resized to it (flow values scaled by the size ratio for `FlowTask`).
    outlier_pixels, outlier_fraction:
        Outliers: error > `outlier_pixels` and > `outlier_fraction` x true magnitude (KITTI: 3, 0.05).
    transform_fn, target_key:
        See `Task`.
    """

    name = "regression"
    metrics = (
        MetricSpec("epe", "", False, "mean end-point error"),
        MetricSpec("outlier_rate", "%", False, "outlier rate"),
    )
    primary = "epe"
    channels: int | None = None
    scale_values = False

    def __init__(
        self,
        *,
        loss: str = "l1",
        output_index: int | str = 0,
        multiscale_weights: Sequence[float] | None = None,
        outlier_pixels: float = 3.0,
        outlier_fraction: float = 0.05,
        transform_fn: BatchTransform | None = None,
        target_key: str = "target",
    ) -> None:
        super().__init__(transform_fn=transform_fn, target_key=target_key)
        self.loss_kind = check_choice("loss", loss, LOSSES)
        self.output_index = check_output_index(output_index)
        if multiscale_weights is not None:
            multiscale_weights = [float(w) for w in multiscale_weights]
            if not multiscale_weights or any(w < 0 for w in multiscale_weights):
                raise ConfigError(f"multiscale_weights must be numbers >= 0, got {multiscale_weights}")
        self.multiscale_weights = multiscale_weights
        self.outlier_pixels = check_positive("outlier_pixels", outlier_pixels)
        self.outlier_fraction = check_positive("outlier_fraction", outlier_fraction)

    @property
    def expected(self) -> str:
        return f"a dense prediction [batch, {self.channels or 'K'}, H, W]"

    # ---- structure -----------------------------------------------------------------------------------
    def unpack(self, outputs: Outputs, target: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The scored prediction, the target vectors and the valid mask [B, H, W] (bool), all checked.

        Returns
        -------
        (prediction, target, valid); ModelError naming outputs and target when they do not fit.
        """
        prediction = select_output(self, outputs, target, self.output_index, self.expected)
        vectors, valid = self._target(outputs, target)
        if prediction.dim() != 4 or (self.channels is not None and prediction.shape[1] != self.channels):
            raise ModelError(mismatch(self, outputs, target, self.expected))
        if prediction.shape != vectors.shape:
            raise ModelError(mismatch(self, outputs, target, f"{self.expected} of the target's shape"))
        return prediction, vectors, valid & torch.isfinite(vectors).all(dim=1)

    def _target(self, outputs: Outputs, target: Any) -> tuple[torch.Tensor, torch.Tensor]:
        valid: Any = None
        if isinstance(target, Mapping):
            vectors = target.get("flow", target.get("target"))
            valid = target.get("valid", target.get("mask"))
        elif isinstance(target, (tuple, list)) and len(target) == 2:
            vectors, valid = target
        else:
            vectors = target
        if not isinstance(vectors, torch.Tensor) or vectors.dim() != 4 or not vectors.dtype.is_floating_point:
            raise ModelError(mismatch(
                self, outputs, target,
                "a float target [batch, K, H, W], a (target, valid) pair or a dict with 'flow' and 'valid'",
            ))
        if valid is None:
            return vectors, torch.ones(vectors.shape[:1] + vectors.shape[2:], dtype=torch.bool,
                                       device=vectors.device)
        if isinstance(valid, torch.Tensor) and valid.dim() == 4 and valid.shape[1] == 1:
            valid = valid[:, 0]
        if not isinstance(valid, torch.Tensor) or valid.shape != vectors.shape[:1] + vectors.shape[2:]:
            raise ModelError(mismatch(self, outputs, target, "a valid mask [batch, H, W] beside the target"))
        return vectors, valid > 0.5 if valid.dtype.is_floating_point else valid.bool()

    def check(self, outputs: Outputs, target: Any) -> None:
        self.unpack(outputs, target)

    # ---- loss ----------------------------------------------------------------------------------------
    def loss(self, outputs: Outputs, target: Any) -> torch.Tensor:
        prediction, vectors, valid = self.unpack(outputs, target)
        if self.multiscale_weights is None:
            return self._loss(prediction, vectors, valid)
        pyramid = outputs if isinstance(outputs, (tuple, list)) else [outputs]
        if len(pyramid) != len(self.multiscale_weights) or not all(
            isinstance(p, torch.Tensor) and p.dim() == 4 for p in pyramid
        ):
            raise ModelError(mismatch(
                self, outputs, target, f"{len(self.multiscale_weights)} outputs (one per multiscale weight)"
            ))
        total = prediction.new_zeros(())
        for weight, scaled in zip(self.multiscale_weights, pyramid, strict=True):
            total = total + weight * self._loss(scaled, *self.resize_target(vectors, valid, scaled.shape[2:]))
        return total

    def _loss(self, prediction: torch.Tensor, vectors: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        error = (prediction - vectors).masked_fill(~valid[:, None], 0.0)
        count = valid.sum().clamp_min(1)
        if self.loss_kind == "epe":
            return torch.linalg.vector_norm(error, dim=1).sum() / count
        per_element = error.abs() if self.loss_kind == "l1" else error.square()
        return per_element.sum() / (count * prediction.shape[1])

    def resize_target(
        self, vectors: torch.Tensor, valid: torch.Tensor, size: Sequence[int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Target and valid mask at spatial `size`: bilinear when dense, nearest when sparse.

        For flow (`scale_values`), channel 0 (x) is scaled by the width ratio and channel 1 (y) by the
        height ratio, so vectors stay in the pixels of the new size.

        Returns
        -------
        (vectors [B, K, h, w], valid [B, h, w]).
        """
        height, width = vectors.shape[2:]
        if tuple(size) == (height, width):
            return vectors, valid
        vectors = torch.where(valid[:, None], vectors, torch.zeros_like(vectors))
        if bool(valid.all()):
            resized = F.interpolate(vectors, size=tuple(size), mode="bilinear", align_corners=False)
            mask = torch.ones_like(resized[:, 0], dtype=torch.bool)
        else:
            resized = F.interpolate(vectors, size=tuple(size), mode="nearest")
            mask = F.interpolate(valid[:, None].float(), size=tuple(size), mode="nearest")[:, 0] > 0.5
        if self.scale_values and resized.shape[1] >= 2:
            ratio = torch.ones(resized.shape[1], dtype=resized.dtype, device=resized.device)
            ratio[0], ratio[1] = size[1] / width, size[0] / height
            resized = resized * ratio[None, :, None, None]
        return resized, mask

    def metric_state(self) -> _DenseState:
        return _DenseState(self)


class _DenseState:
    """Sums of end-point error and outliers over every valid pixel seen (float64)."""

    def __init__(self, task: DenseRegressionTask) -> None:
        self.task = task
        self.error_sum = 0.0
        self.outliers = 0
        self.pixels = 0

    def update(self, outputs: Outputs, target: Any) -> None:
        prediction, vectors, valid = self.task.unpack(outputs, target)
        prediction, vectors = prediction.detach().double(), vectors.double()
        error = endpoint_error(prediction, vectors)
        outlier = is_outlier(error, vectors, self.task.outlier_pixels, self.task.outlier_fraction)
        self.error_sum += float(error[valid].sum())
        self.outliers += int(outlier[valid].sum())
        self.pixels += int(valid.sum())

    def compute(self) -> dict[str, float]:
        if not self.pixels:
            return {"epe": float("nan"), "outlier_rate": float("nan")}
        return {"epe": self.error_sum / self.pixels, "outlier_rate": self.outliers / self.pixels}


class FlowTask(DenseRegressionTask):
    """Optical / scene flow [batch, 2, H, W] in pixels: EPE (px) and the KITTI Fl outlier rate.

    Parameters are those of `DenseRegressionTask`; the pyramid's target is rescaled in value as well.
    """

    name = "flow"
    metrics = (
        MetricSpec("epe", "px", False, "end-point error"),
        MetricSpec("outlier_rate", "%", False, "outlier rate (Fl)"),
    )
    channels = 2
    scale_values = True
