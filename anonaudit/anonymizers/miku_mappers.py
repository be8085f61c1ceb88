"""MIKU's mappers and reverse mappers (paper 001, Fig. 1): image <-> vector space.

Each mapper takes float images ``(n, H, W, 3)`` in ``[0, 1]`` at its working size and returns
``(n, d)`` vectors (``encode``); ``decode`` maps vectors back to images. K-anonymization happens
on the vectors in between (:mod:`anonaudit.anonymizers.mondrian`).

- :class:`IdentityMapper`: the pixels themselves (paper 001's DIRECT).
- :class:`PCAMapper`: principal components fitted on training images (linear, so the decoded
  group mean equals the mean of the members' projections).
- :class:`~anonaudit.anonymizers.miku_networks.AutoencoderMapper`: a small convolutional
  autoencoder trained on faces (CPU-trainable); the vector is its bottleneck.
- The StyleGAN W+ inversion mapper lives in :mod:`anonaudit.models.stylegan_inversion`.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..data.imageset import ImageSet
from ..errors import DataError


def images_to_float(images: ImageSet, size: int | tuple[int, int]) -> np.ndarray:
    """``(n, H, W, 3)`` float32 in ``[0, 1]``: every image resized (area interpolation) to
    ``size x size``, or to ``size = (height, width)``; images already that size are not resampled."""
    h, w = (size, size) if isinstance(size, (int, np.integer)) else size
    out = []
    for i in range(len(images)):
        im = images[i]
        if im.shape[:2] != (h, w):
            im = cv2.resize(im, (w, h), interpolation=cv2.INTER_AREA)
        out.append(im.astype(np.float32) / 255.0)
    if not out:
        raise DataError(f"'{images.name}': no images")
    return np.stack(out)


def float_to_uint8(image: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
    """A ``[0, 1]`` float image as RGB uint8, resized to ``size = (width, height)`` when given."""
    im = np.clip(np.round(np.asarray(image, np.float64) * 255.0), 0, 255).astype(np.uint8)
    if size is not None and (im.shape[1], im.shape[0]) != tuple(size):
        im = cv2.resize(im, tuple(size), interpolation=cv2.INTER_LINEAR)
    return im


class IdentityMapper:
    """Pixels as they are (DIRECT): ``encode`` flattens, ``decode`` reshapes."""

    label = "pixels"

    def fit(self, x: np.ndarray) -> IdentityMapper:
        return self

    def encode(self, x: np.ndarray) -> np.ndarray:
        self.shape_ = x.shape[1:]
        return x.reshape(len(x), -1)

    def decode(self, z: np.ndarray) -> np.ndarray:
        return np.asarray(z, np.float32).reshape((len(z), *self.shape_))


class PCAMapper:
    """Principal components of the training images (scikit-learn ``PCA``, seeded randomized SVD)."""

    label = "pca"

    def __init__(self, n_components: int, seed: int = 0):
        self.n_components = n_components
        self.seed = seed

    def fit(self, x: np.ndarray) -> PCAMapper:
        from sklearn.decomposition import PCA

        n_comp = min(int(self.n_components), len(x), int(np.prod(x.shape[1:])))
        if n_comp < 1:
            raise DataError("PCA mapper: no training images to fit on")
        self.shape_ = x.shape[1:]
        self.pca_ = PCA(n_components=n_comp, svd_solver="randomized", random_state=self.seed).fit(x.reshape(len(x), -1))
        return self

    def encode(self, x: np.ndarray) -> np.ndarray:
        if x.shape[1:] != self.shape_:
            raise DataError(f"PCA mapper fitted on {self.shape_} images, got {x.shape[1:]}")
        return self.pca_.transform(x.reshape(len(x), -1))

    def decode(self, z: np.ndarray) -> np.ndarray:
        return np.clip(self.pca_.inverse_transform(z), 0.0, 1.0).astype(np.float32).reshape((len(z), *self.shape_))
