"""Seed 004's layer pruning as a lab stage: whole residual blocks removed, ranked by BN gamma.

After the sparsity training of [layer_prune] (shared with [slimming] when their penalty and epochs agree),
each count of `blocks` removes that many identity residual blocks, the shortcut and both convs together
(prunequant.pruning.structured.layer_pruning; a removed block becomes nn.Identity), lowest mean |gamma| of
the block's last BN first. Each is measured as pruned and after a fine-tune at each LR + refine at LR/10.
Trials are of kind "compress" with step op "layers"; their extra names the removed blocks and every
candidate's score.
"""

from __future__ import annotations

from typing import Any

from prunequant.lab.env import Env
from prunequant.lab.ops import Applied, register_op
from prunequant.lab.runner import Session
from prunequant.lab.slimming import run_levels

STAGE = "layer_prune"


@register_op("layers")
def _layers(applied: Applied, step: dict[str, Any], env: Env) -> Applied:
    """Remove `blocks` identity residual blocks ranked by `importance` (bn_gamma, l1 or random)."""
    from prunequant.pruning.structured import prune_layers

    result = prune_layers(applied.model, env.sample, step["blocks"], step["importance"], return_result=True)
    applied.model = result.model
    applied.info["layers"] = {**result.meta(), "scores": result.scores}
    return applied


def run_layer_prune(session: Session) -> None:
    """Sparsity training (unless 0 epochs), then each count of blocks removed."""
    section = session.recipe.layer_prune
    levels = [
        (
            {"op": "layers", "blocks": blocks, "importance": section.importance},
            f"remove {blocks} residual block{'s' if blocks > 1 else ''} ({section.importance})",
        )
        for blocks in section.blocks
    ]
    run_levels(session, STAGE, section, levels)
