"""Face-region anonymizers: detect faces, then blur, pixelate, mask or add noise inside each box.

The baselines of papers 002 and 004. Each image's faces are found by a registered face detector
(default ``mtcnn``; detections are memoised per image, so the audit's detector-miss attack and
detection-rate evaluator reuse them), every box is grown by ``margin`` (a fraction of its width and
height on each side) and the classical operation of :mod:`anonaudit.anonymizers.classical` is
applied inside it.

Strength parameters follow paper 004 ("we select filter core sizes of 15 and 25"; Table 1:
Pixelization(15x15), (25x25), Blur(15x15), (25x25)):

- ``face_pixelate(block=15)``: mosaic of ``block x block``-pixel cells, each the mean colour of its cell.
- ``face_blur(kernel=15)``: a Gaussian filter of a ``kernel x kernel`` window. As in OpenCV's
  ``GaussianBlur(img, (k, k), 0)`` the standard deviation is derived from the window,
  ``sigma = 0.3 * ((k - 1) / 2 - 1) + 0.8`` (2.6 px for 15, 4.1 px for 25), unless ``sigma`` is
  given. The filter is :func:`~anonaudit.anonymizers.classical.gaussian_blur` (truncated at 4 sigma,
  not at the window edge: it differs from OpenCV's by the Gaussian's mass beyond ``k / 2``, under
  1% of the weight, see the tests).

Sizes are in pixels, as in the papers; LFW faces (about 110 px) are much smaller than CelebA-HQ's
(about 600 px), so the same kernel anonymizes LFW faces far more strongly.

**Detector-miss rule**: a face the detector misses stays clear (the image is released as it is).
Each output record carries ``attributes["anonymized_faces"]`` (the number of boxes anonymized) and
``boxes`` (the regions actually changed); :attr:`FaceRegionAnonymizer.missed_` lists the keys of the
images where no face was found, so audits report them (see the ``detector_miss`` attack).
"""

from __future__ import annotations

import dataclasses

from ..data.degradation import Degradation
from ..data.imageset import Box, ImageSet
from ..errors import ConfigError
from ..params import check_range
from ..registry import ANONYMIZERS
from .base import Anonymizer
from .classical import GaussianBlur, Mask, Noise, Pixelate, RegionAnonymizer

#: Attribute set on every output record: how many face boxes were anonymized in that image.
ANONYMIZED_FACES = "anonymized_faces"


def opencv_sigma(kernel: int) -> float:
    """OpenCV's default Gaussian sigma for a ``kernel x kernel`` window (``getGaussianKernel``;
    OpenCV itself uses fixed tabulated kernels for windows of 9 and less)."""
    return 0.3 * ((kernel - 1) * 0.5 - 1) + 0.8


class FaceRegionAnonymizer(Anonymizer):
    """Shared part: find faces with ``detector``, anonymize each box grown by ``margin``."""

    detector: str
    margin: float

    def _check_common(self) -> None:
        if not isinstance(self.detector, str) or not self.detector:
            raise ConfigError(f"{self.name}: detector must be a registered face detector name, got {self.detector!r}")
        check_range(self, "margin", self.margin, ge=0, finite=True)  # a fraction of the box size

    def region_op(self) -> RegionAnonymizer:
        """The classical operation applied inside the face boxes."""
        raise NotImplementedError

    def degradation(self) -> Degradation:
        """The classical operation's operator, inside the boxes of the released records (the face
        boxes actually anonymized, already grown by ``margin``)."""
        return self.region_op().degradation()

    def face_boxes(self, images: ImageSet) -> list[tuple[Box, ...]]:
        """For every image, the boxes that will be anonymized: detections grown by ``margin``, clipped."""
        from ..models.faces.embedders import make_detector

        detections = make_detector(self.detector).detect(images)
        out = []
        for i, dets in enumerate(detections):
            h, w = images[i].shape[:2]
            boxes = (d.box.expand(float(self.margin)).clip(w, h) for d in dets)
            out.append(tuple(dataclasses.replace(b, label="face") for b in boxes if b.area > 0))
        return out

    def anonymize(self, images: ImageSet, show_progress: bool = True) -> ImageSet:
        boxes = self.face_boxes(images)
        records = [dataclasses.replace(r, boxes=b) for r, b in zip(images.records, boxes)]
        marked = ImageSet(
            records, [images[i] for i in range(len(images))] if images.in_memory else None, name=images.name
        )
        out = self.region_op().anonymize(marked, show_progress=show_progress)
        self.missed_: list[str] = [r.key for r, b in zip(images.records, boxes) if not b]
        final = [
            dataclasses.replace(r, attributes={**r.attributes, ANONYMIZED_FACES: len(b)})
            for r, b in zip(out.records, boxes)
        ]
        return ImageSet(final, [out[i] for i in range(len(out))], name=f"{images.name}:{self.label()}")


@ANONYMIZERS.register("face_blur")
class FaceBlur(FaceRegionAnonymizer):
    """Gaussian blur of each detected face with a ``kernel x kernel`` window (paper 004: 15, 25)."""

    label_params = ("kernel",)

    def __init__(self, kernel: int = 15, sigma: float | None = None, detector: str = "mtcnn", margin: float = 0.1):
        check_range(self, "kernel", kernel, ge=1, integer=True)
        if kernel % 2 == 0:
            raise ConfigError(f"face_blur: kernel must be odd (as OpenCV requires), got {kernel!r}")
        check_range(self, "sigma", sigma, ge=0, finite=True, optional=True)
        self.kernel = kernel
        self.sigma = sigma
        self.detector = detector
        self.margin = margin
        self._check_common()

    @property
    def sigma_px(self) -> float:
        """The Gaussian's standard deviation in pixels."""
        return float(self.sigma) if self.sigma is not None else opencv_sigma(self.kernel)

    def region_op(self) -> RegionAnonymizer:
        return GaussianBlur(sigma=self.sigma_px, region="boxes")


@ANONYMIZERS.register("face_pixelate")
class FacePixelate(FaceRegionAnonymizer):
    """Mosaic of ``block x block``-pixel cells over each detected face (paper 004: 15, 25)."""

    label_params = ("block",)

    def __init__(self, block: int = 15, detector: str = "mtcnn", margin: float = 0.1):
        check_range(self, "block", block, ge=1, integer=True)  # pixels
        self.block = block
        self.detector = detector
        self.margin = margin
        self._check_common()

    def region_op(self) -> RegionAnonymizer:
        return Pixelate(block=self.block, region="boxes")


@ANONYMIZERS.register("face_mask")
class FaceMask(FaceRegionAnonymizer):
    """Solid ``color`` over each detected face (paper 002's masking)."""

    def __init__(
        self, color: tuple[int, int, int] | list[int] = (0, 0, 0), detector: str = "mtcnn", margin: float = 0.1
    ):
        if not isinstance(color, (list, tuple)) or len(color) != 3:
            raise ConfigError(f"face_mask: color must be three values (R, G, B), got {color!r}")
        for k, c in enumerate(color):
            check_range(self, f"color[{k}]", c, ge=0, le=255)
        self.color = tuple(int(c) for c in color)
        self.detector = detector
        self.margin = margin
        self._check_common()
        self.region_op()  # validates the colour values

    def get_params(self):
        return {"color": list(self.color), "detector": self.detector, "margin": self.margin}

    def region_op(self) -> RegionAnonymizer:
        return Mask(color=self.color, region="boxes")


@ANONYMIZERS.register("face_noise")
class FaceNoise(FaceRegionAnonymizer):
    """Additive Gaussian noise of standard deviation ``std`` (0..255) inside each detected face."""

    label_params = ("std",)

    def __init__(self, std: float = 25.0, seed: int = 0, detector: str = "mtcnn", margin: float = 0.1):
        check_range(self, "std", std, ge=0, finite=True)
        self.std = std
        self.seed = seed
        self.detector = detector
        self.margin = margin
        self._check_common()

    def region_op(self) -> RegionAnonymizer:
        return Noise(std=self.std, region="boxes", seed=self.seed)


__all__ = [
    "ANONYMIZED_FACES",
    "FaceBlur",
    "FaceMask",
    "FaceNoise",
    "FacePixelate",
    "FaceRegionAnonymizer",
    "opencv_sigma",
]
