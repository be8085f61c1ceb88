"""k-Same-Pixel (Newton, Sweeney, Malin 2005): groups of k..2k-1 closest faces, each released as its average."""

from __future__ import annotations

import numpy as np
import pytest

from anonaudit.anonymizers.k_same import KSame, k_same_groups
from anonaudit.attacks.reid import ReIdentification
from anonaudit.data.imageset import ImageSet, Release
from anonaudit.errors import ConfigError, DataError
from anonaudit.registry import ANONYMIZERS


def faces(n: int, size: int = 24, seed: int = 0) -> ImageSet:
    """Smooth random 'faces', one per person (identity = key)."""
    import cv2

    rng = np.random.default_rng(seed)
    images = [np.clip(cv2.resize(rng.uniform(0, 255, (4, 4, 3)), (size, size), interpolation=cv2.INTER_CUBIC), 0, 255)
              .astype(np.uint8) for _ in range(n)]
    keys = [f"f{i:02d}" for i in range(n)]
    return ImageSet.from_arrays(images, keys, identities=keys, name="faces")


def test_groups_are_the_k_closest_to_the_first_remaining_face():
    # 1-d points: 0 takes its 2 closest (0, 1); then 5 takes (5, 4); the last 3 (< 2k) form one group
    x = np.array([[0.0], [0.5], [10.0], [4.0], [9.0], [5.0], [20.0]])
    x = x[[0, 1, 3, 5, 2, 4, 6]]  # order: 0, 0.5, 4, 5, 10, 9, 20
    groups = [sorted(x[g, 0].tolist()) for g in k_same_groups(x, 2)]
    assert groups == [[0.0, 0.5], [4.0, 5.0], [9.0, 10.0, 20.0]]


@pytest.mark.parametrize("k", [2, 3, 4])
def test_every_released_face_is_the_average_of_its_group_and_shared_by_k(k):
    images = faces(23)
    anon = KSame(k=k)
    out = anon.anonymize(images, show_progress=False)
    assert sorted(key for g in anon.groups_ for key in g) == sorted(images.keys)
    for g in anon.groups_:
        assert k <= len(g) <= 2 * k - 1
        mean = np.mean([images[images.index_of(key)].astype(float) for key in g], axis=0)
        for key in g:
            np.testing.assert_array_equal(out[out.index_of(key)], np.round(mean).astype(np.uint8))
    hashes = [out.hash(i) for i in range(len(out))]
    assert min(hashes.count(h) for h in hashes) >= k  # identical to at least k - 1 others
    assert anon.label() == f"k_same(k={k})"


def test_k_equal_1_releases_every_image_unchanged():
    images = faces(7)
    out = KSame(k=1).anonymize(images, show_progress=False)
    assert all(np.array_equal(out[i], images[i]) for i in range(len(images)))


@pytest.mark.parametrize("k", [2, 4])
def test_pixel_reidentification_is_bounded_by_one_over_k(k):
    """The paper's theorem: a recogniser matching each released face to one original is right at most once
    per group, so rank-1 <= groups / n <= 1/k; without anonymization it is right every time."""
    images = faces(16, seed=3)
    anon = KSame(k=k)
    release = Release(images, anon.anonymize(images, show_progress=False), anon.label())
    rank1 = ReIdentification(embedder="pixels", n_boot=10).run(release).metric("rank1").release.value
    assert rank1 <= len(anon.groups_) / len(images) <= 1 / k
    plain = ReIdentification(embedder="pixels", n_boot=10).run(Release(images, images, "none"))
    assert plain.metric("rank1").release.value == 1.0


def test_refuses_fewer_than_k_images_and_bad_parameters():
    with pytest.raises(DataError, match="at least k"):
        KSame(k=4).anonymize(faces(3), show_progress=False)
    with pytest.raises(ConfigError, match="k must be"):
        ANONYMIZERS.create("k_same", k=0)
