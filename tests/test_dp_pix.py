"""DP-Pix (Fan 2018) and the distinguishing-test audit of its epsilon (``dp_distinguish``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from anonaudit.anonymizers.classical import Pixelate
from anonaudit.anonymizers.dp_pix import DPPix, laplace_pixelate
from anonaudit.anonymizers.whitebox import WhiteBoxError
from anonaudit.attacks.dp_distinguish import DPDistinguish, clopper_pearson_upper, epsilon_bound, neighbours
from anonaudit.audit import unmet_needs
from anonaudit.data.imageset import Box, ImageSet, Release
from anonaudit.errors import ConfigError
from anonaudit.results import Results, measurement_rows
from anonaudit.verdicts import FAIL, PASS, certify


def grey(h: int = 16, w: int = 16, value: int = 128) -> np.ndarray:
    return np.full((h, w, 3), value, np.uint8)


def textured(n: int = 2, size: int = 16) -> ImageSet:
    rng = np.random.default_rng(0)
    return ImageSet.from_arrays([rng.integers(60, 200, (size, size, 3)).astype(np.uint8) for _ in range(n)],
                                [f"im{i}" for i in range(n)], boxes=[[Box(4, 4, 8, 8)]] * n)


def release_of(target, images: ImageSet) -> Release:
    return Release(images, target.anonymize(images, show_progress=False), target.label(), anonymizer=target)


class NoiseTooSmall(DPPix):
    """A planted bug: claims ``epsilon`` but draws noise for ``10 epsilon`` (the scale divided by 10)."""

    def anonymize_image(self, image, record):
        return laplace_pixelate(image, int(self.b), int(self.m), 10 * float(self.epsilon), self._rng(record.key))


def test_cell_means_get_laplace_noise_of_scale_255_m_over_b2_epsilon():
    rng = np.random.default_rng(1)
    b, m, epsilon = 4, 2, 2.0
    # an 18-pixel-wide image: 4 full cells per row and one partial cell 2 pixels wide (8 pixels)
    out = np.stack([laplace_pixelate(grey(16, 18), b, m, epsilon, rng) for _ in range(400)]).astype(float) - 128
    full, partial = out[:, ::b, 0:16:b], out[:, ::b, 16]
    scale = 255 * m / (b * b * epsilon)
    assert abs(np.abs(full).mean() - scale) < 0.04 * scale  # E|Laplace(s)| = s (rounding adds ~1/12 / s)
    assert abs(np.abs(partial).mean() - scale * 16 / 8) < 0.06 * scale * 2  # a cell of n pixels: 255 m / (n eps)
    assert np.all(out[:, 1:4] == out[:, :1])  # every pixel of a cell shows the cell's one noisy mean


def test_noise_follows_seed_and_key_not_the_batch():
    images = textured(3)
    target = DPPix(b=4)
    together = target.anonymize(images, show_progress=False)
    alone = target.anonymize(images.subset([2]), show_progress=False)
    np.testing.assert_array_equal(together[2], alone[0])
    assert not np.array_equal(together[0], together[1])
    assert not np.array_equal(DPPix(b=4, seed=1).anonymize(images, show_progress=False)[0], together[0])


def test_boxes_region_leaves_the_rest_and_the_claim_names_the_box():
    images = textured(1)
    target = DPPix(b=4, region="boxes")
    out = target.anonymize(images, show_progress=False)[0]
    inside = np.zeros((16, 16), bool)
    inside[4:12, 4:12] = True
    np.testing.assert_array_equal(out[~inside], images[0][~inside])
    assert not np.array_equal(out[inside], images[0][inside])
    claim = target.image_dp_claim(images.record(0), images[0].shape)
    assert (claim.epsilon, claim.delta, claim.m, claim.regions) == (1.0, 0.0, 1, (Box(4, 4, 8, 8),))
    assert target.label() == "dp_pix(epsilon=1, b=4, m=1, region=boxes)"


def test_rejects_bad_parameters():
    for bad in ({"epsilon": 0}, {"m": 0}, {"b": -1}, {"epsilon": float("inf")}):
        with pytest.raises(ConfigError, match="dp_pix"):
            DPPix(**bad)
    with pytest.raises(ConfigError, match=r"^dp_distinguish: n_trials must be an integer >= 4, got 3$"):
        DPDistinguish(n_trials=3)
    with pytest.raises(ConfigError, match=r"^dp_distinguish: seed must be an integer >= 0, got -1$"):
        DPDistinguish(seed=-1)


def test_epsilon_bound_and_clopper_pearson():
    assert epsilon_bound(0.1, 0.2) == pytest.approx(max(np.log(0.9 / 0.2), np.log(0.8 / 0.1)))
    assert epsilon_bound(0.5, 0.5) == 0.0
    assert clopper_pearson_upper(0, 100) == pytest.approx(1 - 0.025 ** (1 / 100))
    assert clopper_pearson_upper(100, 100) == 1.0
    x, x2, changed = neighbours(grey(8, 8), Box(2, 2, 4, 4), 5)
    assert changed == 5 and np.sum(x != x2) == 5 and np.all(x2[x != x2] == 255) and np.all(x[x != x2] == 0)


def test_audit_of_epsilon_1_stays_below_the_claim_and_comes_close():
    result = DPDistinguish(n_trials=2000).run(release_of(DPPix(b=4, epsilon=1.0), textured()))
    bound = result.metric("epsilon_lower_bound")
    assert 0.6 < bound.release.value <= 1.0
    assert bound.release.extra["claimed_epsilon"] == 1.0


def test_audit_holds_its_confidence_over_seeds():
    """The bound is at 95% confidence: over 20 seeds, at most one may exceed the true epsilon."""
    release = release_of(DPPix(b=4, epsilon=1.0), textured(1, size=8))
    bounds = [DPDistinguish(n_trials=200, seed=s).run(release).metric("epsilon_lower_bound").release.value
              for s in range(20)]
    assert sum(b > 1.0 for b in bounds) <= 1
    assert max(bounds) > 0.0


def test_audit_catches_noise_ten_times_too_small():
    result = DPDistinguish(n_trials=400).run(release_of(NoiseTooSmall(b=4, epsilon=1.0), textured()))
    assert result.metric("epsilon_lower_bound").release.value > 1.0


def test_not_applicable_without_a_per_image_dp_claim():
    images = textured(1)
    status, reason = unmet_needs(DPDistinguish(), release_of(Pixelate(block=4), images))
    assert status == "not_applicable" and "provides no image_dp" in reason
    assert unmet_needs(DPDistinguish(), release_of(DPPix(), images)) is None
    with pytest.raises(WhiteBoxError, match="provides no image_dp"):
        DPDistinguish().run(release_of(Pixelate(block=4), images))


@pytest.mark.parametrize("policy", ["strict", "research"])
def test_the_dp_claim_criterion_judges_the_per_image_audit(policy: str):
    """``dp-claim`` selects this attack's ``epsilon_lower_bound_minus_claimed``: the planted bug FAILS,
    the correct mechanism PASSES."""
    def verdict(target) -> str:
        result = DPDistinguish(n_trials=400).run(release_of(target, textured()))
        base = {"target": "t", "target_label": "dp", "component": "dp_distinguish", "component_label": "dp_distinguish"}
        rows = measurement_rows(result.metrics, base, "attack", 0.0)
        criteria = certify(Results(pd.DataFrame(rows)), policy, kind="faces").criteria["dp"]
        (c,) = [c for c in criteria if c.id == "dp-claim"]
        return c.status

    assert verdict(NoiseTooSmall(b=4, epsilon=1.0)) == FAIL
    assert verdict(DPPix(b=4, epsilon=1.0)) == PASS
