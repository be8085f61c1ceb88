"""Bad input files: each is either converted correctly (checked pixel by pixel) or refused with an
error that names the file and the problem. Every file is really written to ``tmp_path``."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from anonaudit.anonymizers.external import ExternalRelease
from anonaudit.data.imageset import ImageSet, Release
from anonaudit.data.io import MAX_PIXELS, read_image
from anonaudit.data.loaders import load_labeled_folder
from anonaudit.errors import DataError, ImageReadError, MismatchError
from anonaudit.evaluators.fidelity import SSIM


def save(path: Path, img: Image.Image, fmt: str | None = None, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format=fmt, **kw)
    return path


def gradient(h: int = 24, w: int = 32) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 7 % 256, y * 9 % 256, (x + y) * 3 % 256], axis=2).astype(np.uint8)


def refused(path: Path, *words: str) -> ImageReadError:
    """Reading ``path`` raises ImageReadError naming the file and containing ``words``."""
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    err = info.value
    assert err.path == str(path) and str(path) in str(err)
    for word in words:
        assert word in err.problem, err.problem
    return err


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width x height`` RGB pixels (a decompression-bomb shape)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + png_chunk(b"IEND", b"")
    )


def gif_claiming(width: int, height: int) -> bytes:
    """A tiny GIF whose logical screen and only frame claim ``width x height`` pixels."""
    header = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    frame = b"," + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00"
    return header + frame + b";"


# -- corrupt, truncated, empty, not an image ----------------------------------------------------------
def test_truncated_jpeg_names_the_file(tmp_path):
    good = save(tmp_path / "ok.jpg", Image.fromarray(gradient(64, 64)), quality=90)
    data = good.read_bytes()
    bad = tmp_path / "cut.jpg"
    bad.write_bytes(data[: len(data) // 2])
    refused(bad, "truncated")
    assert read_image(good).shape == (64, 64, 3)  # the intact file reads


def test_truncated_png_names_the_file(tmp_path):
    rng = np.random.default_rng(0)  # noise does not compress, so half the file is half the pixels
    data = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(data, "PNG")
    bad = tmp_path / "cut.png"
    bad.write_bytes(data.getvalue()[: len(data.getvalue()) // 2])
    refused(bad, "truncated")


def test_png_with_corrupted_pixel_data_is_refused(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(gradient(32, 32)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    start = data.index(b"IDAT") + 4
    data[start + 2 : start + 40] = bytes(range(38))  # scrambled deflate stream, CRC now wrong too
    bad = tmp_path / "scrambled.png"
    bad.write_bytes(bytes(data))
    refused(bad, "corrupt")


def test_zero_byte_file(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    refused(empty, "empty", "0 bytes")


def test_text_with_image_extension(tmp_path):
    fake = tmp_path / "notes.jpg"
    fake.write_text("these are meeting notes, not a photo\n" * 20)
    refused(fake, "not a readable image")


def test_wrong_extension_but_valid_content_is_read_by_content(tmp_path):
    img = gradient()
    path = save(tmp_path / "really_a_png.jpg", Image.fromarray(img), fmt="PNG")
    np.testing.assert_array_equal(read_image(path), img)  # lossless: format sniffed, not guessed


def test_missing_file_and_directory(tmp_path):
    refused(tmp_path / "absent.png", "does not exist")
    (tmp_path / "folder.png").mkdir()
    refused(tmp_path / "folder.png", "directory")


# -- modes converted to RGB uint8 -------------------------------------------------------------------------
def test_grayscale_is_replicated_to_three_channels(tmp_path):
    grey = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5
    out = read_image(save(tmp_path / "grey.png", Image.fromarray(grey, "L")))
    assert out.shape == (6, 8, 3) and out.dtype == np.uint8
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], grey)


def test_one_bit_image_is_black_and_white(tmp_path):
    bits = Image.new("1", (5, 3), 0)
    bits.putpixel((2, 1), 1)
    out = read_image(save(tmp_path / "bits.png", bits))
    assert out[1, 2].tolist() == [255, 255, 255] and out[0, 0].tolist() == [0, 0, 0]


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[0, 0] = (200, 100, 0, 255)  # opaque: unchanged
    rgba[0, 1] = (200, 100, 0, 0)  # transparent: white
    rgba[0, 2] = (200, 100, 0, 128)  # half: 200*a + 255*(1-a)
    out = read_image(save(tmp_path / "alpha.png", Image.fromarray(rgba, "RGBA")))
    a = 128 / 255
    assert out[0, 0].tolist() == [200, 100, 0]
    assert out[0, 1].tolist() == [255, 255, 255]
    expected = [200 * a + 255 * (1 - a), 100 * a + 255 * (1 - a), 255 * (1 - a)]
    np.testing.assert_allclose(out[0, 2], expected, atol=1)


def test_cmyk_tiff_and_jpeg_are_converted(tmp_path):
    cmyk = Image.new("CMYK", (16, 16), (255, 0, 0, 0))  # pure cyan
    for x in range(8, 16):
        for y in range(16):
            cmyk.putpixel((x, y), (0, 255, 0, 0))  # pure magenta
    tiff = read_image(save(tmp_path / "cmyk.tif", cmyk))
    assert tiff[0, 0].tolist() == [0, 255, 255] and tiff[0, 15].tolist() == [255, 0, 255]
    black = read_image(save(tmp_path / "k.tif", Image.new("CMYK", (2, 2), (0, 0, 0, 255))))
    assert black.max() == 0
    jpeg = read_image(save(tmp_path / "cmyk.jpg", cmyk, quality=95))  # Adobe inverted CMYK in JPEG
    np.testing.assert_allclose(jpeg[4, 2], [0, 255, 255], atol=12)
    np.testing.assert_allclose(jpeg[4, 13], [255, 0, 255], atol=12)


def test_sixteen_bit_grey_png_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257 * 100, 65535, 200]], dtype=np.uint16)  # 200/65535 is nearly black
    img = Image.fromarray(values)
    assert img.mode.startswith("I;16")
    out = read_image(save(tmp_path / "grey16.png", img))
    assert out[0, :, 0].tolist() == [0, 100, 255, 1]


def test_sixteen_bit_rgb_png(tmp_path):
    bgr = np.zeros((2, 3, 3), np.uint16)
    bgr[0, 0] = (0, 0, 65535)  # red in OpenCV's BGR order
    bgr[0, 1] = (257 * 10, 257 * 20, 257 * 30)
    path = tmp_path / "rgb16.png"
    assert cv2.imwrite(str(path), bgr)
    assert path.read_bytes()[24] == 16  # IHDR bit depth: a real 16-bit-per-channel PNG
    out = read_image(path)
    assert out[0, 0].tolist() == [255, 0, 0]
    np.testing.assert_allclose(out[0, 1], [30, 20, 10], atol=1)


def test_palette_image_with_and_without_transparency(tmp_path):
    pal = Image.new("P", (4, 2))
    pal.putpalette([10, 20, 30, 200, 150, 100] + [0] * 762)
    pal.putpixel((1, 0), 1)
    out = read_image(save(tmp_path / "pal.png", pal))
    assert out[0, 0].tolist() == [10, 20, 30] and out[0, 1].tolist() == [200, 150, 100]
    pal.info["transparency"] = 1
    out = read_image(save(tmp_path / "pal_t.png", pal, transparency=1))
    assert out[0, 1].tolist() == [255, 255, 255] and out[0, 0].tolist() == [10, 20, 30]


@pytest.mark.parametrize("orientation, shape, corner", [
    (1, (40, 60), (0, 0)),  # as stored
    (3, (40, 60), (39, 59)),  # rotated 180: top-left marker ends bottom-right
    (6, (60, 40), (0, 39)),  # rotate 90 clockwise to display: top-left -> top-right
    (8, (60, 40), (59, 0)),  # rotate 90 counter-clockwise: top-left -> bottom-left
])
def test_exif_orientation_is_applied(tmp_path, orientation, shape, corner):
    stored = np.full((40, 60, 3), 255, np.uint8)
    stored[:8, :8] = (255, 0, 0)  # red marker at the stored top-left
    img = Image.fromarray(stored)
    exif = img.getexif()
    exif[0x0112] = orientation
    out = read_image(save(tmp_path / f"o{orientation}.jpg", img, exif=exif.tobytes(), quality=95))
    assert out.shape[:2] == shape
    r, c = corner
    assert out[r, c, 0] > 200 and out[r, c, 1] < 60, out[r, c]  # red at the expected corner
    r2, c2 = shape[0] - 1 - r, shape[1] - 1 - c
    assert out[r2, c2].min() > 200  # and the opposite corner is white


def test_one_pixel_image(tmp_path):
    out = read_image(save(tmp_path / "dot.png", Image.new("RGB", (1, 1), (7, 8, 9))))
    assert out.shape == (1, 1, 3) and out[0, 0].tolist() == [7, 8, 9]


# -- decompression bombs and multi-frame files ------------------------------------------------------------
@pytest.mark.parametrize("maker, name", [(png_claiming, "bomb.png"), (gif_claiming, "bomb.gif")])
def test_header_claiming_20000x20000_is_refused_before_decoding(tmp_path, maker, name):
    path = tmp_path / name
    path.write_bytes(maker(20000, 20000))
    assert path.stat().st_size < 200  # a few bytes claiming 400 megapixels
    err = refused(path, "20000x20000", "over the limit", "ANONAUDIT_MAX_PIXELS")
    assert f"{MAX_PIXELS:,}" in err.problem


def test_pixel_limit_from_environment(tmp_path, monkeypatch):
    path = save(tmp_path / "big.png", Image.fromarray(gradient(100, 100)))
    assert read_image(path).shape == (100, 100, 3)
    monkeypatch.setenv("ANONAUDIT_MAX_PIXELS", "9999")
    refused(path, "100x100", "9,999")
    monkeypatch.setenv("ANONAUDIT_MAX_PIXELS", "10000")
    assert read_image(path).shape == (100, 100, 3)  # exactly at the limit is fine
    assert read_image(path, max_pixels=10_000).shape == (100, 100, 3)
    with pytest.raises(ImageReadError, match="over the limit of 9,999"):
        read_image(path, max_pixels=9999)


def test_our_limit_governs_not_pillows_global_one(tmp_path, monkeypatch):
    """Pillow's own limit (89 MP by default) must not refuse what ANONAUDIT_MAX_PIXELS allows."""
    import PIL.Image

    monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", 1000)  # stands in for Pillow's smaller default
    path = save(tmp_path / "img.png", Image.fromarray(gradient(100, 100)))
    assert read_image(path).shape == (100, 100, 3)  # 10,000 pixels > Pillow's 1,000, < ours
    assert PIL.Image.MAX_IMAGE_PIXELS == 1000  # and Pillow's setting is left as it was


def test_animated_gif_is_refused_with_frame_count(tmp_path):
    frames = [Image.new("RGB", (10, 10), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    refused(path, "3 frames")


def test_multipage_tiff_is_refused_with_page_count(tmp_path):
    pages = [Image.fromarray(gradient()), Image.fromarray(255 - gradient())]
    path = tmp_path / "scan.tiff"
    pages[0].save(path, save_all=True, append_images=pages[1:])
    refused(path, "2 frames")


def test_tiff_whose_second_page_has_no_size_is_refused_not_crashing(tmp_path):
    """Pillow raises TypeError (not OSError) while counting such pages; the reader names the file."""
    buf = io.BytesIO()
    Image.fromarray(gradient(4, 4)).save(buf, "TIFF")
    data = bytearray(buf.getvalue())
    first = struct.unpack("<I", data[4:8])[0]
    next_ifd = first + 2 + 12 * struct.unpack("<H", data[first : first + 2])[0]
    data[next_ifd : next_ifd + 4] = struct.pack("<I", len(data))  # link a second page ...
    data += struct.pack("<HHHII", 1, 259, 3, 1, 1) + struct.pack("<I", 0)  # ... with no width or height
    path = tmp_path / "two_pages.tif"
    path.write_bytes(bytes(data))
    refused(path, "corrupt image data", "TypeError")


def test_single_frame_gif_reads(tmp_path):
    img = Image.new("P", (6, 4), 0)
    img.putpalette([0, 128, 255] + [0] * 765)
    assert read_image(save(tmp_path / "still.gif", img))[2, 3].tolist() == [0, 128, 255]


# -- paths, duplicates ----------------------------------------------------------------------------------
def test_unicode_and_spaces_in_paths(tmp_path):
    folder = tmp_path / "données été" / "plaques à vérifier"
    good = save(folder / "plaque 1 ✓.png", Image.fromarray(gradient()))
    bad = folder / "sous dossier" / "plaque 2 ✗.jpg"
    bad.parent.mkdir()
    bad.write_bytes(b"\xff\xd8\xff garbage")
    images = ImageSet.from_folder(tmp_path / "données été")
    assert images.keys == ["plaques à vérifier/plaque 1 ✓.png", "plaques à vérifier/sous dossier/plaque 2 ✗.jpg"]
    np.testing.assert_array_equal(images[0], gradient())
    with pytest.raises(ImageReadError) as info:
        images[1]
    assert str(bad) in str(info.value)
    assert read_image(good).shape == (24, 32, 3)


def test_duplicate_keys_are_refused():
    img = gradient()
    with pytest.raises(DataError, match=r"duplicate image keys.*'a\.png'"):
        ImageSet.from_arrays([img, img, img], keys=["a.png", "b.png", "a.png"])


def test_labels_csv_listing_an_image_twice(tmp_path):
    save(tmp_path / "x.png", Image.fromarray(gradient()))
    (tmp_path / "labels.csv").write_text("path,text\nx.png,AB12\nx.png,CD34\n")
    with pytest.raises(DataError, match=r"labels\.csv:3: image 'x\.png' is listed twice \(first on line 2\)"):
        load_labeled_folder(tmp_path)


# -- originals vs release: counts, names, sizes --------------------------------------------------------------
def three(name: str = "orig") -> ImageSet:
    return ImageSet.from_arrays([gradient() + i for i in range(3)], keys=["a", "b", "c"], name=name)


def test_release_pairs_by_key_not_order():
    orig = three()
    anon = ImageSet.from_arrays([orig[2], orig[0], orig[1]], keys=["c", "a", "b"])
    rel = Release(orig, anon)
    for i in range(3):
        o, a = rel.pair(i)
        np.testing.assert_array_equal(o, a)


def test_release_count_and_name_mismatch():
    orig = three()
    fewer = ImageSet.from_arrays([orig[0], orig[1]], keys=["a", "b"])
    with pytest.raises(MismatchError, match=r"1 original\(s\) have no anonymized version \['c'\]"):
        Release(orig, fewer)
    renamed = ImageSet.from_arrays([orig[0], orig[1], orig[2]], keys=["a", "b", "z"])
    with pytest.raises(MismatchError, match=r"\['c'\].*1 anonymized file\(s\) have no original \['z'\]"):
        Release(orig, renamed)
    dropped = Release(orig, renamed, on_mismatch="drop")
    assert dropped.keys == ["a", "b"] and dropped.unpaired == {"missing": ["c"], "extra": ["z"]}
    with pytest.raises(MismatchError, match="share no keys"):
        Release(orig, ImageSet.from_arrays([orig[0]], keys=["q"]), on_mismatch="drop")


def test_size_mismatch_is_named_by_the_fidelity_metric():
    orig = three()
    anon = ImageSet.from_arrays([orig[0], orig[1][:20, :30], orig[2]], keys=["a", "b", "c"])
    with pytest.raises(MismatchError, match=r"b: original is 32x24 but the anonymized image is 30x20"):
        SSIM()(Release(orig, anon))


def write_folder(folder: Path, images: dict[str, np.ndarray], suffix: str) -> None:
    for key, img in images.items():
        save(folder / f"{key}{suffix}", Image.fromarray(img))


def test_external_release_counts_names_and_extensions(tmp_path):
    originals = {"a": gradient(), "b": gradient() // 2, "sub/c": 255 - gradient()}
    write_folder(tmp_path / "orig", originals, ".png")
    orig = ImageSet.from_folder(tmp_path / "orig")
    released = {"a": originals["a"], "sub/c": originals["sub/c"], "stray": gradient()}
    write_folder(tmp_path / "rel", released, ".bmp")  # other extension: paired by name without it
    with pytest.raises(MismatchError) as info:
        ExternalRelease(path=str(tmp_path / "rel")).anonymize(orig)
    assert "['b.png']" in str(info.value) and "['stray.bmp']" in str(info.value)
    target = ExternalRelease(path=str(tmp_path / "rel"), on_mismatch="drop")
    out = target.anonymize(orig)
    assert out.keys == ["a.png", "sub/c.png"]
    assert target.unpaired_ == {"missing": ["b.png"], "extra": ["stray.bmp"]}
    np.testing.assert_array_equal(out[1], originals["sub/c"])
    rel = Release(orig, out, on_mismatch="drop")
    assert rel.unpaired["missing"] == ["b.png"] and len(rel) == 2


def test_external_release_with_two_files_for_one_original(tmp_path):
    write_folder(tmp_path / "orig", {"a": gradient()}, ".png")
    write_folder(tmp_path / "rel", {"a": gradient()}, ".png")
    write_folder(tmp_path / "rel", {"a": gradient()}, ".jpg")
    with pytest.raises(DataError, match="two released files map to the same original name 'a'"):
        ExternalRelease(path=str(tmp_path / "rel")).anonymize(ImageSet.from_folder(tmp_path / "orig"))


def test_audit_of_an_external_release_with_a_missing_and_a_resized_file(tmp_path):
    from anonaudit.audit import Audit
    from anonaudit.evaluators.fidelity import PSNR

    originals = {f"car{i}": gradient() + i for i in range(4)}
    write_folder(tmp_path / "orig", originals, ".png")
    released = {k: v for k, v in originals.items() if k != "car3"}
    released["car1"] = released["car1"][:20]  # cropped: 32x20 instead of 32x24
    write_folder(tmp_path / "rel", released, ".png")
    audit = Audit(
        ImageSet.from_folder(tmp_path / "orig"),
        [ExternalRelease(path=str(tmp_path / "rel"), on_mismatch="drop")],
        evaluators=[PSNR()],
    )
    t = audit.run(tmp_path / "out", show_progress=False).table.set_index("metric")
    assert t.loc["pairs", "value"] == 3
    assert t.loc["unpaired_originals", "value"] == 1 and t.loc["unpaired_originals", "message"] == "car3.png"
    psnr = t[t["component"] == "psnr"].iloc[0]
    assert psnr["status"] == "failed"
    assert "car1.png: original is 32x24 but the anonymized image is 32x20" in psnr["message"]
