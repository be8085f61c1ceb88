"""ArcFace backbones: insightface's IResNet (``arcface_torch``) and loaders for its ONNX and PyTorch weights.

``IResNet`` reproduces ``arcface_torch/backbones/iresnet.py`` layer for layer (same module names,
so insightface's released ``backbone.pth`` state dicts load strictly). Two additive options serve
small CPU models: ``widths`` (channels of the four stages) and ``input_size`` (the flattened
feature map size follows from it; 112 gives insightface's 7x7).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ...errors import ModelUnavailableError
from ...fileio import torch_load

#: Blocks per stage of insightface's IResNet variants.
IRESNET_LAYERS: dict[str, tuple[int, int, int, int]] = {
    "iresnet18": (2, 2, 2, 2),
    "iresnet34": (3, 4, 6, 3),
    "iresnet50": (3, 4, 14, 3),
    "iresnet100": (3, 13, 30, 3),
    "iresnet200": (6, 26, 60, 6),
}


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


class IBasicBlock(nn.Module):
    """Improved residual block: BN-conv-BN-PReLU-conv(stride)-BN plus shortcut."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes, eps=1e-05)
        self.conv1 = _conv3x3(inplanes, planes)
        self.bn2 = nn.BatchNorm2d(planes, eps=1e-05)
        self.prelu = nn.PReLU(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn3 = nn.BatchNorm2d(planes, eps=1e-05)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        if self.downsample is not None:
            identity = self.downsample(x)
        return out + identity


def _stride2(size: int) -> int:
    return (size - 1) // 2 + 1


class IResNet(nn.Module):
    """insightface IResNet: 3x3 stem, four stride-2 stages, BN-dropout-FC-BN to ``num_features``."""

    def __init__(
        self,
        layers: Sequence[int],
        num_features: int = 512,
        dropout: float = 0.0,
        widths: Sequence[int] = (64, 128, 256, 512),
        input_size: int = 112,
    ):
        super().__init__()
        if len(layers) != 4 or len(widths) != 4:
            raise ValueError("IResNet needs 4 stages (layers and widths of length 4)")
        self.input_size = int(input_size)
        self.inplanes = int(widths[0])
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes, eps=1e-05)
        self.prelu = nn.PReLU(self.inplanes)
        self.layer1 = self._make_layer(widths[0], layers[0])
        self.layer2 = self._make_layer(widths[1], layers[1])
        self.layer3 = self._make_layer(widths[2], layers[2])
        self.layer4 = self._make_layer(widths[3], layers[3])
        self.bn2 = nn.BatchNorm2d(widths[3], eps=1e-05)
        self.dropout = nn.Dropout(p=dropout, inplace=True)
        side = self.input_size
        for _ in range(4):
            side = _stride2(side)
        self.fc = nn.Linear(widths[3] * side * side, num_features)
        self.features = nn.BatchNorm1d(num_features, eps=1e-05)
        nn.init.constant_(self.features.weight, 1.0)
        self.features.weight.requires_grad = False
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0, 0.1)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, planes: int, blocks: int) -> nn.Sequential:
        planes = int(planes)
        downsample = nn.Sequential(
            nn.Conv2d(self.inplanes, planes, kernel_size=1, stride=2, bias=False),
            nn.BatchNorm2d(planes, eps=1e-05),
        )
        layers = [IBasicBlock(self.inplanes, planes, 2, downsample)]
        self.inplanes = planes
        layers.extend(IBasicBlock(planes, planes) for _ in range(1, blocks))
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(torch.flatten(self.bn2(x), 1))
        return self.features(self.fc(x))


def build_iresnet(
    arch: str = "iresnet50",
    num_features: int = 512,
    widths: Sequence[int] = (64, 128, 256, 512),
    input_size: int = 112,
    layers: Sequence[int] | None = None,
    dropout: float = 0.0,
) -> IResNet:
    """An IResNet by insightface name (``iresnet18/34/50/100/200``) or with explicit ``layers``."""
    if layers is None:
        try:
            layers = IRESNET_LAYERS[arch]
        except KeyError:
            raise ValueError(f"unknown IResNet '{arch}' (known: {', '.join(IRESNET_LAYERS)})") from None
    return IResNet(layers, num_features=num_features, dropout=dropout, widths=widths, input_size=input_size)


def _clean_state_dict(obj: object, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict) and "backbone" in obj and isinstance(obj["backbone"], dict):
        obj = obj["backbone"]
    elif isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelUnavailableError(str(path), "not a PyTorch state dict of tensors")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def load_iresnet(path: str | Path, arch: str = "iresnet50", input_size: int = 112, **kwargs) -> IResNet:
    """An IResNet with insightface ``arcface_torch`` weights from ``path`` (loaded with ``weights_only``)."""
    path = Path(path)
    obj = torch_load(path)
    state = _clean_state_dict(obj, path)
    num_features = int(state["features.weight"].shape[0]) if "features.weight" in state else 512
    model = build_iresnet(arch, num_features=num_features, input_size=input_size, **kwargs)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelUnavailableError(
            str(path), f"does not match the {arch} architecture: {str(exc).splitlines()[0]}"
        ) from None
    return model.eval()


def preprocess(crops: list[np.ndarray], mean: float = 127.5, std: float = 127.5) -> np.ndarray:
    """Aligned RGB uint8 crops -> ``NCHW`` float32 ``(x - mean) / std`` (insightface's input)."""
    batch = np.stack([np.asarray(c, dtype=np.float32) for c in crops])
    return np.ascontiguousarray(((batch - mean) / std).transpose(0, 3, 1, 2))


class TorchFaceModel:
    """Runs a PyTorch embedding network on preprocessed ``NCHW`` batches."""

    def __init__(self, model: nn.Module, device: str = "cpu"):
        self.device = device
        self.model = model.to(device).eval()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.model(torch.from_numpy(batch).to(self.device)).float().cpu().numpy()


class OnnxFaceModel:
    """Runs an ONNX embedding network (e.g. insightface ``w600k_r50.onnx``) with onnxruntime."""

    def __init__(self, path: str | Path, device: str = "cpu"):
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - onnxruntime is a core dependency
            raise ModelUnavailableError(str(path), f"onnxruntime missing ({exc})", "pip install onnxruntime") from None
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise ModelUnavailableError(str(path), f"not a loadable ONNX model ({type(exc).__name__}: {exc})") from None
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.input_size = next((int(s) for s in inp.shape[2:] if isinstance(s, int)), 112)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self.session.run(None, {self.input_name: batch.astype(np.float32)})[0], dtype=np.float32)
