"""Shared machinery of the region-replacing GAN anonymizers (paper 000 plates, paper 002 faces).

A :class:`RegionGAN` learns to generate ``image_size`` x ``image_size`` regions (plates, faces)
from the regions of its training images, and anonymizes an image by replacing each region with a
generated one, resized to the region's box and blended in through a mask: pixels outside every
mask are the original's, bit for bit. torch is imported only when networks are built.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from ..data.imageset import Box, ImageSet, Record
from ..errors import DataError
from .trainable import TrainableAnonymizer

if TYPE_CHECKING:
    import torch


def key_seed(seed: int, key: str, index: int = 0) -> list[int]:
    """Entropy for the random draws of one region: a function of (seed, image key, region index) only,
    so an image's anonymization does not depend on which other images are anonymized with it."""
    return [int(seed), zlib.crc32(key.encode("utf-8")), int(index)]


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """``(N, 3, H, W)`` in [-1, 1] -> ``(N, H, W, 3)`` uint8."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def paste(image: np.ndarray, patch: np.ndarray, box: Box, mask: np.ndarray) -> np.ndarray:
    """``image`` with ``patch`` (box-sized) blended into ``box`` by ``mask`` (box-sized, in [0, 1]).

    Pixels where the mask is 0, and all pixels outside the box, keep the original's exact values.
    """
    out = image.copy()
    region = out[box.slices]
    m = mask[..., None].astype(np.float32)
    blended = np.rint(m * patch.astype(np.float32) + (1 - m) * region.astype(np.float32)).astype(np.uint8)
    out[box.slices] = np.where(m > 0, blended, region)
    return out


class RegionGAN(TrainableAnonymizer):
    """Base of GAN anonymizers that replace image regions. Subclasses define :meth:`regions`,
    :meth:`region_mask`, ``build``, ``train_step`` and :meth:`generate`; ``critic_name`` names the
    network :meth:`critic_scores` reads."""

    provides: tuple[str, ...] = ("training_keys", "retrain", "critic", "generate")
    critic_name = "critic"

    image_size: int
    seed: int

    # -- regions ------------------------------------------------------------------------------
    def regions(self, image: np.ndarray, record: Record) -> list[Box]:
        """The boxes to replace in ``image`` (clipped to it, non-empty)."""
        raise NotImplementedError

    def region_mask(self, box: Box) -> np.ndarray:
        """``(box.h, box.w)`` float mask in [0, 1]: how much of the generated region replaces the original."""
        raise NotImplementedError

    def training_regions(self, data: ImageSet) -> np.ndarray:
        """``(n, S, S, 3)`` uint8: every region of every training image, resized to ``image_size``."""
        size = int(self.image_size)
        crops = []
        for i in range(len(data)):
            image = data[i]
            for box in self.regions(image, data.record(i)):
                crops.append(cv2.resize(image[box.slices], (size, size), interpolation=cv2.INTER_AREA))
        if not crops:
            raise DataError(f"'{data.name}': {self.name} found no region to learn from in {len(data)} images")
        return np.stack(crops)

    # -- Trainable ----------------------------------------------------------------------------
    def training_batches(self, data: ImageSet, batch_size: int, generator: torch.Generator) -> Iterator[Any]:
        """Batches of training regions in [-1, 1], ``(B, 3, S, S)``; the regions are cropped once per data set.
        Full batches only (batch norm, equal steps per epoch); Poisson samples with DP (:meth:`batch_indices`)."""
        crops = self._training_crops(data)
        for idx in self.batch_indices(len(crops), batch_size, generator):
            yield crops[idx].contiguous()

    def _training_crops(self, data: ImageSet) -> torch.Tensor:
        import torch

        keys = (id(data), tuple(data.keys), int(self.image_size))
        cached = getattr(self, "_region_cache", None)
        if cached is None or cached[0] != keys:
            crops = torch.from_numpy(self.training_regions(data)).permute(0, 3, 1, 2).float().div(127.5).sub(1)
            self._region_cache = (keys, crops.contiguous())
        return self._region_cache[1]

    def dp_examples(self, data: ImageSet) -> int:
        """The privacy unit of DP-SGD: one training region (an image with k plates or faces gives k)."""
        return len(self._training_crops(data))

    def state_dict(self) -> dict[str, Any]:
        return {
            "networks": {k: v.state_dict() for k, v in self.networks_.items()},
            "optimizers": {k: v.state_dict() for k, v in self.optimizers_.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, net in self.networks_.items():
            net.load_state_dict(state["networks"][k])
        for k, opt in self.optimizers_.items():
            opt.load_state_dict(state["optimizers"][k])

    def generate(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``(n, 3, S, S)`` generated regions in [-1, 1] from noise drawn from ``generator`` (eval mode)."""
        raise NotImplementedError

    def sample_images(self, n: int) -> np.ndarray:
        import torch

        return to_uint8(self.generate(n, torch.Generator().manual_seed(0)))

    # -- white box (critic) -------------------------------------------------------------------
    def critic_output(self, x: torch.Tensor) -> torch.Tensor:
        """``(B,)`` critic / discriminator outputs of regions ``x`` ``(B, 3, S, S)`` in [-1, 1] (eval mode)."""
        critic = self.networks_[self.critic_name]
        critic.eval()
        return critic(x).reshape(-1)

    def regions_of(self, images: ImageSet) -> ImageSet:
        """``images`` with the records :meth:`regions` reads (face GANs add their detections)."""
        return images

    def critic_scores(self, images: ImageSet, batch_size: int = 64) -> np.ndarray:
        """White-box capability ``critic``: the mean critic output over each image's regions (resized to
        ``image_size`` as in training), nan for an image without a region."""
        import torch

        self.ensure_fitted()
        images = self.regions_of(images)
        size = int(self.image_size)
        crops, owner = [], []
        for i in range(len(images)):
            image = images[i]
            for box in self.regions(image, images.record(i)):
                crops.append(cv2.resize(image[box.slices], (size, size), interpolation=cv2.INTER_AREA))
                owner.append(i)
        out = np.full(len(images), np.nan)
        if not crops:
            return out
        x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float().div(127.5).sub(1)
        with torch.no_grad():
            values = torch.cat(
                [self.critic_output(x[s : s + batch_size].to(self.device_)).cpu() for s in range(0, len(x), batch_size)]
            ).numpy().astype(float)
        owner_arr = np.asarray(owner)
        for i in range(len(images)):
            if (owner_arr == i).any():
                out[i] = values[owner_arr == i].mean()
        return out

    # -- anonymization ------------------------------------------------------------------------
    def region_fakes(self, key: str, index: int, count: int) -> np.ndarray:
        """``(count, S, S, 3)`` uint8 generated candidates for region ``index`` of image ``key``."""
        import torch

        gen = torch.Generator().manual_seed(int(np.random.default_rng(key_seed(self.seed, key, index)).integers(2**62)))
        return to_uint8(self.generate(count, gen))

    def replace_regions(
        self, image: np.ndarray, record: Record, count: int
    ) -> tuple[np.ndarray, list[np.ndarray], list[int]]:
        """``image`` with every region replaced; the ``count`` candidates per region (box-sized) and the
        index of the one released (drawn from the seed and the image key)."""
        out = image
        candidates, chosen = [], []
        for j, box in enumerate(self.regions(image, record)):
            fakes = self.region_fakes(record.key, j, count)
            resized = np.stack(
                [
                    cv2.resize(
                        f, (box.w, box.h), interpolation=cv2.INTER_AREA if box.w < f.shape[1] else cv2.INTER_LINEAR
                    )
                    for f in fakes
                ]
            )
            pick = int(np.random.default_rng(key_seed(self.seed, record.key, 1000 + j)).integers(count))
            out = paste(out, resized[pick], box, self.region_mask(box))
            candidates.append(resized)
            chosen.append(pick)
        return out, candidates, chosen
