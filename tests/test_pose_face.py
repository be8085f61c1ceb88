"""Paper 004's pose-conditioned face anonymizer: pose image and masks at known pixels, the
differentiable ArcFace alignment against cv2, the pose condition moving what the decoder draws (a
toy set whose face interiors are visible only through the condition), the background kept bit for
bit outside the landmarks' hull, an honest label without StyleGAN, the StyleGAN path with a random
TorchScript generator from the model cache (frozen) and a trained ArcFace identity term, exact
resume, checkpoints as targets, and bad configurations."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from random_weights import save_tiny_stylegan

from anonaudit.anonymizers.pose_inpaint import affine_theta, blend_mask, hull_mask, pose_image
from anonaudit.config import load_config
from anonaudit.data.imageset import ImageSet
from anonaudit.errors import ConfigError, DataError, ModelUnavailableError
from anonaudit.models import cache
from anonaudit.models.faces.pose import FACE_MODEL_68
from anonaudit.registry import ANONYMIZERS
from anonaudit.training import CheckpointError, TrainConfig, load_train_config, train

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(decoder="small-cpu", image_size=32, n_ws=6, w_dim=32, channels=8, fpn_channels=16, regressor_channels=8,
            perceptual="ssim_l1", lr=2e-3, regressor_steps=5, device="cpu")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def toy_landmarks(rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """68 points of the generic 3D face seen frontally, with a random mouth opening, eye opening and
    nose length: shape changes inside the face that the FFHQ alignment does not remove."""
    pts = FACE_MODEL_68[:, :2].copy()
    mouth = pts[48:68].mean(0)
    pts[48:68, 1] = mouth[1] + (pts[48:68, 1] - mouth[1]) * rng.uniform(0.5, 3.0)
    for eye in (slice(36, 42), slice(42, 48)):
        c = pts[eye].mean(0)
        pts[eye, 1] = c[1] + (pts[eye, 1] - c[1]) * rng.uniform(0.5, 3.0)
    pts[28:36, 1] = pts[27, 1] + (pts[28:36, 1] - pts[27, 1]) * rng.uniform(0.7, 1.3)
    return pts * (0.36 * size / 150) + [size / 2 + rng.uniform(-2, 2), size / 2 + 4 + rng.uniform(-2, 2)]


def toy_faces(n: int = 48, size: int = 64, seed: int = 0) -> ImageSet:
    """Faces whose only content is their pose: a skin-coloured hull with the pose lines drawn dark,
    on a textured background; the 68 landmarks come as the ``landmarks68`` annotation."""
    rng = np.random.default_rng(seed)
    images, marks = [], []
    for _ in range(n):
        lm = toy_landmarks(rng, size)
        image = np.clip(rng.normal((90, 120, 160), 12, (size, size, 3)), 0, 255).astype(np.uint8)
        image[hull_mask(lm, (size, size)) > 0] = (200, 160, 130)
        image[pose_image(lm, size) > 0] = (30, 30, 30)
        images.append(image)
        marks.append({"landmarks68": lm[None]})
    return ImageSet.from_arrays(images, [f"toy{i:03d}" for i in range(n)], attributes=marks, name="toy-faces")


# -- pre-processing --------------------------------------------------------------------------------------------
def test_pose_image_and_masks_at_known_pixels():
    lm = np.zeros((68, 2))
    lm[:] = (5, 5)
    lm[48:60] = [(10, 20), (20, 20), (20, 26), (10, 26)] * 3  # outer lip: a closed rectangle
    img = pose_image(lm, 32)
    assert set(np.unique(img)) == {0, 1}
    assert img[20, 10:21].all() and img[26, 10:21].all() and img[20:27, 10].all() and img[20:27, 20].all()
    assert img[23, 15] == 0 and img[0, 0] == 0  # inside the rectangle and elsewhere: empty
    hull = hull_mask(lm, (32, 32))
    assert hull[23, 15] == 1 and hull[30, 30] == 0 and hull[5, 5] == 1
    lm[36], lm[45] = (0, 0), (10, 0)  # inter-ocular distance 10
    soft = blend_mask(lm, (32, 32), 0.2)
    inside = hull_mask(lm, (32, 32)) > 0
    assert np.all(soft[~inside] == 0) and soft.max() == 1.0 and np.all(soft[inside] >= 0)


def test_affine_theta_samples_what_cv2_warps():
    rng = np.random.default_rng(0)
    image = rng.random((40, 40, 3)).astype(np.float32)
    m = cv2.getRotationMatrix2D((20, 18), 17, 1.3)
    m[:, 2] += (-6, 3)
    expected = cv2.warpAffine(image, m, (24, 24), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    theta = torch.from_numpy(affine_theta(m, 40, 24))[None]
    grid = F.affine_grid(theta, [1, 3, 24, 24], align_corners=False)
    got = (
        F.grid_sample(torch.from_numpy(image).permute(2, 0, 1)[None], grid, align_corners=False)[0]
        .permute(1, 2, 0)
        .numpy()
    )
    assert np.abs(got - expected)[3:-3, 3:-3].max() < 1e-4


def test_ssim_l1_substitute_against_scikit_image():
    from skimage.metrics import structural_similarity

    from anonaudit.anonymizers.pose_inpaint import ssim_l1

    rng = np.random.default_rng(0)
    a = cv2.GaussianBlur(rng.random((64, 64, 3)), (5, 5), 1)
    b = cv2.GaussianBlur(np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1), (3, 3), 1)
    ref = structural_similarity(
        a, b, channel_axis=-1, data_range=1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )

    def tensor(x):
        return torch.from_numpy(x).permute(2, 0, 1)[None].float() * 2 - 1

    got = float(ssim_l1(tensor(a), tensor(b))[0])
    assert abs(got - (np.abs(a - b).mean() + 1 - ref)) < 0.01  # borders: reflect padding vs scikit-image's crop
    assert float(ssim_l1(tensor(a), tensor(a))[0]) == pytest.approx(0.0, abs=1e-6)


# -- the pose condition (the known answer) -------------------------------------------------------------------
def darkness(out: np.ndarray) -> np.ndarray:
    return 255.0 - out.astype(np.float32).mean(-1)


def test_pose_condition_moves_what_the_decoder_draws(tmp_path):
    """Toy faces carry nothing but their pose lines, and the lines inside the face (eyes, nose,
    mouth) are masked from the input: only the pose image says where they are. After tiny training,
    repainting face A under face B's pose must draw B's lines, not A's. A network that ignores the
    condition gives the same output for both poses and fails."""
    data = toy_faces(48)
    method = ANONYMIZERS.create("pose_face", **TINY)
    train(method, data, TrainConfig(steps=80, batch_size=8, device="cpu", sample_every=0), tmp_path, quiet=True)
    size = 32
    faces = [method.face_crop(data[i], data.record(i).attributes["landmarks68"][0]) for i in range(len(data))]
    gains = []
    for a, b in [(i, (i + 1) % 12) for i in range(12)]:
        own, other = pose_image(faces[a].crop_landmarks, size) > 0, pose_image(faces[b].crop_landmarks, size) > 0
        interior = hull_mask(faces[a].crop_landmarks, (size, size)) > 0
        only_b, only_a = other & ~own & interior, own & ~other & interior
        x = faces[a].network_input()
        x[3] = other
        swapped = darkness(method.render(x[None])[0])
        x[3] = own
        kept = darkness(method.render(x[None])[0])
        gains.append((swapped[only_b].mean() - swapped[only_a].mean()) + (kept[only_a].mean() - kept[only_b].mean()))
    # lines are 30 grey levels, skin ~ 100 below white: a followed condition separates by ~100 per side
    assert np.mean(gains) > 60, gains


# -- release ----------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pose-face")
    method = ANONYMIZERS.create("pose_face", **TINY)
    train(method, toy_faces(8), TrainConfig(steps=6, batch_size=4, device="cpu", sample_every=0), folder, quiet=True)
    return method, folder / "checkpoint.pt"


def test_background_outside_the_face_hull_is_bit_identical(trained):
    method, _ = trained
    data = toy_faces(3, seed=5)
    out = method.anonymize(data, show_progress=False)
    for i in range(3):
        lm = data.record(i).attributes["landmarks68"][0]
        hull = hull_mask(lm, data[i].shape[:2]) > 0
        changed = np.any(out[i] != data[i], axis=2)
        assert not changed[~hull].any()  # background and forehead: the original's pixels
        assert changed[blend_mask(lm, data[i].shape[:2], method.feather) == 1].mean() > 0.5
        record = out.record(i)
        assert record.attributes["anonymized_faces"] == 1 and len(record.boxes) == 1
    assert method.missed_ == []
    assert not np.array_equal(out[0], data[0])


def test_bmp_release_is_the_same_pixels_under_neutral_names(trained, tmp_path):
    method, _ = trained
    data = toy_faces(2, seed=5)
    method.set_params(release_format="bmp", release_folder=str(tmp_path / "release"))
    try:
        files = method.anonymize(data, show_progress=False)
    finally:
        method.set_params(release_format="memory", release_folder=None)
    memory = method.anonymize(data, show_progress=False)
    assert sorted(p.suffix for p in (tmp_path / "release").iterdir()) == [".bmp", ".bmp"]
    assert not any("toy" in p.name for p in (tmp_path / "release").iterdir())
    assert all(np.array_equal(files[i], memory[i]) for i in range(2)) and files.keys == data.keys


def test_label_says_small_decoder_and_stylegan_needs_the_cache(tmp_path, monkeypatch):
    small = ANONYMIZERS.create("pose_face", **TINY)
    assert small.label().startswith("pose_face(decoder=small-cpu")
    paper = ANONYMIZERS.create("pose_face")
    assert paper.label().startswith("pose_face(decoder=stylegan")
    assert (paper.image_size, paper.n_ws, paper.w_dim, paper.lr, paper.landmark_weight, paper.identity_weight,
            paper.perceptual_weight, paper.perceptual) == (256, 18, 512, 1e-4, 1.0, 0.1, 0.1, "lpips")
    monkeypatch.setenv("ANONAUDIT_CACHE", str(tmp_path))
    with pytest.raises(ModelUnavailableError, match="anonaudit models add stylegan2-ffhq-wplus"):
        paper.fit(toy_faces(4))


def test_lpips_without_its_backbone_is_unavailable_with_the_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv("ANONAUDIT_CACHE", str(tmp_path / "cache"))
    method = ANONYMIZERS.create("pose_face", **{**TINY, "perceptual": "lpips", "regressor_steps": 0})
    with pytest.raises(ModelUnavailableError, match="lpips-alexnet"):
        train(
            method,
            toy_faces(4),
            TrainConfig(steps=1, batch_size=4, device="cpu", sample_every=0),
            tmp_path / "run",
            quiet=True,
        )


def _tiny_arcface(folder: Path) -> Path:
    """An ArcFace checkpoint trained for 2 steps by the project's trainer on toy faces (no alignment)."""
    from anonaudit.training.arcface import ArcFaceTrainer

    data = toy_faces(8)
    data = ImageSet.from_arrays([data[i] for i in range(8)], data.keys, identities=["a", "b"] * 4, name="toy-ids")
    trainer = ArcFaceTrainer(
        arch="iresnet-tiny", layers=[1, 1, 1, 1], widths=[4, 8, 8, 16], input_size=32, embedding_dim=16, align="none"
    )
    train(trainer, data, TrainConfig(steps=2, batch_size=4, device="cpu", sample_every=0), folder, quiet=True)
    return folder / "checkpoint.pt"


def test_stylegan_path_with_a_random_torchscript_generator(tmp_path, monkeypatch):
    monkeypatch.setenv("ANONAUDIT_CACHE", str(tmp_path / "cache"))
    save_tiny_stylegan(tmp_path / "g.pt", w_avg_scale=0.1)
    cache.add("stylegan2-ffhq-wplus", tmp_path / "g.pt")
    params = {**TINY, "decoder": "stylegan", "n_ws": 4, "w_dim": 8, "regressor_steps": 1,
              "identity_checkpoint": str(_tiny_arcface(tmp_path / "arcface"))}
    with pytest.raises(ConfigError, match="set n_ws: 4 and w_dim: 8"):
        ANONYMIZERS.create("pose_face", **{**params, "n_ws": 18}).fit(toy_faces(4))
    method = ANONYMIZERS.create("pose_face", **params)
    assert method.label().startswith("pose_face(decoder=stylegan")
    train(
        method,
        toy_faces(8),
        TrainConfig(steps=1, batch_size=4, device="cpu", sample_every=0),
        tmp_path / "run",
        quiet=True,
    )
    generator = {k: v.clone() for k, v in method.generator_.state_dict().items()}
    encoder = {k: v.clone() for k, v in method.networks_["encoder"].state_dict().items()}
    train(
        method,
        toy_faces(8),
        TrainConfig(steps=4, batch_size=4, device="cpu", sample_every=0),
        tmp_path / "run",
        quiet=True,
    )
    log = (tmp_path / "run" / "log.csv").read_text()
    assert "identity_loss" in log and "landmark_loss" in log and "ssim_l1_loss" in log
    assert all(torch.equal(v, method.generator_.state_dict()[k]) for k, v in generator.items())  # frozen
    assert any(not torch.equal(v, method.networks_["encoder"].state_dict()[k]) for k, v in encoder.items())
    assert "decoder" not in method.networks_ and "generator" not in method.state_dict()["networks"]
    out = method.anonymize(toy_faces(2, seed=3), show_progress=False)
    assert out[0].shape == (64, 64, 3)
    target = ANONYMIZERS.create("pose_face", **params, checkpoint=str(tmp_path / "run" / "checkpoint.pt"))
    again = target.anonymize(toy_faces(2, seed=3), show_progress=False)
    assert all(np.array_equal(out[i], again[i]) for i in range(2))


def test_identity_term_with_the_small_decoder(tmp_path):
    """With an ArcFace checkpoint the small decoder also gets the identity term (toward random unit
    directions of the embedding space); the loss lies in [0, 2] and is logged under its own name."""
    method = ANONYMIZERS.create(
        "pose_face", **{**TINY, "regressor_steps": 1, "identity_checkpoint": str(_tiny_arcface(tmp_path / "arcface"))}
    )
    train(
        method,
        toy_faces(8),
        TrainConfig(steps=3, batch_size=4, device="cpu", sample_every=0),
        tmp_path / "run",
        quiet=True,
    )
    rows = [line.split(",") for line in (tmp_path / "run" / "log.csv").read_text().splitlines()[1:]]
    values = [float(r[3]) for r in rows if r[2] == "identity_loss"]
    assert len(values) == 2 and all(0.0 <= v <= 2.0 for v in values)


# -- training mechanics -----------------------------------------------------------------------------------------------
def test_resume_gives_the_same_state_bitwise(tmp_path):
    data = toy_faces(8)
    params = {**TINY, "regressor_steps": 2}
    straight = ANONYMIZERS.create("pose_face", **params)
    train(straight, data, TrainConfig(steps=5, batch_size=4, device="cpu", sample_every=0), tmp_path / "a", quiet=True)
    train(
        ANONYMIZERS.create("pose_face", **params),
        data,
        TrainConfig(steps=3, batch_size=4, device="cpu", sample_every=0),
        tmp_path / "b",
        quiet=True,
    )
    resumed = ANONYMIZERS.create("pose_face", **params)
    train(resumed, data, TrainConfig(steps=5, batch_size=4, device="cpu", sample_every=0), tmp_path / "b", quiet=True)
    a, b = straight.state_dict()["networks"], resumed.state_dict()["networks"]
    for net in a:
        for k, v in a[net].items():
            assert torch.equal(v, b[net][k]), (net, k)
    assert (tmp_path / "a" / "log.csv").read_text() == (tmp_path / "b" / "log.csv").read_text()


def test_checkpoint_loads_as_a_target_and_mismatches_are_clear_errors(trained):
    method, path = trained
    data = toy_faces(2, seed=7)
    target = ANONYMIZERS.create("pose_face", **TINY, checkpoint=str(path))
    got, expected = target.anonymize(data, show_progress=False), method.anonymize(data, show_progress=False)
    assert all(np.array_equal(got[i], expected[i]) for i in range(2))
    with pytest.raises(CheckpointError, match=r"nothing\.pt: checkpoint not found"):
        ANONYMIZERS.create("pose_face", **TINY, checkpoint=str(path.parent / "nothing.pt")).anonymize(data)
    with pytest.raises(CheckpointError, match="image_size"):
        ANONYMIZERS.create("pose_face", **{**TINY, "image_size": 64}, checkpoint=str(path)).anonymize(data)


@pytest.mark.parametrize("params, message", [
    ({"decoder": "stylegan3"}, "decoder must be one of"),
    ({"image_size": 48}, "power of two"),
    ({"n_ws": 2}, "n_ws must be an integer >= 3"),
    ({"perceptual": "vgg"}, "perceptual must be one of"),
    ({"identity_weight": -1.0}, "identity_weight must be a finite number"),
    ({"release_format": "jpeg"}, "release_format"),
])
def test_bad_parameters_are_config_errors(params, message):
    with pytest.raises(ConfigError, match=message):
        ANONYMIZERS.create("pose_face", **params)


def test_bad_landmark_annotation_and_no_faces_are_data_errors(tmp_path):
    bad = ImageSet.from_arrays(
        [np.zeros((32, 32, 3), np.uint8)], ["x"], attributes=[{"landmarks68": np.zeros((5, 2))}], name="bad"
    )
    with pytest.raises(DataError, match=r"'bad' image 'x': attribute landmarks68 must hold \(F, 68, 2\)"):
        ANONYMIZERS.create("pose_face", **TINY).face_landmarks(bad)
    empty = ImageSet.from_arrays(
        [np.zeros((32, 32, 3), np.uint8)], ["y"], attributes=[{"landmarks68": np.zeros((0, 68, 2))}], name="empty"
    )
    with pytest.raises(DataError, match="'empty': pose_face found no face landmarks in 1 images"):
        train(
            ANONYMIZERS.create("pose_face", **TINY),
            empty,
            TrainConfig(steps=1, batch_size=4, device="cpu"),
            tmp_path,
            quiet=True,
        )


def test_train_configs():
    tiny = load_train_config(ROOT / "configs" / "train" / "pose-face-tiny.yaml")
    paper = load_train_config(ROOT / "configs" / "train" / "pose-face-paper.yaml")
    assert tiny.create_method().decoder == "small-cpu" and tiny.train.device == "cpu"
    p = paper.create_method()
    assert (p.decoder, p.image_size, p.n_ws, p.w_dim, p.lr, p.perceptual) == ("stylegan", 256, 18, 512, 1e-4, "lpips")
    assert paper.train.batch_size == 4 and paper.train.device == "cuda"
    audit = load_config(ROOT / "configs" / "paper-004-pose.yaml", roots=[ROOT.parent / "shared" / "data"])
    target = ANONYMIZERS.create(audit.targets[0].name, **audit.targets[0].params)
    assert target.label().startswith("pose_face(decoder=small-cpu") and target.checkpoint.endswith(
        "runs/train/pose-face-tiny/checkpoint.pt"
    )
    assert {k: v for k, v in target.get_params().items() if k in target.arch_params} == {
        k: v for k, v in tiny.create_method().get_params().items() if k in target.arch_params
    }  # the tiny checkpoint loads
    assert [(t.name, t.params) for t in audit.targets[1:]] == [("face_blur", {"kernel": 25, "detector": "dlib_hog"}),
                                                               ("face_pixelate", {"block": 15, "detector": "dlib_hog"})]


@pytest.mark.shared_data("lfw")
def test_tiny_checkpoints_train_on_people_the_paper_004_audit_never_sees():
    from shared_data import SHARED_DATA

    from anonaudit.datasets import load_lfw

    def people(data: dict) -> set[str]:
        params = {k: v for k, v in data.items() if k not in ("name", "root")}
        return set(load_lfw(SHARED_DATA / "lfw", **params).identities)

    audit = load_config(ROOT / "configs" / "paper-004-pose.yaml", roots=[SHARED_DATA])
    audited = people({"name": "lfw", **audit.data.params})
    assert len(audited) == 53
    for name in ("pose-face-tiny", "arcface-tiny"):
        trained_on = people(load_train_config(ROOT / "configs" / "train" / f"{name}.yaml").data)
        assert trained_on and not trained_on & audited, name


@pytest.mark.shared_data("lfw")
def test_lfw_faces_found_by_dlib_keep_their_background(trained):
    from shared_data import SHARED_DATA

    from anonaudit.datasets import load_lfw

    method, _ = trained
    lfw = load_lfw(SHARED_DATA / "lfw", limit=2)
    landmarks = method.face_landmarks(lfw)
    out = method.anonymize(lfw, show_progress=False)
    for i in range(2):
        (lm,) = landmarks[i]
        assert 60 < lm[:, 0].mean() < 190 and 60 < lm[:, 1].mean() < 190  # LFW's face sits in the centre
        changed = np.any(out[i] != lfw[i], axis=2)
        hull = hull_mask(lm, lfw[i].shape[:2]) > 0
        assert changed[hull].mean() > 0.3 and not changed[~hull].any()
