"""Training, fine-tuning and evaluation: one Trainer driven by callbacks."""

from prunequant.training.callbacks import Callback
from prunequant.training.config import LR_SCHEDULES, LR_SCHEDULES_HELP, TrainConfig
from prunequant.training.evaluate import EvalResult, evaluate
from prunequant.training.finetune import FinetuneResult, finetune_then_refine
from prunequant.training.trainer import Trainer

__all__ = [
    "LR_SCHEDULES",
    "LR_SCHEDULES_HELP",
    "Callback",
    "EvalResult",
    "FinetuneResult",
    "TrainConfig",
    "Trainer",
    "evaluate",
    "finetune_then_refine",
]
