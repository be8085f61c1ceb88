"""Face loaders: LFW folders and pairs files, CelebA / CelebA-HQ layouts, identity-disjoint splits."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from shared_data import shared_path

from anonaudit import datasets
from anonaudit.data.io import write_image
from anonaudit.errors import DataError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _img(path: Path, value: int = 0) -> None:
    write_image(path, np.full((16, 16, 3), value, np.uint8))


# -- LFW ------------------------------------------------------------------------------------------
@pytest.fixture
def lfw(tmp_path):
    for person, n in (("Ann_Lee", 3), ("Bo_Chen", 2), ("Cy_Dorn", 1)):
        for k in range(1, n + 1):
            _img(tmp_path / "images" / person / f"{person}_{k:04d}.jpg", value=10 * k)
    (tmp_path / "labels.csv").write_text(
        "path,identity,gender\n"
        "images/Ann_Lee/Ann_Lee_0001.jpg,Ann_Lee,female\n"
        "images/Ann_Lee/Ann_Lee_0002.jpg,Ann_Lee,F\n"
        "images/Ann_Lee/Ann_Lee_0003.jpg,Ann_Lee,female\n"
        "images/Bo_Chen/Bo_Chen_0001.jpg,Bo_Chen,male\n"
        "images/Bo_Chen/Bo_Chen_0002.jpg,,M\n"
        "images/Cy_Dorn/Cy_Dorn_0001.jpg,Cy_Dorn,\n"
    )
    return tmp_path


def test_lfw_with_labels_known_answer(lfw):
    s = datasets.load_lfw(lfw)
    assert s.keys[0] == "images/Ann_Lee/Ann_Lee_0001.jpg" and len(s) == 6
    assert s.identities == ["Ann_Lee"] * 3 + ["Bo_Chen"] * 2 + ["Cy_Dorn"]  # empty identity: folder name
    assert s.attribute("gender") == ["female"] * 3 + ["male"] * 2 + [None]


def test_lfw_without_labels_uses_folder_names(lfw):
    (lfw / "labels.csv").unlink()
    s = datasets.load_lfw(lfw)
    assert Counter(s.identities) == {"Ann_Lee": 3, "Bo_Chen": 2, "Cy_Dorn": 1}
    assert s.attribute("gender") == [None] * 6
    with pytest.raises(DataError, match=r"other\.csv: labels file not found"):
        datasets.load_lfw(lfw, labels="other.csv")


def test_lfw_disjoint_from_leaves_out_every_person_of_the_other_selection(lfw):
    # The first 4 photos in file order are Ann's 3 and Bo's first: both people go, all their photos.
    s = datasets.load_lfw(lfw, disjoint_from={"limit": 4, "seed": None})
    assert s.keys == ["images/Cy_Dorn/Cy_Dorn_0001.jpg"]
    # A seeded other selection is the one that seed gives, and limit/seed then choose among the rest.
    other = datasets.load_lfw(lfw, limit=1, seed=3)
    rest = datasets.load_lfw(lfw, limit=2, seed=0, disjoint_from={"limit": 1, "seed": 3})
    assert len(rest) == 2 and not set(rest.identities) & set(other.identities)
    with pytest.raises(DataError, match=r"covers every person"):
        datasets.load_lfw(lfw, disjoint_from={"limit": 6, "seed": None})
    with pytest.raises(DataError, match=r"disjoint_from must be a selection"):
        datasets.load_lfw(lfw, disjoint_from={"limit": 2, "people": 1})


def test_lfw_bad_gender_names_file_and_image(lfw):
    text = (lfw / "labels.csv").read_text().replace(",F\n", ",unknownish\n")
    (lfw / "labels.csv").write_text(text)
    with pytest.raises(DataError, match=r"labels\.csv: image images/Ann_Lee/Ann_Lee_0002\.jpg: gender must be"):
        datasets.load_lfw(lfw)


def test_lfw_pairs_known_answer(lfw, tmp_path):
    s = datasets.load_lfw(lfw)
    pairs_file = tmp_path / "pairs.txt"
    pairs_file.write_text("2\nAnn_Lee\t1\t2\nBo_Chen 1 2\nAnn_Lee\t3\tBo_Chen\t1\nBo_Chen\t2\tCy_Dorn\t1\n")
    pairs = datasets.load_lfw_pairs(pairs_file, s)
    assert pairs == [
        ("images/Ann_Lee/Ann_Lee_0001.jpg", "images/Ann_Lee/Ann_Lee_0002.jpg", True),
        ("images/Bo_Chen/Bo_Chen_0001.jpg", "images/Bo_Chen/Bo_Chen_0002.jpg", True),
        ("images/Ann_Lee/Ann_Lee_0003.jpg", "images/Bo_Chen/Bo_Chen_0001.jpg", False),
        ("images/Bo_Chen/Bo_Chen_0002.jpg", "images/Cy_Dorn/Cy_Dorn_0001.jpg", False),
    ]
    # 10-fold style header "FOLDS N": 2 folds of 1 matched + 1 mismatched
    pairs_file.write_text("2 1\nAnn_Lee 1 2\nAnn_Lee 3 Bo_Chen 1\nBo_Chen 1 2\nBo_Chen 2 Cy_Dorn 1\n")
    assert [p[2] for p in datasets.load_lfw_pairs(pairs_file, s)] == [True, False, True, False]


@pytest.mark.parametrize(
    "content, message",
    [
        ("", r"pairs\.txt: empty pairs file"),
        ("ten\nAnn_Lee 1 2\n", r"pairs\.txt:1: header must be"),
        ("1\nAnn_Lee 1\nAnn_Lee 1 Bo_Chen 1\n", r"pairs\.txt:2: expected 'name n1 n2'"),
        ("1\nAnn_Lee 1 two\nAnn_Lee 1 Bo_Chen 1\n", r"pairs\.txt:2: image numbers must be integers"),
        ("2\nAnn_Lee 1 2\nAnn_Lee 1 Bo_Chen 1\n", r"header promises 1 x 2 matched .* found 1 matched and 1 mismatched"),
        ("1\nAnn_Lee 1 9\nAnn_Lee 1 Bo_Chen 1\n", r"pairs\.txt:2: image\(s\) \['Ann_Lee_0009'\] not in image set"),
    ],
)
def test_lfw_pairs_errors(lfw, tmp_path, content, message):
    (tmp_path / "pairs.txt").write_text(content)
    with pytest.raises(DataError, match=message):
        datasets.load_lfw_pairs(tmp_path / "pairs.txt", datasets.load_lfw(lfw))


def test_lfw_pairs_drop_missing(lfw, tmp_path):
    (tmp_path / "pairs.txt").write_text("1\nAnn_Lee 1 9\nAnn_Lee 1 Bo_Chen 1\n")
    pairs = datasets.load_lfw_pairs(tmp_path / "pairs.txt", datasets.load_lfw(lfw), on_missing="drop")
    assert pairs == [("images/Ann_Lee/Ann_Lee_0001.jpg", "images/Bo_Chen/Bo_Chen_0001.jpg", False)]


# -- CelebA ---------------------------------------------------------------------------------------
ATTRS = "3\nMale Smiling\n000001.jpg -1  1\n000002.jpg  1 -1\n000003.jpg  1  1\n"


@pytest.fixture
def celeba(tmp_path):
    for k in (1, 2, 3):
        _img(tmp_path / "img_align_celeba" / f"{k:06d}.jpg", value=k)
    (tmp_path / "list_attr_celeba.txt").write_text(ATTRS)
    (tmp_path / "identity_CelebA.txt").write_text("000001.jpg 2880\n000002.jpg 2937\n000003.jpg 2880\n")
    (tmp_path / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg 1\n000003.jpg 2\n")
    return tmp_path


def test_celeba_known_answer(celeba):
    s = datasets.load_celeba(celeba)
    assert s.keys == ["img_align_celeba/000001.jpg", "img_align_celeba/000002.jpg", "img_align_celeba/000003.jpg"]
    assert s.identities == ["2880", "2937", "2880"]
    assert s.attribute("gender") == ["female", "male", "male"]
    assert s.attribute("Smiling") == [True, False, True] and s.attribute("Male") == [False, True, True]
    assert s.attribute("partition") == ["train", "val", "test"]
    first, second = s.split(0.5, seed=0, by="identity")
    assert not set(first.identities) & set(second.identities)


def test_celeba_partial_download_and_kaggle_nesting(celeba):
    (celeba / "img_align_celeba" / "000002.jpg").unlink()  # label rows without images are fine
    nested = celeba / "img_align_celeba" / "img_align_celeba"
    nested.mkdir()
    for p in sorted((celeba / "img_align_celeba").glob("*.jpg")):
        p.rename(nested / p.name)
    s = datasets.load_celeba(celeba)
    assert s.keys == ["img_align_celeba/img_align_celeba/000001.jpg", "img_align_celeba/img_align_celeba/000003.jpg"]
    assert s.identities == ["2880", "2880"]


def test_celeba_images_only(tmp_path):
    _img(tmp_path / "images" / "x.jpg")
    s = datasets.load_celeba(tmp_path)
    assert s.keys == ["images/x.jpg"] and s.identities == [None] and s.records[0].attributes == {}


A = "list_attr_celeba.txt"
_BAD_ROW = ATTRS.replace("000002.jpg  1 -1", "000002.jpg  1 2")
_SHORT_ROW = ATTRS.replace("000002.jpg  1 -1", "000002.jpg  1")


@pytest.mark.parametrize(
    "name, content, message",
    [
        (A, _BAD_ROW, r"list_attr_celeba\.txt:4: attribute values must be"),
        (A, _SHORT_ROW, r"list_attr_celeba\.txt:4: 1 values for 2 attributes"),
        (A, ATTRS.replace("3\n", "4\n", 1), r"list_attr_celeba\.txt: first line says 4 images, the file lists 3"),
        (A, "Male Smiling\n", r"list_attr_celeba\.txt:1: expected the number of images"),
        ("identity_CelebA.txt", "000001.jpg 2880\n000002.jpg 2937\n", r"identity_CelebA\.txt: no row for image 000003"),
        ("identity_CelebA.txt", "000001.jpg 2880 x\n", r"identity_CelebA\.txt:1: expected '<image file> <identity>'"),
        ("list_eval_partition.txt", "000001.jpg 0\n000002.jpg 1\n000003.jpg 7\n", r"partition of 000003\.jpg must be"),
    ],
)
def test_celeba_errors(celeba, name, content, message):
    (celeba / name).write_text(content)
    with pytest.raises(DataError, match=message):
        datasets.load_celeba(celeba)


def test_celeba_missing_image_folder(tmp_path):
    with pytest.raises(DataError, match="no CelebA image folder"):
        datasets.load_celeba(tmp_path)


def test_celeba_hq_layout_maps_identities_through_original_names(tmp_path):
    for k in (0, 1, 10, 2):
        _img(tmp_path / "CelebA-HQ-img" / f"{k}.jpg")
    (tmp_path / "CelebAMask-HQ-attribute-anno.txt").write_text(
        "4\nMale Smiling\n0.jpg 1 1\n1.jpg -1 1\n2.jpg 1 -1\n10.jpg -1 -1\n"
    )
    (tmp_path / "CelebA-HQ-to-CelebA-mapping.txt").write_text(
        "idx orig_idx orig_file\n0 119613 119614.jpg\n1 99094 099095.jpg\n2 200121 200122.jpg\n10 81058 081059.jpg\n"
    )
    (tmp_path / "identity_CelebA.txt").write_text("119614.jpg 7\n099095.jpg 8\n200122.jpg 7\n081059.jpg 9\n")
    s = datasets.load_celeba(tmp_path)
    assert s.keys == ["CelebA-HQ-img/0.jpg", "CelebA-HQ-img/1.jpg", "CelebA-HQ-img/2.jpg", "CelebA-HQ-img/10.jpg"]
    assert s.identities == ["7", "8", "7", "9"]
    assert s.attribute("gender") == ["male", "female", "male", "female"]


def test_face_datasets_from_registry(lfw, celeba):
    from anonaudit.registry import DATASETS

    assert DATASETS.create("lfw", root=str(lfw), limit=2, seed=None).keys == [
        "images/Ann_Lee/Ann_Lee_0001.jpg",
        "images/Ann_Lee/Ann_Lee_0002.jpg",
    ]
    assert len(DATASETS.create("celeba", root=str(celeba))) == 3


# -- real shared LFW ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real_lfw():
    shared_path("lfw")
    return datasets.load_lfw(SHARED / "lfw")


@pytest.mark.shared_data
def test_real_lfw_counts(real_lfw):
    assert len(real_lfw) == 3827 and len(set(real_lfw.identities)) == 1584
    per_person = Counter(real_lfw.identities)
    assert sum(1 for c in per_person.values() if c >= 2) == 1184 and max(per_person.values()) == 4
    assert set(real_lfw.attribute("gender")) <= {"male", "female", None}
    assert real_lfw[0].shape == (250, 250, 3)


@pytest.mark.shared_data
def test_real_lfw_identity_disjoint_split(real_lfw):
    aux, evaluation = real_lfw.split(0.5, seed=0, by="identity")
    assert len(aux) + len(evaluation) == len(real_lfw)
    assert not set(aux.identities) & set(evaluation.identities)
    assert 0.4 < len(set(aux.identities)) / 1584 < 0.6
    again, _ = real_lfw.split(0.5, seed=0, by="identity")
    assert again.keys == aux.keys


@pytest.mark.shared_data
def test_real_lfw_pairs_match_files_on_disk(real_lfw):
    pairs_file = SHARED / "lfw" / "pairsDevTrain.txt"
    pairs = datasets.load_lfw_pairs(pairs_file, real_lfw, on_missing="drop")
    # Independent count: pairs whose two image files exist in the LFW layout.
    expected = []
    for line in pairs_file.read_text().splitlines()[1:]:
        f = line.split()
        a, na, b, nb = (f[0], f[1], f[0], f[2]) if len(f) == 3 else f
        pa, pb = (f"images/{p}/{p}_{int(n):04d}.jpg" for p, n in ((a, na), (b, nb)))
        if (SHARED / "lfw" / pa).is_file() and (SHARED / "lfw" / pb).is_file():
            expected.append((pa, pb, len(f) == 3))
    assert pairs == expected and len(pairs) > 500
    identity = {r.key: r.identity for r in real_lfw.records}
    assert all((identity[a] == identity[b]) == same for a, b, same in pairs)
    with pytest.raises(DataError, match=r"pairsDevTrain\.txt:\d+: image\(s\) .* not in image set 'lfw'"):
        datasets.load_lfw_pairs(pairs_file, real_lfw)
