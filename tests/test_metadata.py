"""Metadata leak attack on real files: JPEGs carrying EXIF (GPS, device, serial), an EXIF thumbnail
of the original, XMP, IPTC, comments and ICC profiles, versus clean files."""

from __future__ import annotations

import io
import math
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageCms
from PIL.PngImagePlugin import PngInfo

from anonaudit.attacks.metadata import MetadataLeak, exif_thumbnail, scan_file
from anonaudit.data.imageset import ImageSet, Record, Release
from anonaudit.data.io import write_image
from anonaudit.registry import ATTACKS
from anonaudit.stats import wilson_interval


def jpeg_bytes(image: np.ndarray, quality: int = 92) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def thumbnail_of(image: np.ndarray, size=(40, 30)) -> bytes:
    return jpeg_bytes(np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BOX)))


def exif_with_thumbnail(exif: Image.Exif, thumb: bytes) -> bytes:
    """``exif`` (written by Pillow) plus IFD1 pointing at a JPEG thumbnail, as cameras store it."""
    raw = exif.tobytes()
    assert raw.startswith(b"Exif\x00\x00")
    tiff = bytearray(raw[6:])
    e = {b"II": "<", b"MM": ">"}[bytes(tiff[:2])]
    ifd0 = struct.unpack_from(e + "I", tiff, 4)[0]
    next_ptr = ifd0 + 2 + 12 * struct.unpack_from(e + "H", tiff, ifd0)[0]
    assert struct.unpack_from(e + "I", tiff, next_ptr)[0] == 0
    if len(tiff) % 2:
        tiff += b"\x00"
    ifd1 = len(tiff)
    struct.pack_into(e + "I", tiff, next_ptr, ifd1)
    data = ifd1 + 2 + 2 * 12 + 4
    tiff += struct.pack(e + "H", 2)
    tiff += struct.pack(e + "HHII", 0x0201, 4, 1, data) + struct.pack(e + "HHII", 0x0202, 4, 1, len(thumb))
    tiff += struct.pack(e + "I", 0) + thumb
    return b"Exif\x00\x00" + bytes(tiff)


def camera_exif(gps: bool = True) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif[0x0110] = "EOS 5D"
    exif[0x0131] = "Firmware 1.1"
    exif[0x0132] = "2024:05:01 10:00:00"
    exif.get_ifd(ExifTags.IFD.Exif)[0xA431] = "SN-0042"
    if gps:
        g = exif.get_ifd(ExifTags.IFD.GPSInfo)
        g[1], g[2], g[3], g[4] = "N", (48.0, 51.0, 29.0), "W", (2.0, 17.0, 40.0)
    return exif


def with_iptc_city(jpeg: bytes, city: bytes) -> bytes:
    """Insert a Photoshop APP13 segment with an IPTC City (2:90) record after the SOI marker."""
    iptc = b"\x1c\x02\x5a" + struct.pack(">H", len(city)) + city
    resource = b"8BIM" + struct.pack(">H", 0x0404) + b"\x00\x00" + struct.pack(">I", len(iptc)) + iptc
    if len(iptc) % 2:
        resource += b"\x00"
    payload = b"Photoshop 3.0\x00" + resource
    return jpeg[:2] + b"\xff\xed" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


@pytest.fixture()
def pair():
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:120, 0:160]
    original = np.stack([x * 1.5, y * 2.0, (x + y) % 256], axis=2).astype(np.uint8)
    original[40:80, 50:110] = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)  # the "plate"
    anonymized = original.copy()
    anonymized[40:80, 50:110] = 0
    return original, anonymized


def test_gps_device_serial_and_original_thumbnail_are_found(tmp_path, pair):
    original, anonymized = pair
    path = tmp_path / "leaky.jpg"
    Image.fromarray(anonymized).save(path, exif=exif_with_thumbnail(camera_exif(), thumbnail_of(original)))
    assert exif_thumbnail(Image.open(path)) is not None
    scan = scan_file(path, original, anonymized)
    kinds = {f.kind: f for f in scan.findings}
    assert kinds["gps"].detail == "48.85806, -2.29444" and kinds["gps"].severity == "high"
    assert kinds["serial"].detail == "BodySerialNumber=SN-0042"
    assert {f.detail for f in scan.findings if f.kind == "device"} == {"Make=Canon", "Model=EOS 5D"}
    assert kinds["software"].severity == "info" and kinds["datetime"].severity == "medium"
    assert scan.thumbnail == "original" and kinds["original_thumbnail"].severity == "high"
    assert scan.thumbnail_psnr_original > scan.thumbnail_psnr_anonymized + 1.0
    assert scan.leak and scan.severity == "high"


def test_thumbnail_of_the_anonymized_image_is_not_an_original_leak(tmp_path, pair):
    original, anonymized = pair
    path = tmp_path / "updated.jpg"
    Image.fromarray(anonymized).save(path, exif=exif_with_thumbnail(Image.Exif(), thumbnail_of(anonymized)))
    scan = scan_file(path, original, anonymized)
    assert scan.thumbnail == "other"
    assert [f.kind for f in scan.findings] == ["thumbnail"] and scan.findings[0].severity == "medium"
    assert scan.thumbnail_psnr_anonymized > scan.thumbnail_psnr_original


def test_clean_files_and_info_only_metadata_do_not_leak(tmp_path, pair):
    _, anonymized = pair
    clean = tmp_path / "clean.png"
    write_image(clean, anonymized)
    assert scan_file(clean).findings == [] and not scan_file(clean).leak
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    with_icc = tmp_path / "icc.jpg"
    Image.fromarray(anonymized).save(with_icc, icc_profile=icc)
    scan = scan_file(with_icc)
    assert [f.kind for f in scan.findings] == ["icc"] and scan.findings[0].severity == "info"
    assert not scan.leak and scan.severity == "info"


def test_xmp_iptc_and_comments_are_reported(tmp_path, pair):
    _, anonymized = pair
    xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/" '
        b'exif:GPSLatitude="48,51.48N" xmpMM:OriginalDocumentID="xmp.did:1234"/></rdf:RDF></x:xmpmeta>'
    )
    path = tmp_path / "xmp.jpg"
    Image.fromarray(anonymized).save(path, xmp=xmp, comment=b"shot by J. Doe")
    kinds = {f.kind: f for f in scan_file(path).findings}
    assert kinds["gps"].detail == "XMP exif:GPSLatitude"
    assert "xmpMM:OriginalDocumentID" in kinds["xmp"].detail
    assert kinds["comment"].detail == "shot by J. Doe"
    iptc_path = tmp_path / "iptc.jpg"
    iptc_path.write_bytes(with_iptc_city(jpeg_bytes(anonymized), b"Paris"))
    assert Image.open(iptc_path).size == (160, 120)
    assert [f.detail for f in scan_file(iptc_path).findings if f.kind == "iptc"] == ["City"]
    info = PngInfo()
    info.add_text("Author", "J. Doe")
    info.add_text("Software", "editor 2.0")
    png = tmp_path / "text.png"
    Image.fromarray(anonymized).save(png, pnginfo=info)
    found = {(f.detail, f.severity) for f in scan_file(png).findings}
    assert found == {("Author=J. Doe", "medium"), ("Software=editor 2.0", "info")}


def test_unreadable_file_is_reported_not_fatal(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    scan = scan_file(bad)
    assert [f.kind for f in scan.findings] == ["unreadable"] and not scan.leak


def _folder_release(tmp_path: Path, pair, originals_on_disk: bool) -> Release:
    original, anonymized = pair
    keys = ["a", "b", "c"]
    anon_recs = []
    for k, meta in zip(keys, ["gps+thumb", "clean", "device"]):
        p = tmp_path / "release" / f"{k}.jpg"
        p.parent.mkdir(exist_ok=True)
        if meta == "gps+thumb":
            Image.fromarray(anonymized).save(p, exif=exif_with_thumbnail(camera_exif(), thumbnail_of(original)))
        elif meta == "device":
            Image.fromarray(anonymized).save(p, exif=camera_exif(gps=False).tobytes())
        else:
            Image.fromarray(anonymized).save(p)
        anon_recs.append(Record(k, path=p))
    if originals_on_disk:
        orig_recs = []
        for k in keys:
            p = tmp_path / "originals" / f"{k}.jpg"
            p.parent.mkdir(exist_ok=True)
            Image.fromarray(original).save(p, exif=camera_exif().tobytes())
            orig_recs.append(Record(k, path=p))
        originals = ImageSet(orig_recs)
    else:
        originals = ImageSet.from_arrays([original] * 3, keys=keys)
    return Release(originals, ImageSet(anon_recs), "external", {})


def test_attack_reports_files_with_leaks_and_scans_the_originals(tmp_path, pair):
    attack = ATTACKS.create("metadata")
    assert isinstance(attack, MetadataLeak)
    result = attack.run(_folder_release(tmp_path, pair, originals_on_disk=True))
    leak = result.metric("files_with_leak")
    assert leak.release.value == pytest.approx(2 / 3) and leak.release.n == 3
    assert (leak.release.ci_low, leak.release.ci_high) == pytest.approx(wilson_interval(2, 3))
    assert leak.original.value == 1.0 and leak.baseline == 0.0
    assert result.metric("files_with_gps").release.value == pytest.approx(1 / 3)
    assert result.metric("files_with_original_thumbnail").release.value == pytest.approx(1 / 3)
    d = result.details.set_index("key")
    assert d.loc["a", "thumbnail"] == "original" and d.loc["a", "gps"]
    assert not d.loc["b", "leak"] and d.loc["b", "findings"] == ""
    assert d.loc["c", "severity"] == "high" and "Model=EOS 5D" in d.loc["c", "findings"]  # serial number
    assert d["original_leak"].tolist() == [True, True, True]


def test_in_memory_releases_give_n_zero_with_a_note(tmp_path, pair):
    original, anonymized = pair
    mem = ImageSet.from_arrays([original], keys=["a"])
    result = MetadataLeak().run(Release(mem, mem.with_images([anonymized])))
    m = result.metric("files_with_leak")
    assert m.release.n == 0 and math.isnan(m.release.value) and m.original is None
    assert any("in memory" in n for n in result.notes)
    on_disk = MetadataLeak().run(_folder_release(tmp_path, pair, originals_on_disk=False))
    assert on_disk.metric("files_with_leak").original is None
    assert any("originals are held in memory" in n for n in on_disk.notes)
