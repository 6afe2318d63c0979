"""Post-training calibration: observe activation ranges on a few batches, in place."""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn

from prunequant.errors import ConfigError
from prunequant.quantization.wrappers import activation_quantizers
from prunequant.tasks import BatchTransform, Task, default_task, with_transform
from prunequant.training.observe import observe_batches
from prunequant.validation import check_int_range


def batch_inputs(batch: object, task: Task | None = None) -> object:
    """The model inputs of a loader batch, as `task` (default classification) splits it."""
    return (task or default_task()).inputs(batch)


def calibrate(
    qmodel: nn.Module,
    loader: Iterable,
    num_batches: int = 32,
    *,
    task: Task | None = None,
    transform_fn: BatchTransform | None = None,
) -> nn.Module:
    """Set every activation range of `qmodel` from its first `num_batches` batches; IN PLACE, returns it.

    Parameters
    ----------
    loader:
        Batches the task splits into model inputs (`task.inputs(batch)`): every input (tuple or dict) is fed.
    task:
        How a batch becomes inputs; default classification ((x, y) -> x; (a, b, ..., y) -> (a, b, ...)).
    transform_fn:
        ``batch -> (inputs, target)`` for batches of any other shape (dicts, extra fields).

    Previous ranges are forgotten. The model runs in eval mode (BN uses running statistics) with weights
    fake-quantized and activations passed through unquantized while observed.
    """
    task = with_transform(task, transform_fn)
    check_int_range("num_batches", num_batches, 1, 10**9)
    quantizers = activation_quantizers(qmodel)
    if not quantizers:
        raise ConfigError("the model has no activation quantizers to calibrate; quantize it with a_bits set")
    qmodel.eval()
    for quantizer in quantizers:
        quantizer.observer.reset()
        quantizer.observing = True
    try:
        observe_batches(
            qmodel,
            loader,
            num_batches,
            task=task,
            empty="the calibration loader gave no batches; give it at least one batch of inputs",
        )
    finally:
        for quantizer in quantizers:
            quantizer.observing = False
    return qmodel
