"""observe_batches: the no-grad loop over the first batches shared by BN recalibration and calibration."""

import pytest
import torch
from torch import nn

from prunequant.errors import DataError
from prunequant.quantization import activation_quantizers, calibrate, quantize
from prunequant.tasks import default_task
from prunequant.training import recalibrate_bn
from prunequant.training.observe import observe_batches


class Recorder(nn.Module):
    """Keeps every input it is fed and whether gradients were on."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []
        self.grad: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x)
        self.grad.append(torch.is_grad_enabled())
        return x


def test_it_feeds_the_inputs_of_at_most_max_batches_without_gradients():
    batches = [(torch.full((2, 1), float(i)), torch.zeros(2)) for i in range(5)]
    model = Recorder()
    assert observe_batches(model, batches, 3, task=default_task(), empty="none") == 3
    assert [x[0, 0].item() for x in model.seen] == [0.0, 1.0, 2.0] and model.grad == [False] * 3
    assert observe_batches(Recorder(), batches[:2], 3, task=default_task(), empty="none") == 2


def test_an_empty_loader_is_the_callers_data_error_line():
    with pytest.raises(DataError, match="^nothing to see$"):
        observe_batches(Recorder(), [], 3, task=default_task(), empty="nothing to see")


def test_both_callers_keep_their_empty_loader_lines_and_restore_their_state():
    model = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2))
    with pytest.raises(DataError, match="no batches to recalibrate BatchNorm"):
        recalibrate_bn(model, [])
    assert model[1].momentum == 0.1 and not model.training
    qmodel = quantize(nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU()), example_input=torch.zeros(1, 1, 2, 2))
    with pytest.raises(DataError, match="the calibration loader gave no batches"):
        calibrate(qmodel, [])
    assert not any(quantizer.observing for quantizer in activation_quantizers(qmodel))
