"""The FID Inception-v3 network (pytorch-fid's port of TensorFlow's 2015-12-05 graph).

Architecture as in pytorch-fid (``fid_inception_v3``): torchvision's ``Inception3`` with 1008
classes, no auxiliary head, and the FID-specific blocks (average pools that exclude padding, max
pool in the last block). Its state-dict keys are those of the published file
``pt_inception-2015-12-05-6726825d.pth`` (model cache entry ``inception-fid``), which is verified
by sha256 and loaded with ``torch.load(weights_only=True)``; nothing is ever downloaded here.

Preprocessing as pytorch-fid: RGB in ``[0, 1]`` (uint8 / 255), bilinear resize to 299x299
(``align_corners=False``), then scaled to ``[-1, 1]``. Outputs: the 2048-d pool3 features (FID,
KID) and the 1008 class logits without the fc bias (the ``logits_unbiased`` of torch-fidelity and
torchmetrics, as the original Inception Score code computes ``pool3 @ W``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import inception as tv_inception

from ..errors import ModelUnavailableError
from ..fileio import torch_load
from .cache import model_path, verify

MODEL_NAME = "inception-fid"
POOL3_DIM = 2048
NUM_CLASSES = 1008
INPUT_SIZE = 299


class FIDInceptionA(tv_inception.InceptionA):
    """InceptionA whose average pool ignores padded zeros (as TensorFlow's)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False))
        return torch.cat([b1, b5, b3, bp], 1)


class FIDInceptionC(tv_inception.InceptionC):
    """InceptionC whose average pool ignores padded zeros."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = x
        for layer in (
            self.branch7x7dbl_1,
            self.branch7x7dbl_2,
            self.branch7x7dbl_3,
            self.branch7x7dbl_4,
            self.branch7x7dbl_5,
        ):
            bd = layer(bd)
        bp = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False))
        return torch.cat([b1, b7, bd, bp], 1)


class _FIDInceptionE(tv_inception.InceptionE):
    """InceptionE with the pooling of the TensorFlow FID graph (set by the subclasses)."""

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        bp = self.branch_pool(self.pool(x))
        return torch.cat([b1, b3, bd, bp], 1)


class FIDInceptionE1(_FIDInceptionE):
    """First InceptionE block: average pool ignoring padded zeros."""

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionE2(_FIDInceptionE):
    """Second InceptionE block: max pool (a quirk of the TensorFlow FID graph)."""

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)


def build_fid_inception() -> tv_inception.Inception3:
    """The FID Inception-v3 architecture with uninitialised-but-valid (random) weights."""
    net = tv_inception.Inception3(num_classes=NUM_CLASSES, aux_logits=False, init_weights=False)
    net.Mixed_5b = FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = FIDInceptionE1(1280)
    net.Mixed_7c = FIDInceptionE2(2048)
    return net


class FIDInceptionV3(nn.Module):
    """Wraps the network: ``forward(x in [0, 1], NCHW)`` returns ``(pool3, unbiased logits)``."""

    def __init__(self, net: tv_inception.Inception3 | None = None):
        super().__init__()
        self.net = net if net is not None else build_fid_inception()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.net
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        for layer in (n.Conv2d_1a_3x3, n.Conv2d_2a_3x3, n.Conv2d_2b_3x3, n.maxpool1, n.Conv2d_3b_1x1, n.Conv2d_4a_3x3,
                      n.maxpool2, n.Mixed_5b, n.Mixed_5c, n.Mixed_5d, n.Mixed_6a, n.Mixed_6b, n.Mixed_6c, n.Mixed_6d,
                      n.Mixed_6e, n.Mixed_7a, n.Mixed_7b, n.Mixed_7c):
            x = layer(x)
        pool3 = torch.flatten(F.adaptive_avg_pool2d(x, (1, 1)), 1)
        return pool3, pool3 @ n.fc.weight.T


def images_to_tensor(images: list[np.ndarray]) -> torch.Tensor:
    """RGB uint8 HWC images (any sizes) -> float ``[0, 1]`` NCHW 299x299 batch (bilinear, per image)."""
    out = []
    for im in images:
        t = torch.from_numpy(np.ascontiguousarray(im)).permute(2, 0, 1)[None].float() / 255.0
        out.append(F.interpolate(t, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False))
    return torch.cat(out)


_VERIFIED: dict[tuple[str, str, int, int], str] = {}


def resolve_verified(name: str) -> tuple[Path, str]:
    """Cache path and full sha256 of model ``name``, verified against its registered hash.

    Absent -> :class:`ModelUnavailableError` with the fetch command; mismatch ->
    :class:`WeightIntegrityError`. A file is hashed again whenever its size or mtime changes.
    """
    path = model_path(name)
    if not path.is_file():
        raise ModelUnavailableError(name, f"weights not in the cache ({path})", f"anonaudit models fetch {name}")
    st = path.stat()
    key = (name, str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _VERIFIED:
        _VERIFIED[key] = verify(name, path)
    return path, _VERIFIED[key]


_LOADED: dict[tuple[str, str], FIDInceptionV3] = {}


def load_fid_inception(device: str = "cpu") -> tuple[FIDInceptionV3, str]:
    """The verified FID Inception in eval mode on ``device`` and the sha256 of its weights.

    Raises :class:`ModelUnavailableError` (``anonaudit models fetch inception-fid``) when the file
    is absent and :class:`WeightIntegrityError` when it does not match its registered hash.
    """
    path, digest = resolve_verified(MODEL_NAME)
    key = (digest, device)
    if key not in _LOADED:
        state = torch_load(path)
        net = build_fid_inception()
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ModelUnavailableError(
                MODEL_NAME, f"{path} is not an FID Inception-v3 state dict ({str(exc)[:300]})"
            ) from None
        _LOADED.clear()
        _LOADED[key] = FIDInceptionV3(net).eval().to(device)
    return _LOADED[key], digest
