"""prunequant: prune and quantize trained CNNs, measure the real cost and gain, ship a faster model.

Importing the package registers every module type a checkpoint may contain (quantized and pruned layers),
so `load_checkpoint` / `load` work on any prunequant checkpoint.
"""

from prunequant import models
from prunequant.data import register_dataset
from prunequant.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    ExportError,
    ModelError,
    PrunequantError,
    UnsupportedLayerError,
)
from prunequant.export import OnnxRunner, bench, export_int8, export_onnx, parity
from prunequant.export.storage import load_compressed, save_compressed, save_quantized
from prunequant.lab import load_recipe, run_recipe
from prunequant.models import build_from_spec, load_checkpoint, register_model, save_checkpoint
from prunequant.profiling import profile
from prunequant.pruning import (
    MaskCallback,
    apply_masks,
    dependency_groups,
    dynamic_prune,
    make_permanent,
    prune_channels,
    prune_layers,
    prune_unstructured,
    recalibrate_bn,
    register_importance,
    register_op,
    remove_masks,
    restore_masks,
    sparsity_report,
)
from prunequant.quantization import (
    QuantConfig,
    calibrate,
    memory_report,
    quantization_aware_finetune,
    quantize,
    zero_share,
)
from prunequant.report import write_report
from prunequant.tasks import register_task, with_transform
from prunequant.training import (
    Distillation,
    EarlyStopping,
    TrainConfig,
    Trainer,
    evaluate,
    finetune_then_refine,
)

save = save_checkpoint
load = load_checkpoint

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "Distillation",
    "EarlyStopping",
    "ExportError",
    "MaskCallback",
    "ModelError",
    "OnnxRunner",
    "PrunequantError",
    "QuantConfig",
    "TrainConfig",
    "Trainer",
    "UnsupportedLayerError",
    "apply_masks",
    "bench",
    "build_from_spec",
    "calibrate",
    "dependency_groups",
    "dynamic_prune",
    "evaluate",
    "export_int8",
    "export_onnx",
    "finetune_then_refine",
    "load",
    "load_checkpoint",
    "load_compressed",
    "load_recipe",
    "make_permanent",
    "memory_report",
    "models",
    "parity",
    "profile",
    "prune_channels",
    "prune_layers",
    "prune_unstructured",
    "quantization_aware_finetune",
    "quantize",
    "recalibrate_bn",
    "register_dataset",
    "register_importance",
    "register_model",
    "register_op",
    "register_task",
    "remove_masks",
    "restore_masks",
    "run_recipe",
    "save",
    "save_checkpoint",
    "save_compressed",
    "save_quantized",
    "sparsity_report",
    "with_transform",
    "write_report",
    "zero_share",
]
