"""MaskCallback: keeps pruned weights exactly zero through every optimizer step of the Trainer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prunequant.pruning.unstructured.masks import apply_masks, mask_gradients
from prunequant.training import Callback

if TYPE_CHECKING:
    from prunequant.training import Trainer


class MaskCallback(Callback):
    """Pruning-aware training: masked entries get zero gradient, and after each step the weights and the
    optimizer state (momentum, Adam moments) are masked again, so weight decay or momentum cannot revive
    them. Reads the masks from the model every batch, so masks changed by a schedule take effect at once.
    """

    def on_after_backward(self, trainer: Trainer) -> None:
        mask_gradients(trainer.model)

    def on_batch_end(self, trainer: Trainer, batch: int, loss: float) -> None:
        apply_masks(trainer.model, trainer.optimizer)

    def on_train_end(self, trainer: Trainer) -> None:
        apply_masks(trainer.model)  # early stopping may have restored weights from before the last pruning
