"""The recipe sections of seed 004's two BN-gamma stages: [slimming] (sparsity training, then channel
pruning by |gamma|) and [layer_prune] (removal of whole residual blocks ranked by their last BN's gamma).

Both start from the sparsity-trained model: `sparsity_epochs` of training at the baseline LR with the L1
penalty `penalty` * sum |gamma| (seed 004 formula 1). Two stages with the same penalty and epochs share
one sparsity-training trial; `sparsity_epochs = 0` ranks the plainly trained baseline's gammas instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from prunequant.errors import ConfigError
from prunequant.lab.sections import Finetune, check_amounts
from prunequant.validation import check_choice, check_int_range, check_positive

SLIMMING_ALLOCATIONS = ("global", "uniform")
BLOCK_IMPORTANCE = ("bn_gamma", "l1", "random")


@dataclass(frozen=True)
class SparsityTraining:
    """Network slimming's sparsity training: `sparsity_epochs` at the baseline LR with L1 `penalty` on
    every BN gamma (0 epochs: no sparsity training)."""

    penalty: float = 1e-4
    sparsity_epochs: int = 1

    def __post_init__(self) -> None:
        check_positive("penalty", self.penalty)
        check_int_range("sparsity_epochs", self.sparsity_epochs, 0, 100_000)


@dataclass(frozen=True)
class SlimmingSection(SparsityTraining, Finetune):
    """Seed 004 channel pruning: after sparsity training, remove `amounts` of the channels with the
    smallest |gamma| (importance bn_gamma), then fine-tune at each of `lrs` and refine at LR/10.

    `allocation` "global" ranks channels across layers (prunequant's global allocation compares scores
    normalised by each group's mean); "uniform" removes the same share from every layer.
    """

    amounts: tuple[float, ...] = ()
    allocation: str = "global"
    round_to: int = 1

    def __post_init__(self) -> None:
        SparsityTraining.__post_init__(self)
        Finetune.__post_init__(self)
        check_amounts("amounts", self.amounts)
        check_choice("allocation", self.allocation, SLIMMING_ALLOCATIONS)
        check_int_range("round_to", self.round_to, 1, 4096)


@dataclass(frozen=True)
class LayerPruneSection(SparsityTraining, Finetune):
    """Seed 004 layer pruning: after sparsity training, remove `blocks` whole identity residual blocks
    (shortcut and both convs; lowest `importance` first: the mean |gamma| of the block's last BN), then
    fine-tune at each of `lrs` and refine at LR/10."""

    blocks: tuple[int, ...] = ()
    importance: str = "bn_gamma"

    def __post_init__(self) -> None:
        SparsityTraining.__post_init__(self)
        Finetune.__post_init__(self)
        if not self.blocks:
            raise ConfigError("blocks must list at least one count of residual blocks to remove, e.g. [1, 2]")
        for index, value in enumerate(self.blocks):
            check_int_range(f"blocks[{index}]", value, 1, 100_000)
        check_choice("importance", self.importance, BLOCK_IMPORTANCE)
