"""Training, fine-tuning and evaluation: one Trainer driven by callbacks."""

from prunequant.training.bn_recalibration import recalibrate_bn
from prunequant.training.callbacks import Callback
from prunequant.training.config import LR_SCHEDULES, LR_SCHEDULES_HELP, TrainConfig
from prunequant.training.distill import DISTILL_KINDS, Distillation, Distiller, distillation_loss
from prunequant.training.early_stopping import EarlyStopping
from prunequant.training.evaluate import EvalResult, evaluate
from prunequant.training.finetune import FinetuneResult, finetune_then_refine
from prunequant.training.trainer import Trainer

__all__ = [
    "DISTILL_KINDS",
    "LR_SCHEDULES",
    "LR_SCHEDULES_HELP",
    "Callback",
    "Distillation",
    "Distiller",
    "EarlyStopping",
    "EvalResult",
    "FinetuneResult",
    "TrainConfig",
    "Trainer",
    "distillation_loss",
    "evaluate",
    "finetune_then_refine",
    "recalibrate_bn",
]
