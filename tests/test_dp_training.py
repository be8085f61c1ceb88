"""DP-SGD training of the trainable targets (anonaudit.training.dp, Opacus) and the shared constructor
parameters of the trainable targets (anonaudit.anonymizers.trainable)."""

from __future__ import annotations

import inspect
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from anonaudit.anonymizers.trainable import DP_PARAMS, PER_METHOD, TRAINABLE_PARAMS
from anonaudit.cli import main
from anonaudit.data.imageset import Box, ImageSet
from anonaudit.errors import ConfigError, ModelUnavailableError
from anonaudit.registry import ANONYMIZERS
from anonaudit.training import dp
from anonaudit.training.config import TrainConfig

torch = pytest.importorskip("torch")
pytest.importorskip("opacus")

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: The DP-capable targets at toy size, each with toy data of 48 examples.
TINY = {
    "plate_wgan": dict(image_size=16, latent_dim=16, g_channels=8, d_channels=8),
    "face_dcgan": dict(image_size=16, latent_dim=16, g_channels=8, d_channels=8, release_format="memory"),
    "face_progan": dict(image_size=16, latent_dim=16, channels=8, max_channels=16, phase_steps=2,
                        release_format="memory"),
    "miku": dict(mapper="autoencoder", size=16, latent=8, k=2),
    "aia": dict(alpha=0.0, beta=0.0, size=16, adversary_hidden=16),
}
EPOCHS2 = TrainConfig(epochs=2, batch_size=12, device="cpu", checkpoint_every=0, sample_every=0, n_samples=0)


def toy_images(n: int = 48) -> ImageSet:
    rng = np.random.default_rng(0)
    images = [np.clip(np.array((200, 150, 120)) + rng.normal(0, 8, (16, 16, 3)), 0, 255).astype(np.uint8)
              for _ in range(n)]
    return ImageSet.from_arrays(images, boxes=[[Box(0, 0, 16, 16, "face")]] * n, name="toy")


def trainable_classes() -> list[type]:
    return [ANONYMIZERS.get(n) for n in ANONYMIZERS.names() if ANONYMIZERS.get(n).trainable]


# -- shared parameters declared once --------------------------------------------------------------------
@pytest.mark.parametrize("cls", trainable_classes(), ids=lambda c: c.name)
def test_every_trainable_target_takes_the_shared_parameters_with_one_default(cls):
    signature = inspect.signature(cls.__init__).parameters
    shared = TRAINABLE_PARAMS + (DP_PARAMS if cls.dp_network else ())
    for param in shared:
        assert param.name in signature, f"{cls.name} lacks the shared parameter {param.name}"
        if param.default is not PER_METHOD:
            assert signature[param.name].default == param.default, (cls.name, param.name)
    if not cls.dp_network:  # DP parameters only where DP training exists
        assert not {p.name for p in DP_PARAMS} & set(signature)


@pytest.mark.parametrize("cls", trainable_classes(), ids=lambda c: c.name)
@pytest.mark.parametrize("bad", [{"lr": -1.0}, {"seed": 1.5}, {"device": "gpu"}, {"checkpoint": 3}])
def test_every_trainable_target_checks_the_shared_parameters_alike(cls, bad):
    params = {**cls.test_params, **TINY.get(cls.name, {}), **bad}
    with pytest.raises(ConfigError, match=f"{cls.name}: {next(iter(bad))} must"):
        cls(**params)


@pytest.mark.parametrize("bad", [{"dp_epsilon": 0}, {"dp_epsilon": math.inf}, {"dp_delta": 1.0},
                                 {"dp_max_grad_norm": -1}])
def test_dp_parameters_are_checked(bad):
    with pytest.raises(ConfigError, match=f"plate_wgan: {next(iter(bad))} must"):
        ANONYMIZERS.create("plate_wgan", **bad)


def test_miku_refuses_dp_for_mappers_not_trained_by_gradient_descent():
    with pytest.raises(ConfigError, match="autoencoder mapper only"):
        ANONYMIZERS.create("miku", mapper="pca", dp_epsilon=8)


def test_aia_takes_dp_only_without_its_batch_coupled_terms():
    with pytest.raises(ConfigError, match="dp_epsilon needs alpha = beta = 0"):
        ANONYMIZERS.create("aia", dp_epsilon=8)


def test_the_label_shows_epsilon_and_delta_only_with_dp():
    assert "dp_" not in ANONYMIZERS.create("face_dcgan").label()
    label = ANONYMIZERS.create("face_dcgan", dp_epsilon=8).label()
    assert label == "face_dcgan(dp_epsilon=8, dp_delta=1e-05)"


# -- the DP-SGD step ------------------------------------------------------------------------------------
def plan(**kw) -> dp.DPPlan:
    return dp.DPPlan(**{"epsilon": 8.0, "delta": 1e-5, "max_grad_norm": 1.0, "examples": 4, "sample_rate": 0.5,
                        "steps": 1, "noise_multiplier": 2.0, **kw})


def test_a_step_clips_each_example_and_adds_the_planned_noise(monkeypatch):
    """Loss w.x of examples with gradients of norm 3 and 0.5, clipped to 1, summed, divided by the
    expected batch size 2: (x1 / 3 + x2) / 2 exactly without noise, and noise of std sigma C / 2 with it."""
    x = torch.tensor([[3.0, 0.0], [0.0, 0.5]])
    expected = (x[0] / 3 + x[1]) / 2

    def grad_after_step() -> torch.Tensor:
        net = torch.nn.Linear(2, 1, bias=False)
        opt = dp.PrivateOptimizer(net, torch.optim.SGD(net.parameters(), lr=0.0), plan())
        opt.step(lambda model, xi: model(xi).sum(), x)
        return net.weight.grad.reshape(-1)

    monkeypatch.setattr(dp, "_ADD_NOISE", False)  # the planted bug: the noise is skipped
    torch.testing.assert_close(grad_after_step(), expected)
    monkeypatch.setattr(dp, "_ADD_NOISE", True)
    torch.manual_seed(0)
    noise = torch.stack([grad_after_step() - expected for _ in range(400)])
    assert noise.std().item() == pytest.approx(2.0 * 1.0 / 2, rel=0.1)


def test_per_example_gradients_of_the_wgan_gp_loss_are_exact():
    """The per-example gradients the optimizer clips equal those of the batch loss's autograd, one
    example at a time, gradient penalty included."""
    from anonaudit.anonymizers.gan_networks import ConvCritic, example_gradient_penalty, gradient_penalty

    torch.manual_seed(0)
    critic = ConvCritic(8, 4, 8, norm="instance")
    real, fake, alpha = torch.randn(3, 3, 8, 8), torch.randn(3, 3, 8, 8), torch.rand(3, 1, 1, 1)
    opt = dp.PrivateOptimizer(critic, torch.optim.SGD(critic.parameters(), lr=0.0), plan(examples=6))

    def loss(model, x, f, a):
        return -model(x).mean() + model(f).mean() + example_gradient_penalty(model, x, f, a, 10.0)

    opt.step(loss, real, fake, alpha)
    for i in range(3):
        critic.zero_grad()
        one = -critic(real[i : i + 1]).mean() + critic(fake[i : i + 1]).mean()
        one = one + gradient_penalty(critic, real[i : i + 1], fake[i : i + 1], 10.0, alpha[i : i + 1])
        one.backward()
        for p in critic.parameters():
            torch.testing.assert_close(p.grad_sample[i], p.grad, rtol=1e-4, atol=1e-5)


def test_an_empty_poisson_batch_is_a_noise_only_step():
    net = torch.nn.Linear(2, 1, bias=False)
    opt = dp.PrivateOptimizer(net, torch.optim.SGD(net.parameters(), lr=1.0), plan())
    before = net.weight.detach().clone()
    assert math.isnan(opt.step(lambda model, xi: model(xi).sum(), torch.zeros(0, 2)))
    assert not torch.equal(net.weight, before) and opt.record()["steps_taken"] == 1


def test_poisson_batches_take_each_example_at_the_sampling_rate():
    gen = torch.Generator().manual_seed(0)
    sizes = [len(b) for _ in range(50) for b in dp.poisson_batches(40, 10, gen)]
    assert len(sizes) == 50 * 4 and len(set(sizes)) > 3
    assert np.mean(sizes) == pytest.approx(10, rel=0.1)


def test_the_noise_comes_from_opacus_accountant_for_the_planned_steps():
    from opacus.accountants import RDPAccountant
    from opacus.accountants.utils import get_noise_multiplier

    made = dp.DPPlan.make(4.0, 1e-5, 1.0, examples=100, batch_size=10, steps=50)
    assert made.sample_rate == 0.1 and made.expected_batch_size == 10
    assert made.noise_multiplier == get_noise_multiplier(target_epsilon=4.0, target_delta=1e-5, sample_rate=0.1,
                                                         steps=50, accountant="rdp", alphas=list(dp.ALPHAS))
    accountant = RDPAccountant()
    accountant.history = [(made.noise_multiplier, 0.1, 50)]
    assert 3.95 <= accountant.get_epsilon(1e-5, alphas=list(dp.ALPHAS)) <= 4.0


def test_delta_must_be_below_one_over_n():
    with pytest.raises(ConfigError, match="not below 1/n"):
        dp.DPPlan.make(8.0, 0.05, 1.0, examples=40, batch_size=10, steps=10)


def test_without_opacus_the_error_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "opacus", None)  # `import opacus` raises ImportError
    method = ANONYMIZERS.create("plate_wgan", **TINY["plate_wgan"], device="cpu", dp_epsilon=8)
    with pytest.raises(ModelUnavailableError, match=r"pip install 'anonaudit\[dp\]'"):
        method.train_with(toy_images(), EPOCHS2)
    ANONYMIZERS.create("plate_wgan", **TINY["plate_wgan"], device="cpu").train_with(toy_images(8), EPOCHS2)


# -- every DP-capable target ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dp_trained():
    """Each DP-capable target trained at epsilon 8 for two epochs on 48 toy examples."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    out = {}
    for name, params in TINY.items():
        out[name] = ANONYMIZERS.create(name, **params, device="cpu", dp_epsilon=8).train_with(toy_images(), EPOCHS2)
    torch.set_num_threads(before)
    return out


@pytest.mark.parametrize("name", list(TINY))
def test_each_dp_target_spends_at_most_its_epsilon_and_says_so(dp_trained, name):
    method = dp_trained[name]
    record = method.privacy_
    assert 7.9 <= record["epsilon_spent"] <= 8.0  # Opacus' search stops within 0.01 below the target
    assert record["steps_taken"] == 2 * 4 and record["sample_rate"] == 12 / 48 and record["delta"] == 1e-5
    assert record["noise_multiplier"] > 0.5
    assert "dp_epsilon=8, dp_delta=1e-05" in method.label()
    private = method.optimizers_[method.dp_network].network
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in private.modules())


def test_the_dp_discriminator_uses_group_norm_where_dcgan_has_batch_norm(dp_trained):
    modules = list(dp_trained["face_dcgan"].networks_["discriminator"].modules())
    assert any(isinstance(m, torch.nn.GroupNorm) for m in modules)


def test_dp_aia_trains_neither_adversary_nor_siamese_network(dp_trained):
    """They would see the training images without noise; with alpha = beta = 0 nothing released needs them."""
    fresh = ANONYMIZERS.create("aia", **TINY["aia"], device="cpu", dp_epsilon=8)
    torch.manual_seed(0)  # the loop's seed before build: the same initial weights
    fresh.build(torch.device("cpu"))
    for name in ("adversary", "siamese"):
        for key, value in fresh.networks_[name].state_dict().items():
            assert torch.equal(value, dp_trained["aia"].networks_[name].state_dict()[key]), (name, key)
    trained = dp_trained["aia"].networks_["encoder"].blocks[0].weight
    assert not torch.equal(fresh.networks_["encoder"].blocks[0].weight, trained)


def test_a_dp_target_still_anonymizes(dp_trained):
    faces = toy_images(4)
    out = dp_trained["face_dcgan"].anonymize(faces, show_progress=False)
    assert len(out) == 4 and out[0].shape == faces[0].shape


# -- the training loop: checkpoint, manifest, resume, command line ---------------------------------------
def test_checkpoint_and_manifest_record_the_epsilon_spent_and_a_run_resumes_only_under_its_plan(tmp_path):
    from anonaudit.training import train
    from anonaudit.training.base import CheckpointError

    params = {**TINY["miku"], "device": "cpu", "dp_epsilon": 2, "dp_max_grad_norm": 0.5}
    config = TrainConfig(steps=6, batch_size=8, device="cpu", checkpoint_every=3, sample_every=0, n_samples=0)
    train(ANONYMIZERS.create("miku", **params), toy_images(40), config, tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["privacy"]["steps_taken"] == 6 and 1.98 <= manifest["privacy"]["epsilon_spent"] <= 2.0
    loaded = ANONYMIZERS.create("miku", **params, checkpoint=str(tmp_path / "checkpoint.pt")).fit()
    assert loaded.privacy_["epsilon_spent"] == manifest["privacy"]["epsilon_spent"]
    longer = TrainConfig(steps=9, batch_size=8, device="cpu", checkpoint_every=3, sample_every=0, n_samples=0)
    with pytest.raises(ConfigError, match=r"another plan .*'steps': \(6, 9\)"):  # 9 steps would spend more
        train(ANONYMIZERS.create("miku", **params), toy_images(40), longer, tmp_path)
    with pytest.raises(CheckpointError, match="dp_epsilon"):  # a DP checkpoint is not a non-DP target's
        ANONYMIZERS.create("miku", **{**params, "dp_epsilon": None}, checkpoint=str(tmp_path / "checkpoint.pt")).fit()


def test_a_resumed_dp_run_continues_exactly_as_an_uninterrupted_one(tmp_path):
    """Same plan, same Poisson batches (drawn from the epoch's generator), same noise (torch's saved RNG
    state), same accounting: a run interrupted after its step-2 checkpoint and resumed ends bit for bit
    where the uninterrupted run ends."""
    from anonaudit.training import train

    config = TrainConfig(steps=4, batch_size=8, device="cpu", checkpoint_every=2, sample_every=0, n_samples=0)

    def method():
        return ANONYMIZERS.create("miku", **TINY["miku"], device="cpu", dp_epsilon=4)

    straight = method()
    train(straight, toy_images(24), config, tmp_path / "straight")
    interrupted = method()
    step_of = interrupted.train_step

    def stop_at_step_2(batch, step):
        if step == 2:
            raise KeyboardInterrupt
        return step_of(batch, step)

    interrupted.train_step = stop_at_step_2
    with pytest.raises(KeyboardInterrupt):
        train(interrupted, toy_images(24), config, tmp_path / "resumed")
    resumed = method()
    train(resumed, toy_images(24), config, tmp_path / "resumed")
    for key, value in straight.networks_["autoencoder"].state_dict().items():
        assert torch.equal(value, resumed.networks_["autoencoder"].state_dict()[key]), key
    assert resumed.privacy() == straight.privacy()


def test_dp_config_trains_from_the_command_line(tmp_path):
    out = tmp_path / "run"
    assert main(["train", str(ROOT / "configs" / "train" / "plate-wgan-dp-tiny.yaml"), "--quiet", "--output", str(out),
                 "--set", "train.epochs=1", "--set", "data.n=32", "--set", "method.image_size=16"]) == 0
    privacy = json.loads((out / "manifest.json").read_text())["privacy"]
    assert privacy["epsilon"] == 8 and 7.9 <= privacy["epsilon_spent"] <= 8.0 and privacy["steps_taken"] == 2
