"""Paper 002 (Rao, Kumar & Krishna, "End to end image privacy method using customized GANs"):
replace the face with a generated one, keep the background, release BMP files without metadata.

Two generators, as the paper compares them (its Table 1):

- ``FaceDCGAN`` ("face_dcgan"), the "customized GAN": the paper's list of customisations is
  DCGAN's (Radford et al., 2016): strided convolutions in the discriminator (no pooling),
  transposed convolutions in the generator, LeakyReLU and batch normalisation, weights ~ N(0, 0.02),
  Adam with learning rate 2e-4, ``tanh`` output, binary cross-entropy loss (its Fig. 2 minimax).
  Where the paper is silent we follow DCGAN: Adam beta1 0.5, ReLU in the generator and
  LeakyReLU(0.2) in the discriminator, latent size 100, 64x64 images, the non-saturating generator loss.
- ``FaceProGAN`` ("face_progan"), the paper's "PROGAN 128": progressive growing with fade-in
  (Karras et al., 2018) up to ``image_size`` (128), with that paper's pixel norm, equalized
  learning rate, minibatch standard deviation, WGAN-GP loss plus the drift term, Adam lr 1e-3,
  betas (0, 0.99); ``phase_steps`` steps per fade-in and per stabilisation phase.

As an anonymizer (the paper's "background preservation"): each face box (the record's boxes;
without boxes, the ``detector``'s detections), grown by ``margin``, is replaced by a generated
face resized to the box and blended through a soft ellipse inscribed in the box (``feather``: the
width of the ramp, a fraction of the radius). Pixels outside the ellipses are the original's, bit
for bit. A face the detector misses stays as it is (``missed_`` lists those images; records carry
``anonymized_faces`` and the replaced ``boxes``). With ``release_format="bmp"`` (the paper's
measure against metadata) the anonymized images are written as BMP files with no metadata to
``release_folder`` (default: a new temporary folder) under neutral names (a keyed hash of the
image key, never the original file name or identity), and the returned set reads those files, so
the metadata attack audits the files actually released.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..data.imageset import Box, ImageSet, Record
from ..data.io import write_image
from ..errors import ConfigError
from ..params import check_range
from ..progress import progress
from ..registry import ANONYMIZERS
from .face_regions import ANONYMIZED_FACES
from .gan_base import RegionGAN
from .trainable import DP_DELTA, DP_MAX_GRAD_NORM

RELEASE_FORMATS = ("bmp", "memory")


def ellipse_mask(h: int, w: int, feather: float = 0.15) -> np.ndarray:
    """``(h, w)`` mask of the ellipse inscribed in an ``h x w`` box: 1 inside ``1 - feather`` of the
    radius, a linear ramp to 0 at the ellipse, exactly 0 outside it (the corners of the box)."""
    ys = (np.arange(h) + 0.5 - h / 2) / (h / 2)
    xs = (np.arange(w) + 0.5 - w / 2) / (w / 2)
    r = np.sqrt(ys[:, None] ** 2 + xs[None, :] ** 2)
    if feather <= 0:
        return (r < 1).astype(np.float32)
    return np.clip((1 - r) / float(feather), 0.0, 1.0).astype(np.float32)


def release_name(key: str, salt: str) -> str:
    """A neutral file name for image ``key``: a salted hash, unrelated to the original's name."""
    return hashlib.sha256(f"{salt}\0{key}".encode()).hexdigest()[:20]


def write_release(images: ImageSet, folder: str | Path, salt: str = "") -> ImageSet:
    """Write every image of ``images`` to ``folder`` as a BMP file (no metadata: BMP has no place
    for it) under a neutral name; returns the same records (keys, labels) reading those files."""
    folder = Path(folder)
    records = []
    for i, record in enumerate(images.records):
        path = folder / f"{release_name(record.key, salt)}.bmp"
        write_image(path, images[i])
        records.append(dataclasses.replace(record, path=path))
    return ImageSet(records, name=images.name)


class FaceGAN(RegionGAN):
    """Shared part of the two face generators: face regions, the ellipse blend, BMP release."""

    detector: str
    margin: float
    feather: float
    release_format: str
    release_folder: str | None

    def _check(self) -> None:
        if self.release_format not in RELEASE_FORMATS:
            raise ConfigError(
                f"{self.name}: release_format must be one of {RELEASE_FORMATS}, got {self.release_format!r}"
            )
        check_range(self, "margin", self.margin, ge=0)

    def with_face_boxes(self, images: ImageSet) -> ImageSet:
        """``images`` whose records carry the face boxes to replace: their own boxes, else detections."""
        missing = [i for i, r in enumerate(images.records) if not r.boxes]
        detected: dict[int, tuple[Box, ...]] = {}
        if missing:
            from ..models.faces.embedders import make_detector

            subset = images.subset(missing)
            for i, dets in zip(missing, make_detector(self.detector).detect(subset)):
                detected[i] = tuple(d.box for d in dets)
        records = []
        for i, r in enumerate(images.records):
            h, w = images[i].shape[:2]
            boxes = detected.get(i, r.boxes)
            grown = (dataclasses.replace(b.expand(float(self.margin)).clip(w, h), label="face") for b in boxes)
            records.append(dataclasses.replace(r, boxes=tuple(b for b in grown if b.area > 0)))
        return ImageSet(
            records, [images[i] for i in range(len(images))] if images.in_memory else None, name=images.name
        )

    def regions(self, image: np.ndarray, record: Record) -> list[Box]:
        return list(record.boxes)

    def regions_of(self, images: ImageSet) -> ImageSet:
        return self.with_face_boxes(images)

    def region_mask(self, box: Box) -> np.ndarray:
        return ellipse_mask(box.h, box.w, self.feather)

    def training_regions(self, data: ImageSet) -> np.ndarray:
        return super().training_regions(self.with_face_boxes(data))

    def anonymize(self, images: ImageSet, show_progress: bool = True) -> ImageSet:
        """Faces replaced, background kept; BMP files under neutral names with ``release_format="bmp"``."""
        self.ensure_fitted()
        marked = self.with_face_boxes(images)
        out, records = [], []
        for i in progress(range(len(marked)), desc=f"anonymize {self.label()}", disable=not show_progress):
            record = marked.record(i)
            image, _, _ = self.replace_regions(marked[i], record, 1)
            out.append(image)
            records.append(
                dataclasses.replace(
                    record, path=None, attributes={**record.attributes, ANONYMIZED_FACES: len(record.boxes)}
                )
            )
        self.missed_: list[str] = [r.key for r in marked.records if not r.boxes]
        result = ImageSet(records, out, name=f"{images.name}:{self.label()}")
        if self.release_format == "memory":
            return result
        folder = (
            Path(self.release_folder)
            if self.release_folder
            else Path(tempfile.mkdtemp(prefix=f"anonaudit-{self.name}-"))
        )
        return write_release(result, folder, salt=f"{self.name}:{self.seed}")


@ANONYMIZERS.register("face_dcgan")
class FaceDCGAN(FaceGAN):
    """Replace each face with one from a DCGAN (paper 002's "customized GAN"), background kept, BMP release."""

    critic_name = "discriminator"
    arch_params = ("image_size", "latent_dim", "g_channels", "d_channels", "max_channels", "dp_epsilon", "dp_delta")
    dp_network = "discriminator"
    tiny_train = {"epochs": 30, "batch_size": 16}
    test_params = {"image_size": 32, "latent_dim": 64, "g_channels": 16, "d_channels": 16}

    def __init__(
        self,
        image_size: int = 64,
        latent_dim: int = 100,
        g_channels: int = 64,
        d_channels: int = 64,
        max_channels: int = 512,
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        detector: str = "mtcnn",
        margin: float = 0.1,
        feather: float = 0.15,
        release_format: str = "bmp",
        release_folder: str | None = None,
        seed: int = 0,
        checkpoint: str | None = None,
        device: str = "auto",
        dp_epsilon: float | None = None,
        dp_delta: float = DP_DELTA,
        dp_max_grad_norm: float = DP_MAX_GRAD_NORM,
    ):
        self.image_size = image_size
        self.latent_dim = latent_dim
        self.g_channels = g_channels
        self.d_channels = d_channels
        self.max_channels = max_channels
        self.betas = betas
        self.detector = detector
        self.margin = margin
        self.feather = feather
        self.release_format = release_format
        self.release_folder = release_folder
        self.check_shared(lr=lr, seed=seed, checkpoint=checkpoint, device=device, dp_epsilon=dp_epsilon,
                          dp_delta=dp_delta, dp_max_grad_norm=dp_max_grad_norm)
        self._check()

    def build(self, device) -> None:
        import torch

        from .gan_networks import ConvCritic, ConvGenerator

        self.device_ = device
        g = ConvGenerator(self.latent_dim, self.image_size, self.g_channels, self.max_channels).to(device)
        d = ConvCritic(self.image_size, self.d_channels, self.max_channels, norm="batch")
        if self.private:  # batch statistics mix the examples: group normalisation instead (Opacus' fix)
            from ..training.dp import replace_batch_norm

            d = replace_batch_norm(d)
        d = d.to(device)
        betas = tuple(float(b) for b in self.betas)
        self.networks_ = {"generator": g, "discriminator": d}
        self.optimizers_ = {
            "generator": torch.optim.Adam(g.parameters(), lr=self.lr, betas=betas),
            "discriminator": self.private_optimizer(d, torch.optim.Adam(d.parameters(), lr=self.lr, betas=betas)),
        }

    def train_step(self, batch, step: int) -> dict[str, float]:
        """One discriminator and one generator update with binary cross-entropy (on logits: the
        discriminator's sigmoid is inside the loss, which is the same function, computed stably)."""
        import torch
        import torch.nn.functional as F

        g, d = self.networks_["generator"], self.networks_["discriminator"]
        g.train()
        d.train()
        real = batch.to(self.device_)
        if self.private:
            return self._private_step(real)
        n = real.shape[0]
        ones, zeros = torch.ones(n, device=self.device_), torch.zeros(n, device=self.device_)
        fake = g(torch.randn(n, self.latent_dim, device=self.device_))
        d_loss = F.binary_cross_entropy_with_logits(d(real), ones) + F.binary_cross_entropy_with_logits(
            d(fake.detach()), zeros
        )
        self.optimizers_["discriminator"].zero_grad(set_to_none=True)
        d_loss.backward()
        self.optimizers_["discriminator"].step()
        g_loss = F.binary_cross_entropy_with_logits(d(fake), ones)  # non-saturating: G maximises log D(G(z))
        self.optimizers_["generator"].zero_grad(set_to_none=True)
        g_loss.backward()
        self.optimizers_["generator"].step()
        return {"discriminator_loss": float(d_loss.detach()), "generator_loss": float(g_loss.detach())}

    def _private_step(self, real) -> dict[str, float]:
        """DP-SGD for the discriminator: each real face's loss ``BCE(D(x), 1) + BCE(D(G(z)), 0)`` with a
        fake of its own, clipped and noised (:class:`~anonaudit.training.dp.PrivateOptimizer`); then the
        generator's step on fresh fakes (the expected batch size: a Poisson batch may be empty)."""
        import torch
        import torch.nn.functional as F

        g, d = self.networks_["generator"], self.networks_["discriminator"]
        n = real.shape[0]
        with torch.no_grad():
            fake = g(torch.randn(n, self.latent_dim, device=self.device_)) if n else real

        def loss(disc, x, f):
            out_real, out_fake = disc(x), disc(f)
            return F.binary_cross_entropy_with_logits(out_real, torch.ones_like(out_real)) + (
                F.binary_cross_entropy_with_logits(out_fake, torch.zeros_like(out_fake)))

        d_loss = self.optimizers_["discriminator"].step(loss, real, fake)
        out = d(g(torch.randn(self.dp_plan_.expected_batch_size, self.latent_dim, device=self.device_)))
        g_loss = F.binary_cross_entropy_with_logits(out, torch.ones_like(out))
        self.optimizers_["generator"].zero_grad(set_to_none=True)
        g_loss.backward()
        self.optimizers_["generator"].step()
        return {"discriminator_loss": d_loss, "generator_loss": float(g_loss.detach())}

    def generate(self, n: int, generator) -> Any:
        import torch

        self.ensure_fitted()
        g = self.networks_["generator"]
        g.eval()
        z = torch.randn(n, self.latent_dim, generator=generator).to(self.device_)
        with torch.no_grad():
            return g(z).cpu()


@ANONYMIZERS.register("face_progan")
class FaceProGAN(FaceGAN):
    """Replace each face with one from a progressively grown GAN (paper 002's "PROGAN 128")."""

    arch_params = ("image_size", "latent_dim", "channels", "max_channels", "dp_epsilon", "dp_delta")
    dp_network = "critic"
    tiny_train = {"steps": 40, "batch_size": 16}
    test_params = {"image_size": 16, "latent_dim": 64, "channels": 16, "max_channels": 64, "phase_steps": 10}

    def __init__(
        self,
        image_size: int = 128,
        latent_dim: int = 512,
        channels: int = 16,
        max_channels: int = 512,
        phase_steps: int = 50_000,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.0, 0.99),
        gp_weight: float = 10.0,
        drift: float = 0.001,
        detector: str = "mtcnn",
        margin: float = 0.1,
        feather: float = 0.15,
        release_format: str = "bmp",
        release_folder: str | None = None,
        seed: int = 0,
        checkpoint: str | None = None,
        device: str = "auto",
        dp_epsilon: float | None = None,
        dp_delta: float = DP_DELTA,
        dp_max_grad_norm: float = DP_MAX_GRAD_NORM,
    ):
        self.image_size = image_size
        self.latent_dim = latent_dim
        self.channels = channels
        self.max_channels = max_channels
        self.phase_steps = phase_steps
        self.betas = betas
        self.gp_weight = gp_weight
        self.drift = drift
        self.detector = detector
        self.margin = margin
        self.feather = feather
        self.release_format = release_format
        self.release_folder = release_folder
        self.check_shared(lr=lr, seed=seed, checkpoint=checkpoint, device=device, dp_epsilon=dp_epsilon,
                          dp_delta=dp_delta, dp_max_grad_norm=dp_max_grad_norm)
        self._check()

    @property
    def max_depth(self) -> int:
        return int(np.log2(int(self.image_size) // 4))

    def schedule(self, step: int) -> tuple[int, float]:
        """``(depth, alpha)`` at training step ``step``: a stable phase at 4x4, then for every doubling
        a fade-in phase (alpha rising linearly from 0 to 1) and a stable phase, ``phase_steps`` each."""
        phase = int(step) // int(self.phase_steps)
        depth = min((phase + 1) // 2, self.max_depth)
        fading = phase % 2 == 1 and (phase + 1) // 2 <= self.max_depth
        alpha = (int(step) % int(self.phase_steps)) / int(self.phase_steps) if fading else 1.0
        return depth, alpha

    def build(self, device) -> None:
        import torch

        from .gan_networks import ProCritic, ProGenerator, check_size

        check_size(self.image_size)
        self.device_ = device
        g = ProGenerator(self.latent_dim, self.image_size, self.channels, self.max_channels).to(device)
        # with DP the minibatch standard deviation channel is zero: it is a statistic across examples
        d = ProCritic(self.image_size, self.channels, self.max_channels, minibatch_std=not self.private).to(device)
        betas = tuple(float(b) for b in self.betas)
        self.networks_ = {"generator": g, "critic": d}
        self.optimizers_ = {
            "generator": torch.optim.Adam(g.parameters(), lr=self.lr, betas=betas, eps=1e-8),
            "critic": self.private_optimizer(d, torch.optim.Adam(d.parameters(), lr=self.lr, betas=betas, eps=1e-8)),
        }
        self.trained_steps_ = 0

    def _reals(self, batch, depth: int, alpha: float):
        """Real images at the current resolution; during a fade-in, blended with their lower-resolution version."""
        import torch.nn.functional as F

        size = 4 * 2**depth
        x = F.adaptive_avg_pool2d(batch, size)
        if alpha < 1.0:
            low = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="nearest")
            x = alpha * x + (1 - alpha) * low
        return x.contiguous()

    def train_step(self, batch, step: int) -> dict[str, float]:
        import torch

        from .gan_networks import gradient_penalty

        depth, alpha = self.schedule(step)
        g, d = self.networks_["generator"], self.networks_["critic"]
        real = self._reals(batch.to(self.device_), depth, alpha)
        if self.private:
            return self._private_step(real, step, depth, alpha)
        n = real.shape[0]
        fake = g(torch.randn(n, self.latent_dim, device=self.device_), depth, alpha)

        class _AtDepth(torch.nn.Module):  # the critic at this depth, for the penalty
            def forward(self, x):
                return d(x, depth, alpha)

        d_real, d_fake = d(real, depth, alpha), d(fake.detach(), depth, alpha)
        gp = gradient_penalty(_AtDepth(), real, fake, self.gp_weight)
        d_loss = d_fake.mean() - d_real.mean() + gp + self.drift * (d_real**2).mean()
        self.optimizers_["critic"].zero_grad(set_to_none=True)
        d_loss.backward()
        self.optimizers_["critic"].step()
        g_loss = -d(fake, depth, alpha).mean()
        self.optimizers_["generator"].zero_grad(set_to_none=True)
        g_loss.backward()
        self.optimizers_["generator"].step()
        self.trained_steps_ = step + 1
        return {
            "critic_loss": float(d_loss.detach()),
            "generator_loss": float(g_loss.detach()),
            "gp": float(gp.detach()),
            "depth": float(depth),
            "alpha": float(alpha),
        }

    def _private_step(self, real, step: int, depth: int, alpha: float) -> dict[str, float]:
        """DP-SGD for the critic: each real face's loss ``D(G(z)) - D(x) + GP + drift D(x)^2`` with a fake
        and an interpolation point of its own, the penalty differentiated per example; then the
        generator's step on fresh fakes (the expected batch size: a Poisson batch may be empty)."""
        import torch

        from .gan_networks import example_gradient_penalty

        g, d = self.networks_["generator"], self.networks_["critic"]
        n = real.shape[0]
        with torch.no_grad():
            fake = g(torch.randn(n, self.latent_dim, device=self.device_), depth, alpha) if n else real
        mix = torch.rand(n, 1, 1, 1, device=self.device_)
        weight, drift = float(self.gp_weight), float(self.drift)

        def loss(critic, x, f, t):
            def at_depth(y):
                return critic(y, depth, alpha)

            d_real = at_depth(x)
            gp = example_gradient_penalty(at_depth, x, f, t, weight)
            return at_depth(f).mean() - d_real.mean() + gp + drift * (d_real**2).mean()

        d_loss = self.optimizers_["critic"].step(loss, real, fake, mix)
        m = self.dp_plan_.expected_batch_size
        g_loss = -d(g(torch.randn(m, self.latent_dim, device=self.device_), depth, alpha), depth, alpha).mean()
        self.optimizers_["generator"].zero_grad(set_to_none=True)
        g_loss.backward()
        self.optimizers_["generator"].step()
        self.trained_steps_ = step + 1
        return {"critic_loss": d_loss, "generator_loss": float(g_loss.detach()), "depth": float(depth),
                "alpha": float(alpha)}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "trained_steps": int(self.trained_steps_)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.trained_steps_ = int(state["trained_steps"])

    def critic_output(self, x):
        """The critic at the depth and fade-in reached so far, on ``x`` pooled to that resolution (its
        minibatch standard deviation layer makes a score depend a little on the rest of the batch)."""
        depth, alpha = self.schedule(max(0, self.trained_steps_ - 1))
        critic = self.networks_["critic"]
        critic.eval()
        return critic(self._reals(x, depth, alpha), depth, alpha).reshape(-1)

    def generate(self, n: int, generator) -> Any:
        """Samples at the resolution reached so far, upsampled to ``image_size`` (nearest), in [-1, 1]."""
        import torch
        import torch.nn.functional as F

        self.ensure_fitted()
        depth, alpha = self.schedule(max(0, self.trained_steps_ - 1))
        z = torch.randn(n, self.latent_dim, generator=generator).to(self.device_)
        with torch.no_grad():
            x = self.networks_["generator"](z, depth, alpha).clamp(-1, 1)
        size = int(self.image_size)
        if x.shape[-1] != size:
            x = F.interpolate(x, size=(size, size), mode="nearest")
        return x.cpu()
