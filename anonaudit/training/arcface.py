"""The ArcFace embedder trainer behind ``anonaudit train`` (method ``arcface``), the only ArcFace training.

ArcFace (Deng et al., CVPR 2019): an IResNet and an additive angular margin head
(:mod:`anonaudit.models.faces.arcface_train`), softmax cross-entropy, SGD with momentum and weight
decay, the learning rate divided by 10 at given steps. Configs: ``configs/train/arcface-paper.yaml``
(the paper's, GPU), ``configs/train/arcface-tiny.yaml`` and ``configs/arcface-train-cpu.yaml`` (CPU).
It trains through the one loop (:func:`anonaudit.training.train`: seeding, resuming, checkpoints,
logs); the run's ``checkpoint.pt`` loads in the ``arcface_trained`` embedder. torch and the networks
are imported only when training starts.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError, DataError
from ..params import ParamsMixin, check_range
from ..registry import TRAINERS

if TYPE_CHECKING:
    import torch

    from ..data.imageset import ImageSet


@TRAINERS.register("arcface")
class ArcFaceTrainer(ParamsMixin):
    """ArcFace training (IResNet + additive angular margin head) on a data set's identities.

    The learning rate is divided by 10 at each step number in ``lr_steps`` (insightface's 100k and
    160k of 180k). Faces are aligned once per run (MTCNN 5 points, or only resized with ``align="none"``);
    images without a face are left out and counted in the checkpoint state's ``info``.
    """

    arch_params = ("arch", "layers", "widths", "input_size", "embedding_dim", "align")

    def __init__(self, arch: str = "iresnet50", layers: list[int] | None = None, widths: list[int] | None = None,
                 input_size: int = 112, embedding_dim: int = 512, scale: float = 64.0, margin: float = 0.5,
                 lr: float = 0.1, momentum: float = 0.9, weight_decay: float = 5e-4, lr_steps: list[int] | None = None,
                 flip: bool = True, align: str = "mtcnn", select: str = "largest", fp16: bool = False):
        self.arch, self.layers, self.widths, self.input_size = arch, layers, widths, input_size
        self.embedding_dim, self.scale, self.margin = embedding_dim, scale, margin
        self.lr, self.momentum, self.weight_decay, self.lr_steps = lr, momentum, weight_decay, lr_steps
        self.flip, self.align, self.select, self.fp16 = flip, align, select, fp16
        check_range(self, "input_size", input_size, ge=1, integer=True)
        check_range(self, "embedding_dim", embedding_dim, ge=1, integer=True)
        check_range(self, "scale", scale, gt=0)
        check_range(self, "margin", margin, ge=0, lt=math.pi / 2)
        check_range(self, "lr", lr, gt=0)
        check_range(self, "momentum", momentum, ge=0, lt=1)
        check_range(self, "weight_decay", weight_decay, ge=0)
        for k, step in enumerate(lr_steps or []):
            check_range(self, f"lr_steps[{k}]", step, ge=1, integer=True)

    def _arch(self) -> dict[str, Any]:
        return {"arch": self.arch, "layers": self.layers, "widths": self.widths or [64, 128, 256, 512],
                "input_size": self.input_size, "embedding_dim": self.embedding_dim}

    def prepare(self, data: ImageSet) -> None:
        """Align the faces once and index the identities (the head has one class per identity)."""
        import torch

        from ..models.faces.arcface_train import align_faces

        if not data.has_labels("identity"):
            raise DataError(f"'{data.name}': ArcFace training needs an identity for every image")
        crops, kept = align_faces(data, self.input_size, self.align, self.select)
        identities = [str(data.identities[i]) for i in kept]
        self.classes_ = sorted(set(identities))
        if len(self.classes_) < 2:
            raise DataError(
                f"'{data.name}': ArcFace training needs faces of at least 2 identities, found {len(self.classes_)}"
            )
        index = {c: j for j, c in enumerate(self.classes_)}
        self.info_ = {"n_images": len(data), "n_aligned": len(kept), "no_face": len(data) - len(kept)}
        self.crops_ = crops
        self.labels_ = torch.tensor([index[c] for c in identities], dtype=torch.int64)

    def build(self, device: torch.device) -> None:
        import torch

        from ..models.faces.arcface_train import ArcMarginHead, build_backbone

        self.device_ = device
        backbone = build_backbone(self._arch()).to(device)
        head = ArcMarginHead(self.embedding_dim, len(self.classes_), self.scale, self.margin).to(device)
        self.networks_ = {"backbone": backbone, "head": head}
        params = [p for p in list(backbone.parameters()) + list(head.parameters()) if p.requires_grad]
        self.optimizers_ = {
            "sgd": torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
        }
        self.scaler_ = torch.amp.GradScaler("cuda", enabled=self.fp16 and device.type == "cuda")

    def training_batches(self, data: ImageSet, batch_size: int, generator: torch.Generator) -> Iterator[Any]:
        import torch

        from ..models.faces.arcface_train import to_input

        n = len(self.labels_)
        bs = min(batch_size, n)
        order = torch.randperm(n, generator=generator)
        flips = torch.rand(n, generator=generator) < 0.5
        for s in range(n // bs):  # drop the last partial batch (BatchNorm needs > 1 sample)
            idx = order[s * bs : (s + 1) * bs]
            x = to_input(np.asarray(self.crops_[idx.numpy()]))
            if self.flip:
                x = torch.where(flips[idx][:, None, None, None], x.flip(3), x)
            yield x, self.labels_[idx]

    def train_step(self, batch: Any, step: int) -> dict[str, float]:
        import torch
        import torch.nn.functional as F

        x, y = (t.to(self.device_) for t in batch)
        backbone, head, opt = self.networks_["backbone"], self.networks_["head"], self.optimizers_["sgd"]
        backbone.train()
        head.train()
        for group in opt.param_groups:
            group["lr"] = self.lr * 0.1 ** sum(step >= m for m in (self.lr_steps or []))
        with torch.autocast(device_type="cuda", dtype=torch.float16, enabled=self.scaler_.is_enabled()):
            emb = backbone(x)
        loss = F.cross_entropy(head(emb.float(), y), y)
        opt.zero_grad(set_to_none=True)
        self.scaler_.scale(loss).backward()
        self.scaler_.step(opt)
        self.scaler_.update()
        return {"loss": float(loss.detach()), "lr": float(opt.param_groups[0]["lr"])}

    def sample_images(self, n: int) -> np.ndarray:
        """The first ``n`` aligned training crops (what the network sees)."""
        return np.asarray(self.crops_[:n])

    def state_dict(self) -> dict[str, Any]:
        return {"backbone": self.networks_["backbone"].state_dict(), "head": self.networks_["head"].state_dict(),
                "optimizer": self.optimizers_["sgd"].state_dict(), "scaler": self.scaler_.state_dict(),
                "classes": list(self.classes_), "config": self._arch(), "info": dict(self.info_)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if list(state["classes"]) != list(self.classes_):
            raise ConfigError("cannot resume ArcFace training: the training identities changed")
        self.networks_["backbone"].load_state_dict(state["backbone"])
        self.networks_["head"].load_state_dict(state["head"])
        self.optimizers_["sgd"].load_state_dict(state["optimizer"])
        self.scaler_.load_state_dict(state["scaler"])
