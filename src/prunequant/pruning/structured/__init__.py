"""Structured pruning with physical removal: channels, neurons and residual blocks, on any traceable CNN.

Two tiers: `dependency_groups` + `remove_channels_` (low level: coupled channel groups, rewrite), and
`prune_channels` / `prune_layers` (high level: score, allocate, remove, report).
"""

from prunequant.pruning.structured import codecs  # noqa: F401  (registers checkpoint codecs)
from prunequant.pruning.structured.allocation import keep_count
from prunequant.pruning.structured.graph import DependencyGraph, dependency_groups
from prunequant.pruning.structured.groups import ChannelGroup, Member
from prunequant.pruning.structured.importance import (
    ImportanceContext,
    available_importances,
    register_importance,
)
from prunequant.pruning.structured.layer_pruning import LayerPruneResult, prune_layers, residual_blocks
from prunequant.pruning.structured.op_tables import register_op
from prunequant.pruning.structured.prune import (
    ALLOCATIONS,
    ChannelPruneConfig,
    GroupPlan,
    StructuredPruneResult,
    prune_channels,
    prune_channels_,
)
from prunequant.pruning.structured.rewrite import remove_channels_
from prunequant.pruning.structured.schedules import (
    LayerwisePruning,
    OneShotPruning,
    StepwisePruning,
    reinitialize,
    reset_optimizer,
)
from prunequant.pruning.structured.sensitivity import SensitivityTable, amounts_from_table, sensitivity_scan
from prunequant.pruning.structured.slimming import BNSparsity
from prunequant.training.bn_recalibration import recalibrate_bn

__all__ = [
    "ALLOCATIONS",
    "BNSparsity",
    "ChannelGroup",
    "ChannelPruneConfig",
    "DependencyGraph",
    "GroupPlan",
    "ImportanceContext",
    "LayerPruneResult",
    "LayerwisePruning",
    "Member",
    "OneShotPruning",
    "SensitivityTable",
    "StepwisePruning",
    "StructuredPruneResult",
    "amounts_from_table",
    "available_importances",
    "dependency_groups",
    "keep_count",
    "prune_channels",
    "prune_channels_",
    "prune_layers",
    "register_importance",
    "register_op",
    "recalibrate_bn",
    "reinitialize",
    "remove_channels_",
    "reset_optimizer",
    "residual_blocks",
    "sensitivity_scan",
]
