"""FID-FMNIST: the Fréchet distance checked by hand on Gaussians of known mean and covariance, the builtin
classifier's penultimate features, and the metric inside the vae and reconstruction tasks."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from prunequant.errors import ModelError
from prunequant.tasks import ReconstructionTask, VAETask
from prunequant.tasks.fid import FrechetState, PenultimateFeatures, load_features


class Identity(nn.Module):
    """Features = the values themselves, so the Gaussians are those of the samples."""

    def __init__(self, dims: int) -> None:
        super().__init__()
        self.num_features = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


def exact_samples(mean: torch.Tensor, cov: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """n samples whose sample mean and unbiased sample covariance are exactly `mean` and `cov`."""
    z = torch.randn(n, len(mean), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    z = z - z.mean(0)
    z = z @ torch.linalg.inv(torch.linalg.cholesky(z.T @ z / (n - 1))).T  # whitened: cov exactly I
    return mean + z @ torch.linalg.cholesky(cov).T


def distance(real: torch.Tensor, generated: torch.Tensor) -> float:
    state = FrechetState(Identity(real.shape[1]))
    state.update(generated, real)
    return state.compute()


def test_one_dimensional_by_hand():
    real = torch.tensor([[-1.0], [1.0]])  # mean 0, unbiased variance 2
    # mean 4, variance 2: 4^2 + 2 + 2 - 2 sqrt(2 * 2) = 16
    assert distance(real, torch.tensor([[3.0], [5.0]])) == pytest.approx(16.0, abs=1e-4)
    # mean 4, variance 8: 16 + 2 + 8 - 2 sqrt(16) = 18
    assert distance(real, torch.tensor([[2.0], [6.0]])) == pytest.approx(18.0, abs=1e-4)
    assert distance(real, real.clone()) == pytest.approx(0.0, abs=1e-5)


def test_diagonal_gaussians_known_distance():
    mu_r, mu_g = torch.tensor([0.0, 1.0, -2.0]), torch.tensor([1.0, 1.0, 0.0])
    var_r, var_g = torch.tensor([1.0, 4.0, 0.25]), torch.tensor([4.0, 1.0, 0.25])
    real = exact_samples(mu_r.double(), torch.diag(var_r).double(), 64, 0)
    generated = exact_samples(mu_g.double(), torch.diag(var_g).double(), 80, 1)
    # |dmu|^2 = 1 + 0 + 4; per dim var_r + var_g - 2 sqrt(var_r var_g) = 1, 1, 0
    assert distance(real, generated) == pytest.approx(5.0 + 2.0, abs=1e-3)


def test_rotated_covariance_against_identity():
    angle = 0.7
    rotation = torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    cov = (rotation @ torch.diag(torch.tensor([9.0, 0.25])) @ rotation.T).double()
    real = exact_samples(torch.zeros(2, dtype=torch.float64), torch.eye(2, dtype=torch.float64), 50, 2)
    generated = exact_samples(torch.tensor([3.0, 4.0]).double(), cov, 50, 3)
    # S_r = I: Tr(I + S - 2 S^1/2) = 2 + 9.25 - 2 (3 + 0.5); |dmu|^2 = 25
    assert distance(real, generated) == pytest.approx(25.0 + 11.25 - 7.0, abs=1e-3)


def test_fewer_than_two_samples_is_nan():
    assert math.isnan(distance(torch.zeros(1, 2), torch.zeros(1, 2)))


def test_builtin_classifier_penultimate_features():
    features = load_features()
    assert features.num_features == 128 and not features.training
    images = torch.rand(4, 1, 28, 28)
    out = features(images)
    assert out.shape == (4, 128) and (out >= 0).all()  # after the hidden ReLU
    normalized = PenultimateFeatures(features.classifier, "normalized")
    assert torch.allclose(normalized((images - 0.2860) / 0.3530), out, atol=1e-5)
    features.train()
    assert not features.training and not features.classifier.training
    with pytest.raises(ModelError, match="FID-FMNIST features need"):
        features(torch.rand(2, 3, 28, 28))


class TinyVAE(nn.Module):
    """recon = the input blended with gray by `blur` (0: perfect reconstruction)."""

    def __init__(self, blur: float) -> None:
        super().__init__()
        self.blur = blur

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        recon = (1 - self.blur) * x + self.blur * 0.5
        return recon, torch.zeros(len(x), 2), torch.zeros(len(x), 2)


def test_vae_and_reconstruction_tasks_report_fid_fmnist():
    images = torch.rand(48, 1, 28, 28, generator=torch.Generator().manual_seed(0)) ** 3
    task = VAETask(fid="builtin:fashion-mnist")
    assert [m.name for m in task.metrics][-1] == "fid_fmnist"
    assert not task.metric("fid_fmnist").higher_is_better
    assert "fid_fmnist" not in [m.name for m in VAETask().metrics]  # opt-in
    scores = {}
    for blur in (0.0, 0.5, 0.9):
        state = task.metric_state()
        recon = TinyVAE(blur)(images)
        state.update(recon, images)
        scores[blur] = state.compute()["fid_fmnist"]
    assert scores[0.0] == pytest.approx(0.0, abs=1e-3)
    assert scores[0.0] < scores[0.5] < scores[0.9]
    recon_task = ReconstructionTask(fid="builtin:fashion-mnist")
    state = recon_task.metric_state()
    state.update(TinyVAE(0.5)(images)[0], images)
    assert state.compute()["fid_fmnist"] == pytest.approx(scores[0.5], rel=1e-4)
