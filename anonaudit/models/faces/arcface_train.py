"""Train an ArcFace embedder (IResNet + additive angular margin head) on a user's own identities.

ArcFace (Deng et al., CVPR 2019): logits ``s * cos(theta_j)`` for other classes and
``s * cos(theta_y + m)`` for the true class, softmax cross-entropy; paper values ``s=64, m=0.5``,
SGD momentum 0.9, weight decay 5e-4, batch 512, learning rate 0.1 divided by 10 at 100k and 160k
of 180k iterations (``configs/arcface-train-gpu.yaml``). ``configs/arcface-train-cpu.yaml`` is a
seconds-long CPU configuration for tests and demos.

Faces are aligned once (5-point similarity warp to the ArcFace template scaled to ``input_size``)
and stored in ``<checkpoint_dir>/aligned_<size>.npy``. A checkpoint is written atomically after
every epoch (``last.pt``) and training resumes from it; the final embedder weights go to
``model.pt``, loadable by the ``arcface_trained`` embedder.

:class:`anonaudit.training.arcface.ArcFaceTrainer` is the same training behind ``anonaudit train``
(method ``arcface``); its ``checkpoint.pt`` loads in ``arcface_trained`` too.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...checkpoint import CHECKPOINT_FORMAT as TRAIN_CHECKPOINT_FORMAT
from ...checkpoint import CheckpointError
from ...data.imageset import ImageSet
from ...errors import ConfigError, DataError, ModelUnavailableError
from ...fileio import atomic_path, torch_load, torch_save_atomic, write_json_atomic
from ...progress import progress
from ...registry import EMBEDDERS
from .align import align_arcface, main_face
from .arcface import IResNet, build_iresnet
from .base import make_detector
from .mtcnn import resolve_device

CHECKPOINT_FORMAT = "anonaudit-arcface-v1"
#: Config fields that define the network; a resumed run must keep them.
_ARCH_FIELDS = ("arch", "layers", "widths", "input_size", "embedding_dim", "align")


@dataclass
class ArcFaceTrainConfig:
    """Hyper-parameters of :func:`train_arcface` (defaults: the ArcFace paper's, IResNet-50, 112x112)."""

    arch: str = "iresnet50"
    layers: list[int] | None = None  # explicit blocks per stage (overrides ``arch``)
    widths: list[int] = field(default_factory=lambda: [64, 128, 256, 512])
    input_size: int = 112
    embedding_dim: int = 512
    scale: float = 64.0
    margin: float = 0.5
    epochs: int = 16
    batch_size: int = 512
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_milestones: list[float] = field(default_factory=lambda: [100 / 180, 160 / 180])  # fractions of all steps
    flip: bool = True
    align: str = "mtcnn"  # detector for the 5 landmarks, or "none" when images are aligned crops already
    select: str = "largest"
    device: str = "auto"
    fp16: bool = False
    seed: int = 0
    checkpoint_dir: str = "runs/arcface"
    resume: bool = True

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArcFaceTrainConfig:
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = [k for k in data if k not in names]
        if unknown:
            hints = {k: difflib.get_close_matches(k, names, n=1) for k in unknown}
            raise ConfigError(f"unknown ArcFace training option(s) {unknown}; did you mean {hints}? (valid: {names})")
        cfg = cls(**data)
        cfg.validate()
        return cfg

    @classmethod
    def from_yaml(cls, path: str | Path) -> ArcFaceTrainConfig:
        import yaml

        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: cannot read ArcFace training config ({exc})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping of options")
        return cls.from_dict(data.get("arcface_train", data))

    def validate(self) -> None:
        if self.epochs < 1 or self.batch_size < 2:
            raise ConfigError("ArcFace training needs epochs >= 1 and batch_size >= 2")
        if not 0 <= self.margin < math.pi / 2 or self.scale <= 0:
            raise ConfigError(f"margin must be in [0, pi/2) and scale > 0 (got m={self.margin}, s={self.scale})")
        if any(not 0 < f < 1 for f in self.lr_milestones):
            raise ConfigError(f"lr_milestones are fractions of training in (0, 1), got {self.lr_milestones}")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class ArcMarginHead(nn.Module):
    """Additive angular margin softmax head: class centres on the sphere, ``cos(theta_y + m)`` for the target.

    As in insightface, when ``theta_y + m`` would pass pi the target logit becomes
    ``cos(theta_y) - m sin(m)`` so it stays monotonic in ``theta_y``.
    """

    def __init__(self, in_features: int, n_classes: int, scale: float = 64.0, margin: float = 0.5):
        super().__init__()
        self.scale, self.margin = float(scale), float(margin)
        self.weight = nn.Parameter(torch.empty(n_classes, in_features))
        nn.init.normal_(self.weight, std=0.01)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cos = F.linear(F.normalize(embeddings.float()), F.normalize(self.weight.float())).clamp(-1 + 1e-7, 1 - 1e-7)
        target = cos.gather(1, labels[:, None])
        sin = torch.sqrt(1.0 - target * target)
        phi = target * math.cos(self.margin) - sin * math.sin(self.margin)
        phi = torch.where(
            target > math.cos(math.pi - self.margin), phi, target - math.sin(math.pi - self.margin) * self.margin
        )
        return self.scale * cos.scatter(1, labels[:, None], phi)


def build_backbone(cfg: ArcFaceTrainConfig | dict[str, Any]) -> IResNet:
    """The IResNet a config describes."""
    c = cfg if isinstance(cfg, dict) else cfg.as_dict()
    return build_iresnet(
        c["arch"], num_features=c["embedding_dim"], widths=c["widths"], input_size=c["input_size"], layers=c["layers"]
    )


def align_faces(
    images: ImageSet, size: int, align: str = "mtcnn", select: str = "largest", device: str = "cpu"
) -> tuple[np.ndarray, list[int]]:
    """``(n_ok, size, size, 3)`` uint8 aligned crops and the indices of the images they come from.

    With ``align="none"`` every image is taken as an aligned crop and only resized.
    """
    if align == "none":
        crops = [cv2.resize(images[i], (size, size), interpolation=cv2.INTER_AREA) for i in range(len(images))]
        return np.stack(crops) if crops else np.zeros((0, size, size, 3), np.uint8), list(range(len(images)))
    dets = make_detector(align, device).detect(images)
    crops, kept = [], []
    for i in progress(range(len(images)), desc="aligning faces", total=len(images)):
        img = images[i]
        face = main_face(dets[i], img.shape, select)
        if face is not None and face.landmarks is not None:
            crops.append(align_arcface(img, face.landmarks, size))
            kept.append(i)
    return (np.stack(crops) if crops else np.zeros((0, size, size, 3), np.uint8)), kept


def to_input(crops: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 ``NHWC`` RGB crops -> float ``NCHW`` in [-1, 1] (insightface's ``(x - 127.5) / 127.5``)."""
    x = torch.as_tensor(crops)
    # contiguous: torch 2.14's CPU convolution backward crashes on the permuted (channels-last) strides
    return ((x.permute(0, 3, 1, 2).float() - 127.5) / 127.5).contiguous()


def _data_digest(images: ImageSet, identities: list[str]) -> str:
    h = hashlib.sha256()
    for i in range(len(images)):
        h.update(images.hash(i).encode())
        h.update(b"\0" + str(identities[i]).encode() + b"\n")
    return h.hexdigest()


def _prepare(
    train: ImageSet, cfg: ArcFaceTrainConfig, out: Path, device: str
) -> tuple[np.ndarray, np.ndarray, list[str], dict[str, Any]]:
    if not train.has_labels("identity"):
        raise DataError(f"'{train.name}': ArcFace training needs an identity for every image")
    identities = [str(i) for i in train.identities]
    digest = _data_digest(train, identities)
    crops_path, meta_path = out / f"aligned_{cfg.input_size}.npy", out / f"aligned_{cfg.input_size}.json"
    key = {"data": digest, "align": cfg.align, "select": cfg.select, "size": cfg.input_size}
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() and crops_path.is_file() else None
    if meta is None or meta.get("key") != key:
        crops, kept = align_faces(train, cfg.input_size, cfg.align, cfg.select, device)
        with atomic_path(crops_path) as tmp, open(tmp, "wb") as f:
            np.save(f, crops)
        meta = {"key": key, "kept": kept}
        write_json_atomic(meta_path, meta)
    crops = np.load(crops_path, mmap_mode="r")
    kept = meta["kept"]
    classes = sorted({identities[i] for i in kept})
    if len(classes) < 2:
        raise DataError(f"'{train.name}': ArcFace training needs faces of at least 2 identities, found {len(classes)}")
    index = {c: j for j, c in enumerate(classes)}
    labels = np.array([index[identities[i]] for i in kept], dtype=np.int64)
    info = {"data_digest": digest, "n_images": len(train), "n_aligned": len(kept), "no_face": len(train) - len(kept)}
    return crops, labels, classes, info


def _lr_at(cfg: ArcFaceTrainConfig, step: int, total: int) -> float:
    return cfg.lr * 0.1 ** sum(step >= f * total for f in cfg.lr_milestones)


def train_arcface(train: ImageSet, config: ArcFaceTrainConfig | dict[str, Any] | str | Path, device: str | None = None):
    """Train an ArcFace embedder on ``train``'s identities; returns an ``arcface_trained`` embedder.

    ``config`` is an :class:`ArcFaceTrainConfig`, a dict of its fields, or a YAML file. Training
    resumes from ``<checkpoint_dir>/last.pt`` when ``resume`` is set and the file exists; raising
    ``epochs`` in the config continues a finished run. Images where no face is found are left out
    (counted in the checkpoint's ``info``).
    """
    if isinstance(config, (str, Path)):
        cfg = ArcFaceTrainConfig.from_yaml(config)
    elif isinstance(config, dict):
        cfg = ArcFaceTrainConfig.from_dict(config)
    else:
        cfg = config
        cfg.validate()
    dev = resolve_device(device or cfg.device)
    out = Path(cfg.checkpoint_dir)
    out.mkdir(parents=True, exist_ok=True)
    crops, labels, classes, info = _prepare(train, cfg, out, dev)

    torch.manual_seed(cfg.seed)
    model = build_backbone(cfg).to(dev)
    head = ArcMarginHead(cfg.embedding_dim, len(classes), cfg.scale, cfg.margin).to(dev)
    params = [p for p in list(model.parameters()) + list(head.parameters()) if p.requires_grad]
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    history: list[float] = []
    start = 0
    last = out / "last.pt"
    if cfg.resume and last.is_file():
        ckpt = torch_load(last, dev, error=CheckpointError, what="checkpoint")
        _check_resumable(ckpt, cfg, classes, info, last)
        model.load_state_dict(ckpt["backbone"])
        head.load_state_dict(ckpt["head"])
        opt.load_state_dict(ckpt["optimizer"])
        history, start = list(ckpt["history"]), int(ckpt["epoch"])

    n = len(labels)
    bs = min(cfg.batch_size, n)
    steps_per_epoch = max(1, n // bs)  # drop the last partial batch (BatchNorm needs > 1 sample)
    total = steps_per_epoch * cfg.epochs
    use_amp = cfg.fp16 and dev.startswith("cuda")
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    labels_t = torch.from_numpy(labels)
    for epoch in progress(range(start, cfg.epochs), desc="arcface epochs", total=cfg.epochs - start):
        gen = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
        order = torch.randperm(n, generator=gen)
        flips = torch.rand(n, generator=gen) < 0.5
        model.train()
        head.train()
        losses = []
        for s in range(steps_per_epoch):
            idx = order[s * bs : (s + 1) * bs]
            x = to_input(np.asarray(crops[idx.numpy()]))
            if cfg.flip:
                x = torch.where(flips[idx][:, None, None, None], x.flip(3), x)
            x, y = x.to(dev, non_blocking=True), labels_t[idx].to(dev)
            for group in opt.param_groups:
                group["lr"] = _lr_at(cfg, epoch * steps_per_epoch + s, total)
            with torch.autocast(device_type="cuda", dtype=torch.float16, enabled=use_amp):
                emb = model(x)
            loss = F.cross_entropy(head(emb.float(), y), y)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            losses.append(float(loss.detach()))
        history.append(float(np.mean(losses)))
        torch_save_atomic(
            {
                "format": CHECKPOINT_FORMAT,
                "config": cfg.as_dict(),
                "epoch": epoch + 1,
                "backbone": model.state_dict(),
                "head": head.state_dict(),
                "optimizer": opt.state_dict(),
                "history": history,
                "classes": classes,
                "info": info,
            },
            last,
        )
    final = out / "model.pt"
    torch_save_atomic(
        {
            "format": CHECKPOINT_FORMAT,
            "config": cfg.as_dict(),
            "backbone": model.state_dict(),
            "history": history,
            "classes": classes,
            "info": info,
        },
        final,
    )
    return EMBEDDERS.create("arcface_trained", checkpoint=str(final), detector=cfg.align, select=cfg.select, device=dev)


def _check_resumable(
    ckpt: dict[str, Any], cfg: ArcFaceTrainConfig, classes: list[str], info: dict[str, Any], path: Path
) -> None:
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ConfigError(f"{path}: not an anonaudit ArcFace checkpoint")
    old = ckpt["config"]
    changed = [k for k in _ARCH_FIELDS if old.get(k) != cfg.as_dict()[k]]
    if changed:
        raise ConfigError(
            f"{path}: cannot resume, the config changed {changed}; use another checkpoint_dir or resume: false"
        )
    if ckpt["classes"] != classes or ckpt["info"]["data_digest"] != info["data_digest"]:
        raise ConfigError(f"{path}: cannot resume, the training images or identities changed")


def load_trained(path: str | Path, device: str = "cpu") -> tuple[IResNet, dict[str, Any]]:
    """The backbone and checkpoint metadata saved by :func:`train_arcface` (``model.pt`` or ``last.pt``)."""
    path = Path(path)
    ckpt = torch_load(path, what="checkpoint")
    if isinstance(ckpt, dict) and ckpt.get("format") == TRAIN_CHECKPOINT_FORMAT and ckpt.get("method") == "arcface":
        ckpt = {**ckpt, **ckpt["state"]}  # written by `anonaudit train`: backbone, config and classes in its state
    elif not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ModelUnavailableError(str(path), "not an anonaudit ArcFace checkpoint")
    model = build_backbone(ckpt["config"])
    model.load_state_dict(ckpt["backbone"])
    return model.to(device).eval(), ckpt
