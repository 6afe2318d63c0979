"""FID-FMNIST: the Fréchet distance between Gaussians fitted to the features of real and generated images,
with the features of a small Fashion-MNIST classifier instead of Inception-v3.

No Inception network can be had offline, so the features are those of the project's own trained
classifier: by default the shipped ``builtin:fashion-mnist`` small_cnn (91.2 % test top-1), taken at the
input of its last linear layer (the 128 hidden units of its MLP head, after ReLU). The numbers are
therefore NOT comparable to published (Inception) FID; they compare models of one run with each other.
Like every FID, the estimate is biased upward at small sample counts: compare values over the same split.

The distance is torchmetrics' ``FrechetInceptionDistance`` given this feature module (its custom-feature
path needs neither torch-fidelity nor downloads):
d² = |mu_r - mu_g|² + Tr(S_r + S_g - 2 (S_r S_g)^½).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance

from prunequant.errors import ConfigError, ModelError
from prunequant.tasks.metric import MetricSpec
from prunequant.validation import check_choice

FEATURES = "builtin:fashion-mnist"
FMNIST_MEAN, FMNIST_STD = 0.2860, 0.3530
"""The normalization the builtin classifier was trained with (Fashion-MNIST's registered mean/std)."""
PIXELS = ("unit", "normalized")
FID_SPEC = MetricSpec("fid_fmnist", "", False, "FID-FMNIST")


class PenultimateFeatures(nn.Module):
    """The input of `classifier`'s last nn.Linear, [batch, features], for images in `pixels` units.

    Parameters
    ----------
    classifier:
        A trained Fashion-MNIST classifier (kept in eval mode; its weights are never trained here).
    pixels:
        ``"unit"``: images are intensities in [0, 1] and are normalized with Fashion-MNIST's mean/std
        before the classifier; ``"normalized"``: they already are (the registered fashion-mnist default).
    """

    def __init__(self, classifier: nn.Module, pixels: str = "unit") -> None:
        super().__init__()
        self.pixels = check_choice("fid_pixels", pixels, PIXELS)
        linears = [name for name, module in classifier.named_modules() if isinstance(module, nn.Linear)]
        if not linears:
            raise ConfigError("the FID-FMNIST feature classifier has no nn.Linear layer to take features at")
        self.classifier = classifier.requires_grad_(False)
        self.last_linear = linears[-1]
        self.num_features = classifier.get_submodule(self.last_linear).in_features  # read by torchmetrics
        self.train(False)

    def train(self, mode: bool = True) -> PenultimateFeatures:
        return super().train(False)  # a fixed feature extractor: dropout and BatchNorm stay in eval mode

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float()
        if self.pixels == "unit":
            x = (x - FMNIST_MEAN) / FMNIST_STD
        captured: list[torch.Tensor] = []
        last = self.classifier.get_submodule(self.last_linear)
        handle = last.register_forward_hook(lambda module, args, out: captured.append(args[0]))
        try:
            with torch.no_grad():
                self.classifier(x)
        except RuntimeError as exc:
            raise ModelError(
                f"FID-FMNIST features need Fashion-MNIST-like images [batch, 1, H, W], got "
                f"{list(images.shape)} ({str(exc).splitlines()[0][:100]})"
            ) from None
        finally:
            handle.remove()
        return captured[0].flatten(1)


def load_features(spec: str = FEATURES, pixels: str = "unit") -> PenultimateFeatures:
    """The feature module of the classifier checkpoint `spec` (``builtin:NAME`` or a prunequant checkpoint
    path, loaded with weights_only=True)."""
    from prunequant.models import load_checkpoint  # models sit beside tasks; loaded only when asked for

    classifier, _ = load_checkpoint(spec)
    return PenultimateFeatures(classifier, pixels)


class FrechetState:
    """Accumulates real (target) and generated (output) features; `compute` is the FID-FMNIST value."""

    def __init__(self, features: nn.Module) -> None:
        self.fid = FrechetInceptionDistance(feature=features, reset_real_features=True)

    def update(self, generated: torch.Tensor, real: torch.Tensor) -> None:
        self.fid.update(real.detach().float().cpu(), real=True)
        self.fid.update(generated.detach().float().cpu(), real=False)

    def compute(self) -> float:
        """The distance; NaN with fewer than 2 samples of either kind (no covariance)."""
        if int(self.fid.real_features_num_samples) < 2 or int(self.fid.fake_features_num_samples) < 2:
            return math.nan
        return float(self.fid.compute())
