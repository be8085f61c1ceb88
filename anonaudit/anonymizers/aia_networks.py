"""AIA's networks (paper 003, Sections 4.3 and 5.2): encoder, decoder, gender adversary, Siamese net.

The paper describes two of them twice, differently; both readings are here, one is the default:

The default is the method section's reading (Section 4.3 with its equations): it is the method the
paper defines, and it trains on a CPU; ``configs/train/aia-paper.yaml`` selects Section 5.2's sizes.

- Decoder. Section 4.3: "two stacked CNN blocks" (conv, LeakyReLU, up-sampling), default
  ``"two_blocks"``: conv 8 - LeakyReLU - up x2, conv 1 - sigmoid - up x2 (a sigmoid instead of the
  last LeakyReLU, since the BCE loss needs outputs in (0, 1)). Section 5.2: "three convolution
  layers with 256, 128, and 1 channels", ``"three_conv"``: conv 256 - LeakyReLU - up x2, conv 128 -
  LeakyReLU - up x2, conv 1 - sigmoid.
- Adversary. Section 4.3, eq. (6): a three-layer network ``sigmoid(W2 tanh(W1 g + b1) + b2)``,
  default ``"mlp"`` with ``adversary_hidden`` units. Section 5.2: "6 convolution layers with 32, 64,
  64, 128, 128, and 256 channels" and a one-layer classifier, ``"cnn"`` (on g viewed as the
  encoder's 12 feature maps; stride 2 in layers 2, 4 and 6).
  Not from the paper: ``"linear"``, a standardised logistic regression (the fresh attacker's class).
  All standardise their input first (batch normalisation without learned scale): g's values sit
  in a narrow band around the sigmoid's midpoint, and an adversary that does not rescale them
  misses signals a standardising attacker finds at once (measured: a training adversary at chance
  while a fresh standardised logistic regression was 100% accurate), which makes the adversarial
  term toothless.

Encoder (both sections agree): conv 8 - LeakyReLU - avg-pool 2, conv 12 - LeakyReLU - avg-pool 2,
flatten. A sigmoid maps g into [0, 1]: the paper states every value of g lies in [0, 1] (its Random
baseline draws replacements from U[0, 1]) without saying how. Siamese network (5.2): convolutions
with 4, 8 and 8 channels on g's feature maps, then 500 hidden and 128 output units.
"""

from __future__ import annotations

import torch
from torch import nn

ENCODER_CHANNELS = (8, 12)


class Encoder(nn.Module):
    """Greyscale ``size x size`` image -> g in [0, 1]^(12 * (size/4)^2)."""

    def __init__(self):
        super().__init__()
        c1, c2 = ENCODER_CHANNELS
        self.blocks = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1), nn.LeakyReLU(0.2), nn.AvgPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.LeakyReLU(0.2), nn.AvgPool2d(2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.blocks(x).flatten(1))


def as_maps(g: torch.Tensor, size: int) -> torch.Tensor:
    """g viewed as the encoder's ``(12, size/4, size/4)`` feature maps."""
    s = size // 4
    return g.view(len(g), ENCODER_CHANNELS[-1], s, s)


class Decoder(nn.Module):
    def __init__(self, size: int, kind: str = "three_conv"):
        super().__init__()
        self.size = size
        c = ENCODER_CHANNELS[-1]
        def up() -> nn.Module:
            return nn.Upsample(scale_factor=2, mode="nearest")

        if kind == "three_conv":
            self.net = nn.Sequential(
                nn.Conv2d(c, 256, 3, padding=1), nn.LeakyReLU(0.2), up(),
                nn.Conv2d(256, 128, 3, padding=1), nn.LeakyReLU(0.2), up(),
                nn.Conv2d(128, 1, 3, padding=1), nn.Sigmoid(),
            )
        elif kind == "two_blocks":
            self.net = nn.Sequential(
                nn.Conv2d(c, 8, 3, padding=1), nn.LeakyReLU(0.2), up(),
                nn.Conv2d(8, 1, 3, padding=1), nn.Sigmoid(), up(),
            )
        else:
            raise ValueError(f"decoder must be 'three_conv' or 'two_blocks', got {kind!r}")

    def forward(self, g: torch.Tensor) -> torch.Tensor:
        return self.net(as_maps(g, self.size))


class Adversary(nn.Module):
    """Gender classifier on g; returns a logit (male = 1)."""

    def __init__(self, size: int, kind: str = "cnn", hidden: int = 128):
        super().__init__()
        self.size = size
        self.kind = kind
        dim = ENCODER_CHANNELS[-1] * (size // 4) ** 2
        if kind == "mlp":  # eq. (6)
            self.net = nn.Sequential(
                nn.BatchNorm1d(dim, affine=False), nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, 1)
            )
        elif kind == "linear":  # the attacker class of a standardised logistic regression
            self.net = nn.Sequential(nn.BatchNorm1d(dim, affine=False), nn.Linear(dim, 1))
        elif kind == "cnn":  # Section 5.2
            layers, c_in = [], ENCODER_CHANNELS[-1]
            for i, c in enumerate((32, 64, 64, 128, 128, 256)):
                layers += [nn.Conv2d(c_in, c, 3, stride=2 if i % 2 else 1, padding=1), nn.LeakyReLU(0.2)]
                c_in = c
            self.net = nn.Sequential(nn.BatchNorm2d(ENCODER_CHANNELS[-1], affine=False), *layers,
                                     nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, 1))
        else:
            raise ValueError(f"adversary must be 'mlp', 'linear' or 'cnn', got {kind!r}")

    def forward(self, g: torch.Tensor) -> torch.Tensor:
        return self.net(as_maps(g, self.size) if self.kind == "cnn" else g).squeeze(1)


class Siamese(nn.Module):
    """Face-matching embedding of g (Section 5.2): conv 4, 8, 8 -> 500 -> 128."""

    def __init__(self, size: int):
        super().__init__()
        s = size // 4
        self.size = size
        self.net = nn.Sequential(
            nn.Conv2d(ENCODER_CHANNELS[-1], 4, 3, padding=1), nn.ReLU(),
            nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(8 * s * s, 500), nn.ReLU(), nn.Linear(500, 128),
        )

    def forward(self, g: torch.Tensor) -> torch.Tensor:
        return self.net(as_maps(g, self.size))


def contrastive_loss(a: torch.Tensor, b: torch.Tensor, different: torch.Tensor, margin: float) -> torch.Tensor:
    """Eq. (7): ``(1 - y) D^2 / 2 + y max(0, m - D)^2 / 2`` with y = 1 for different people."""
    d = torch.linalg.vector_norm(a - b, dim=1)
    return ((1 - different) * d.pow(2) / 2 + different * torch.clamp(margin - d, min=0).pow(2) / 2).mean()
