"""The one-run privacy audit end to end, on a logistic regression trained by Opacus DP-SGD in the test.

Each of 200 canaries is a point on an axis of its own (a crafted outlier that no other example
touches, with a random label), included with probability 1/2 in 400 ordinary examples; the model is
scored by each canary's loss (lower loss: guessed IN). Known answers: a non-private run gives a
lower bound clearly above 0; DP-SGD at epsilon = 1 gives a bound at most 1 in at least 19 of 20 seeds
(the audit's 95% confidence); a run that claims epsilon = 1 but adds no noise (a planted bug) gives
a bound above 1.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from anonaudit.metrics.dp_audit import one_run_audit

opacus = pytest.importorskip("opacus")
torch = pytest.importorskip("torch")

BASE, FEATURES, CANARIES = 400, 8, 200
EPSILON, DELTA = 1.0, 1e-5
EPOCHS, BATCH, LR, CLIP = 4, 100, 4.0, 1.0
pytestmark = [
    pytest.mark.filterwarnings("ignore:Secure RNG turned off:UserWarning"),  # seeded runs, as tests need
    pytest.mark.filterwarnings("ignore:Optimal order is the largest alpha:UserWarning"),
    pytest.mark.filterwarnings("ignore:Full backward hook is firing:UserWarning"),  # the inputs need no gradient
]


@functools.cache
def noise_multiplier(sample_rate: float) -> float:
    """The noise Opacus's RDP accountant sets for (EPSILON, DELTA)-DP over EPOCHS at this sampling rate (what
    ``make_private_with_epsilon`` computes, once per rate: the rate is one over the number of batches)."""
    from opacus.accountants.utils import get_noise_multiplier

    return get_noise_multiplier(target_epsilon=EPSILON, target_delta=DELTA, sample_rate=sample_rate, epochs=EPOCHS,
                                accountant="rdp")


def canary_data(seed: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray, torch.Tensor, torch.Tensor]:
    """``(x, y, included, canary_x, canary_y)``: the training set (ordinary examples and the included
    canaries), the inclusion draw and every canary. Ordinary examples live in the first FEATURES
    dimensions (labels from a linear rule); canary i is 4 times the unit vector of dimension FEATURES + i."""
    rng = np.random.default_rng(seed)
    x = np.zeros((BASE, FEATURES + CANARIES), np.float32)
    x[:, :FEATURES] = rng.normal(size=(BASE, FEATURES))
    y = (x[:, :FEATURES] @ rng.normal(size=FEATURES) > 0).astype(np.float32)
    canary_x = np.zeros((CANARIES, FEATURES + CANARIES), np.float32)
    canary_x[np.arange(CANARIES), FEATURES + np.arange(CANARIES)] = 4.0
    canary_y = rng.integers(0, 2, CANARIES).astype(np.float32)
    included = rng.random(CANARIES) < 0.5
    train_x, train_y = np.concatenate([x, canary_x[included]]), np.concatenate([y, canary_y[included]])
    return (torch.from_numpy(train_x), torch.from_numpy(train_y), included,
            torch.from_numpy(canary_x), torch.from_numpy(canary_y))


def train_and_score(seed: int, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Train a logistic regression (``plain`` SGD; ``dp``: DP-SGD with the noise Opacus's RDP accountant sets
    for (EPSILON, DELTA)-DP over the run; ``no_noise``: the same with the noise switched off after the
    engine set it) and return ``(minus each canary's loss, the inclusion)``."""
    x, y, included, canary_x, canary_y = canary_data(seed)
    torch.manual_seed(seed)
    model = torch.nn.Linear(FEATURES + CANARIES, 1, bias=False)
    torch.nn.init.zeros_(model.weight)  # an excluded canary's axis keeps weight 0 without noise
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=BATCH, shuffle=True,
                                         generator=torch.Generator().manual_seed(seed))
    if mode != "plain":
        engine = opacus.PrivacyEngine(accountant="rdp", secure_mode=False)
        model, optimizer, loader = engine.make_private(module=model, optimizer=optimizer, data_loader=loader,
                                                       noise_multiplier=noise_multiplier(1 / len(loader)),
                                                       max_grad_norm=CLIP)
        if mode == "no_noise":
            optimizer.noise_multiplier = 0.0  # the planted bug: the claim stays, the noise goes
    loss_fn = torch.nn.BCEWithLogitsLoss()
    for _ in range(EPOCHS):
        for batch_x, batch_y in loader:
            if len(batch_x) == 0:  # Poisson sampling may draw an empty batch
                continue
            optimizer.zero_grad()
            loss_fn(model(batch_x).squeeze(1), batch_y).backward()
            optimizer.step()
    if mode == "dp":  # the accountant confirms the claim the audit tests
        assert engine.get_epsilon(DELTA) <= EPSILON + 1e-6
    with torch.no_grad():
        losses = torch.nn.functional.binary_cross_entropy_with_logits(model(canary_x).squeeze(1), canary_y,
                                                                       reduction="none")
    return -losses.numpy(), included


def test_non_private_run_gives_a_bound_clearly_above_zero(one_torch_thread):
    audit = one_run_audit(*train_and_score(0, "plain"))
    assert audit.epsilon_lower_bound > 2.0, audit
    assert audit.correct >= 0.95 * audit.guesses


def test_dp_run_at_epsilon_1_stays_at_most_1_in_19_of_20_seeds(one_torch_thread):
    bounds = [one_run_audit(*train_and_score(seed, "dp"), delta=DELTA).epsilon_lower_bound
              for seed in range(20)]
    assert sum(b <= EPSILON for b in bounds) >= 19, bounds


def test_claimed_epsilon_1_without_noise_is_caught(one_torch_thread):
    audit = one_run_audit(*train_and_score(0, "no_noise"), delta=DELTA)
    assert audit.epsilon_lower_bound > EPSILON, audit
