"""VAETask: KL and ELBO by hand, BCE/MSE terms, beta, checks, a tiny conv VAE."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from prunequant.errors import ConfigError, DataError, ModelError
from prunequant.tasks import VAETask, build_task, kl_divergence
from prunequant.tasks.compare import OutputComparison


def test_kl_by_hand():
    mu, logvar = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, math.log(2.0)]])
    # per dim: 0.5 * (var + mu^2 - 1 - log var): (1 + 1 - 1 - 0) / 2 and (2 + 0 - 1 - log 2) / 2
    assert float(kl_divergence(mu, logvar)) == pytest.approx(0.5 + (1 - math.log(2)) / 2)
    assert float(kl_divergence(torch.zeros(1, 3), torch.zeros(1, 3))) == 0.0


def test_elbo_loss_and_metrics_by_hand():
    target = torch.tensor([[[[1.0, 0.0]]]])  # [1, 1, 1, 2]
    recon = torch.tensor([[[[0.5, 0.25]]]])
    mu, logvar = torch.tensor([[1.0]]), torch.tensor([[0.0]])
    bce = -math.log(0.5) - math.log(0.75)
    task = VAETask()
    assert float(task.loss((recon, mu, logvar), target)) == pytest.approx(bce + 0.5)
    assert float(VAETask(beta=2.0).loss((recon, mu, logvar), target)) == pytest.approx(bce + 1.0)
    state = task.metric_state()
    state.update((recon, mu, logvar), target)
    state.update((recon, mu * 0, logvar), target)
    result = state.compute()
    assert result["elbo"] == pytest.approx(-(bce + 0.25))
    assert result["kl"] == pytest.approx(0.25)
    assert result["recon_mse"] == pytest.approx((0.25 + 0.0625) / 2)
    mse_task = VAETask(recon="mse")
    assert float(mse_task.loss((recon, mu, logvar), target)) == pytest.approx(0.25 + 0.0625 + 0.5)


def test_metric_directions():
    task = build_task("vae")
    assert task.primary == "elbo" and task.primary_metric.higher_is_better
    assert not task.metric("recon_mse").higher_is_better
    assert type(task.comparison()) is OutputComparison


@pytest.mark.parametrize(
    ("outputs", "target", "words"),
    [
        (torch.randn(4, 10), torch.zeros(4, 1, 8, 8),
         ["(recon, mu, logvar)", "Tensor[4, 10]", "Tensor[4, 1, 8, 8]"]),
        ((torch.rand(4, 1, 8, 8), torch.randn(4, 2)), torch.zeros(4, 1, 8, 8), ["tuple(Tensor[4, 1, 8, 8]"]),
        ((torch.rand(4, 1, 4, 4), torch.randn(4, 2), torch.randn(4, 2)), torch.zeros(4, 1, 8, 8),
         ["Tensor[4, 1, 4, 4]", "Tensor[4, 1, 8, 8]"]),
        ((torch.rand(4, 1, 8, 8), torch.randn(4, 2), torch.randn(4, 3)), torch.zeros(4, 1, 8, 8), ["logvar"]),
    ],
)
def test_check_names_outputs_and_target(refused, outputs, target, words):
    refused(lambda: VAETask().check(outputs, target), "vae", words)


def test_bce_needs_sigmoid_outputs():
    outputs = (torch.full((1, 1, 2, 2), 1.5), torch.zeros(1, 2), torch.zeros(1, 2))
    with pytest.raises(ModelError, match="sigmoid"):
        VAETask().check(outputs, torch.zeros(1, 1, 2, 2))
    VAETask(recon="mse").check(outputs, torch.zeros(1, 1, 2, 2))
    with pytest.raises(ConfigError, match="recon"):
        VAETask(recon="l1")


class TinyConvVAE(nn.Module):
    def __init__(self, latent: int = 4) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten())
        self.mu, self.logvar = nn.Linear(8 * 4 * 4, latent), nn.Linear(8 * 4 * 4, latent)
        self.decoder = nn.Sequential(nn.Linear(latent, 64), nn.Unflatten(1, (1, 8, 8)), nn.Sigmoid())

    def forward(self, x: torch.Tensor):
        hidden = self.encoder(x)
        mu, logvar = self.mu(hidden), self.logvar(hidden)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if self.training else mu
        return self.decoder(z), mu, logvar


def test_tiny_vae_elbo_improves(fit):
    torch.manual_seed(0)
    prototypes = torch.rand(2, 1, 8, 8).round()
    images = prototypes[torch.randint(0, 2, (16,))]
    loader = DataLoader(TensorDataset(images, torch.zeros(16)), batch_size=8)
    before, after = fit(TinyConvVAE(), loader, build_task("vae"), epochs=12, lr=0.02)
    assert after.primary == "elbo" and after.score > before.score + 10
    assert after.recon_mse < before.recon_mse


def test_bce_refuses_normalized_targets_and_accepts_unit_pixels():
    recon, mu = torch.full((2, 1, 4, 4), 0.5), torch.zeros(2, 3)
    task = VAETask(recon="bce")
    normalized = (torch.rand(2, 1, 4, 4) - 0.286) / 0.353  # how fashion-mnist is served by default
    with pytest.raises(DataError, match=r"normalize = false"):
        task.loss((recon, mu, mu), normalized)
    unit = torch.rand(2, 1, 4, 4)
    assert torch.isfinite(task.loss((recon, mu, mu), unit))
    assert torch.isfinite(VAETask(recon="mse").loss((recon, mu, mu), normalized))  # Gaussian: any range
