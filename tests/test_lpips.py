"""LPIPS: weight loading through the verified model cache (random-init real backbone saved to a
file and registered by sha256), LPIPS(x, x) = 0, agreement with the lpips package, refusals."""

from __future__ import annotations

import hashlib
import json
import shutil
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torchvision

from anonaudit.data.imageset import ImageSet, Release
from anonaudit.errors import DataError, ModelUnavailableError, WeightIntegrityError
from anonaudit.evaluators import functional as F
from anonaudit.evaluators.fidelity import LPIPS
from anonaudit.models import lpips_net
from anonaudit.models.cache import model_path
from anonaudit.registry import EVALUATORS


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def register_weights(cache: Path, name: str, filename: str, state: dict) -> Path:
    """Save ``state`` as model ``name`` in the cache at ``cache`` and record its sha256 as verified."""
    path = cache / "models" / name / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    record = cache / "models" / "verified.json"
    data = json.loads(record.read_text()) if record.is_file() else {}
    data[name] = _sha256(path)
    record.write_text(json.dumps(data))
    return path


@pytest.fixture(scope="module")
def alex_features_state() -> dict:
    torch.manual_seed(0)
    net = torchvision.models.alexnet(weights=None)
    return {f"features.{k}": v for k, v in net.features.state_dict().items()}


@pytest.fixture
def alex_cache(tmp_path, monkeypatch, alex_features_state):
    monkeypatch.setenv("ANONAUDIT_CACHE", str(tmp_path))
    register_weights(tmp_path, "lpips-alexnet", "alexnet-owt-7be5be79.pth", alex_features_state)
    return tmp_path


def _images(n: int = 4, size: tuple[int, int] = (48, 64), seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [cv2.GaussianBlur(rng.integers(0, 256, (*size, 3), dtype=np.uint8), (0, 0), 1.0) for _ in range(n)]


def _release(a, b) -> Release:
    keys = [f"k{i}" for i in range(len(a))]
    return Release(ImageSet.from_arrays(a, keys), ImageSet.from_arrays(b, keys))


def _reference_lpips(state: dict, net: str) -> torch.nn.Module:
    """lpips' own construction (package linear layers) with the trunk modules swapped for a
    torchvision network that loaded ``state`` strictly: an independent path to the same model."""
    import lpips

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = lpips.LPIPS(pretrained=True, net=net, pnet_rand=True, verbose=False)
    tv = torchvision.models.alexnet(weights=None) if net == "alex" else torchvision.models.vgg16(weights=None)
    tv.features.load_state_dict({k[len("features."):]: v for k, v in state.items()}, strict=True)
    for block in ref.net.children():
        for idx in list(block._modules):
            block._modules[idx] = tv.features[int(idx)]
    return ref.eval()


def test_identical_images_score_zero(alex_cache):
    imgs = _images()
    m = LPIPS()(_release(imgs, [im.copy() for im in imgs]))
    assert m.release.n == 4 and m.release.value == pytest.approx(0.0, abs=1e-7)
    assert m.metric == "lpips_alex" and m.higher_is_better is False
    np.testing.assert_allclose(F.lpips(imgs, [im.copy() for im in imgs]), 0.0, atol=1e-7)


def test_matches_lpips_package_with_same_weights(alex_cache, alex_features_state):
    import lpips

    imgs = _images(5) + _images(2, size=(40, 40), seed=1)  # two shapes: batched per shape
    anon = [cv2.GaussianBlur(im, (0, 0), 2.0) for im in imgs]
    ev = LPIPS(net="alex")
    est = ev(_release(imgs, anon), batch_size=3).release
    ref = _reference_lpips(alex_features_state, "alex")
    with torch.no_grad():
        expected = [float(ref(lpips.im2tensor(a), lpips.im2tensor(b))) for a, b in zip(imgs, anon)]
    np.testing.assert_allclose(ev._scores, expected, rtol=1e-5, atol=1e-7)
    # the kernel the class calls (float32: other batch splits differ in the last bits)
    np.testing.assert_allclose(F.lpips(imgs, anon, net="alex"), ev._scores, rtol=1e-6)
    assert est.value == pytest.approx(np.mean(expected), rel=1e-5) and est.n == 7
    assert est.value > 0 and est.ci_low <= est.value <= est.ci_high


def test_absent_backbone_names_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv("ANONAUDIT_CACHE", str(tmp_path))
    imgs = _images(2)
    with pytest.raises(ModelUnavailableError, match="anonaudit models fetch lpips-alexnet"):
        F.lpips(imgs, imgs)
    with pytest.raises(ModelUnavailableError, match="anonaudit models fetch lpips-vgg"):
        EVALUATORS.create("lpips", net="vgg")(_release(imgs, imgs))


def test_corrupted_backbone_is_refused(alex_cache):
    path = model_path("lpips-alexnet")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    imgs = _images(2)
    with pytest.raises(WeightIntegrityError, match="refusing to load"):
        F.lpips(imgs, imgs)


def test_wrong_architecture_file_is_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("ANONAUDIT_CACHE", str(tmp_path))
    register_weights(
        tmp_path, "lpips-alexnet", "alexnet-owt-7be5be79.pth", {"features.0.weight": torch.zeros(3, 3, 1, 1)}
    )
    imgs = _images(2)
    with pytest.raises(ModelUnavailableError, match="does not fit the alex backbone"):
        F.lpips(imgs, imgs)


def test_package_linear_layers_are_verified(tmp_path, monkeypatch, alex_cache):
    assert _sha256(lpips_net.lin_weights_path("alex")) == lpips_net.LIN_SHA256["alex"]
    assert _sha256(lpips_net.lin_weights_path("vgg")) == lpips_net.LIN_SHA256["vgg"]
    tampered = tmp_path / "alex.pth"
    shutil.copyfile(lpips_net.lin_weights_path("alex"), tampered)
    with open(tampered, "ab") as f:
        f.write(b"\0")
    monkeypatch.setattr(lpips_net, "lin_weights_path", lambda net: tampered)
    lpips_net._LOADED.clear()
    imgs = _images(2)
    with pytest.raises(WeightIntegrityError, match="does not match the published"):
        F.lpips(imgs, imgs)


def test_small_or_mismatched_images_are_named(alex_cache):
    small = [np.zeros((20, 60, 3), np.uint8)]
    with pytest.raises(DataError, match=r"k0: 60x20 is too small for LPIPS-alex"):
        LPIPS()(_release(small, small))


@pytest.mark.slow
def test_vgg_backbone_loads_and_matches_package(tmp_path, monkeypatch):
    import lpips

    monkeypatch.setenv("ANONAUDIT_CACHE", str(tmp_path))
    torch.manual_seed(1)
    state = {f"features.{k}": v for k, v in torchvision.models.vgg16(weights=None).features.state_dict().items()}
    register_weights(tmp_path, "lpips-vgg", "vgg16-397923af.pth", state)
    imgs = _images(2, size=(32, 32))
    anon = [cv2.GaussianBlur(im, (0, 0), 2.0) for im in imgs]
    ev = LPIPS(net="vgg")
    m = ev(_release(imgs, anon))
    ref = _reference_lpips(state, "vgg")
    with torch.no_grad():
        expected = [float(ref(lpips.im2tensor(a), lpips.im2tensor(b))) for a, b in zip(imgs, anon)]
    np.testing.assert_allclose(ev._scores, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(F.lpips(imgs, imgs, net="vgg"), 0.0, atol=1e-7)
    assert m.metric == "lpips_vgg"
