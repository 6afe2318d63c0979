"""Parity figures: agreement, both accuracies, their difference and logit differences, checked exactly."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from prunequant.errors import DataError
from prunequant.export.onnx_fp32 import export_onnx
from prunequant.export.parity import parity
from prunequant.export.runtime import OnnxRunner
from prunequant.training import evaluate


class Shifted(nn.Module):
    """`model` with `shift` added to its logits: a known, exact disagreement with the exported original."""

    def __init__(self, model: nn.Module, shift: torch.Tensor) -> None:
        super().__init__()
        self.model, self.shift = model, shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) + self.shift


@pytest.fixture(scope="module")
def runner(trained_tiny, tmp_path_factory):
    path = export_onnx(trained_tiny, tmp_path_factory.mktemp("parity") / "tiny.onnx", torch.randn(1, 1, 8, 8))
    return OnnxRunner(path, threads=1)


def test_an_exact_export_agrees_everywhere(trained_tiny, runner, blob_data):
    report = parity(trained_tiny, runner, blob_data.test)
    assert report.n == 384 and report.agreement == 1.0 and report.accuracy_diff == 0.0
    assert report.top1_torch == report.top1_onnx == evaluate(trained_tiny, blob_data.test).top1
    assert report.max_abs_logit_diff < 1e-5


def test_figures_of_a_known_disagreement(trained_tiny, runner, blob_data):
    shift = torch.tensor([0.0, 0.0, 0.0, 1.5])
    report = parity(Shifted(trained_tiny, shift), runner, blob_data.test, max_batches=3)
    inputs, targets = map(torch.cat, zip(*list(blob_data.test)[:3], strict=True))
    with torch.no_grad():
        logits = trained_tiny(inputs)
    moved, kept = (logits + shift).argmax(1), logits.argmax(1)
    assert report.n == 192
    assert report.agreement == pytest.approx(moved.eq(kept).float().mean().item())
    assert report.agreement < 1.0
    assert report.top1_torch == pytest.approx(moved.eq(targets).float().mean().item())
    assert report.top1_onnx == pytest.approx(kept.eq(targets).float().mean().item())
    assert report.accuracy_diff == pytest.approx(report.top1_onnx - report.top1_torch)
    assert report.max_abs_logit_diff == pytest.approx(1.5, abs=1e-5)
    assert report.mean_abs_logit_diff == pytest.approx(1.5 / 4, abs=1e-5)
    assert set(report.to_dict()) == {
        "agreement",
        "top1_torch",
        "top1_onnx",
        "accuracy_diff",
        "max_abs_logit_diff",
        "mean_abs_logit_diff",
        "n",
    }


def test_an_empty_loader_is_a_data_error(trained_tiny, runner):
    with pytest.raises(DataError, match="no samples"):
        parity(trained_tiny, runner, [])
