"""ImageSet, Box and Release arithmetic (clip, grow, subsets, seeded and identity-disjoint splits,
pairing by key) and external releases: two folders of PNGs written here, paired by file name, with
missing, extra, duplicate and differently sized files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from anonaudit.anonymizers.external import ExternalRelease
from anonaudit.audit import Audit
from anonaudit.data.imageset import Box, ImageSet, Record, Release
from anonaudit.data.io import write_image
from anonaudit.errors import ConfigError, DataError, MismatchError
from anonaudit.evaluators.fidelity import SSIM


def grey(value: int, h: int = 8, w: int = 10) -> np.ndarray:
    return np.full((h, w, 3), value, np.uint8)


def people(n_people: int = 10, per_person: int = 3) -> ImageSet:
    images, keys, ids = [], [], []
    for p in range(n_people):
        for k in range(per_person):
            images.append(grey(10 * p + k))
            keys.append(f"p{p:02d}/{k}")
            ids.append(f"p{p:02d}")
    return ImageSet.from_arrays(images, keys, identities=ids, name="people")


# -- Box ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("box, size, expected", [
    (Box(2, 3, 4, 5), (20, 20), Box(2, 3, 4, 5)),        # inside: unchanged
    (Box(-5, -3, 20, 10), (12, 6), Box(0, 0, 12, 6)),    # over every edge
    (Box(8, 1, 10, 3), (12, 6), Box(8, 1, 4, 3)),        # over the right edge
    (Box(10, 10, 5, 5), (8, 8), Box(10, 10, 0, 0)),      # entirely outside: empty
    (Box(-9, 2, 4, 3), (8, 8), Box(0, 2, 0, 3)),         # entirely left: empty
])
def test_box_clip(box: Box, size: tuple[int, int], expected: Box):
    clipped = box.clip(*size)
    assert clipped == expected
    assert clipped.area == expected.w * expected.h


def test_box_expand_slices_area_and_label():
    box = Box(10, 20, 8, 4, "plate")
    grown = box.expand(0.25)  # 2 px left/right, 1 px up/down
    assert grown == Box(8, 19, 12, 6, "plate")
    assert box.expand(0.0) == box
    assert Box(5, 5, 10, 10).expand(0.5) == Box(0, 0, 20, 20)
    assert Box(1, 1, 10, 10).expand(0.5).clip(30, 30) == Box(0, 0, 16, 16)  # (-4, -4, 20, 20) clipped at 0
    assert box.slices == (slice(20, 24), slice(10, 18))
    img = np.zeros((30, 30))
    img[box.slices] = 1
    assert img.sum() == box.area == 32
    assert Box(0, 0, -3, 4).area == 0


# -- ImageSet ---------------------------------------------------------------------------------------------------------
def test_from_arrays_records_and_labels():
    s = ImageSet.from_arrays([grey(1), grey(2)], texts=["AB12", None], boxes=[[Box(0, 0, 2, 2)], []],
                             attributes=[{"gender": "f"}, {}], name="x")
    assert s.keys == ["000000", "000001"] and len(s) == 2 and s.in_memory
    assert s.texts == ["AB12", None] and s.boxes == [(Box(0, 0, 2, 2),), ()]
    assert s.attribute("gender") == ["f", None]
    assert not s.has_labels("text") and not s.has_labels("boxes") and not s.has_labels("identity")
    assert s.index_of("000001") == 1 and s.record(0).key == "000000"
    assert s[1][0, 0, 0] == 2 and repr(s) == "ImageSet(name='x', n=2, in memory)"


def test_bad_image_sets_are_refused():
    with pytest.raises(DataError, match=r"duplicate image keys in 'dups': \['a'\]"):
        ImageSet.from_arrays([grey(1), grey(2)], ["a", "a"], name="dups")
    with pytest.raises(MismatchError, match="1 images for 2 records"):
        ImageSet([Record("a"), Record("b")], [grey(1)])
    with pytest.raises(DataError, match=r"records without a path or pixels: \['b'\]"):
        ImageSet([Record("a", path=Path("a.png")), Record("b")])


def test_subset_keeps_order_records_and_name():
    s = people(3, 2)
    sub = s.subset([4, 0, 2])
    assert sub.keys == ["p02/0", "p00/0", "p01/0"] and sub.name == "people"
    assert sub.identities == ["p02", "p00", "p01"]
    np.testing.assert_array_equal(sub[0], s[4])
    assert s.subset([1], name="one").name == "one"


@pytest.mark.parametrize("fraction, n_first", [(0.2, 6), (0.5, 15), (0.7, 21)])
def test_split_respects_the_fraction_and_partitions(fraction: float, n_first: int):
    s = people()  # 30 images
    first, second = s.split(fraction, seed=3)
    assert len(first) == n_first and len(second) == 30 - n_first
    assert set(first.keys).isdisjoint(second.keys) and set(first.keys) | set(second.keys) == set(s.keys)
    assert first.keys == sorted(first.keys, key=s.index_of)  # original order kept on both sides
    assert second.keys == sorted(second.keys, key=s.index_of)


def test_split_is_seed_deterministic():
    s = people()
    a1, _ = s.split(0.3, seed=11)
    a2, _ = s.split(0.3, seed=11)
    b, _ = s.split(0.3, seed=12)
    assert a1.keys == a2.keys
    assert a1.keys != b.keys


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_split_by_identity_is_identity_disjoint(seed: int):
    s = people(10, 3)
    first, second = s.split(0.3, seed=seed, by="identity")
    ids1, ids2 = set(first.identities), set(second.identities)
    assert ids1.isdisjoint(ids2) and len(ids1) == 3 and len(ids2) == 7
    assert len(first) == 9 and len(second) == 21  # every image of a chosen identity moves with it
    assert first.keys == s.split(0.3, seed=seed, by="identity")[0].keys


def test_split_errors():
    s = people(2, 2)
    for bad in (0.0, 1.0, -0.5, 1.5):
        with pytest.raises(DataError, match="split fraction must be in"):
            s.split(bad)
    unlabelled = ImageSet.from_arrays([grey(1), grey(2)], identities=["a", None], name="half")
    with pytest.raises(DataError, match="'half': cannot split by identity, some images have none"):
        unlabelled.split(0.5, by="identity")


def test_split_by_attribute():
    s = ImageSet.from_arrays([grey(i) for i in range(8)], attributes=[{"cam": f"c{i % 4}"} for i in range(8)])
    first, second = s.split(0.5, seed=0, by="cam")
    assert set(first.attribute("cam")).isdisjoint(second.attribute("cam")) and len(first) == 4


# -- Release -----------------------------------------------------------------------------------------------------------
def test_release_pairs_by_key_whatever_the_order():
    originals = ImageSet.from_arrays([grey(1), grey(2), grey(3)], ["a", "b", "c"])
    anonymized = ImageSet.from_arrays([grey(30), grey(10), grey(20)], ["c", "a", "b"])
    r = Release(originals, anonymized, name="t", params={"k": 1})
    assert r.keys == ["a", "b", "c"] and len(r) == 3
    for i, k in enumerate("abc"):
        o, a = r.pair(i)
        assert a[0, 0, 0] == 10 * o[0, 0, 0], k
    assert r.unpaired == {"missing": [], "extra": []} and r.params == {"k": 1}
    sub = r.subset([2, 0])
    assert sub.keys == ["c", "a"] and sub.anonymized.keys == ["c", "a"] and sub.name == "t"
    assert [b.keys for b in r.batches(2)] == [["a", "b"], ["c"]]
    ident = r.identity()
    assert ident.name == "originals" and np.array_equal(ident.pair(1)[1], originals[1])


def test_release_mismatch_raise_or_drop():
    originals = ImageSet.from_arrays([grey(1), grey(2), grey(3)], ["a", "b", "c"])
    anonymized = ImageSet.from_arrays([grey(1), grey(3), grey(9)], ["a", "c", "z"])
    with pytest.raises(MismatchError) as info:
        Release(originals, anonymized)
    assert "1 original(s) have no anonymized version ['b']" in str(info.value)
    assert "1 anonymized file(s) have no original ['z']" in str(info.value)
    r = Release(originals, anonymized, on_mismatch="drop")
    assert r.keys == ["a", "c"] and r.anonymized.keys == ["a", "c"]
    assert r.unpaired == {"missing": ["b"], "extra": ["z"]}
    with pytest.raises(MismatchError, match="share no keys"):
        Release(originals, ImageSet.from_arrays([grey(1)], ["q"]), on_mismatch="drop")
    with pytest.raises(ValueError, match="on_mismatch must be"):
        Release(originals, anonymized, on_mismatch="ignore")


# -- external releases -------------------------------------------------------------------------------------------------
def two_folders(tmp_path: Path, released: dict[str, np.ndarray]) -> tuple[ImageSet, Path]:
    """Originals ``a.png``, ``b.png``, ``sub/c.png`` on disk, and a release folder with ``released``."""
    orig = tmp_path / "orig"
    for name, value in (("a.png", 10), ("b.png", 20), ("sub/c.png", 30)):
        write_image(orig / name, grey(value))
    rel = tmp_path / "rel"
    rel.mkdir()
    for name, img in released.items():
        write_image(rel / name, img)
    return ImageSet.from_folder(orig), rel


def test_external_release_pairs_files_by_name(tmp_path: Path):
    originals, rel = two_folders(tmp_path, {"sub/c.png": grey(3), "a.png": grey(1), "b.bmp": grey(2)})
    ext = ExternalRelease(path=str(rel))
    out = ext.anonymize(originals)
    assert out.keys == ["a.png", "b.png", "sub/c.png"]  # the originals' keys, in their order
    assert not out.in_memory and out.name == "external:rel"
    assert [p.path.name for p in out.records] == ["a.png", "b.bmp", "c.png"]  # b.png pairs with b.bmp
    assert [int(out[i][0, 0, 0]) for i in range(3)] == [1, 2, 3]
    assert ext.unpaired_ == {"missing": [], "extra": []}
    release = Release(originals, out)
    assert [int(release.pair(i)[0][0, 0, 0]) for i in range(3)] == [10, 20, 30]


def test_external_release_reports_missing_and_extra_files(tmp_path: Path):
    originals, rel = two_folders(tmp_path, {"a.png": grey(1), "sub/c.png": grey(3), "extra.png": grey(9),
                                            "c.png": grey(4)})  # c.png is not sub/c.png
    with pytest.raises(MismatchError) as info:
        ExternalRelease(path=str(rel)).anonymize(originals)
    msg = str(info.value)
    assert f"release {rel} does not pair with the originals" in msg
    assert "1 original(s) without a released file ['b.png']" in msg
    assert "2 released file(s) without an original ['c.png', 'extra.png']" in msg
    assert "on_mismatch: drop" in msg
    ext = ExternalRelease(path=str(rel), on_mismatch="drop")
    out = ext.anonymize(originals)
    assert out.keys == ["a.png", "sub/c.png"]
    assert ext.unpaired_ == {"missing": ["b.png"], "extra": ["c.png", "extra.png"]}


def test_external_release_unpaired_files_become_result_rows(tmp_path: Path):
    originals, rel = two_folders(tmp_path, {"a.png": grey(1), "sub/c.png": grey(3), "extra.png": grey(9)})
    results = Audit(originals, [ExternalRelease(path=str(rel), on_mismatch="drop")], evaluators=[SSIM()],
                    seed=0).run(show_progress=False)
    t = results.table.set_index("metric")
    assert t.loc["pairs", "value"] == 2
    assert t.loc["unpaired_originals", "value"] == 1 and t.loc["unpaired_originals", "message"] == "b.png"
    assert t.loc["unpaired_release_files", "value"] == 1 and t.loc["unpaired_release_files", "message"] == "extra.png"
    assert t.loc["ssim", "status"] == "ok"


def test_external_release_folder_errors(tmp_path: Path):
    originals, rel = two_folders(tmp_path, {"a.png": grey(1), "a.bmp": grey(1)})
    with pytest.raises(DataError, match="two released files map to the same original name 'a'"):
        ExternalRelease(path=str(rel), on_mismatch="drop").anonymize(originals)
    with pytest.raises(DataError, match="does not exist or is not a folder"):
        ExternalRelease(path=str(tmp_path / "nowhere")).anonymize(originals)
    other = tmp_path / "other"
    write_image(other / "zzz.png", grey(1))
    with pytest.raises(MismatchError, match="no file matches any original name"):
        ExternalRelease(path=str(other), on_mismatch="drop").anonymize(originals)
    with pytest.raises(ConfigError, match=r"'path' .* is required"):
        ExternalRelease()
    with pytest.raises(ConfigError, match="on_mismatch must be 'raise' or 'drop', got 'skip'"):
        ExternalRelease(path=str(rel), on_mismatch="skip")


def test_external_release_with_a_resized_file_is_refused_by_name(tmp_path: Path):
    """Pairing is by name only; a released image of another size is refused, naming the pair and both
    sizes, where pixel alignment matters (fidelity metrics), and the audit records that as failed."""
    originals, rel = two_folders(tmp_path, {"a.png": grey(1), "b.png": grey(2, h=16, w=20), "sub/c.png": grey(3)})
    release = Release(originals, ExternalRelease(path=str(rel)).anonymize(originals))
    with pytest.raises(MismatchError, match=r"b\.png: original is 10x8 but the anonymized image is 20x16"):
        SSIM()(release)
    results = Audit(originals, [ExternalRelease(path=str(rel))], evaluators=[SSIM()], seed=0).run(show_progress=False)
    row = results.table[results.table["component"] == "ssim"].iloc[0]
    assert row["status"] == "failed" and "b.png: original is 10x8 but the anonymized image is 20x16" in row["message"]
