"""Variational autoencoders returning ``(recon, mu, logvar)``: negative-ELBO loss; ELBO, MSE, KL."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torchmetrics import MeanSquaredError

from prunequant.errors import DataError, ModelError
from prunequant.tasks.base import BatchTransform, mismatch
from prunequant.tasks.fid import FID_SPEC
from prunequant.tasks.io import Outputs
from prunequant.tasks.metric import MetricSpec
from prunequant.tasks.reconstruction import InputTargetTask
from prunequant.validation import check_choice, check_positive

EXPECTED = "(recon, mu, logvar): recon of the target's shape, mu and logvar [batch, latent]"


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) per sample, summed over latent dimensions: [B, ...] -> [B]."""
    return -0.5 * (1 + logvar - mu.square() - logvar.exp()).flatten(1).sum(1)


class VAETask(InputTargetTask):
    """A VAE: the model returns ``(recon, mu, logvar)``; recon is a sigmoid output in [0, 1] for BCE.

    Per sample, the reconstruction term R is the BCE (``recon="bce"``, a Bernoulli -log p(x|z) in nats) or
    the squared error (``recon="mse"``, a Gaussian -log p(x|z) with variance 1/2, up to a constant), summed
    over all elements. The loss is the batch mean of R + beta * KL; the metric ``elbo`` is -(R + KL) per
    sample (beta = 1, nats, higher is better), ``kl`` the KL per sample and ``recon_mse`` the mean squared
    error per element.

    Parameters
    ----------
    recon:
        ``"bce"`` or ``"mse"``.
    beta:
        KL weight of the training loss (beta-VAE); the ``elbo`` metric always uses 1.
    target, fid, fid_pixels, transform_fn, target_key:
        See `InputTargetTask` (the target is the input by default); ``fid="builtin:fashion-mnist"`` adds
        ``fid_fmnist``, the FID-FMNIST of the reconstructions against the inputs.
    """

    name = "vae"
    metrics = (
        MetricSpec("elbo", "nats", True, "ELBO per sample"),
        MetricSpec("recon_mse", "", False, "reconstruction MSE"),
        MetricSpec("kl", "nats", False, "KL divergence per sample"),
    )
    primary = "elbo"

    def __init__(
        self,
        *,
        recon: str = "bce",
        beta: float = 1.0,
        target: str = "input",
        fid: str = "",
        fid_pixels: str = "unit",
        transform_fn: BatchTransform | None = None,
        target_key: str = "target",
    ) -> None:
        super().__init__(
            target=target, fid=fid, fid_pixels=fid_pixels, transform_fn=transform_fn, target_key=target_key
        )
        self.recon = check_choice("recon", recon, ("bce", "mse"))
        self.beta = check_positive("beta", beta)

    def unpack(self, outputs: Outputs, target: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(recon, mu, logvar), checked against the target; ModelError naming both when they do not fit."""
        if not (isinstance(outputs, (tuple, list)) and len(outputs) == 3
                and all(isinstance(t, torch.Tensor) for t in outputs)):
            raise ModelError(mismatch(self, outputs, target, EXPECTED))
        recon, mu, logvar = outputs
        if not isinstance(target, torch.Tensor) or recon.shape != target.shape or mu.shape != logvar.shape \
                or mu.shape[:1] != recon.shape[:1]:
            raise ModelError(mismatch(self, outputs, target, EXPECTED))
        if self.recon == "bce" and recon.numel():
            self._check_probabilities(recon, target)
        return recon, mu, logvar

    def _check_probabilities(self, recon: torch.Tensor, target: torch.Tensor) -> None:
        low, high = float(recon.detach().min()), float(recon.detach().max())
        if low < 0 or high > 1:
            raise ModelError(
                f"task 'vae' with recon='bce' needs recon in [0, 1], got values in [{low:.3g}, {high:.3g}]; "
                "end the decoder with a sigmoid or use recon='mse'"
            )
        low, high = float(target.detach().min()), float(target.detach().max())
        if low < 0 or high > 1:
            raise DataError(
                f"task 'vae' with recon='bce' needs targets in [0, 1] (pixel intensities), got values in "
                f"[{low:.3g}, {high:.3g}]: the data is normalized; load it with options "
                "{ normalize = false } or use recon='mse'"
            )

    def check(self, outputs: Outputs, target: Any) -> None:
        self.unpack(outputs, target)

    def terms(self, outputs: Outputs, target: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample reconstruction term R [B] and KL [B] (see the class docstring)."""
        recon, mu, logvar = self.unpack(outputs, target)
        target = target.to(recon.dtype)
        if self.recon == "bce":
            elementwise = F.binary_cross_entropy(recon, target, reduction="none")
        else:
            elementwise = (recon - target).square()
        return elementwise.flatten(1).sum(1), kl_divergence(mu, logvar)

    def loss(self, outputs: Outputs, target: Any) -> torch.Tensor:
        reconstruction, kl = self.terms(outputs, target)
        return (reconstruction + self.beta * kl).mean()

    def metric_state(self) -> _VAEState:
        return _VAEState(self)


class _VAEState:
    """Per-sample sums of the ELBO and KL (float64); reconstruction MSE through torchmetrics; FID-FMNIST of
    the reconstructions against the targets when the task has `fid`."""

    def __init__(self, task: VAETask) -> None:
        self.task = task
        self.elbo_sum = 0.0
        self.kl_sum = 0.0
        self.samples = 0
        self.mse = MeanSquaredError()
        self.fid = task.fid_state()

    def update(self, outputs: Outputs, target: Any) -> None:
        outputs = tuple(t.detach().double() for t in self.task.unpack(outputs, target))
        target = target.detach().double()
        reconstruction, kl = self.task.terms(outputs, target)
        self.elbo_sum -= float((reconstruction + kl).sum())
        self.kl_sum += float(kl.sum())
        self.samples += kl.shape[0]
        self.mse.update(outputs[0].cpu(), target.cpu())
        if self.fid is not None:
            self.fid.update(outputs[0], target)

    def compute(self) -> dict[str, float]:
        if not self.samples:
            result = {"elbo": float("nan"), "recon_mse": float("nan"), "kl": float("nan")}
        else:
            result = {
                "elbo": self.elbo_sum / self.samples,
                "recon_mse": float(self.mse.compute()),
                "kl": self.kl_sum / self.samples,
            }
        if self.fid is not None:
            result[FID_SPEC.name] = self.fid.compute()
        return result
