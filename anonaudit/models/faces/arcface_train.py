"""The networks and the loader of an ArcFace embedder trained on a user's own identities.

ArcFace (Deng et al., CVPR 2019): an IResNet backbone and, for training only, an additive angular
margin head, logits ``s * cos(theta_j)`` for other classes and ``s * cos(theta_y + m)`` for the true
class under a softmax cross-entropy. The training itself is :class:`anonaudit.training.arcface.ArcFaceTrainer`
(method ``arcface`` of ``anonaudit train``, the one training loop; configs ``configs/arcface-train-cpu.yaml``,
``configs/train/arcface-{tiny,paper}.yaml``). This module holds what both training and the
``arcface_trained`` embedder use: the margin head, the backbone a checkpoint describes, face alignment
to the ArcFace template, the input scaling, and :func:`load_trained`, which reads a training
checkpoint back as a backbone.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...checkpoint import CHECKPOINT_FORMAT
from ...data.imageset import ImageSet
from ...errors import ModelUnavailableError
from ...fileio import torch_load
from ...progress import progress
from .align import align_arcface, main_face
from .arcface import IResNet, build_iresnet
from .base import make_detector


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


def build_backbone(c: dict[str, Any]) -> IResNet:
    """The IResNet an architecture mapping describes (``arch``, ``layers``, ``widths``, ``input_size``,
    ``embedding_dim``), as :class:`~anonaudit.training.arcface.ArcFaceTrainer` stores it in ``config``."""
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


def load_trained(path: str | Path, device: str = "cpu") -> tuple[IResNet, dict[str, Any]]:
    """The backbone of an ``anonaudit train`` checkpoint of method ``arcface`` (its ``checkpoint.pt``)
    and the checkpoint's state (``config``: the architecture, ``classes``, ``info``) merged into its payload."""
    path = Path(path)
    ckpt = torch_load(path, what="checkpoint")
    if not (isinstance(ckpt, dict) and ckpt.get("format") == CHECKPOINT_FORMAT and ckpt.get("method") == "arcface"):
        raise ModelUnavailableError(
            str(path), "not an ArcFace training checkpoint (write one with `anonaudit train` and method arcface)"
        )
    ckpt = {**ckpt, **ckpt["state"]}
    model = build_backbone(ckpt["config"])
    model.load_state_dict(ckpt["backbone"])
    return model.to(device).eval(), ckpt
