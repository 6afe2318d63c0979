"""ReconstructionTask: target from the input, MSE and per-image PSNR by hand, options, checks, a tiny AE."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from prunequant.errors import ConfigError, DataError
from prunequant.tasks import ReconstructionTask, build_task


def test_target_is_the_input_by_default():
    x, label = torch.randn(2, 1, 4, 4), torch.tensor([0, 1])
    task = ReconstructionTask()
    for batch in (x, (x,), (x, label), [x, label, label], {"image": x}):
        inputs, target = task.split(batch)
        assert inputs is x and target is x
    paired = ReconstructionTask(target="target")
    assert paired.split((x, x + 1))[1].sum() == (x + 1).sum()
    with pytest.raises(DataError, match="target='input'"):
        task.split(["not a tensor"])


def test_mse_and_psnr_by_hand():
    clean = torch.zeros(2, 1, 2, 2)
    noisy = clean.clone()
    noisy[0] += 0.1  # MSE 0.01 -> 20 dB
    noisy[1] += 0.01  # MSE 0.0001 -> 40 dB
    state = ReconstructionTask().metric_state()
    state.update(noisy[:1], clean[:1])
    state.update(noisy[1:], clean[1:])
    result = state.compute()
    assert result["mse"] == pytest.approx((0.01 + 0.0001) / 2)
    assert result["psnr"] == pytest.approx(30.0)  # mean of the per-image PSNRs


def test_data_range_and_primary_options():
    clean, noisy = torch.zeros(1, 3, 2, 2), torch.full((1, 3, 2, 2), 0.2)
    state = ReconstructionTask(data_range=2.0).metric_state()
    state.update(noisy, clean)
    assert state.compute()["psnr"] == pytest.approx(10 * math.log10(4 / 0.04))
    task = ReconstructionTask(primary="psnr")
    assert task.primary == "psnr" and task.primary_metric.higher_is_better
    assert not ReconstructionTask().primary_metric.higher_is_better
    with pytest.raises(ConfigError, match="primary"):
        ReconstructionTask(primary="ssim")
    with pytest.raises(ConfigError, match="data_range"):
        ReconstructionTask(data_range=0)


@pytest.mark.parametrize(("kind", "expected"), [("mse", 0.25), ("l1", 0.5)])
def test_losses(kind, expected):
    assert float(ReconstructionTask(loss=kind).loss(torch.full((2, 3), 0.5), torch.zeros(2, 3))) == expected


@pytest.mark.parametrize(
    ("outputs", "target", "words"),
    [
        (torch.randn(4, 10), torch.zeros(4, 1, 8, 8), ["Tensor[4, 10]", "Tensor[4, 1, 8, 8]"]),
        ((torch.randn(4, 1, 8, 8), torch.randn(4, 2), torch.randn(4, 2)), torch.zeros(4, 1, 4, 4),
         ["tuple(", "Tensor[4, 1, 4, 4]"]),
        (torch.randn(4, 1, 8, 8), None, ["NoneType"]),
    ],
)
def test_check_names_outputs_and_target(refused, outputs, target, words):
    refused(lambda: ReconstructionTask().check(outputs, target), "reconstruction", words)


class TinyAutoencoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encode = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU())
        self.decode = nn.Sequential(nn.ConvTranspose2d(4, 1, 4, stride=2, padding=1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


def test_tiny_autoencoder_learns(fit):
    torch.manual_seed(0)
    images = torch.rand(16, 1, 8, 8).round()
    loader = DataLoader(TensorDataset(images, torch.zeros(16, dtype=torch.long)), batch_size=8)
    before, after = fit(TinyAutoencoder(), loader, build_task("reconstruction"), epochs=12, lr=0.03)
    assert after.score < 0.7 * before.score and after.psnr > before.psnr
