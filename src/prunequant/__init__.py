"""prunequant: prune and quantize trained CNNs, measure the real cost and gain, ship a faster model."""

from prunequant.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    ExportError,
    ModelError,
    PrunequantError,
    UnsupportedLayerError,
)
from prunequant.models import build_from_spec, load_checkpoint, save_checkpoint
from prunequant.profiling import profile
from prunequant.training import TrainConfig, Trainer, evaluate

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "ExportError",
    "ModelError",
    "PrunequantError",
    "TrainConfig",
    "Trainer",
    "UnsupportedLayerError",
    "build_from_spec",
    "evaluate",
    "load_checkpoint",
    "profile",
    "save_checkpoint",
]
