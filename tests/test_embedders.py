"""Face embedders: dlib on real faces, and every weight-loading path (FaceNet and ArcFace ONNX via the
model cache, ArcFace PyTorch from a file) with randomly initialised real-architecture weights."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import anonaudit.models.faces  # noqa: F401  (registers embedders)
from anonaudit.data.imageset import ImageSet
from anonaudit.errors import ModelUnavailableError, WeightIntegrityError
from anonaudit.models import cache
from anonaudit.models.faces.align import align_arcface, facenet_crop, main_face
from anonaudit.models.faces.arcface import build_iresnet, preprocess
from anonaudit.registry import DETECTORS, EMBEDDERS

LFW = Path(__file__).resolve().parents[2] / "shared" / "data" / "lfw" / "images"


pytestmark = pytest.mark.usefixtures("one_torch_thread")



@pytest.fixture
def tmp_cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("ANONAUDIT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def register_full_hash(monkeypatch, name: str, path: Path) -> None:
    """Point the registered spec ``name`` at the sha256 of our test file (restored after the test)."""
    spec = cache.get_spec(name)
    monkeypatch.setitem(cache.MODEL_SPECS, name, dataclasses.replace(spec, sha256=cache.sha256_file(path)))


def corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_all_embedders_are_registered():
    assert {"dlib", "facenet", "arcface_r50", "arcface_r100", "arcface_trained"} <= set(EMBEDDERS.names())


# -- dlib (offline default) ---------------------------------------------------------------------------
def test_dlib_embeddings_separate_people_and_equal_dlibs_own_pipeline(faces):
    import dlib

    from anonaudit.models.faces.dlib_models import (
        face_recognition_model,
        shape_predictor,
    )

    emb = EMBEDDERS.create("dlib").embed(faces)
    assert emb.shape == (5, 128) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    sim = emb @ emb.T
    same = sim[:3, :3][~np.eye(3, dtype=bool)]
    assert same.min() > sim[:3, 3:].max() and same.min() > sim[3, 4]
    # reference: dlib's one-call descriptor on the same detection and 5-point shape
    det = dlib.get_frontal_face_detector()
    for i in (0, 3):
        rect = max(det(faces[i], 1), key=lambda r: r.area())
        ref = face_recognition_model().compute_face_descriptor(faces[i], shape_predictor(5)(faces[i], rect))
        np.testing.assert_allclose(emb[i], unit(np.asarray(ref)[None])[0], atol=1e-4)


def test_dlib_gives_nan_rows_where_no_face_and_computes_each_image_once(faces):
    calls: list[int] = []

    class Counting(type(EMBEDDERS.create("dlib"))):
        def embed_arrays(self, images):
            calls.append(len(images))
            return super().embed_arrays(images)

    emb = Counting(num_jitters=0, padding=0.25001)  # own memo key
    blank = np.full((150, 150, 3), 90, np.uint8)
    images = ImageSet.from_arrays([faces[4], blank, faces[4].copy()], keys=["face", "blank", "face-again"])
    out = emb.embed(images)
    assert np.all(np.isnan(out[1])) and np.all(np.isfinite(out[[0, 2]]))
    np.testing.assert_array_equal(out[0], out[2])
    emb.embed(images)
    assert calls == [2]  # two distinct images, embedded once


# -- FaceNet via the model cache ------------------------------------------------------------------------
def test_facenet_without_weights_says_how_to_fetch_them(tmp_cache):
    with pytest.raises(ModelUnavailableError, match="anonaudit models fetch facenet-vggface2"):
        EMBEDDERS.create("facenet").embed(ImageSet.from_arrays([np.zeros((40, 40, 3), np.uint8)]))


def test_facenet_loads_cached_weights_and_refuses_a_corrupted_copy(tmp_cache, faces):
    from facenet_pytorch import InceptionResnetV1

    torch.manual_seed(0)
    net = InceptionResnetV1(classify=True, num_classes=7).eval()  # files carry the training logits layer
    path = cache.model_path("facenet-vggface2")
    path.parent.mkdir(parents=True)
    torch.save(net.state_dict(), path)

    emb = EMBEDDERS.create("facenet")
    out = emb.embed(faces.subset([0, 3]))
    assert out.shape == (2, 512) and out.dtype == np.float32
    dets = DETECTORS.create("mtcnn").detect(faces.subset([0, 3]))
    crops = [facenet_crop(faces[i], main_face(d, faces[i].shape).box) for i, d in zip((0, 3), dets)]
    net.classify = False
    with torch.no_grad():
        ref = net(torch.from_numpy(preprocess(crops, 127.5, 128.0))).numpy()
    np.testing.assert_allclose(out, unit(ref), atol=1e-4)

    corrupt(path)
    with pytest.raises(WeightIntegrityError, match="refusing to load"):
        EMBEDDERS.create("facenet").embed(faces.subset([0]))


# -- ArcFace: insightface ONNX via the model cache ------------------------------------------------------------
def small_iresnet(seed: int = 0):
    torch.manual_seed(seed)
    model = build_iresnet(layers=[1, 1, 1, 1], widths=[8, 16, 32, 64], input_size=112)
    for m in model.modules():  # non-trivial BatchNorm statistics, so eval mode matters
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def export_onnx(model, path: Path) -> None:
    pytest.importorskip("onnx", reason="torch.onnx.export needs the onnx package")
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter needs no onnxscript
        torch.onnx.export(
            model, torch.zeros(1, 3, 112, 112), str(path), input_names=["input.1"], output_names=["embedding"],
            dynamic_axes={"input.1": {0: "batch"}}, dynamo=False,
        )


def random_crops(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (112, 112, 3), dtype=np.uint8) for _ in range(n)]


@pytest.mark.parametrize("name,entry", [("arcface_r50", "arcface-r50"), ("arcface_r100", "arcface-r100")])
def test_arcface_without_weights_says_how_to_fetch_them(tmp_cache, name, entry):
    with pytest.raises(ModelUnavailableError, match=f"anonaudit models fetch {entry}"):
        EMBEDDERS.create(name).embed(ImageSet.from_arrays([np.zeros((40, 40, 3), np.uint8)]))


def test_arcface_onnx_from_cache_matches_the_torch_network_and_refuses_corruption(tmp_cache, monkeypatch, faces):
    model = small_iresnet()
    path = cache.model_path("arcface-r50")
    export_onnx(model, path)
    register_full_hash(monkeypatch, "arcface-r50", path)

    emb = EMBEDDERS.create("arcface_r50")
    crops = random_crops(3)
    with torch.no_grad():
        ref = model(torch.from_numpy(preprocess(crops))).numpy()
    np.testing.assert_allclose(unit(emb.embed_crops(crops)), unit(ref), atol=1e-4)

    # the whole pipeline: MTCNN landmarks -> 112x112 template crop -> RGB (x-127.5)/127.5 -> ONNX
    out = emb.embed(faces.subset([1, 4]))
    dets = DETECTORS.create("mtcnn").detect(faces.subset([1, 4]))
    aligned = [align_arcface(faces[i], main_face(d, faces[i].shape).landmarks) for i, d in zip((1, 4), dets)]
    with torch.no_grad():
        ref = model(torch.from_numpy(preprocess(aligned))).numpy()
    np.testing.assert_allclose(out, unit(ref), atol=1e-4)

    corrupt(path)
    with pytest.raises(WeightIntegrityError):
        EMBEDDERS.create("arcface_r50").embed(faces.subset([1]))


def test_arcface_pytorch_iresnet50_state_dict_loads_from_a_file(tmp_path):
    torch.manual_seed(1)
    model = build_iresnet("iresnet50").eval()
    for m in model.modules():  # insightface's N(0, 0.1) conv init overflows float32 through 50 random layers
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="linear")
            m.weight.data *= 0.5
    path = tmp_path / "backbone.pth"
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, path)  # as saved from DDP

    emb = EMBEDDERS.create("arcface_r50", weights=str(path))
    crops = random_crops(2, seed=3)
    with torch.no_grad():
        ref = model(torch.from_numpy(preprocess(crops))).numpy()
    assert np.all(np.isfinite(ref)) and np.abs(unit(ref[:1]) @ unit(ref[1:]).T) < 0.99
    np.testing.assert_allclose(unit(emb.embed_crops(crops)), unit(ref), atol=1e-4)


def test_arcface_pytorch_file_of_another_architecture_is_refused(tmp_path):
    path = tmp_path / "small.pth"
    torch.save(small_iresnet().state_dict(), path)
    with pytest.raises(ModelUnavailableError, match="does not match the iresnet50 architecture"):
        EMBEDDERS.create("arcface_r50", weights=str(path)).embed_crops(random_crops(1))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelUnavailableError, match=r"junk\.pth unavailable: corrupt or not a weight file \("):
        EMBEDDERS.create("arcface_r50", weights=str(junk)).embed_crops(random_crops(1))
    with pytest.raises(ModelUnavailableError, match=r"missing\.pth unavailable: weight file not found"):
        EMBEDDERS.create("arcface_r50", weights=str(tmp_path / "missing.pth")).embed_crops(random_crops(1))
