"""Plate and generic loaders: hand-written fixtures with known answers, errors, real shared data, registry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from anonaudit import datasets
from anonaudit.data.imageset import Box, ImageSet
from anonaudit.data.io import read_image, write_image
from anonaudit.errors import ConfigError, DataError
from anonaudit.registry import DATASETS

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _img(path: Path, w: int = 40, h: int = 30, value: int = 0) -> np.ndarray:
    arr = np.full((h, w, 3), value, np.uint8)
    arr[0, 0] = (255, 0, 0)
    write_image(path, arr)
    return arr


# -- labelled folder ------------------------------------------------------------------------------
@pytest.fixture
def labeled(tmp_path):
    for name, v in (("a.png", 10), ("b.png", 20), ("c.png", 30)):
        _img(tmp_path / "images" / name, value=v)
    (tmp_path / "labels.csv").write_text(
        "path,region,text,gender\nimages/a.png,ak,FHG521,male\nimages/b.png,al,,\nimages/c.png,ca,7ABC123,female\n"
    )
    return tmp_path


def test_labeled_folder_known_answer(labeled):
    s = datasets.load_labeled_folder(labeled)
    assert not s.in_memory and s.name == labeled.name
    assert s.keys == ["images/a.png", "images/b.png", "images/c.png"]
    assert s.texts == ["FHG521", None, "7ABC123"]
    assert s.attribute("region") == ["ak", "al", "ca"]
    assert s.attribute("gender") == ["male", None, "female"]
    assert s.identities == [None, None, None] and s.boxes == [(), (), ()]
    assert int(s[1][5, 5, 0]) == 20 and tuple(s[0][0, 0]) == (255, 0, 0)
    assert s.keys == ImageSet.from_folder(labeled).keys  # same keys as a plain folder of the root


def test_labeled_folder_box_and_identity_columns(tmp_path):
    _img(tmp_path / "x.png", w=40, h=30)
    (tmp_path / "l.csv").write_text("path,identity,x,y,w,h\nx.png,alice,5,6,10,12\n")
    s = datasets.load_labeled_folder(tmp_path, labels="l.csv")
    assert s.identities == ["alice"] and s.boxes == [(Box(5, 6, 10, 12),)]
    (tmp_path / "l.csv").write_text("path,identity,x,y,w,h\nx.png,alice,35,6,10,12\n")
    with pytest.raises(DataError, match=r"l\.csv:2: box x=35 .* not inside the 40x30 image"):
        datasets.load_labeled_folder(tmp_path, labels="l.csv")


@pytest.mark.parametrize(
    "content, message",
    [
        ("", r"labels\.csv: empty labels file"),
        ("file,text\na.png,X\n", r"labels\.csv:1: header .* no 'path' column"),
        ("path,text\nimages/a.png,X,extra\n", r"labels\.csv:2: 3 fields, the header has 2"),
        ("path,text\nimages/a.png,X\nimages/zz.png,Y\n", r"labels\.csv:3: image 'images/zz.png' not found"),
        ("path,text\nimages/a.png,X\nimages/a.png,Y\n", r"labels\.csv:3: image 'images/a.png' is listed twice"),
        ("path\n../outside.png\n", r"labels\.csv:2: .* must be relative .* stay inside it"),
        ("path\n/etc/passwd.png\n", r"labels\.csv:2: .* must be relative"),
        ("path\nimages/a.txt\n", r"labels\.csv:2: 'images/a.txt' is not an image file name"),
        ("path,x,y\nimages/a.png,1,2\n", r"labels\.csv:1: box columns need all of x,y,w,h"),
        ("path,x,y,w,h\nimages/a.png,1,2,three,4\n", r"labels\.csv:2: w must be a number"),
        ("path,text,text\nimages/a.png,X,Y\n", r"labels\.csv:1: header has duplicate"),
    ],
)
def test_labeled_folder_errors_name_file_and_line(labeled, content, message):
    (labeled / "labels.csv").write_text(content)
    with pytest.raises(DataError, match=message):
        datasets.load_labeled_folder(labeled)


def test_labeled_folder_missing_root_or_labels(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        datasets.load_labeled_folder(tmp_path / "nope")
    with pytest.raises(DataError, match=r"labels\.csv: labels file not found"):
        datasets.load_labeled_folder(tmp_path)


def test_labeled_folder_without_labels_loads_every_image(labeled):
    s = datasets.load_labeled_folder(labeled, labels=None)
    assert s.keys == ["images/a.png", "images/b.png", "images/c.png"] and s.texts == [None] * 3


def test_limit_first_or_seeded_choice(labeled):
    assert datasets.load_labeled_folder(labeled, limit=2, seed=None).keys == ["images/a.png", "images/b.png"]
    chosen = datasets.load_labeled_folder(labeled, limit=2, seed=5).keys
    assert len(chosen) == 2 and chosen == sorted(chosen)  # random choice, kept in file order
    assert datasets.load_labeled_folder(labeled, limit=2, seed=5).keys == chosen
    picks = {tuple(datasets.load_labeled_folder(labeled, limit=1, seed=s).keys) for s in range(20)}
    assert len(picks) == 3  # every image can be chosen
    assert len(datasets.load_labeled_folder(labeled, limit=10)) == 3
    with pytest.raises(DataError, match="limit must be a non-negative integer"):
        datasets.load_labeled_folder(labeled, limit=-1)
    with pytest.raises(DataError, match="has no images"):
        datasets.load_labeled_folder(labeled, limit=0)


# -- OpenALPR scenes ------------------------------------------------------------------------------
@pytest.fixture
def openalpr(tmp_path):
    _img(tmp_path / "eu1.jpg", w=100, h=80)
    _img(tmp_path / "eu2.jpg", w=100, h=80)
    _img(tmp_path / "orphan.jpg")
    (tmp_path / "eu1.txt").write_text("eu1.jpg\t10\t20\t30\t8\tWA56660\n")
    (tmp_path / "eu2.txt").write_text("eu2.jpg\t1\t2\t40\t10\tAB123\neu2.jpg\t50\t60\t40\t10\tCD456\n\n")
    return tmp_path


def test_openalpr_known_answer(openalpr):
    s = datasets.load_openalpr_scenes(openalpr)
    assert s.keys == ["eu1.jpg", "eu2.jpg"]
    assert s.boxes[0] == (Box(10, 20, 30, 8, "plate"),)
    assert s.boxes[1] == (Box(1, 2, 40, 10, "plate"), Box(50, 60, 40, 10, "plate"))
    assert s.texts == ["WA56660", None]
    assert s.attribute("plate_texts") == [["WA56660"], ["AB123", "CD456"]]
    assert s[0].shape == (80, 100, 3)


def test_openalpr_space_separated_lines(openalpr):
    (openalpr / "eu1.txt").write_text("eu1.jpg 10 20 30 8 WA56660\n")
    assert datasets.load_openalpr_scenes(openalpr).boxes[0] == (Box(10, 20, 30, 8, "plate"),)


@pytest.mark.parametrize(
    "line, message",
    [
        ("eu1.jpg\t10\t20\t30\tWA1", r"eu1\.txt:1: expected 6 TAB-separated fields"),
        ("eu1.jpg\t10\tx\t30\t8\tWA1", r"eu1\.txt:1: y must be a number"),
        ("eu1.jpg\t80\t20\t30\t8\tWA1", r"eu1\.txt:1: box x=80 y=20 w=30 h=8 is not inside the 100x80"),
        ("eu1.jpg\t10\t20\t0\t8\tWA1", r"eu1\.txt:1: box .* has no area"),
        ("missing.jpg\t10\t20\t30\t8\tWA1", r"eu1\.txt:1: image 'missing.jpg' not found"),
    ],
)
def test_openalpr_errors(openalpr, line, message):
    (openalpr / "eu1.txt").write_text(line + "\n")
    with pytest.raises(DataError, match=message):
        datasets.load_openalpr_scenes(openalpr)


def test_openalpr_folder_without_annotations(tmp_path):
    with pytest.raises(DataError, match="no OpenALPR annotation files"):
        datasets.load_openalpr_scenes(tmp_path)


# -- Pascal VOC -----------------------------------------------------------------------------------
VOC = """<annotation>
  <folder>images</folder><filename>{fname}</filename>
  <size><width>{w}</width><height>{h}</height><depth>3</depth></size>
  {objects}
</annotation>"""
OBJ = (
    "<object><name>{name}</name>"
    "<bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
)


def _voc(path: Path, fname: str, objects: list[tuple], w: int = 100, h: int = 60) -> None:
    objs = "".join(OBJ.format(name=n, x0=a, y0=b, x1=c, y1=d) for n, a, b, c, d in objects)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(VOC.format(fname=fname, w=w, h=h, objects=objs))


@pytest.fixture
def voc(tmp_path):
    _img(tmp_path / "images" / "Cars0.png", w=100, h=60)
    _img(tmp_path / "images" / "Cars1.png", w=100, h=60)
    _voc(tmp_path / "annotations" / "Cars0.xml", "Cars0.png", [("licence", 10, 20, 50, 35), ("car", 0, 0, 100, 60)])
    _voc(tmp_path / "annotations" / "Cars1.xml", "Cars1.png", [("KA01AB1234", 5.0, 6.0, 45.0, 16.0)])
    return tmp_path


def test_pascal_voc_known_answer(voc):
    s = datasets.load_pascal_voc(voc)
    assert s.keys == ["images/Cars0.png", "images/Cars1.png"]
    assert s.boxes[0] == (Box(10, 20, 40, 15, "licence"), Box(0, 0, 100, 60, "car"))
    assert s.boxes[1] == (Box(5, 6, 40, 10, "KA01AB1234"),)
    assert s.texts == [None, None] and s.attribute("annotation") == ["Cars0.xml", "Cars1.xml"]
    only = datasets.load_pascal_voc(voc, classes=["licence"])
    assert only.boxes[0] == (Box(10, 20, 40, 15, "licence"),) and only.boxes[1] == ()
    named = datasets.load_pascal_voc(voc, text_from_name=True)
    assert named.texts == [None, "KA01AB1234"]  # two objects in Cars0: no single text


def test_pascal_voc_image_next_to_xml_and_clipping(tmp_path):
    _img(tmp_path / "p.jpg", w=50, h=40)
    _voc(tmp_path / "p.xml", "p.jpg", [("plate", 40, 30, 70, 45)], w=50, h=40)
    s = datasets.load_pascal_voc(tmp_path)
    assert s.keys == ["p.jpg"] and s.boxes == [(Box(40, 30, 10, 10, "plate"),)]


def _one(x0, y0, x1, y1, fname="Cars0.png"):
    return VOC.format(fname=fname, w=100, h=60, objects=OBJ.format(name="p", x0=x0, y0=y0, x1=x1, y1=y1))


@pytest.mark.parametrize(
    "xml, message",
    [
        ("<annotation><filename>Cars0.png", r"Cars0\.xml: malformed XML"),
        ("<root/>", r"Cars0\.xml: root element is <root>"),
        (VOC.format(fname="Cars0.png", w=100, h=60, objects="<object><name>p</name></object>"), r"without <bndbox>"),
        (_one(30, 5, 10, 9), r"object 1: empty or inverted box"),
        (_one("a", 5, 10, 9), r"object 1: <xmin> must be a number"),
        (_one(200, 5, 210, 9), r"object 1: box .* lies outside the 100x60 image"),
        (_one(1, 2, 3, 4, fname="nothere.png"), r"Cars0\.xml: its image 'nothere.png' was not found"),
    ],
)
def test_pascal_voc_errors(voc, xml, message):
    (voc / "annotations" / "Cars0.xml").write_text(xml)
    if "nothere" in xml:
        (voc / "images" / "Cars0.png").unlink()  # the XML's own name must not rescue it either
    with pytest.raises(DataError, match=message):
        datasets.load_pascal_voc(voc)


def test_pascal_voc_duplicate_annotation(voc):
    _voc(voc / "annotations" / "copy.xml", "Cars0.png", [])
    with pytest.raises(DataError, match=r"copy\.xml: image 'images/Cars0.png' is already annotated by .*Cars0"):
        datasets.load_pascal_voc(voc)


# -- registry -------------------------------------------------------------------------------------
def test_datasets_registered_and_created_from_config(labeled):
    names = {"synthetic_plates", "labeled_folder", "openalpr_scenes", "pascal_voc", "lfw", "celeba"}
    assert names <= set(DATASETS.names())
    made = DATASETS.create("synthetic_plates", n=3, seed=4)
    direct = datasets.synthetic_plates(n=3, seed=4)
    assert made.texts == direct.texts and all(np.array_equal(a, b) for a, b in zip(made, direct))
    assert DATASETS.create("labeled_folder", root=str(labeled)).texts == ["FHG521", None, "7ABC123"]
    with pytest.raises(ConfigError, match="labeled_folder"):
        DATASETS.create("labeled_folder", root=str(labeled), colour="red")


# -- real shared data -----------------------------------------------------------------------------


@pytest.mark.shared_data
def test_real_plates_us():
    s = datasets.load_labeled_folder(SHARED / "plates_us")
    assert len(s) == 265 and s.has_labels("text") and s.has_labels("region")
    assert s.keys[0] == "images/ak721.png" and s.texts[0] == "FHG521" and s.attribute("region")[0] == "ak"
    assert read_image(SHARED / "plates_us" / s.keys[0]).shape == s[0].shape


@pytest.mark.shared_data
def test_real_scenes_eu_boxes_inside_images():
    s = datasets.load_openalpr_scenes(SHARED / "scenes_eu")
    assert len(s) == 53 and s.has_labels("text") and all(len(b) == 1 for b in s.boxes)
    first = s.records[s.index_of("eu10.jpg")]
    assert first.boxes == (Box(238, 314, 78, 18, "plate"),) and first.text == "WA56660"
    for i in range(0, 53, 13):  # decode a few to confirm the header-based size check
        (b,) = s.boxes[i]
        h, w = s[i].shape[:2]
        assert b.x + b.w <= w and b.y + b.h <= h
