"""Unstructured magnitude pruning: percentile masks, schedules, dynamic threshold, torch.prune interop."""

from prunequant.pruning.unstructured.callbacks import MaskCallback
from prunequant.pruning.unstructured.config import SCOPES, UnstructuredConfig
from prunequant.pruning.unstructured.dynamic import DynamicConfig, DynamicResult, DynamicStep, dynamic_prune
from prunequant.pruning.unstructured.magnitude import PruneResult, apply_pruning, prune_unstructured
from prunequant.pruning.unstructured.masks import (
    MASK_SUFFIX,
    apply_masks,
    get_masks,
    has_masks,
    make_permanent,
    remove_masks,
    restore_masks,
)
from prunequant.pruning.unstructured.recipe import PruneFinetuneResult, prune_and_finetune
from prunequant.pruning.unstructured.report import SparsityReport, sparsity_report
from prunequant.pruning.unstructured.schedules import (
    SCHEDULES,
    AGPMagnitudePruning,
    IterativeMagnitudePruning,
    MagnitudeSchedule,
    OneShotMagnitudePruning,
    agp_sparsity,
    iterative_sparsity,
    make_schedule,
)
from prunequant.pruning.unstructured.sweep import sweep_unstructured
from prunequant.pruning.unstructured.sweep_report import plot_sweep, write_sweep
from prunequant.pruning.unstructured.torch_prune_interop import (
    from_torch_prune,
    is_torch_pruned,
    to_torch_prune,
)

__all__ = [
    "MASK_SUFFIX",
    "SCHEDULES",
    "SCOPES",
    "AGPMagnitudePruning",
    "DynamicConfig",
    "DynamicResult",
    "DynamicStep",
    "IterativeMagnitudePruning",
    "MaskCallback",
    "OneShotMagnitudePruning",
    "PruneFinetuneResult",
    "PruneResult",
    "MagnitudeSchedule",
    "SparsityReport",
    "UnstructuredConfig",
    "agp_sparsity",
    "apply_masks",
    "apply_pruning",
    "dynamic_prune",
    "from_torch_prune",
    "get_masks",
    "has_masks",
    "is_torch_pruned",
    "iterative_sparsity",
    "make_permanent",
    "make_schedule",
    "plot_sweep",
    "prune_and_finetune",
    "prune_unstructured",
    "remove_masks",
    "restore_masks",
    "sparsity_report",
    "sweep_unstructured",
    "to_torch_prune",
    "write_sweep",
]
