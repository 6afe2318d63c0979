"""A LeNet-like convolutional VAE (seed 003, note 1): two conv + ReLU + max-pool layers encode, three
transposed convs decode (ReLU after the first two, a sigmoid after the last)."""

from __future__ import annotations

import torch
from torch import nn

from prunequant.errors import ConfigError
from prunequant.models.layers import init_conv_weights
from prunequant.models.registry import register_model
from prunequant.validation import check_int_range


class ConvVAE(nn.Module):
    """`encoder` (conv-ReLU-pool x2) -> `mu`, `logvar` (Linear to `latent_dim`) -> `decoder`: Linear back to
    the encoder's map, unflattened into channels, then 2x-upsampling transposed convs and a final 3x3 one.

    forward(x) returns (reconstruction in [0, 1], mu, logvar). In training mode the latent is sampled
    (reparameterisation); in eval mode it is `mu`, so eval outputs are deterministic. `decode(z)` turns
    latents (e.g. standard-normal samples) into images.
    """

    def __init__(
        self, in_channels: int = 1, input_size: int = 28, width: int = 16, latent_dim: int = 16
    ) -> None:
        super().__init__()
        side = input_size // 4
        w1, w2 = width, 2 * width
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, w1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(w1, w2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
        )  # fmt: skip
        self.mu = nn.Linear(w2 * side * side, latent_dim)
        self.logvar = nn.Linear(w2 * side * side, latent_dim)
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, w2 * side * side), nn.ReLU(), nn.Unflatten(1, (w2, side, side)),
            nn.ConvTranspose2d(w2, w2, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(w2, w1, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(w1, in_channels, 3, padding=1), nn.Sigmoid(),
        )  # fmt: skip
        init_conv_weights(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return self.decoder(z), mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images [B, C, H, W] in [0, 1] from latents [B, latent_dim]."""
        return self.decoder(z)


@register_model("conv_vae", task="vae")
def conv_vae(
    *, num_classes: int, in_channels: int, input_size: int, width: int = 16, latent_dim: int = 16
) -> ConvVAE:
    """ConvVAE for in_channels x input_size^2 images in [0, 1] (Fashion-MNIST: 1 x 28); input_size must be
    a multiple of 4. `num_classes` is not used: a VAE has no classes."""
    check_int_range("width", width, 1, 4096)
    check_int_range("latent_dim", latent_dim, 1, 4096)
    if input_size % 4 or input_size < 8:
        raise ConfigError(f"conv_vae needs input_size a multiple of 4 (>= 8), e.g. 28; got {input_size}")
    return ConvVAE(in_channels, input_size, width, latent_dim)
