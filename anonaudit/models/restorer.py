"""A learned restorer: a small U-Net trained on (anonymized, original) pairs the attacker makes.

The de-anonymizer of the learned-restoration attacks (pix2pix-style restorers, SEBA's
de-anonymizers): the intruder anonymizes its own images with the method (or the operator it
assumes), trains a network to map the anonymized image back to the original, and runs the usual
recognisers (OCR, face re-identification) on the restored release. Generic over what the images
are: the caller supplies the pairs.

:func:`train_restorer` trains a :class:`UNet` (residual: it predicts a correction added to its
input, starting as the identity) with an L1 loss on pairs drawn by ``pairs_fn`` at a fixed ``size``;
the returned :class:`Restorer` restores images of any size (the correction made at the network's
size is resized to the image and added to it). Training is
seeded and budgeted (:class:`~anonaudit.models.small_nets.Budget`) and, with a ``cache_key``, cached
in the suite's model-output cache (:func:`~anonaudit.models.small_nets.cached_network`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ..errors import ConfigError
from .small_nets import Budget, TrainingCost, cached_network, fit_network

#: ``pairs_fn(rng, n)`` -> (anonymized, original): two uint8 arrays of shape (n, height, width, 3)
#: at the restorer's size, drawn with the seeded generator ``rng``.
PairsFn = Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]]


def _unet_class():
    from torch import nn

    def block(cin: int, cout: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        )

    class UNet(nn.Module):
        """U-Net of ``depth`` down/up levels, ``width`` channels at the top (doubling per level), skip
        connections by concatenation, and a 1x1 head whose output is added to the input (residual; the
        head starts at zero, so the untrained network is the identity)."""

        def __init__(self, width: int, depth: int):
            super().__init__()
            widths = [width * 2**i for i in range(depth + 1)]
            self.downs = nn.ModuleList([block(3, widths[0])] + [block(widths[i], widths[i + 1]) for i in range(depth)])
            self.ups = nn.ModuleList([nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in range(depth)])
            self.merges = nn.ModuleList([block(2 * widths[i], widths[i]) for i in range(depth)])
            self.pool = nn.MaxPool2d(2)
            self.head = nn.Conv2d(widths[0], 3, 1)
            nn.init.zeros_(self.head.weight)  # untrained, the network is the identity
            nn.init.zeros_(self.head.bias)

        def forward(self, x):
            import torch

            skips = []
            h = x
            for i, down in enumerate(self.downs):
                h = down(h if i == 0 else self.pool(h))
                skips.append(h)
            for i in reversed(range(len(self.ups))):
                h = self.merges[i](torch.cat([self.ups[i](h), skips[i]], dim=1))
            return x + self.head(h)

    return UNet


def build_unet(width: int = 16, depth: int = 2) -> Any:
    """A fresh :class:`UNet` (torch module) mapping (n, 3, h, w) images in [-1, 1] to the same shape;
    ``h`` and ``w`` must be multiples of ``2**depth``."""
    return _unet_class()(int(width), int(depth))


def to_tensor(images: np.ndarray) -> Any:
    """uint8 (n, h, w, 3) -> float (n, 3, h, w) in [-1, 1]."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def resize_to(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` resized to ``size`` = (height, width) (area averaging when shrinking)."""
    h, w = size
    if image.shape[:2] == (h, w):
        return image
    shrink = image.shape[0] > h or image.shape[1] > w
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


@dataclass
class Restorer:
    """A trained U-Net, the size it works at, (height, width), and what training it cost."""

    net: Any
    size: tuple[int, int]
    cost: TrainingCost

    def restore(self, images: Sequence[np.ndarray], batch_size: int = 64) -> list[np.ndarray]:
        """Each uint8 RGB image restored, at its own size: the network runs at its size and the
        correction it makes (its output minus its input) is resized to the image and added to it, so
        detail the network's size cannot hold is kept and an identity network returns the image unchanged."""
        import torch

        out: list[np.ndarray] = []
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                chunk = images[start:start + batch_size]
                small = np.stack([resize_to(im, self.size) for im in chunk])
                x = to_tensor(small)
                delta = (self.net(x) - x).mul(127.5).permute(0, 2, 3, 1).numpy()
                for im, d in zip(chunk, delta):
                    full = cv2.resize(d, (im.shape[1], im.shape[0]), interpolation=cv2.INTER_LINEAR)
                    out.append(np.clip(np.round(im.astype(np.float32) + full), 0, 255).astype(np.uint8))
        return out


def check_size(size: int | Sequence[int], depth: int) -> tuple[int, int]:
    """``size`` as (height, width), each a positive multiple of ``2**depth``; else :class:`ConfigError`."""
    if not isinstance(size, (int, np.integer, list, tuple)) or isinstance(size, bool) or (
        isinstance(size, (list, tuple)) and len(size) != 2
    ):
        raise ConfigError(f"restorer: size must be an integer or (height, width), got {size!r}")
    h, w = (int(size), int(size)) if isinstance(size, (int, np.integer)) else (int(size[0]), int(size[1]))
    step = 2**depth
    if h < step or w < step or h % step or w % step:
        raise ConfigError(f"restorer: size (height, width) must be positive multiples of {step}, got {size!r}")
    return h, w


def train_restorer(
    pairs_fn: PairsFn,
    size: int | Sequence[int],
    steps: int,
    seed: int,
    *,
    batch_size: int = 16,
    lr: float = 2e-3,
    max_seconds: float | None = None,
    width: int = 16,
    depth: int = 2,
    cache_key: str | None = None,
) -> Restorer:
    """Train a U-Net restorer on pairs drawn by ``pairs_fn`` (see :data:`PairsFn`) at ``size``
    (an int for a square, or (height, width)).

    At most ``steps`` Adam steps (one-cycle schedule) of L1 loss between the restored anonymized
    image and its original, and at most ``max_seconds`` seconds; seeded with ``seed``. With a
    ``cache_key`` (build it with :func:`~anonaudit.models.small_nets.cache_key` from the target, the
    auxiliary set's identity, the seed and the budget) the weights are cached in the suite's cache and
    reused; ``restorer.cost`` says whether they were trained or loaded, and the steps and seconds.
    """
    import torch

    hw = check_size(size, depth)
    budget = Budget(int(steps), max_seconds, int(batch_size), float(lr))
    torch.manual_seed(seed)
    net = build_unet(width, depth)

    def batch(rng: np.random.Generator, n: int) -> tuple[Any, Any]:
        anonymized, original = pairs_fn(rng, n)
        if anonymized.shape != (n, *hw, 3) or original.shape != (n, *hw, 3):
            raise ValueError(f"pairs_fn returned {anonymized.shape} and {original.shape}, expected {(n, *hw, 3)}")
        return to_tensor(anonymized), to_tensor(original)

    def l1(model: Any, x: Any, y: Any) -> Any:
        return (model(x) - y).abs().mean()

    arch = f"unet-zero-head-w{int(width)}-d{int(depth)}-{hw[0]}x{hw[1]}"
    key = None if cache_key is None else f"{cache_key}:{arch}:{budget}:{seed}"
    net, cost = cached_network("restorer", key, net, lambda m: fit_network(m, batch, l1, budget, seed))
    return Restorer(net, hw, cost)
