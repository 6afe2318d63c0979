"""Quantization-aware fine-tuning: the seeds' recipe (LR, then LR/10) on a fake-quantized model."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from torch import nn

from prunequant.errors import ConfigError
from prunequant.quantization.calibrate import calibrate
from prunequant.quantization.wrappers import activation_quantizers, is_quantized, quantized_layers
from prunequant.tasks import Task
from prunequant.training import (
    Callback,
    Distillation,
    FinetuneResult,
    TrainConfig,
    Trainer,
    finetune_then_refine,
)


class RefreshWeightScales(Callback):
    """After each training phase, recompute max|w| weight scales from the final weights, so eval, export
    and packed storage agree with the trained weights (moving-average ranges are kept as they are)."""

    def on_train_end(self, trainer: Trainer) -> None:
        refresh_weight_qparams(trainer.model)


def refresh_weight_qparams(qmodel: nn.Module) -> None:
    """Recompute every max|w| weight scale of `qmodel` from its current weights (in place)."""
    for _, layer in quantized_layers(qmodel):
        layer.refresh_weight_qparams()


def quantization_aware_finetune(
    qmodel: nn.Module,
    train_loader: Iterable,
    val_loader: Iterable,
    config: TrainConfig,
    *,
    refine_epochs: int | None = None,
    refine_factor: float = 0.1,
    calib_batches: int = 32,
    callbacks: Sequence[Callback] = (),
    task: Task | None = None,
    distill: Distillation | None = None,
    bn_recalibrate: int = 0,
) -> FinetuneResult:
    """Fine-tune a `quantize()`d model IN PLACE: config.epochs at config.lr, then `refine_epochs` at
    lr * refine_factor (seeds 000/003), with straight-through gradients through every fake quantizer.

    Uncalibrated activation ranges are first calibrated on `calib_batches` training batches. In training
    mode the ranges follow the data (moving averages with calibration="ema", seed 003 Alg. 2/3); weights
    that were zero when quantized (pruned) stay zero.

    Parameters
    ----------
    qmodel:
        A model returned by `quantize()`.
    train_loader, val_loader, config, refine_epochs, refine_factor, callbacks, distill, bn_recalibrate:
        As for finetune_then_refine.
    calib_batches:
        Training batches that calibrate still-uncalibrated activation ranges.
    task:
        Splits the batches, gives the loss and the validation metrics (default classification).

    Returns
    -------
    FinetuneResult with the task's validation metrics after each phase.
    """
    if not is_quantized(qmodel):
        raise ConfigError(
            "quantization-aware training needs a quantized model; call quantize(model, config) first"
        )
    if any(not quantizer.calibrated for quantizer in activation_quantizers(qmodel)):
        calibrate(qmodel, train_loader, calib_batches)
    return finetune_then_refine(
        qmodel,
        train_loader,
        val_loader,
        config,
        refine_epochs=refine_epochs,
        refine_factor=refine_factor,
        callbacks=[*callbacks, RefreshWeightScales()],
        task=task,
        distill=distill,
        bn_recalibrate=bn_recalibrate,
    )


qat = quantization_aware_finetune
