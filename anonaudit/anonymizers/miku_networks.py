"""MIKU's trainable mapper: a small convolutional autoencoder (torch), kept apart so that the
registering module imports torch only when this mapper is used."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class ConvAutoencoder(nn.Module):
    """Convolutional autoencoder for ``size x size`` RGB images (``size`` a multiple of 8).

    Encoder: three stride-2 4x4 convolutions (32, 64, 128 channels, LeakyReLU 0.2) and a linear
    layer to ``latent`` dimensions; decoder: the mirror image with transposed convolutions and a
    sigmoid output in ``[0, 1]``.
    """

    def __init__(self, size: int = 64, latent: int = 128):
        super().__init__()
        if size % 8 or size < 8:
            raise ValueError(f"autoencoder image size must be a positive multiple of 8, got {size}")
        self.size = size
        self.latent = latent
        s = size // 8
        self.encoder = nn.Sequential(
            nn.Conv2d(3, 32, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(32, 64, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(64, 128, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(128 * s * s, latent),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent, 128 * s * s), nn.LeakyReLU(0.2), nn.Unflatten(1, (128, s, s)),
            nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(32, 3, 4, 2, 1), nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class AutoencoderMapper:
    """A trained :class:`ConvAutoencoder` as mapper (encoder) and reverse mapper (decoder)."""

    label = "autoencoder"

    def __init__(self, network: ConvAutoencoder, device: torch.device | str = "cpu", batch_size: int = 64):
        self.network = network
        self.device = torch.device(device)
        self.batch_size = batch_size

    def fit(self, x: np.ndarray) -> AutoencoderMapper:
        return self  # trained beforehand through the training loop

    @torch.no_grad()
    def _run(self, fn, x: np.ndarray) -> np.ndarray:
        self.network.eval()
        out = []
        for start in range(0, len(x), self.batch_size):
            batch = torch.as_tensor(
                np.ascontiguousarray(x[start : start + self.batch_size]), dtype=torch.float32, device=self.device
            )
            out.append(fn(batch).cpu().numpy())
        return np.concatenate(out)

    def encode(self, x: np.ndarray) -> np.ndarray:
        return self._run(lambda b: self.network.encoder(b.permute(0, 3, 1, 2).contiguous()), x).astype(np.float64)

    def decode(self, z: np.ndarray) -> np.ndarray:
        return self._run(lambda b: self.network.decoder(b).permute(0, 2, 3, 1), np.asarray(z, np.float32))
