"""Weights files the tests create: randomly initialised models in the formats the model cache loads."""

from __future__ import annotations

import warnings
from pathlib import Path


def save_tiny_stylegan(path: Path, num_ws: int = 4, w_dim: int = 8, w_avg_scale: float = 0.0) -> None:
    """A random 'StyleGAN' synthesis network in the cache's TorchScript format: W+ (N, num_ws, w_dim) ->
    (N, 3, 16, 16) in [-1, 1], with a ``w_avg`` buffer (zeros, or N(0, w_avg_scale^2)) and ``num_ws``."""
    import torch
    from torch import nn

    torch.manual_seed(0)

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.num_ws = num_ws
            self.register_buffer("w_avg", torch.randn(w_dim) * w_avg_scale)
            self.fc = nn.Linear(num_ws * w_dim, 3 * 8 * 8)

        def forward(self, w: torch.Tensor) -> torch.Tensor:
            x = torch.tanh(self.fc(w.flatten(1))).view(-1, 3, 8, 8)
            return nn.functional.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.script(Tiny()).save(str(path))
