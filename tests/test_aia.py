"""Paper 003: AIA (adversarial image anonymizer), its networks, baselines and the fresh attacker on g."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from anonaudit.anonymizers.aia import AIA, gender_labels, representation_attack
from anonaudit.data.imageset import ImageSet
from anonaudit.errors import ConfigError

torch = pytest.importorskip("torch")


def toy_faces(n_people: int, seed: int, prefix: str, size: int = 32, delta: float = 0.15, period: float = 10.0) -> ImageSet:
    """Greyscale 'faces' (a smooth pattern per person, 2 photos each) with gender LINEARLY encoded:
    vertical stripes of one period added for men, subtracted for women."""
    import cv2

    rng = np.random.default_rng(seed)
    stripes = np.sin(np.arange(size) * 2 * np.pi / period)[None, :].repeat(size, 0)
    images, ids, attrs, keys = [], [], [], []
    for p in range(n_people):
        male = p % 2
        base = cv2.resize(rng.uniform(0.2, 0.8, (3, 3)), (size, size), interpolation=cv2.INTER_CUBIC)
        for k in range(2):
            im = base + rng.normal(0, 0.03, (size, size)) + (delta if male else -delta) * stripes
            grey = np.clip(np.round(im * 255), 0, 255).astype(np.uint8)
            images.append(np.repeat(grey[..., None], 3, axis=2))
            ids.append(f"{prefix}{p}")
            attrs.append({"gender": "male" if male else "female"})
            keys.append(f"{prefix}{p}/{k}")
    return ImageSet.from_arrays(images, keys, identities=ids, attributes=attrs, name=f"toy-{prefix}")


def tiny(**params) -> AIA:
    base = dict(size=32, decoder="two_blocks", adversary="mlp", pretrain_steps=20, device="cpu", lr=3e-3)
    return AIA(**{**base, **params})


def train_tiny(method: AIA, data: ImageSet, out: Path, steps: int) -> Path:
    from anonaudit.training import TrainConfig, train

    return train(method, data, TrainConfig(steps=steps, batch_size=32, checkpoint_every=0, sample_every=0, n_samples=4), out, quiet=True)


def test_networks_shapes_and_both_paper_readings(one_torch_thread):
    from anonaudit.anonymizers.aia_networks import Adversary, Decoder, Encoder, Siamese, contrastive_loss

    x = torch.rand(3, 1, 32, 32)
    g = Encoder()(x)
    assert g.shape == (3, 12 * 8 * 8) and float(g.min()) >= 0 and float(g.max()) <= 1
    for kind in ("three_conv", "two_blocks"):
        y = Decoder(32, kind)(g)
        assert y.shape == (3, 1, 32, 32) and float(y.min()) >= 0 and float(y.max()) <= 1
    for kind in ("cnn", "mlp"):
        assert Adversary(32, kind).eval()(g).shape == (3,)
    assert Siamese(32)(g).shape == (3, 128)
    # eq. (7) by hand: distances 5 (same person) and 1 (different, margin 2)
    a, b = torch.tensor([[0.0, 0.0], [0.0, 0.0]]), torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    assert float(contrastive_loss(a, b, torch.tensor([0.0, 1.0]), 2.0)) == pytest.approx((25 / 2 + (2 - 1) ** 2 / 2) / 2)
    with pytest.raises(ConfigError):
        AIA(size=30)
    with pytest.raises(ConfigError):
        AIA(random_fraction=1.5)


def test_gender_labels():
    images = toy_faces(2, 0, "g")
    assert gender_labels(images).tolist() == [0, 0, 1, 1]
    unlabeled = ImageSet.from_arrays([images[0]], ["x"], attributes=[{"gender": "unknown"}])
    assert gender_labels(unlabeled).tolist() == [-1]


def test_train_reload_release_and_random_baseline(tmp_path: Path, one_torch_thread):
    data = toy_faces(16, 0, "t")
    method = tiny(beta=0.0)
    ckpt = train_tiny(method, data, tmp_path, steps=30)
    images = toy_faces(4, 1, "e")
    g = method.represent(images)
    assert g.shape == (8, 768)
    loaded = tiny(beta=0.0, checkpoint=str(ckpt))
    np.testing.assert_allclose(loaded.represent(images), g, atol=1e-6)  # lazily loaded from the checkpoint
    out = loaded.anonymize(images, show_progress=False)
    assert out.keys == images.keys and out[0].shape == images[0].shape and out[0].dtype == np.uint8
    assert np.array_equal(out[0][..., 0], out[0][..., 2])  # greyscale reconstruction
    # Random baseline: half of every g replaced by U[0, 1], the same way for the same key
    rnd = tiny(beta=0.0, random_fraction=0.5, checkpoint=str(ckpt))
    g_r = rnd.represent(images)
    changed = (g_r != g).sum(axis=1)
    assert np.all(changed == 384)
    np.testing.assert_array_equal(rnd.represent(images), g_r)
    assert not np.array_equal(g_r[0] != g[0], g_r[1] != g[1])  # different positions per image
    from anonaudit.training import CheckpointError

    with pytest.raises(CheckpointError, match="beta"):
        tiny(beta=0.5, checkpoint=str(ckpt)).represent(images)  # a checkpoint carries its alpha/beta


def test_fresh_attacker_finds_the_planted_leak_and_random_hides_it(tmp_path: Path, one_torch_thread):
    train_set, aux, evaluation = toy_faces(30, 0, "t"), toy_faces(30, 1, "a"), toy_faces(30, 2, "e")
    method = tiny(beta=0.0)
    ckpt = train_tiny(method, train_set, tmp_path, steps=40)
    leak = representation_attack(method, aux, evaluation, classifier="logistic", n_boot=50)
    assert leak["baseline"] == 0.5 and leak["original"] == 1.0
    assert leak["accuracy"].ci_low > 0.8  # the original AE's g reveals gender
    # random_fraction=1: every value of g is a draw seeded by the key alone, nothing of the image is left
    everything_random = tiny(beta=0.0, random_fraction=1.0, checkpoint=str(ckpt))
    other_pixels = evaluation.with_images([evaluation[(i + 7) % len(evaluation)] for i in range(len(evaluation))])
    np.testing.assert_array_equal(everything_random.represent(evaluation), everything_random.represent(other_pixels))


def test_interrupted_training_resumes_to_the_same_weights(tmp_path: Path, one_torch_thread):
    """Pre-training and adversarial steps resume exactly through the shared loop's checkpoints."""
    from anonaudit.training import TrainConfig, train

    data = toy_faces(12, 0, "t")
    cfg = dict(batch_size=8, checkpoint_every=5, sample_every=0, n_samples=0)
    straight = tiny(beta=0.5, pretrain_steps=6)
    train(straight, data, TrainConfig(steps=14, **cfg), tmp_path / "a", quiet=True)
    first = tiny(beta=0.5, pretrain_steps=6)
    train(first, data, TrainConfig(steps=10, **cfg), tmp_path / "b", quiet=True)  # "interrupted" at step 10
    resumed = tiny(beta=0.5, pretrain_steps=6)
    train(resumed, data, TrainConfig(steps=14, **cfg), tmp_path / "b", quiet=True)
    for name, net in straight.networks_.items():
        for (k, v), w in zip(net.state_dict().items(), resumed.networks_[name].state_dict().values()):
            assert torch.equal(v, w), f"{name}.{k} differs after resume"
