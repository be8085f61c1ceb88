"""LPIPS networks (the ``lpips`` package, v0.1) with every weight file verified before loading.

The linear calibration layers ship inside the ``lpips`` wheel (``lpips/weights/v0.1/{net}.pth``);
their sha256 is checked against the values published in MODELS.md. The ImageNet backbones come
from the model cache (``lpips-alexnet``: torchvision ``alexnet-owt-7be5be79.pth``, ``lpips-vgg``:
``vgg16-397923af.pth``), never from a torchvision download: the network is built with a random
trunk (``pnet_rand=True``) and the cached ``features.*`` tensors are copied into the trunk's
layers, which keep torchvision's layer indices. Both files load with ``weights_only=True``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from ..errors import ModelUnavailableError, WeightIntegrityError
from ..fileio import torch_load
from .cache import sha256_file
from .inception import resolve_verified

#: sha256 of the linear layers inside the lpips wheel (MODELS.md).
LIN_SHA256 = {
    "alex": "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
    "vgg": "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
}
BACKBONE_MODEL = {"alex": "lpips-alexnet", "vgg": "lpips-vgg"}


def lin_weights_path(net: str) -> Path:
    import lpips

    return Path(lpips.__file__).resolve().parent / "weights" / "v0.1" / f"{net}.pth"


def _load_lin(model: torch.nn.Module, net: str) -> None:
    path = lin_weights_path(net)
    if not path.is_file():
        raise ModelUnavailableError(
            f"lpips-{net}-lin",
            f"{path} is missing from the lpips package",
            "pip install --force-reinstall lpips==0.1.4",
        )
    digest = sha256_file(path)
    if digest != LIN_SHA256[net]:
        raise WeightIntegrityError(
            f"{path}: sha256 {digest} does not match the published {LIN_SHA256[net]}; refusing to load it"
        )
    state = torch_load(path)
    expected = {f"lin{i}.model.1.weight" for i in range(len(model.lins))}
    if set(state) != expected:
        raise ModelUnavailableError(f"lpips-{net}-lin", f"{path} does not hold LPIPS v0.1 linear layers")
    model.load_state_dict(state, strict=False)  # the trunk (net.*) is loaded separately


def load_backbone(trunk: torch.nn.Module, net: str, path: Path) -> None:
    """Copy the ImageNet ``features.*`` weights of the (verified) file ``path`` into ``trunk``.

    ``trunk`` is lpips' sliced backbone whose children keep torchvision's ``features`` indices.
    """
    name = BACKBONE_MODEL[net]
    state = torch_load(path)
    for slice_name, block in trunk.named_children():
        for index, layer in block.named_children():
            params = dict(layer.named_parameters(recurse=False))
            if not params:
                continue
            try:
                layer.load_state_dict({k: state[f"features.{index}.{k}"] for k in params}, strict=True)
            except (KeyError, RuntimeError) as exc:
                raise ModelUnavailableError(
                    name, f"{path} does not fit the {net} backbone ({slice_name} layer {index}: {str(exc)[:200]})"
                ) from None


_LOADED: dict[tuple[str, str, str], torch.nn.Module] = {}


def load_lpips(net: str = "alex", device: str = "cpu") -> tuple[torch.nn.Module, str]:
    """A verified ``lpips.LPIPS`` (v0.1, eval mode) on ``device`` and its backbone's sha256.

    Absent backbone -> :class:`ModelUnavailableError` with ``anonaudit models fetch lpips-<net>``;
    a file that does not match its hash -> :class:`WeightIntegrityError`.
    """
    if net not in BACKBONE_MODEL:
        raise ValueError(f"LPIPS net must be one of {sorted(BACKBONE_MODEL)}, got {net!r}")
    import lpips

    path, digest = resolve_verified(BACKBONE_MODEL[net])
    key = (net, digest, device)
    if key not in _LOADED:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torchvision's notice about `pretrained=False`
            model = lpips.LPIPS(pretrained=False, net=net, version="0.1", pnet_rand=True, verbose=False)
        _load_lin(model, net)
        load_backbone(model.net, net, path)
        _LOADED.clear()
        _LOADED[key] = model.eval().to(device)
    return _LOADED[key], digest
