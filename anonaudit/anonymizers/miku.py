"""K-anonymous face release: DIRECT and MIKU (paper 001, Nakamura, Sakuma and Nishi).

MIKU = mapper -> K-anonymizer -> reverse mapper (paper 001, Fig. 1). The K-anonymizer groups the
mapped vectors of the images being released with Mondrian (Algorithm 1,
:mod:`~anonaudit.anonymizers.mondrian`: groups of K..2K-1) and unifies each group by its mean; the
reverse mapper turns each group's mean back into ONE image, and that same image is released for
every member of the group, so K-anonymity holds in image space, not only in the mapped space.

Registered targets:

- ``direct``: the identity mapper, pixel space (the paper's comparison method DIRECT).
- ``miku`` with ``mapper``:

  * ``"stylegan"``: the paper's MIKU. W+ (18 x 512) found per image by gradient descent on
    L2 + VGG-16 perceptual loss (conv1_1, conv1_2, conv3_2, conv4_2) with a background mask, after
    FFHQ-style alignment (:mod:`anonaudit.models.stylegan_inversion`); needs StyleGAN and VGG-16
    weights from the model cache and reports itself unavailable (with the command) otherwise.
  * ``"pca"``: principal components fitted on the training images: NOT the paper's MIKU.
  * ``"autoencoder"``: a small convolutional autoencoder trained on faces with ``anonaudit train``
    (``configs/train/miku-autoencoder-*.yaml``) or by ``fit``: NOT the paper's MIKU either.

  The label always names the mapper (``miku(mapper=pca, k=4)``), so a PCA-MIKU is never reported
  as the paper's method.

All images of a release are mapped at one working resolution (``size``; for ``direct`` the first
image's size by default); each group's image is resized to a member's own size when sizes differ
(image sizes are not anonymized). Fewer than K images cannot be K-anonymized: that is an error.
After ``anonymize``, ``groups_`` lists the keys of each group.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from ..data.imageset import ImageSet
from ..errors import ConfigError
from ..params import check_range
from ..registry import ANONYMIZERS
from .base import Anonymizer
from .miku_mappers import IdentityMapper, PCAMapper, float_to_uint8, images_to_float
from .mondrian import mondrian_groups
from .trainable import DP_DELTA, DP_MAX_GRAD_NORM, TrainableAnonymizer
from .whitebox import require

#: Paper 001: N_s = 9216 (= 18 x 512, every W+ dimension).
PAPER_N_SEARCH = 9216
MAPPERS = ("pca", "autoencoder", "stylegan")


def _check_k(name: str, k: Any, n_search: Any, size: Any) -> None:
    check_range(name, "k", k, ge=1, integer=True)
    check_range(name, "n_search", n_search, ge=1, integer=True, optional=True)  # null: all dimensions
    check_range(name, "size", size, ge=8, integer=True, optional=True)


def k_anonymous_release(
    images: ImageSet, mapper: Any, size: int | None, k: int, n_search: int | None, seed: int, label: str
) -> tuple[ImageSet, list[list[str]]]:
    """Map, group with Mondrian, decode each group's mean once and give that image to every member.

    ``size``: working resolution (None: the first image's size). Returns the release and the
    groups' keys.
    """
    if hasattr(mapper, "encode_set"):  # mappers with their own preprocessing (StyleGAN: alignment)
        z = mapper.encode_set(images)
    else:
        z = mapper.encode(images_to_float(images, size if size is not None else images[0].shape[:2]))
    groups = mondrian_groups(z, k, n_search, seed)
    decoded = mapper.decode(np.stack([np.asarray(z[g], np.float64).mean(axis=0) for g in groups]))
    out: list[np.ndarray | None] = [None] * len(images)
    for g, image in zip(groups, decoded):
        shared = float_to_uint8(image)
        for i in g:
            h, w = images[int(i)].shape[:2]
            out[int(i)] = shared if shared.shape[:2] == (h, w) else float_to_uint8(image, (w, h))
    keys = images.keys
    return images.with_images(out, name=f"{images.name}:{label}"), [[keys[int(i)] for i in g] for g in groups]


@ANONYMIZERS.register("direct")
class Direct(Anonymizer):
    """Paper 001's DIRECT: Mondrian K-anonymity on the pixels, each group released as its mean image.

    ``n_search`` is Mondrian's N_s (paper: 9216; None = every pixel value). ``size``: working
    resolution (None: the first image's size, no resampling for a set of one size).
    """

    label_params = ("k",)

    def __init__(self, k: int = 2, n_search: int | None = PAPER_N_SEARCH, size: int | None = None, seed: int = 0):
        _check_k("direct", k, n_search, size)
        self.k = k
        self.n_search = n_search
        self.size = size
        self.seed = seed

    def anonymize(self, images: ImageSet, show_progress: bool = True) -> ImageSet:
        out, self.groups_ = k_anonymous_release(
            images, IdentityMapper(), self.size, int(self.k), self.n_search, int(self.seed), self.label()
        )
        return out


@ANONYMIZERS.register("miku")
class Miku(TrainableAnonymizer):
    """MIKU: Mondrian K-anonymity in a mapped space, released through the reverse mapper.

    ``mapper``: ``"pca"`` (``n_components``), ``"autoencoder"`` (``latent``, trained: ``lr``,
    ``checkpoint``) or ``"stylegan"`` (the paper's; ``stylegan_model``, ``inversion_steps``,
    ``inversion_lr``). ``size``: working resolution of the pca/autoencoder mappers (the StyleGAN
    mapper works at the generator's resolution). ``k``, ``n_search``: Mondrian's K and N_s.
    """

    label_params = ("mapper", "k")
    provides: tuple[str, ...] = ("training_keys", "retrain", "reconstruct")
    arch_params = ("mapper", "size", "latent", "dp_epsilon", "dp_delta")
    dp_network = "autoencoder"
    tiny_train = {"epochs": 30, "batch_size": 32}

    def __init__(
        self,
        mapper: str = "pca",
        k: int = 2,
        n_search: int | None = PAPER_N_SEARCH,
        size: int = 64,
        n_components: int = 128,
        latent: int = 128,
        lr: float = 1e-3,
        stylegan_model: str = "stylegan2-ffhq-wplus",
        inversion_steps: int = 5000,
        inversion_lr: float = 0.01,
        checkpoint: str | None = None,
        device: str = "auto",
        seed: int = 0,
        dp_epsilon: float | None = None,
        dp_delta: float = DP_DELTA,
        dp_max_grad_norm: float = DP_MAX_GRAD_NORM,
    ):
        if mapper not in MAPPERS:
            raise ConfigError(f"miku: mapper must be one of {MAPPERS}, got {mapper!r}")
        if dp_epsilon is not None and mapper != "autoencoder":
            raise ConfigError(f"miku: dp_epsilon applies to the trained autoencoder mapper only (mapper={mapper!r} is "
                              "not trained by gradient descent on the training images: pca is fitted in closed form, "
                              "stylegan is pretrained elsewhere)")
        _check_k("miku", k, n_search, size)
        check_range(self, "n_components", n_components, ge=1, integer=True)
        if size is None or size % 8:
            raise ConfigError(f"miku: size must be a multiple of 8, got {size!r}")
        self.mapper = mapper
        self.k = k
        self.n_search = n_search
        self.size = size
        self.n_components = n_components
        self.latent = latent
        self.stylegan_model = stylegan_model
        self.inversion_steps = inversion_steps
        self.inversion_lr = inversion_lr
        self.check_shared(lr=lr, seed=seed, checkpoint=checkpoint, device=device, dp_epsilon=dp_epsilon,
                          dp_delta=dp_delta, dp_max_grad_norm=dp_max_grad_norm)

    # -- fitting ---------------------------------------------------------------------------------
    def fit(self, train: ImageSet | None = None) -> Miku:
        """PCA: fit the components on ``train``. Autoencoder: load ``checkpoint`` or train on ``train``
        through the training loop (tiny CPU settings). StyleGAN: nothing to learn (pretrained)."""
        if self.mapper == "pca":
            if train is None or len(train) == 0:
                raise ConfigError(f"{self.label()}: the PCA mapper needs training images")
            self.mapper_ = PCAMapper(self.n_components, self.seed).fit(images_to_float(train, self.size))
            self.training_keys_ = list(train.keys)
            return self
        if self.mapper == "autoencoder":
            super().fit(train)
            return self
        return self

    def _fitted_mapper(self):
        if self.mapper == "pca":
            if getattr(self, "mapper_", None) is None:
                raise ConfigError(f"{self.label()}: not fitted; call fit(images) to learn the principal components")
            return self.mapper_
        if self.mapper == "autoencoder":
            from .miku_networks import AutoencoderMapper

            self.ensure_fitted()
            return AutoencoderMapper(self.networks_["autoencoder"], self.device_)
        if getattr(self, "mapper_", None) is None:
            from ..models.stylegan_inversion import StyleGANMapper

            self.mapper_ = StyleGANMapper(
                self.stylegan_model, self.inversion_steps, self.inversion_lr, self.device, self.seed
            )
        return self.mapper_

    # -- white box --------------------------------------------------------------------------------
    def capabilities(self) -> tuple[str, ...]:
        """None for the StyleGAN mapper (pretrained elsewhere: no training set of this method's own)."""
        return () if self.mapper == "stylegan" else self.provides

    def reconstruction_errors(self, images: ImageSet) -> np.ndarray:
        """White-box capability ``reconstruct``: each image's mean squared error through the mapper and
        the reverse mapper (RGB at ``size``, in [0, 1]); PCA and autoencoder mappers."""
        require(self, "reconstruct", f"{self.label()}: reconstruction_errors")
        mapper = self._fitted_mapper()
        x = images_to_float(images, self.size)
        return ((mapper.decode(mapper.encode(x)) - x) ** 2).reshape(len(x), -1).mean(axis=1).astype(float)

    def retrained(self, images: ImageSet, seed: int) -> Miku:
        """White-box capability ``retrain``: the PCA mapper is fitted again on ``images``; the
        autoencoder trains with this one's recipe (:meth:`TrainableAnonymizer.retrained`)."""
        require(self, "retrain", f"{self.label()}: retrained")
        if self.mapper == "pca":
            return type(self)(**{**self.get_params(), "seed": int(seed)}).fit(images)
        return super().retrained(images, seed)

    def anonymize(self, images: ImageSet, show_progress: bool = True) -> ImageSet:
        mapper = self._fitted_mapper()
        size = getattr(mapper, "size", None) or self.size
        out, self.groups_ = k_anonymous_release(
            images, mapper, size, int(self.k), self.n_search, int(self.seed), self.label()
        )
        return out

    # -- the Trainable protocol (autoencoder mapper) -----------------------------------------------
    def build(self, device) -> None:
        import torch

        from .miku_networks import ConvAutoencoder

        if self.mapper != "autoencoder":
            raise ConfigError(f"{self.label()}: only mapper=autoencoder trains with `anonaudit train` "
                              f"(pca is fitted by fit(), stylegan uses pretrained weights)")
        self.device_ = torch.device(device)
        net = ConvAutoencoder(self.size, self.latent).to(self.device_)
        self.networks_ = {"autoencoder": net}
        self.optimizers_ = {"autoencoder": self.private_optimizer(net, torch.optim.Adam(net.parameters(), lr=self.lr))}
        self._preview = None

    def training_batches(self, data: ImageSet, batch_size: int, generator) -> Iterator[Any]:
        import torch

        cache = getattr(self, "_train_cache", None)
        if cache is None or cache[0] != data.keys:
            x = torch.from_numpy(images_to_float(data, self.size)).permute(0, 3, 1, 2).contiguous()
            self._train_cache = cache = (data.keys, x)
        x = cache[1]
        if self._preview is None:
            self._preview = x[:16]
        for idx in self.batch_indices(len(x), batch_size, generator, full_only=False):
            yield x[idx]

    def train_step(self, batch, step: int) -> dict[str, float]:
        import torch.nn.functional as F

        net, opt = self.networks_["autoencoder"], self.optimizers_["autoencoder"]
        net.train()
        batch = batch.to(self.device_)
        if self.private:  # DP-SGD: each image's reconstruction error, clipped and noised
            return {"mse": opt.step(lambda model, x: F.mse_loss(model(x), x), batch)}
        loss = F.mse_loss(net(batch), batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"mse": float(loss.detach())}

    def sample_images(self, n: int) -> np.ndarray:
        """Training images (top half of the grid) next to their reconstructions (bottom half)."""
        import torch

        net = self.networks_["autoencoder"]
        x = (
            self._preview[: max(1, n // 2)].to(self.device_)
            if self._preview is not None
            else torch.rand(max(1, n // 2), 3, self.size, self.size, device=self.device_)
        )
        with torch.no_grad():
            net.eval()
            both = torch.cat([x, net(x)]).permute(0, 2, 3, 1).cpu().numpy()
        return np.stack([float_to_uint8(im) for im in both])

    def state_dict(self) -> dict[str, Any]:
        return {
            "autoencoder": self.networks_["autoencoder"].state_dict(),
            "optimizer": self.optimizers_["autoencoder"].state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.networks_["autoencoder"].load_state_dict(state["autoencoder"])
        self.optimizers_["autoencoder"].load_state_dict(state["optimizer"])
