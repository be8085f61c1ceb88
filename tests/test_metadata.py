"""Metadata leak attack on real files: JPEGs carrying EXIF (GPS, device, serial), an EXIF thumbnail
of the original, XMP, IPTC, comments and ICC profiles, versus clean files."""

from __future__ import annotations

import io
import math
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageCms
from PIL.PngImagePlugin import PngInfo

from anonaudit.attacks.metadata import MetadataLeak, exif_thumbnail, scan_file
from anonaudit.data.imageset import ImageSet, Record, Release
from anonaudit.data.io import write_image
from anonaudit.errors import ConfigError
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


@pytest.fixture
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
    assert kinds["gps"].detail == "48.85806N 2.29444W" and kinds["gps"].severity == "high"
    assert kinds["serial"].detail == "BodySerialNumber=SN-0042"
    assert {f.detail for f in scan.findings if f.kind == "device"} == {"Make=Canon", "Model=EOS 5D"}
    assert kinds["software"].severity == "info" and kinds["datetime"].severity == "medium"
    assert scan.thumbnail == "original" and kinds["original_image"].severity == "high"
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
    assert result.metric("files_with_original_image").release.value == pytest.approx(1 / 3)
    d = result.details.set_index("key")
    assert d.loc["a", "thumbnail"] == "original" and d.loc["a", "gps"]
    assert (
        not d.loc["b", "leak"]
        and d.loc["b", "findings"] == "original_name: file name 'b.jpg' equals the original's ('b.jpg')"
    )
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


# -- images hidden beyond EXIF: every embedded stream, trailing bytes, file names -------------------
def app_segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def with_segment(jpeg: bytes, segment: bytes) -> bytes:
    """``segment`` inserted right after the SOI marker."""
    return jpeg[:2] + segment + jpeg[2:]


def photoshop_thumbnail(thumb: bytes) -> bytes:
    """An APP13 Photoshop 3.0 segment with an image resource 0x040C (thumbnail: 28-byte header + JFIF)."""
    data = struct.pack(">IIIIIIHH", 1, 40, 30, 120, len(thumb) + 28, len(thumb), 24, 1) + thumb
    resource = b"8BIM" + struct.pack(">H", 0x040C) + b"\x00\x00" + struct.pack(">I", len(data)) + data
    return app_segment(0xED, b"Photoshop 3.0\x00" + resource + (b"\x00" if len(data) % 2 else b""))


def small(image: np.ndarray, size=(40, 30)) -> np.ndarray:
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BOX))


def kinds_of(scan) -> set[str]:
    return {f.kind for f in scan.findings}


def test_original_appended_after_the_end_of_image_is_found(tmp_path, pair):
    original, anonymized = pair
    path = tmp_path / "appended.jpg"
    path.write_bytes(jpeg_bytes(anonymized) + jpeg_bytes(original))
    assert np.array_equal(np.asarray(Image.open(path)).shape, anonymized.shape)  # viewers show the anonymized image
    scan = scan_file(path, original, anonymized)
    assert scan.thumbnail == "original" and scan.leak and scan.severity == "high"
    copy = next(f for f in scan.findings if f.kind == "original_image")
    assert "after the end-of-image marker" in copy.detail and "160x120" in copy.detail
    trailing = next(f for f in scan.findings if f.kind == "trailing_data")
    assert f"{len(jpeg_bytes(original))} bytes after the end-of-image marker" in trailing.detail


def test_second_mpo_frame_holding_the_original_is_found(tmp_path, pair):
    original, anonymized = pair
    path = tmp_path / "stereo.jpg"
    Image.fromarray(anonymized).save(path, format="MPO", save_all=True, append_images=[Image.fromarray(original)])
    scan = scan_file(path, original, anonymized)
    assert scan.thumbnail == "original" and scan.leak
    assert "MPO frame 2" in next(f for f in scan.findings if f.kind == "original_image").detail
    assert "trailing_data" not in kinds_of(scan)  # the frame is declared in the MPF index, not stray bytes


def test_photoshop_jfxx_jfif_and_maker_note_previews_are_compared_with_the_original(tmp_path, pair):
    original, anonymized = pair
    thumb = thumbnail_of(original)
    rgb = small(original, (16, 12))
    cases = {
        "photoshop": (photoshop_thumbnail(thumb), "APP13"),
        "jfxx": (app_segment(0xE0, b"JFXX\x00\x10" + thumb), "APP0"),
        "jfxx_rgb": (app_segment(0xE0, b"JFXX\x00\x13" + bytes([16, 12]) + rgb.tobytes()), "JFXX RGB thumbnail"),
        "jfif_rgb": (
            app_segment(0xE0, b"JFIF\x00\x01\x02\x00\x00\x01\x00\x01" + bytes([16, 12]) + rgb.tobytes()),
            "JFIF RGB thumbnail",
        ),
    }
    for name, (segment, where) in cases.items():
        path = tmp_path / f"{name}.jpg"
        path.write_bytes(with_segment(jpeg_bytes(anonymized), segment))
        scan = scan_file(path, original, anonymized)
        assert scan.thumbnail == "original", name
        assert where in next(f for f in scan.findings if f.kind == "original_image").detail, name
        assert "trailing_data" not in kinds_of(scan), name
    exif = Image.Exif()
    exif.get_ifd(ExifTags.IFD.Exif)[0x927C] = b"Preview\x00" + thumb  # a maker note carrying a preview JPEG
    path = tmp_path / "maker_note.jpg"
    Image.fromarray(anonymized).save(path, exif=exif.tobytes())
    scan = scan_file(path, original, anonymized)
    assert (
        scan.thumbnail == "original" and "APP1" in next(f for f in scan.findings if f.kind == "original_image").detail
    )


def test_png_trailing_bytes_and_images_in_chunks(tmp_path, pair):
    original, anonymized = pair
    buf = io.BytesIO()
    Image.fromarray(anonymized).save(buf, "PNG")
    png = buf.getvalue()
    junk = tmp_path / "junk.png"
    junk.write_bytes(png + b"name=J. Doe; id=4711")
    scan = scan_file(junk, original, anonymized)
    assert [f.kind for f in scan.findings] == ["trailing_data"] and scan.leak
    assert "20 bytes after IEND" in scan.findings[0].detail and scan.thumbnail == "none"
    appended = tmp_path / "appended.png"
    appended.write_bytes(png + jpeg_bytes(original))
    assert scan_file(appended, original, anonymized).thumbnail == "original"
    data = thumbnail_of(original)
    chunk = struct.pack(">I", len(data)) + b"prVW" + data + struct.pack(">I", zlib.crc32(b"prVW" + data))
    in_chunk = tmp_path / "chunk.png"
    in_chunk.write_bytes(png[:33] + chunk + png[33:])  # after IHDR
    scan = scan_file(in_chunk, original, anonymized)
    assert (
        scan.thumbnail == "original" and "prVW" in next(f for f in scan.findings if f.kind == "original_image").detail
    )
    assert "trailing_data" not in kinds_of(scan)


def test_embedded_streams_are_decoded_safely(tmp_path, pair):
    original, anonymized = pair
    bomb = bytearray(jpeg_bytes(original))
    sof = bomb.find(b"\xff\xc0")
    struct.pack_into(">HH", bomb, sof + 5, 60000, 60000)  # declares 60000x60000 pixels
    path = tmp_path / "bomb.jpg"
    path.write_bytes(jpeg_bytes(anonymized) + bytes(bomb))
    scan = scan_file(path, original, anonymized)
    bad = next(f for f in scan.findings if f.kind == "embedded_image")
    assert "not decodable" in bad.detail and "over the limit" in bad.detail and str(path) in bad.detail
    assert "trailing_data" in kinds_of(scan) and scan.thumbnail == "none"
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(jpeg_bytes(anonymized) + jpeg_bytes(original)[:600])
    scan = scan_file(truncated, original, anonymized)
    assert "trailing_data" in kinds_of(scan) and scan.thumbnail == "none" and scan.leak
    padded = tmp_path / "padded.jpg"
    padded.write_bytes(jpeg_bytes(anonymized) + b"\x00" * 64)
    scan = scan_file(padded, original, anonymized)
    assert [(f.kind, f.severity) for f in scan.findings] == [("trailing_data", "info")] and not scan.leak
    plain = tmp_path / "plain.jpg"
    plain.write_bytes(jpeg_bytes(anonymized))
    assert scan_file(plain, original, anonymized).findings == []


def test_attack_counts_hidden_copies_trailing_bytes_and_identifying_names(tmp_path, pair):
    original, anonymized = pair
    people = ["Ada_Lovelace", "Alan_Turing", "Grace_Hopper", "Kurt_Goedel"]
    orig_dir, rel_dir = tmp_path / "originals", tmp_path / "release"
    orig_dir.mkdir()
    rel_dir.mkdir()
    orig_recs, rel_recs = [], []
    for i, person in enumerate(people):
        o = orig_dir / f"{person}_0001.jpg"
        o.write_bytes(jpeg_bytes(original))
        released_name = o.name if i < 2 else f"img{i:03d}.jpg"  # two files keep the original (identity) name
        r = rel_dir / released_name
        r.write_bytes(jpeg_bytes(anonymized) + (jpeg_bytes(original) if i in (0, 2) else b""))
        orig_recs.append(Record(o.name, path=o, identity=person))
        rel_recs.append(Record(o.name, path=r, identity=person))
    result = MetadataLeak().run(Release(ImageSet(orig_recs), ImageSet(rel_recs), "external", {}))
    expect = {"files_with_leak": 3, "files_with_original_image": 2, "files_with_trailing_data": 2,
              "files_named_after_identity": 2}
    for name, k in expect.items():
        m = result.metric(name)
        assert m.release.value == pytest.approx(k / 4) and m.release.n == 4, name
        assert (m.release.ci_low, m.release.ci_high) == pytest.approx(wilson_interval(k, 4)), name
        assert m.baseline == 0.0 and m.original is not None and m.original.n == 4, name
    assert result.metric("files_named_after_identity").original.value == 1.0
    assert "files_named_like_originals" not in [m.metric for m in result.metrics]  # a note and a column, no risk
    assert any(n.startswith("2 of 4 released files keep their original's file name") for n in result.notes)
    assert result.details["named_like_original"].tolist() == [True, True, False, False]
    assert result.metric("files_with_original_image").original.value == 0.0  # the original files hide nothing
    d = result.details.set_index("key")
    assert d.loc["Ada_Lovelace_0001.jpg", "thumbnail"] == "original"
    assert "identity 'Ada_Lovelace' in the file name" in d.loc["Ada_Lovelace_0001.jpg", "findings"]
    assert d.loc["Alan_Turing_0001.jpg", "leak"] and not d.loc["Kurt_Goedel_0001.jpg", "leak"]
    assert d.loc["Grace_Hopper_0001.jpg", "trailing_bytes"] == len(jpeg_bytes(original))


def test_webp_trailing_stream_and_the_decoding_limits(tmp_path, pair):
    original, anonymized = pair
    buf = io.BytesIO()
    Image.fromarray(anonymized).save(buf, "WEBP")
    path = tmp_path / "appended.webp"
    path.write_bytes(buf.getvalue() + jpeg_bytes(original) + jpeg_bytes(original))
    assert scan_file(path, original, anonymized).thumbnail == "original"
    release = Release(ImageSet.from_arrays([original], keys=["x"]), ImageSet([Record("x", path=path)]), "external", {})
    limited = MetadataLeak(max_embedded_pixels=1000, max_streams=1).run(release)
    findings = limited.details.loc[0, "findings"]
    assert "not decodable" in findings and "over the limit of 1,000" in findings
    assert "1 more embedded image stream(s) not decoded (max_streams=1)" in findings
    assert limited.metric("files_with_original_image").release.value == 0.0
    assert limited.metric("files_with_trailing_data").release.value == 1.0
    with pytest.raises(ConfigError, match="max_streams"):
        MetadataLeak(max_streams=0)
    with pytest.raises(ConfigError, match="max_embedded_pixels"):
        MetadataLeak(max_embedded_pixels=0)


@pytest.mark.shared_data("scenes_eu")
def test_real_scenes_with_the_original_file_appended_to_half_the_release(tmp_path):
    """Real camera JPEGs (with their own EXIF and thumbnails) appended whole after masked releases."""
    import dataclasses

    from shared_data import shared_path

    from anonaudit.data.loaders import load_openalpr_scenes

    scenes = load_openalpr_scenes(shared_path("scenes_eu"), limit=10)
    released = []
    for i, rec in enumerate(scenes.records):
        img = scenes[i].copy()
        for box in rec.boxes:
            img[box.slices] = 0
        path = tmp_path / f"{i:02d}.jpg"
        path.write_bytes(jpeg_bytes(img) + (Path(rec.path).read_bytes() if i % 2 == 0 else b""))
        released.append(dataclasses.replace(rec, path=path))
    result = MetadataLeak().run(Release(scenes, ImageSet(released), "external", {}))
    for name in ("files_with_leak", "files_with_original_image", "files_with_trailing_data"):
        assert result.metric(name).release.value == pytest.approx(0.5) and result.metric(name).release.n == 10, name
    d = result.details
    appended = d["trailing_bytes"] > 0
    assert (d.loc[appended, "thumbnail"] == "original").all() and (d.loc[~appended, "thumbnail"] == "none").all()
    # The appended file's own EXIF thumbnail is part of that stream, not a second embedded image.
    assert (d.loc[appended, "embedded_images"] == 1).all() and (d.loc[appended, "thumbnail_psnr_original"] > 30).all()
    assert not result.details["named_like_original"].any()


def test_an_exif_thumbnail_is_compared_once_even_with_padding(tmp_path, pair):
    original, anonymized = pair
    path = tmp_path / "padded_thumbnail.jpg"
    exif = exif_with_thumbnail(Image.Exif(), thumbnail_of(original) + b"\x00" * 8)  # IFD1 length counts padding
    Image.fromarray(anonymized).save(path, exif=exif)
    scan = scan_file(path, original, anonymized)
    assert scan.embedded_images == 1 and [f.kind for f in scan.findings] == ["original_image"]
