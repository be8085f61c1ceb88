"""Paper 004 (Wang, Gan, Wang, Zhou & Lu, "Face Anonymity Based on Facial Pose Consistency"):
a conditional autoencoder that repaints the face from the background, the forehead and a pose image.

Pre-processing, as the paper: dlib's 68 landmarks of each face (the record's boxes, else the
``detector``'s faces; or the record's ``landmarks68`` attribute, an ``(F, 68, 2)`` annotation, when
a data set ships landmarks); the face is cropped the FFHQ way (:func:`~anonaudit.models.
stylegan_inversion.ffhq_align`) at ``image_size``; every pixel inside the convex hull of the 68
points (jaw, brows, eyes, nose, mouth: the whole face below the forehead) is masked; the condition
is a binary pose image with the contour, eyebrows, eyes, nose and mouth drawn as lines. Masked crop
and pose image (4 channels) enter pSp's encoder (:class:`~anonaudit.anonymizers.pose_networks.
PoseEncoder`: ResNet feature pyramid, ``map2style``, W+ of ``n_ws`` x ``w_dim``), whose W+ drives:

- ``decoder="stylegan"`` (the paper's): a FROZEN StyleGAN synthesis network from the model cache
  (``stylegan_model``, the TorchScript format of :func:`~anonaudit.models.stylegan_inversion.
  load_synthesis`; ``anonaudit models add stylegan2-ffhq-wplus FILE``); the encoder's output is
  added to the generator's mean latent (pSp). ``n_ws`` and ``w_dim`` must be the generator's.
- ``decoder="small-cpu"``: a small decoder trained with the encoder
  (:class:`~anonaudit.anonymizers.pose_networks.SmallDecoder`) so the method trains and runs on a
  CPU. It is NOT the paper's generator, and the label says so (``pose_face(decoder=small-cpu, ...)``).

Losses (paper weights): landmark L2 (``landmark_weight`` 1.0): mean squared distance between the
landmarks of the output and the condition's (dlib's), in crop units [0, 1], where the output's
landmarks come from a small landmark regressor trained on the real training crops with dlib's
landmarks as targets (it trains alone for ``regressor_steps`` steps, then keeps training on real
crops only, while the landmark loss moves the generator); identity ``1 - cos`` to a random target
identity (``identity_weight`` 0.1), with the ArcFace network of ``identity_checkpoint`` (the
project's ``arcface`` trainer, ``configs/train/arcface-*.yaml``; the output is aligned to its
template differentiably). The target is the embedding of the frozen StyleGAN's image of a random
W+ (mean latent + N(0, 1)) with ``decoder="stylegan"``, as the paper; with the small decoder, which
has no prior to draw a random face from, a random unit vector of the embedding space. Without
``identity_checkpoint`` there is no identity term (the paper's ArcFace weights are not available
offline). Perceptual term (``perceptual_weight`` 0.1) against the original crop:
``perceptual="lpips"`` is LPIPS (AlexNet, weights ``lpips-alexnet`` from the model cache);
``perceptual="ssim_l1"`` is the offline substitute ``L1 + (1 - SSIM)`` (Gaussian window), named so
and not LPIPS. Optimiser: AdamW at ``lr`` 1e-4 (the paper: Ranger or AdamW).

Release: the generated crop is warped back into the image and blended through the hull of the
68 landmarks with a linear ramp ``feather`` x the inter-ocular distance wide INSIDE the hull:
pixels outside the hull keep the original's values bit for bit. Faces without landmarks stay as
they are (``missed_`` lists those images). Inference is deterministic.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..data.imageset import Box, ImageSet, Record
from ..errors import ConfigError, DataError
from ..params import check_range
from ..progress import progress
from ..registry import ANONYMIZERS
from .face_gan import RELEASE_FORMATS, write_release
from .face_regions import ANONYMIZED_FACES
from .gan_base import paste, to_uint8
from .trainable import TrainableAnonymizer

DECODERS = ("stylegan", "small-cpu")
PERCEPTUAL = ("lpips", "ssim_l1")
#: record attribute with annotated landmarks, ``(F, 68, 2)`` (used instead of detector + dlib)
LANDMARKS = "landmarks68"
#: the 68-point groups drawn in the pose image: (first, last, closed)
POSE_LINES = ((0, 16, False), (17, 21, False), (22, 26, False), (27, 30, False), (31, 35, False),
              (36, 41, True), (42, 47, True), (48, 59, True), (60, 67, True))


def pose_image(landmarks: np.ndarray, size: int) -> np.ndarray:
    """``(size, size)`` uint8 binary image (0/1) of the contour, eyebrows, nose, eyes and mouth lines."""
    out = np.zeros((size, size), np.uint8)
    lm = np.rint(np.asarray(landmarks, np.float64)).astype(np.int32)
    for first, last, closed in POSE_LINES:
        cv2.polylines(
            out, [lm[first : last + 1].reshape(-1, 1, 2)], closed, 1, max(1, size // 128), lineType=cv2.LINE_8
        )
    return out


def hull_mask(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``shape`` uint8 mask (0/1) of the convex hull of the landmarks: the face below the forehead."""
    mask = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.rint(landmarks).astype(np.int32)), 1)
    return mask


def blend_mask(landmarks: np.ndarray, shape: tuple[int, int], feather: float) -> np.ndarray:
    """``shape`` float mask: 0 outside the landmarks' hull, rising linearly over ``feather`` x the
    inter-ocular distance (outer eye corners) inside it, 1 deeper in."""
    from ..models.faces.dlib_models import OUTER_EYE_CORNERS

    inside = hull_mask(landmarks, shape)
    if feather <= 0:
        return inside.astype(np.float32)
    a, b = OUTER_EYE_CORNERS
    width = max(float(feather) * float(np.linalg.norm(landmarks[a] - landmarks[b])), 1.0)
    dist = cv2.distanceTransform(inside, cv2.DIST_L2, 5)
    return np.clip(dist / width, 0.0, 1.0).astype(np.float32) * inside


def affine_theta(m: np.ndarray, in_size: int, out_size: int) -> np.ndarray:
    """``torch.nn.functional.affine_grid`` matrix (align_corners=False) sampling the ``out_size``
    crop that the pixel map ``m`` (``2 x 3``, input -> output pixels, cv2 convention) defines."""
    def to_norm(size: int) -> np.ndarray:  # pixel centre p -> (2p + 1) / size - 1
        return np.array([[2.0 / size, 0, 1.0 / size - 1], [0, 2.0 / size, 1.0 / size - 1], [0, 0, 1]])

    inv = np.vstack([cv2.invertAffineTransform(np.asarray(m, np.float64)), [0, 0, 1]])
    theta = to_norm(in_size) @ inv @ np.linalg.inv(to_norm(out_size))
    return theta[:2].astype(np.float32)


def ssim_l1(a, b):
    """Per-image ``L1 + (1 - SSIM)`` of images in [-1, 1] (SSIM on [0, 1], Gaussian window, sigma 1.5;
    11 pixels, fewer for small crops): the offline substitute of LPIPS, not LPIPS."""
    import torch
    import torch.nn.functional as F

    x, y = (a + 1) / 2, (b + 1) / 2
    side = min(11, (x.shape[-1] // 4) * 2 + 1)
    g = torch.exp(-((torch.arange(side, dtype=x.dtype, device=x.device) - side // 2) ** 2) / (2 * 1.5**2))
    g = (g / g.sum())
    window = (g[:, None] * g[None, :]).expand(x.shape[1], 1, side, side).contiguous()

    def blur(t):
        return F.conv2d(F.pad(t, [side // 2] * 4, mode="reflect"), window, groups=x.shape[1])

    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    ssim = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return (x - y).abs().flatten(1).mean(1) + 1 - ssim.flatten(1).mean(1)


@dataclasses.dataclass
class FaceCrop:
    """One face prepared for the network: aligned crop, landmarks in the crop, image -> crop map."""

    landmarks: np.ndarray  # (68, 2) in the image
    crop: np.ndarray  # (S, S, 3) uint8
    matrix: np.ndarray  # (2, 3) image -> crop pixels
    crop_landmarks: np.ndarray  # (68, 2) in the crop

    def network_input(self) -> np.ndarray:
        """``(4, S, S)`` float32: the crop in [-1, 1] with the face hull set to 0, and the pose image."""
        size = self.crop.shape[0]
        x = self.crop.astype(np.float32) / 127.5 - 1
        x = x * (1 - hull_mask(self.crop_landmarks, (size, size))[..., None])
        return np.concatenate([x.transpose(2, 0, 1), pose_image(self.crop_landmarks, size)[None].astype(np.float32)])


@ANONYMIZERS.register("pose_face")
class PoseFace(TrainableAnonymizer):
    """Pose-conditioned face anonymizer (paper 004): masked face + pose image -> encoder -> W+ -> decoder.

    ``decoder``: ``"stylegan"`` (frozen generator from the model cache, the paper's) or
    ``"small-cpu"`` (trained substitute); ``image_size``: crop side (paper 256); ``n_ws``, ``w_dim``:
    W+ shape (paper 18 x 512); ``channels``, ``fpn_channels``, ``blocks``: encoder widths and depth;
    ``regressor_channels``: landmark regressor width; loss weights, ``lr`` (AdamW), ``regressor_lr``,
    ``regressor_steps``: see the module docstring; ``detector``: face detector for images without
    boxes; ``feather``: blend ramp width (x inter-ocular distance); ``release_format``: ``"memory"``
    or ``"bmp"`` (files under neutral names, as :mod:`~anonaudit.anonymizers.face_gan`).
    """

    label_params = ("decoder",)
    # white box: its training set and shadows; its ``generate(x)`` renders network inputs, it does not
    # sample (no ``generate`` capability), and it reconstructs no input (no ``reconstruct``)
    provides: tuple[str, ...] = ("training_keys", "retrain")
    arch_params = (
        "decoder",
        "image_size",
        "n_ws",
        "w_dim",
        "channels",
        "fpn_channels",
        "blocks",
        "regressor_channels",
        "stylegan_model",
    )
    tiny_train = {"steps": 30, "batch_size": 4}
    test_params = {"decoder": "small-cpu", "image_size": 32, "n_ws": 6, "w_dim": 32, "channels": 8, "fpn_channels": 16,
                   "regressor_channels": 8, "perceptual": "ssim_l1", "lr": 1e-3, "regressor_steps": 10}

    def __init__(
        self,
        decoder: str = "stylegan",
        image_size: int = 256,
        n_ws: int = 18,
        w_dim: int = 512,
        channels: int = 64,
        fpn_channels: int = 512,
        blocks: int = 2,
        regressor_channels: int = 32,
        stylegan_model: str = "stylegan2-ffhq-wplus",
        landmark_weight: float = 1.0,
        identity_weight: float = 0.1,
        perceptual_weight: float = 0.1,
        identity_checkpoint: str | None = None,
        perceptual: str = "lpips",
        lr: float = 1e-4,
        regressor_lr: float = 1e-3,
        regressor_steps: int = 500,
        detector: str = "dlib_hog",
        feather: float = 0.2,
        release_format: str = "memory",
        release_folder: str | None = None,
        seed: int = 0,
        checkpoint: str | None = None,
        device: str = "auto",
    ):
        if decoder not in DECODERS:
            raise ConfigError(f"pose_face: decoder must be one of {DECODERS}, got {decoder!r}")
        if perceptual not in PERCEPTUAL:
            raise ConfigError(f"pose_face: perceptual must be one of {PERCEPTUAL}, got {perceptual!r}")
        if release_format not in RELEASE_FORMATS:
            raise ConfigError(f"pose_face: release_format must be one of {RELEASE_FORMATS}, got {release_format!r}")
        if (
            isinstance(image_size, bool)
            or not isinstance(image_size, int)
            or image_size < 16
            or image_size & (image_size - 1)
        ):
            raise ConfigError(f"pose_face: image_size must be a power of two >= 16, got {image_size!r}")
        for name, v, low in (
            ("n_ws", n_ws, 3),
            ("w_dim", w_dim, 1),
            ("channels", channels, 1),
            ("fpn_channels", fpn_channels, 1),
            ("blocks", blocks, 1),
            ("regressor_channels", regressor_channels, 1),
            ("regressor_steps", regressor_steps, 0),
        ):
            check_range(self, name, v, ge=low, integer=True)
        for name, v in (
            ("landmark_weight", landmark_weight),
            ("identity_weight", identity_weight),
            ("perceptual_weight", perceptual_weight),
            ("regressor_lr", regressor_lr),
            ("feather", feather),
        ):
            check_range(self, name, v, ge=0, finite=True)
        self.decoder = decoder
        self.image_size = image_size
        self.n_ws = n_ws
        self.w_dim = w_dim
        self.channels = channels
        self.fpn_channels = fpn_channels
        self.blocks = blocks
        self.regressor_channels = regressor_channels
        self.stylegan_model = stylegan_model
        self.landmark_weight = landmark_weight
        self.identity_weight = identity_weight
        self.perceptual_weight = perceptual_weight
        self.identity_checkpoint = identity_checkpoint
        self.perceptual = perceptual
        self.regressor_lr = regressor_lr
        self.regressor_steps = regressor_steps
        self.detector = detector
        self.feather = feather
        self.release_format = release_format
        self.release_folder = release_folder
        self.check_shared(lr=lr, seed=seed, checkpoint=checkpoint, device=device)

    # -- faces ------------------------------------------------------------------------------------
    def face_landmarks(self, images: ImageSet) -> list[list[np.ndarray]]:
        """68 landmarks of every face of every image: the ``landmarks68`` annotation, else dlib's
        predictor in the record's boxes, else in the ``detector``'s faces."""
        from ..models.faces.dlib_models import landmarks68

        out: list[list[np.ndarray]] = [[] for _ in range(len(images))]
        todo = []
        for i, r in enumerate(images.records):
            if r.attributes.get(LANDMARKS) is not None:
                ann = np.asarray(r.attributes[LANDMARKS], np.float64)
                if ann.size % 136 or not np.all(np.isfinite(ann)):
                    raise DataError(
                        f"'{images.name}' image '{r.key}': attribute {LANDMARKS} must hold (F, 68, 2) finite points, "
                        f"got shape {ann.shape}"
                    )
                out[i] = list(ann.reshape(-1, 68, 2))
            elif r.boxes:
                out[i] = [landmarks68(images[i], b) for b in r.boxes]
            else:
                todo.append(i)
        if todo:
            from ..models.faces.embedders import make_detector

            for i, dets in zip(todo, make_detector(self.detector).detect(images.subset(todo))):
                out[i] = [landmarks68(images[i], d.box) for d in dets]
        return out

    def face_crop(self, image: np.ndarray, landmarks: np.ndarray) -> FaceCrop:
        from ..models.stylegan_inversion import ffhq_align

        crop, m = ffhq_align(image, landmarks, int(self.image_size))
        return FaceCrop(landmarks, crop, m, landmarks @ m[:, :2].T + m[:, 2])

    # -- networks ----------------------------------------------------------------------------------
    def build(self, device) -> None:
        import torch

        from .pose_networks import LandmarkRegressor, PoseEncoder, SmallDecoder

        self.device_ = torch.device(device)
        size = int(self.image_size)
        self.generator_ = None
        if self.decoder == "stylegan":
            from ..models.stylegan_inversion import load_synthesis

            self.generator_, num_ws, w_avg = load_synthesis(str(self.device_), self.stylegan_model)
            if (num_ws, int(w_avg.numel())) != (int(self.n_ws), int(self.w_dim)):
                raise ConfigError(
                    f"pose_face: the StyleGAN '{self.stylegan_model}' takes W+ of {num_ws} x {w_avg.numel()}; "
                    f"set n_ws: {num_ws} and w_dim: {w_avg.numel()} (got {self.n_ws} x {self.w_dim})"
                )
            self.w_avg_ = w_avg
        encoder = PoseEncoder(size, self.n_ws, self.w_dim, self.channels, self.fpn_channels, self.blocks)
        self.networks_ = {"encoder": encoder.to(self.device_),
                          "regressor": LandmarkRegressor(size, self.regressor_channels).to(self.device_)}
        if self.decoder == "small-cpu":
            self.networks_["decoder"] = SmallDecoder(
                size, self.n_ws, self.w_dim, self.fpn_channels, encoder.spatial
            ).to(self.device_)
        generator_params = [p for k, n in self.networks_.items() if k != "regressor" for p in n.parameters()]
        self.optimizers_ = {
            "generator": torch.optim.AdamW(generator_params, lr=float(self.lr)),
            "regressor": torch.optim.AdamW(self.networks_["regressor"].parameters(), lr=float(self.regressor_lr)),
        }
        self._identity = None
        self._lpips = None

    def _identity_net(self):
        """The frozen ArcFace backbone of ``identity_checkpoint`` and its input size (loaded on first use)."""
        if self._identity is None:
            from ..models.faces.arcface_train import load_trained

            net, ckpt = load_trained(self.identity_checkpoint, str(self.device_))
            for p in net.parameters():
                p.requires_grad_(False)
            self._identity = (net.eval(), int(ckpt["config"]["input_size"]))
        return self._identity

    def _perceptual(self, out, real):
        if self.perceptual == "ssim_l1":
            return ssim_l1(out, real).mean()
        if self._lpips is None:
            from ..models.lpips_net import load_lpips

            self._lpips = load_lpips("alex", str(self.device_))[0]
            for p in self._lpips.parameters():
                p.requires_grad_(False)
        return self._lpips(out, real).mean()  # LPIPS takes images in [-1, 1]

    def generate(self, x):
        """``(N, 3, S, S)`` faces in [-1, 1] from network inputs ``(N, 4, S, S)``."""
        w, pyramid = self.networks_["encoder"](x)
        if self.decoder == "small-cpu":
            return self.networks_["decoder"](w, pyramid, x)
        img = self.generator_(w + self.w_avg_)
        return self._to_crop_size(img)

    def _to_crop_size(self, img):
        import torch.nn.functional as F

        size = int(self.image_size)
        if img.shape[-1] == size:
            return img
        return F.interpolate(img, size=(size, size), mode="area" if img.shape[-1] > size else "bilinear")

    # -- Trainable ---------------------------------------------------------------------------------
    def _samples(self, data: ImageSet):
        """Cached training tensors: crops, inputs, normalised landmarks, ArcFace alignment matrices."""
        import torch

        from ..models.faces.align import arcface_matrix
        from ..models.faces.dlib_models import five_from_68

        key = (id(data), tuple(data.keys), int(self.image_size))
        cached = getattr(self, "_sample_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        size = int(self.image_size)
        faces = [self.face_crop(data[i], lm) for i, lms in enumerate(self.face_landmarks(data)) for lm in lms]
        if not faces:
            raise DataError(f"'{data.name}': pose_face found no face landmarks in {len(data)} images")
        id_size = 112  # the ArcFace template's frame; affine_grid's normalised map fits any input size
        tensors = {
            "crop": torch.from_numpy(np.stack([f.crop for f in faces]))
            .permute(0, 3, 1, 2)
            .float()
            .div(127.5)
            .sub(1)
            .contiguous(),
            "input": torch.from_numpy(np.stack([f.network_input() for f in faces])),
            "landmarks": torch.from_numpy(np.stack([f.crop_landmarks / size for f in faces]).astype(np.float32)),
            "theta": torch.from_numpy(
                np.stack(
                    [
                        affine_theta(arcface_matrix(five_from_68(f.crop_landmarks), id_size), size, id_size)
                        for f in faces
                    ]
                )
            ),
        }
        self._sample_cache = (key, tensors)
        return tensors

    def prepare(self, data: ImageSet) -> None:
        """Find and crop the training faces once, before the networks are built (the loop's hook)."""
        self._samples(data)

    def training_batches(self, data: ImageSet, batch_size: int, generator) -> Iterator[Any]:
        import torch

        tensors = self._samples(data)
        n = len(tensors["crop"])
        bs = min(int(batch_size), n)
        order = torch.randperm(n, generator=generator)
        for s in range(0, n - bs + 1, bs):  # full batches only (batch norm, equal steps per epoch)
            idx = order[s : s + bs]
            yield {k: v[idx].contiguous() for k, v in tensors.items()}

    def identity_loss(self, out, theta):
        """Mean ``1 - cos`` between the outputs' ArcFace embeddings and random target identities."""
        import torch
        import torch.nn.functional as F

        net, size = self._identity_net()

        def embed(img):
            grid = F.affine_grid(theta[: len(img)], [len(img), 3, size, size], align_corners=False)
            return F.normalize(
                net(F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=False)), dim=1
            )

        mine = embed(out)
        with torch.no_grad():
            if self.decoder == "stylegan":  # the paper: the face of a random 18 x 512 latent
                w = self.w_avg_ + torch.randn(len(out), int(self.n_ws), int(self.w_dim), device=self.device_)
                target = embed(self._to_crop_size(self.generator_(w)))
            else:  # no prior to draw a face from: a random direction of the embedding space
                target = F.normalize(torch.randn(mine.shape, device=self.device_), dim=1)
        return (1 - (mine * target).sum(1)).mean()

    def train_step(self, batch, step: int) -> dict[str, float]:
        import torch.nn.functional as F

        crop, x, lm = (batch[k].to(self.device_) for k in ("crop", "input", "landmarks"))
        regressor = self.networks_["regressor"]
        for net in self.networks_.values():
            net.train()
        reg_loss = F.mse_loss(regressor(crop), lm)
        self.optimizers_["regressor"].zero_grad(set_to_none=True)
        reg_loss.backward()
        self.optimizers_["regressor"].step()
        losses = {"regressor_loss": float(reg_loss.detach())}
        if step < int(self.regressor_steps):
            return losses
        out = self.generate(x)
        regressor.requires_grad_(False)
        landmark = ((regressor(out) - lm) ** 2).sum(-1).mean()
        regressor.requires_grad_(True)
        total = float(self.landmark_weight) * landmark
        losses["landmark_loss"] = float(landmark.detach())
        if self.identity_checkpoint and float(self.identity_weight) > 0:
            identity = self.identity_loss(out, batch["theta"].to(self.device_))
            total = total + float(self.identity_weight) * identity
            losses["identity_loss"] = float(identity.detach())
        perceptual = self._perceptual(out, crop)
        total = total + float(self.perceptual_weight) * perceptual
        losses[f"{self.perceptual}_loss"] = float(perceptual.detach())
        self.optimizers_["generator"].zero_grad(set_to_none=True)
        total.backward()
        self.optimizers_["generator"].step()
        losses["loss"] = float(total.detach())
        return losses

    def render(self, inputs: np.ndarray) -> np.ndarray:
        """``(N, S, S, 3)`` uint8 faces of network inputs ``(N, 4, S, S)`` (masked crop + pose image), eval mode."""
        import torch

        for net in self.networks_.values():
            net.eval()
        with torch.no_grad():
            return to_uint8(self.generate(torch.as_tensor(np.asarray(inputs, np.float32)).to(self.device_)).cpu())

    def sample_images(self, n: int) -> np.ndarray:
        """Outputs for the first ``n`` training faces (after training; the loop calls it then)."""
        return self.render(self._sample_cache[1]["input"][:n].numpy())

    def state_dict(self) -> dict[str, Any]:
        return {"networks": {k: v.state_dict() for k, v in self.networks_.items()},
                "optimizers": {k: v.state_dict() for k, v in self.optimizers_.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, net in self.networks_.items():
            net.load_state_dict(state["networks"][k])
        for k, opt in self.optimizers_.items():
            opt.load_state_dict(state["optimizers"][k])

    # -- anonymization ------------------------------------------------------------------------------
    def anonymize_face(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """``image`` with the face of ``landmarks`` repainted (conditioned on its own pose) and fused back."""
        face = self.face_crop(image, landmarks)
        generated = self.render(face.network_input()[None])[0]
        h, w = image.shape[:2]
        back = cv2.warpAffine(
            generated,
            face.matrix,
            (w, h),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
        return paste(image, back, Box(0, 0, w, h), blend_mask(landmarks, (h, w), float(self.feather)))

    def anonymize(self, images: ImageSet, show_progress: bool = True) -> ImageSet:
        """Every face repainted from background, forehead and pose; outside the faces' hulls the
        pixels are the original's. BMP files under neutral names with ``release_format="bmp"``."""
        self.ensure_fitted()
        faces = self.face_landmarks(images)
        out, records = [], []
        for i in progress(range(len(images)), desc=f"anonymize {self.label()}", disable=not show_progress):
            image, record = images[i], images.record(i)
            for lm in faces[i]:
                image = self.anonymize_face(image, lm)
            out.append(image)
            records.append(self._record(record, faces[i], image.shape))
        self.missed_ = [images.record(i).key for i in range(len(images)) if not faces[i]]
        result = ImageSet(records, out, name=f"{images.name}:{self.label()}")
        if self.release_format == "memory":
            return result
        folder = (
            Path(self.release_folder)
            if self.release_folder
            else Path(tempfile.mkdtemp(prefix=f"anonaudit-{self.name}-"))
        )
        return write_release(result, folder, salt=f"{self.name}:{self.seed}")

    @staticmethod
    def _record(record: Record, faces: list[np.ndarray], shape: tuple[int, ...]) -> Record:
        """The record of a released image: the repainted faces' boxes (landmark extent) and count."""
        h, w = shape[:2]
        boxes = []
        for lm in faces:
            x0, y0 = np.floor(lm.min(0)).astype(int)
            x1, y1 = np.ceil(lm.max(0)).astype(int)
            box = Box(int(x0), int(y0), int(x1 - x0 + 1), int(y1 - y0 + 1), "face").clip(w, h)
            if box.area > 0:
                boxes.append(box)
        return dataclasses.replace(record, path=None, boxes=tuple(boxes) if faces else record.boxes,
                                   attributes={**record.attributes, ANONYMIZED_FACES: len(faces)})
