"""Learning-rate schedules by name; each returns the LR multiplier for an epoch."""

from __future__ import annotations

import math

import torch

from prunequant.training.config import TrainConfig


def lr_factor(config: TrainConfig, epoch: int) -> float:
    """Multiplier applied to config.lr during `epoch` (0-based)."""
    if config.lr_schedule == "constant":
        return 1.0
    if config.lr_schedule == "step":
        return config.gamma ** (epoch // config.step_size)
    if config.lr_schedule == "refine":
        switch = math.ceil(config.epochs * config.refine_start)
        return 1.0 if epoch < switch else config.refine_factor
    # cosine, from lr down to ~0 at the end of the last epoch
    return 0.5 * (1.0 + math.cos(math.pi * epoch / max(1, config.epochs)))


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-epoch LambdaLR implementing `config.lr_schedule`."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: lr_factor(config, epoch))


def build_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD (with momentum) or Adam over the trainable parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
