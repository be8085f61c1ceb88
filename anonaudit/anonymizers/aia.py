"""AIA, the Adversarial Image Anonymizer (paper 003, Mosallanezhad, Silva, Mancenido and Liu).

A greyscale convolutional autoencoder learns a representation g of each face; an adversary (a
gender classifier on g) and a Siamese face-matching network on g are trained alongside, and the
encoder is fine-tuned with ``L_total = L_AE + alpha L_Siamese + beta A`` (eq. 8 writes
``- beta L_Adv``): keep what face matching needs, hide what an adversary could use. The adversarial
term ``A`` is chosen by ``adversary_loss`` (:meth:`AIA._adversarial_term`): ``"paper"`` is eq. (8)
read literally (``A = -L_Adv``), which leaves gender fully decodable by a fresh linear attacker
(measured on a toy set where gender is linearly encoded, ``tests/test_aia.py``); the default
``"decorrelation"`` removes what any linear attacker can use and brings it near chance there. The networks and the
paper's contradictions
(decoder and adversary sizes) are in :mod:`anonaudit.anonymizers.aia_networks`.

Training (one step of the shared loop, :mod:`anonaudit.training`):

1. the adversary takes ``adv_steps`` steps on the current g (detached), minimising its BCE;
2. for the first ``pretrain_steps`` steps ("we first train each component individually") the
   autoencoder minimises its BCE reconstruction loss and the Siamese network its contrastive loss
   (eq. 7) on detached g; afterwards (adversarial fine-tuning) encoder, decoder and Siamese network
   minimise ``L_total`` together, the adversary's parameters untouched by this step. The adversary
   network keeps training (its batch accuracy is logged); it drives the encoder with
   ``adversary_loss`` ``"paper"`` or ``"confusion"``.

Batches pair each image with another photo of the same person when there is one (positive pairs)
and with its neighbour in the batch (a negative pair when the identities differ). Images without a
gender label do not enter L_Adv.

Released artefacts:

- :meth:`AIA.represent`: the representation g, the paper's output; with ``random_fraction`` > 0 a
  seeded share of each g's values is replaced by U[0, 1] draws (the paper's Random baseline uses 0.5).
- :meth:`AIA.anonymize`: the decoder's image of the released g (greyscale, resized to the input's
  size, as RGB), i.e. what a reconstruction attack recovers from g: the suite's image attacks
  (re-identification, gender) run on it.

Baselines as parameters: Original = ``alpha=0, beta=0``; the paper's AIA\\T (without the utility task T,
the Siamese matching) = ``alpha=0``; without the adversary = ``beta=0`` (an ablation the paper does not
report); Random = Original with ``random_fraction=0.5``. The privacy score on g is the
``representation_gender`` attack (:mod:`anonaudit.attacks.representation`): fresh attackers trained
on the released representations of the intruder's own images.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..data.imageset import ImageSet
from ..errors import ConfigError, DataError
from ..params import check_range
from ..registry import ANONYMIZERS
from .trainable import DP_DELTA, DP_MAX_GRAD_NORM, TrainableAnonymizer

#: The paper's two readings of each contradicted network (see aia_networks), and a linear adversary.
DECODERS = ("three_conv", "two_blocks")
ADVERSARIES = ("cnn", "mlp", "linear")
#: The encoder's adversarial objective (see :meth:`AIA.train_step`).
ADVERSARY_LOSSES = ("decorrelation", "confusion", "paper")
GENDER_CODES = {"male": 1, "m": 1, "female": 0, "f": 0}


def gender_labels(images: ImageSet, attribute: str = "gender") -> np.ndarray:
    """``(n,)`` int array: 1 male, 0 female, -1 unknown (from the ``attribute`` labels)."""
    out = np.full(len(images), -1, dtype=np.int64)
    for i, v in enumerate(images.attribute(attribute)):
        if isinstance(v, str) and v.strip().lower() in GENDER_CODES:
            out[i] = GENDER_CODES[v.strip().lower()]
        elif isinstance(v, (bool, int, np.integer)) and int(v) in (0, 1):
            out[i] = int(v)
    return out


def grey_images(images: ImageSet, size: int) -> np.ndarray:
    """``(n, 1, size, size)`` float32 greyscale images in [0, 1] (area interpolation)."""
    import cv2

    out = [cv2.resize(cv2.cvtColor(images[i], cv2.COLOR_RGB2GRAY), (size, size), interpolation=cv2.INTER_AREA)
           for i in range(len(images))]
    if not out:
        raise DataError(f"'{images.name}': no images")
    return (np.stack(out)[:, None].astype(np.float32) / 255.0)


@ANONYMIZERS.register("aia")
class AIA(TrainableAnonymizer):
    """Adversarial Image Anonymizer (paper 003).

    ``alpha``, ``beta``: weights of the Siamese and adversary losses (paper: 0.5 each); ``size``:
    input side (greyscale, a multiple of 4; the paper does not state it); ``decoder``,
    ``adversary``, ``adversary_hidden``: see :mod:`~anonaudit.anonymizers.aia_networks` (defaults:
    the method section's reading, Section 4.3 and eq. (6); ``configs/train/aia-paper.yaml`` uses the
    Section 5.2 sizes; ``"linear"`` is a standardised logistic regression, the fresh attacker's
    class); ``adversary_loss``: the encoder's adversarial term (:data:`ADVERSARY_LOSSES`, see
    :meth:`_adversarial_term`); ``margin``: contrastive margin m; ``lr``: Adam's
    learning rate for every network; ``pretrain_steps``: steps before adversarial fine-tuning;
    ``adv_steps``: adversary steps per step; ``random_fraction``: share of g replaced by U[0, 1]
    at release; ``attribute``: the private attribute's label.
    """

    #: ``adversary_loss`` always: the default (``decorrelation``) is not the paper's eq. (8), so the label
    #: says which term trained a target (``aia(alpha=0.5, beta=0.5, adversary_loss=paper)`` is the paper's).
    label_params = ("alpha", "beta", "adversary_loss")
    provides: tuple[str, ...] = ("training_keys", "retrain", "reconstruct", "representation")
    param_alternatives = {**TrainableAnonymizer.param_alternatives, "attribute": ("smiling",)}
    test_params = {"pretrain_steps": 4, "adversary_hidden": 16}
    arch_params = (
        "alpha",
        "beta",
        "size",
        "decoder",
        "adversary",
        "adversary_hidden",
        "adversary_loss",
        "margin",
        "pretrain_steps",
        "attribute",
        "dp_epsilon",
        "dp_delta",
    )
    #: With ``dp_epsilon`` (only for ``alpha = beta = 0``) the encoder and decoder train by DP-SGD.
    dp_network = "autoencoder"

    def __init__(
        self,
        alpha: float = 0.5,
        beta: float = 0.5,
        size: int = 32,
        decoder: str = "two_blocks",
        adversary: str = "mlp",
        adversary_hidden: int = 128,
        adversary_loss: str = "decorrelation",
        margin: float = 2.0,
        lr: float = 1e-3,
        pretrain_steps: int = 50,
        adv_steps: int = 1,
        random_fraction: float = 0.0,
        attribute: str = "gender",
        checkpoint: str | None = None,
        device: str = "auto",
        seed: int = 0,
        dp_epsilon: float | None = None,
        dp_delta: float = DP_DELTA,
        dp_max_grad_norm: float = DP_MAX_GRAD_NORM,
    ):
        if dp_epsilon is not None and (alpha != 0 or beta != 0):
            raise ConfigError(
                f"aia: dp_epsilon needs alpha = beta = 0 (the Original baseline, a plain autoencoder), got alpha="
                f"{alpha}, beta={beta}: the Siamese and adversarial terms couple the examples of a batch (pairs of "
                "training images, batch statistics), so DP-SGD's per-example clipping does not bound one image's "
                "influence (docs/training.md)"
            )
        for name, v in (("alpha", alpha), ("beta", beta), ("margin", margin)):
            check_range(self, name, v, ge=0, finite=True)
        if isinstance(size, bool) or not isinstance(size, int) or size < 8 or size % 4:
            raise ConfigError(f"aia: size must be a multiple of 4, >= 8, got {size!r}")
        if decoder not in DECODERS:
            raise ConfigError(f"aia: decoder must be one of {DECODERS}, got {decoder!r}")
        if adversary not in ADVERSARIES:
            raise ConfigError(f"aia: adversary must be one of {ADVERSARIES}, got {adversary!r}")
        if adversary_loss not in ADVERSARY_LOSSES:
            raise ConfigError(f"aia: adversary_loss must be one of {ADVERSARY_LOSSES}, got {adversary_loss!r}")
        check_range(self, "adv_steps", adv_steps, ge=1, integer=True)
        check_range(self, "random_fraction", random_fraction, ge=0, le=1)
        self.alpha = alpha
        self.beta = beta
        self.size = size
        self.decoder = decoder
        self.adversary = adversary
        self.adversary_hidden = adversary_hidden
        self.adversary_loss = adversary_loss
        self.margin = margin
        self.pretrain_steps = pretrain_steps
        self.adv_steps = adv_steps
        self.random_fraction = random_fraction
        self.attribute = attribute
        self.check_shared(lr=lr, seed=seed, checkpoint=checkpoint, device=device, dp_epsilon=dp_epsilon,
                          dp_delta=dp_delta, dp_max_grad_norm=dp_max_grad_norm)

    @property
    def tiny_train(self) -> dict[str, Any]:
        """``fit`` without a checkpoint: pre-training, then as many adversarial fine-tuning steps."""
        return {
            "steps": 2 * max(1, int(self.pretrain_steps)),
            "batch_size": 32,
            "checkpoint_every": 0,
            "sample_every": 0,
        }

    # -- the Trainable protocol ------------------------------------------------------------------
    def build(self, device) -> None:
        import torch

        from .aia_networks import Adversary, Decoder, Encoder, Siamese

        self.device_ = torch.device(device)
        nets = {
            "encoder": Encoder(), "decoder": Decoder(self.size, self.decoder),
            "adversary": Adversary(self.size, self.adversary, self.adversary_hidden), "siamese": Siamese(self.size),
        }
        self.networks_ = {k: v.to(self.device_) for k, v in nets.items()}

        def adam(*ms: torch.nn.Module) -> torch.optim.Adam:
            return torch.optim.Adam([p for m in ms for p in m.parameters()], lr=float(self.lr))

        encoder, decoder = self.networks_["encoder"], self.networks_["decoder"]
        self.optimizers_ = {
            "autoencoder": self.private_optimizer(torch.nn.Sequential(encoder, decoder), adam(encoder, decoder)),
            "adversary": adam(self.networks_["adversary"]),
            "siamese": adam(self.networks_["siamese"]),
        }
        self._preview = None

    def _training_tensors(self, data: ImageSet):
        import torch

        cache = getattr(self, "_train_cache", None)
        if cache is None or cache[0] != data.keys:
            x = torch.from_numpy(grey_images(data, self.size))
            ids = [str(v) if v not in (None, "") else f"\0{k}" for v, k in zip(data.identities, data.keys)]
            codes = {p: j for j, p in enumerate(sorted(set(ids)))}
            ident = torch.tensor([codes[p] for p in ids])
            gender = torch.from_numpy(gender_labels(data, self.attribute))
            same = {}
            for i, c in enumerate(ident.tolist()):
                same.setdefault(c, []).append(i)
            self._train_cache = cache = (data.keys, x, ident, gender, same)
        return cache[1:]

    def training_batches(self, data: ImageSet, batch_size: int, generator) -> Iterator[dict[str, Any]]:
        import torch

        x, ident, gender, same = self._training_tensors(data)
        known = gender[gender >= 0]
        prior = float(known.float().mean()) if len(known) else 0.5  # share of label 1 among the training images
        if self._preview is None:
            self._preview = x[:8]
        if self.private:  # DP-SGD trains the autoencoder alone: Poisson batches of images, no pairs, no labels
            for idx in self.batch_indices(len(x), batch_size, generator):
                yield {"anchor": x[idx]}
            return
        order = torch.randperm(len(x), generator=generator)
        draws = torch.rand(len(x), generator=generator)
        for start in range(0, len(x), batch_size):
            anchors = order[start : start + batch_size]
            partners = []
            for a, u in zip(anchors.tolist(), draws[start : start + batch_size].tolist()):
                others = [j for j in same[int(ident[a])] if j != a]
                partners.append(others[int(u * len(others))] if others else a)
            partners = torch.tensor(partners)
            yield {"anchor": x[anchors], "partner": x[partners], "has_partner": partners != anchors,
                   "identity": ident[anchors], "gender": gender[anchors], "partner_gender": gender[partners],
                   "prior": prior}

    def train_step(self, batch: dict[str, Any], step: int) -> dict[str, float]:
        import torch
        import torch.nn.functional as F

        from .aia_networks import contrastive_loss

        if self.private:
            return self._private_step(batch)
        enc, dec, adv, siam = (self.networks_[k] for k in ("encoder", "decoder", "adversary", "siamese"))
        for m in self.networks_.values():
            m.train()
        dev = self.device_
        xa, xp = batch["anchor"].to(dev), batch["partner"].to(dev)
        x = torch.cat([xa, xp])
        labels = torch.cat([batch["gender"], batch["partner_gender"]]).to(dev)
        known = labels >= 0
        finetune = step >= int(self.pretrain_steps)

        # 1. the adversary learns gender from the current representation
        with torch.no_grad():
            g_fixed = enc(x)
        adv_loss = torch.zeros((), device=dev)
        for _ in range(int(self.adv_steps)):
            if known.any():
                adv_loss = F.binary_cross_entropy_with_logits(adv(g_fixed[known]), labels[known].float())
                self.optimizers_["adversary"].zero_grad(set_to_none=True)
                adv_loss.backward()
                self.optimizers_["adversary"].step()

        # 2. autoencoder (+ Siamese), adversarially once pre-training is over
        g = enc(x)
        n = len(xa)
        ga, gp = g[:n], g[n:]
        ae_loss = F.binary_cross_entropy(dec(g), x)
        s_in_a, s_in_p = (ga, gp) if finetune else (ga.detach(), gp.detach())
        ea, ep = siam(s_in_a), siam(s_in_p)
        has = batch["has_partner"].to(dev)
        ident = batch["identity"].to(dev)
        pos = (
            contrastive_loss(ea[has], ep[has], torch.zeros(int(has.sum()), device=dev), float(self.margin))
            if has.any()
            else ea.sum() * 0
        )
        neg = (
            contrastive_loss(ea, ea.roll(1, 0), (ident != ident.roll(1, 0)).float(), float(self.margin))
            if n > 1
            else ea.sum() * 0
        )
        siam_loss = pos + neg
        self.optimizers_["autoencoder"].zero_grad(set_to_none=True)
        self.optimizers_["siamese"].zero_grad(set_to_none=True)
        adv_term = self._adversarial_term(g[known], labels[known], batch["prior"])
        if finetune:
            total = ae_loss + float(self.alpha) * siam_loss + float(self.beta) * adv_term
            total.backward()
            adv.zero_grad(set_to_none=True)  # the adversary only learns in its own step
        else:
            (ae_loss + siam_loss).backward()  # separate parameters: each trained on its own loss
        self.optimizers_["autoencoder"].step()
        self.optimizers_["siamese"].step()
        with torch.no_grad():
            acc = (
                ((adv(g_fixed[known]) > 0).long() == labels[known]).float().mean()
                if known.any()
                else torch.tensor(float("nan"))
            )
        return {
            "ae_bce": float(ae_loss.detach()),
            "siamese": float(siam_loss.detach()),
            "adversary_bce": float(adv_loss.detach()),
            "adversary_acc": float(acc),
            f"encoder_{self.adversary_loss}": float(adv_term.detach()),
            "finetune": float(finetune),
        }

    def _private_step(self, batch: dict[str, Any]) -> dict[str, float]:
        """DP-SGD for the Original baseline (alpha = beta = 0): encoder and decoder on each image's BCE
        reconstruction loss alone, clipped and noised; the adversary and the Siamese network, which
        would see the training images without noise, are not trained (nothing released depends on them)."""
        import torch.nn.functional as F

        for m in self.networks_.values():
            m.train()
        x = batch["anchor"].to(self.device_)
        loss = self.optimizers_["autoencoder"].step(lambda model, xi: F.binary_cross_entropy(model(xi), xi), x)
        return {"ae_bce": loss}

    def _adversarial_term(self, g, labels, prior: float):
        """The encoder's adversarial loss on the representations ``g`` of labelled images (``beta``
        weights it; :data:`ADVERSARY_LOSSES`).

        - ``"paper"``: ``-L_Adv``, eq. (8) read literally: the encoder maximises the training
          adversary's BCE. It can do so by making the adversary confidently WRONG, which leaves the
          attribute as decodable as before (a fresh attacker flips the sign); the loss is unbounded.
        - ``"confusion"``: the BCE between the training adversary's output and the attribute's
          training prior, minimal when the adversary does no better than the prior (the confusion
          loss of domain-adversarial training).
        - ``"decorrelation"``: the adversary of the fresh attacker's class in closed form, refitted on
          every batch: the squared cross-covariance between per-dimension standardised g and the
          centred attribute (the sum over g's dimensions of a one-feature least-squares adversary's
          R^2 times the attribute's variance). It is zero exactly when both classes have the same mean
          g, which is when no linear classifier beats the prior (linear guardedness, Belrose et al.
          2023, "LEACE"). ``prior`` is unused.
        """
        import torch
        import torch.nn.functional as F

        if len(g) < 2:
            return g.sum() * 0
        y = labels.float()
        if self.adversary_loss == "decorrelation":
            z = (g - g.mean(0)) / torch.sqrt(g.var(0) + 1e-12)  # scale-free: shrinking g cannot hide it
            return (z * (y - y.mean())[:, None]).mean(0).pow(2).sum()
        logits = self.networks_["adversary"](g)
        if self.adversary_loss == "paper":
            return -F.binary_cross_entropy_with_logits(logits, y)
        return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, float(prior)))

    def sample_images(self, n: int) -> np.ndarray:
        """Training images (first half) and their reconstructions (second half), greyscale as RGB."""
        import torch

        x = self._preview if self._preview is not None else torch.rand(4, 1, self.size, self.size)
        x = x[: max(1, n // 2)].to(self.device_)
        with torch.no_grad():
            self.networks_["encoder"].eval()
            self.networks_["decoder"].eval()
            both = torch.cat([x, self.networks_["decoder"](self.networks_["encoder"](x))])
        grey = np.clip(np.round(both[:, 0].cpu().numpy() * 255), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=3)

    def state_dict(self) -> dict[str, Any]:
        return {"networks": {k: m.state_dict() for k, m in self.networks_.items()},
                "optimizers": {k: o.state_dict() for k, o in self.optimizers_.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, m in self.networks_.items():
            m.load_state_dict(state["networks"][k])
        for k, o in self.optimizers_.items():
            o.load_state_dict(state["optimizers"][k])

    # -- release ---------------------------------------------------------------------------------
    def represent(self, images: ImageSet, batch_size: int = 64) -> np.ndarray:
        """The released representations g ``(n, 12 * (size/4)^2)`` in [0, 1] (after the Random
        replacement when ``random_fraction`` > 0, seeded per image key)."""
        import torch

        self.ensure_fitted()
        enc = self.networks_["encoder"].eval()
        x = grey_images(images, self.size)
        with torch.no_grad():
            g = np.concatenate([enc(torch.from_numpy(x[s : s + batch_size]).to(self.device_)).cpu().numpy()
                                for s in range(0, len(x), batch_size)])
        if self.random_fraction:
            for i, key in enumerate(images.keys):
                rng = np.random.default_rng(
                    [int(self.seed), int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")]
                )
                chosen = rng.permutation(g.shape[1])[: int(round(float(self.random_fraction) * g.shape[1]))]
                g[i, chosen] = rng.uniform(0.0, 1.0, len(chosen))
        return g

    def reconstruct(self, g: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """The decoder's greyscale images ``(n, size, size)`` in [0, 1] of representations ``g``."""
        import torch

        self.ensure_fitted()
        dec = self.networks_["decoder"].eval()
        with torch.no_grad():
            out = [dec(torch.as_tensor(g[s : s + batch_size], dtype=torch.float32, device=self.device_)).cpu().numpy()
                   for s in range(0, len(g), batch_size)]
        return np.concatenate(out)[:, 0]

    def reconstruction_errors(self, images: ImageSet, batch_size: int = 64) -> np.ndarray:
        """White-box capability ``reconstruct``: each image's mean squared error through the encoder
        and decoder (greyscale at ``size``, in [0, 1]; the networks themselves, before the Random
        replacement of ``random_fraction``)."""
        import torch

        self.ensure_fitted()
        enc, dec = self.networks_["encoder"].eval(), self.networks_["decoder"].eval()
        x = grey_images(images, self.size)
        errors = []
        with torch.no_grad():
            for s in range(0, len(x), batch_size):
                batch = torch.from_numpy(x[s : s + batch_size]).to(self.device_)
                errors.append(((dec(enc(batch)) - batch) ** 2).mean(dim=(1, 2, 3)).cpu().numpy())
        return np.concatenate(errors).astype(float) if errors else np.zeros(0)

    def anonymize(self, images: ImageSet, show_progress: bool = True) -> ImageSet:
        import cv2

        recon = self.reconstruct(self.represent(images))
        out = []
        for i in range(len(images)):
            h, w = images[i].shape[:2]
            grey = cv2.resize(
                np.clip(np.round(recon[i] * 255), 0, 255).astype(np.uint8), (w, h), interpolation=cv2.INTER_LINEAR
            )
            out.append(np.repeat(grey[..., None], 3, axis=2))
        return images.with_images(out, name=f"{images.name}:{self.label()}")
