"""Paper 003: AIA (adversarial image anonymizer), its networks, baselines, the adversarial term's
known answer (a fresh linear attacker loses a linearly planted attribute) and the registered
attacks on g (``representation_gender``, ``representation_reid``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from anonaudit.anonymizers.aia import ADVERSARIES, AIA, DECODERS, gender_labels
from anonaudit.anonymizers.classical import Mask
from anonaudit.data.imageset import ImageSet, Release
from anonaudit.errors import ConfigError, DataError
from anonaudit.registry import ATTACKS

torch = pytest.importorskip("torch")


def toy_faces(n_people: int, seed: int, prefix: str, size: int = 32, delta: float = 0.15, period: float = 10.0,
              grid: int = 3, noise: float = 0.03) -> ImageSet:
    """Greyscale 'faces' (a smooth pattern per person from a ``grid`` x ``grid`` draw, 2 photos each,
    pixel noise of sd ``noise``) with gender LINEARLY encoded: vertical stripes of one period added
    for men, subtracted for women."""
    import cv2

    rng = np.random.default_rng(seed)
    stripes = np.sin(np.arange(size) * 2 * np.pi / period)[None, :].repeat(size, 0)
    images, ids, attrs, keys = [], [], [], []
    for p in range(n_people):
        male = p % 2
        base = cv2.resize(rng.uniform(0.2, 0.8, (grid, grid)), (size, size), interpolation=cv2.INTER_CUBIC)
        for k in range(2):
            im = base + rng.normal(0, noise, (size, size)) + (delta if male else -delta) * stripes
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

    return train(
        method,
        data,
        TrainConfig(steps=steps, batch_size=32, checkpoint_every=0, sample_every=0, n_samples=4),
        out,
        quiet=True,
    )


def test_networks_shapes_and_both_paper_readings(one_torch_thread):
    from anonaudit.anonymizers.aia_networks import Adversary, Decoder, Encoder, Siamese, contrastive_loss

    x = torch.rand(3, 1, 32, 32)
    g = Encoder()(x)
    assert g.shape == (3, 12 * 8 * 8) and float(g.min()) >= 0 and float(g.max()) <= 1
    for kind in DECODERS:  # every name AIA accepts builds its network
        y = Decoder(32, kind)(g)
        assert y.shape == (3, 1, 32, 32) and float(y.min()) >= 0 and float(y.max()) <= 1
    for kind in ADVERSARIES:
        assert Adversary(32, kind).eval()(g).shape == (3,)
    with pytest.raises(ValueError, match="'three_conv' or 'two_blocks'"):
        Decoder(32, "unet")
    with pytest.raises(ValueError, match="'mlp', 'linear' or 'cnn'"):
        Adversary(32, "rnn")
    assert Siamese(32)(g).shape == (3, 128)
    # eq. (7) by hand: distances 5 (same person) and 1 (different, margin 2)
    a, b = torch.tensor([[0.0, 0.0], [0.0, 0.0]]), torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    assert float(contrastive_loss(a, b, torch.tensor([0.0, 1.0]), 2.0)) == pytest.approx(
        (25 / 2 + (2 - 1) ** 2 / 2) / 2
    )
    with pytest.raises(ConfigError):
        AIA(size=30)
    with pytest.raises(ConfigError):
        AIA(random_fraction=1.5)
    with pytest.raises(ConfigError, match="adversary_loss"):
        AIA(adversary_loss="reversal")
    assert Adversary(32, "linear").eval()(g).shape == (3,)


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


#: The toy of the adversarial known-answer test: person patterns drawn on an 8 x 8 grid and pixel
#: noise, so that g varies in many directions and not only along the planted stripes.
LINEAR_TOY = dict(grid=8, noise=0.1)


def fresh_logistic_accuracy(method: AIA, aux: ImageSet, evaluation: ImageSet) -> float:
    """Held-out accuracy of a FRESH standardised logistic regression trained on the released g of
    ``aux`` and tested on that of ``evaluation`` (other people)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))
    clf.fit(method.represent(aux), gender_labels(aux))
    return float(clf.score(method.represent(evaluation), gender_labels(evaluation)))


@pytest.fixture(scope="module")
def linear_toy(tmp_path_factory):
    """Toy faces with gender linearly encoded (training, auxiliary, evaluation people: disjoint) and
    AIA trained on them without (beta = 0) and with the default adversarial term (beta = 1)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    sets = {k: toy_faces(n, seed, k, **LINEAR_TOY) for k, n, seed in (("t", 60, 0), ("a", 40, 1), ("e", 40, 2))}
    models = {}
    for beta in (0.0, 1.0):
        models[beta] = tiny(beta=beta)
        train_tiny(models[beta], sets["t"], tmp_path_factory.mktemp(f"beta{beta}"), steps=200)
    torch.set_num_threads(before)
    return sets, models


def test_adversarial_term_removes_linearly_decodable_gender(linear_toy):  # two 200-step trainings: ~11 s on a free core
    """Known answer: without the adversary a fresh logistic regression reads gender off g perfectly;
    with it (default adversary_loss 'decorrelation') it is near the majority baseline (0.5)."""
    sets, models = linear_toy
    assert gender_labels(sets["e"]).mean() == 0.5  # balanced: the majority baseline is 0.5
    without = fresh_logistic_accuracy(models[0.0], sets["a"], sets["e"])
    with_adversary = fresh_logistic_accuracy(models[1.0], sets["a"], sets["e"])
    assert without >= 0.95
    assert with_adversary <= 0.70 and without - with_adversary >= 0.25, (without, with_adversary)


@pytest.mark.slow
def test_paper_literal_adversarial_term_leaves_gender_decodable(linear_toy, tmp_path: Path, one_torch_thread):
    """Why the default is not eq. (8) read literally: maximising the training adversary's BCE leaves
    the planted attribute as decodable for a fresh attacker as without any adversary."""
    sets, _ = linear_toy
    literal = tiny(beta=1.0, adversary_loss="paper")
    train_tiny(literal, sets["t"], tmp_path, steps=200)
    assert fresh_logistic_accuracy(literal, sets["a"], sets["e"]) >= 0.9


def test_representation_attack_finds_the_leak_and_random_hides_it(tmp_path: Path, one_torch_thread):
    train_set, aux, evaluation = toy_faces(30, 0, "t"), toy_faces(30, 1, "a"), toy_faces(30, 2, "e")
    method = tiny(beta=0.0)
    ckpt = train_tiny(method, train_set, tmp_path, steps=40)
    attack = ATTACKS.create("representation_gender", classifiers=["logistic"], n_boot=100)
    result = attack.fit(aux).run(Release(evaluation, evaluation, "aia", anonymizer=method))
    acc = result.metric("accuracy")
    assert acc.baseline == 0.5 and acc.original.value == 1.0 and acc.release.n == 60
    assert acc.release.ci_low > 0.8 and acc.risk > 0.7  # the autoencoder's g without adversary reveals gender
    assert "attacking with logistic" in result.notes[0] and len(result.details) == 60
    # Random with every value replaced: g is a draw seeded by the key alone, the attack is at chance
    everything_random = tiny(beta=0.0, random_fraction=1.0, checkpoint=str(ckpt))
    other_pixels = evaluation.with_images([evaluation[(i + 7) % len(evaluation)] for i in range(len(evaluation))])
    np.testing.assert_array_equal(everything_random.represent(evaluation), everything_random.represent(other_pixels))
    aux, evaluation = toy_faces(100, 3, "b"), toy_faces(100, 4, "f")  # 200 images each: chance is 0.5 +- 0.035
    m = attack.fit(aux).run(Release(evaluation, evaluation, "aia", anonymizer=everything_random)).metric("accuracy")
    assert abs(m.release.value - m.baseline) < 0.1 and m.risk < 0.2


class PixelsAsRepresentation:
    """A method whose representation is the image itself (greyscale 32 x 32): the unchanged release."""

    def represent(self, images: ImageSet) -> np.ndarray:
        from anonaudit.anonymizers.aia import grey_images

        return grey_images(images, 32).reshape(len(images), -1)


class ConstantRepresentation:
    """A method whose representation carries nothing: the fully masked release."""

    def represent(self, images: ImageSet) -> np.ndarray:
        return np.zeros((len(images), 5))


def test_representation_attack_contract_and_not_applicable():
    """The attack contract on representations: an identity representation leaks as much as the
    originals, a constant one nothing; a release of images only is not applicable."""
    aux, evaluation = toy_faces(20, 1, "a"), toy_faces(20, 2, "e")
    attack = ATTACKS.create("representation_gender", classifiers=["logistic", "boosting"], folds=2, n_boot=50)
    same = attack.fit(aux).run(Release(evaluation, evaluation, "pixels", anonymizer=PixelsAsRepresentation()))
    assert max(m.risk for m in same.metrics) >= 0.99
    masked = attack.fit(aux).run(Release(evaluation, evaluation, "constant", anonymizer=ConstantRepresentation()))
    for m in masked.metrics:
        assert m.release.value == pytest.approx(m.baseline), m.metric
    image_only = Release(evaluation, Mask().anonymize(evaluation, show_progress=False), "mask", anonymizer=Mask())
    assert "no representation" in attack.not_applicable(image_only)
    assert "no representation" in attack.not_applicable(Release(evaluation, evaluation, "unknown"))
    assert attack.not_applicable(Release(evaluation, evaluation, "aia", anonymizer=ConstantRepresentation())) == ""
    with pytest.raises(DataError, match="no representation"):
        attack.run(image_only)
    with pytest.raises(ConfigError, match="classifiers"):
        ATTACKS.create("representation_gender", classifiers=["svm"])


def test_representation_matching_contract_and_not_applicable():
    """Face matching on g through the person's other photo: an identity representation matches every
    toy person (2 photos each), as the originals' pixels do; a constant one is at chance."""
    aux, evaluation = toy_faces(20, 1, "a"), toy_faces(20, 2, "e")
    attack = ATTACKS.create("representation_reid", n_boot=50).fit(aux)
    same = attack.run(Release(evaluation, evaluation, "pixels", anonymizer=PixelsAsRepresentation()))
    rank1 = same.metric("rank1")
    assert rank1.release.value == 1.0 and rank1.original.value == 1.0 and rank1.release.n == 40
    assert rank1.baseline == pytest.approx(1 / 20) and same.metric("roc_auc").release.value == 1.0
    constant = attack.run(Release(evaluation, evaluation, "constant", anonymizer=ConstantRepresentation()))
    assert constant.metric("roc_auc").release.value == 0.5  # every pair ties
    r = constant.metric("rank1")
    assert r.original.value == 1.0 and r.risk < 0.15  # ties broken at random (seeded): 5 of 40 vs chance 2
    image_only = Release(evaluation, Mask().anonymize(evaluation, show_progress=False), "mask", anonymizer=Mask())
    assert "no representation" in attack.not_applicable(image_only)
    with pytest.raises(DataError, match="no representation"):
        attack.run(image_only)


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
