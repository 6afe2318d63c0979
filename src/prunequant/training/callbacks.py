"""Trainer callbacks: pruning and quantization schedules hook into the loop here, never by editing it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prunequant.training.trainer import Trainer


class Callback:
    """Base class; override any hook. Hooks run in list order.

    Order within one batch: on_batch_start -> forward -> `extra_loss` -> backward -> on_after_backward ->
    optimizer.step() -> on_batch_end. Masks that must stay zero are re-applied in on_batch_end.

    Every hook gets the Trainer, which holds the current batch as the task split it: `trainer.inputs` (a
    tensor, tuple or dict of tensors), `trainer.target`, and, from `extra_loss` on, `trainer.outputs` (as
    the model returned them) and `trainer.loss` (the task's loss tensor, before extra terms);
    `trainer.task` is the Task itself.
    """

    def on_train_start(self, trainer: Trainer) -> None: ...

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None: ...

    def on_batch_start(self, trainer: Trainer, batch: int) -> None: ...

    def extra_loss(self, trainer: Trainer) -> Any:
        """A term added to the loss before backward (e.g. a regulariser), or None."""
        return None

    def on_after_backward(self, trainer: Trainer) -> None: ...

    def on_batch_end(self, trainer: Trainer, batch: int, loss: float) -> None: ...

    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict[str, float]) -> None: ...

    def on_train_end(self, trainer: Trainer) -> None: ...
