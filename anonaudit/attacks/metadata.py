"""Metadata leaks: what released image files still say about the scene, the device, the original and the person.

``MetadataLeak`` ("metadata") parses every released file (``Record.path`` of the anonymized set)
without trusting it: EXIF (IFD0, the Exif and GPS sub-IFDs, IFD1 with its embedded thumbnail),
XMP packets, IPTC records, ICC profiles, JPEG comments and PNG text chunks; then every image
stream the file embeds (:mod:`anonaudit.data.containers`: thumbnails and previews in APP segments
such as JFIF/JFXX, Photoshop APP13 and maker notes, MPO frames, streams in PNG/WebP chunks, and
anything after the end-of-image marker or IEND); then every frame after the first of an animated or
multi-page file (GIF, APNG, TIFF, WebP); then the file's name. Every released file of the target is
scanned (``Release.files``): the audited pairs, and also the files the audit could not decode,
those without an original and the auxiliary people's files; for these the file's own first frame is
decoded here, and one that cannot be is a finding. Each finding has a severity:

- ``high``: GPS position; camera body/lens serial number; camera owner or artist name; an embedded
  image that is a copy of the ORIGINAL image (see below); GPS inside XMP; the person's identity
  label in the file name.
- ``medium``: device make/model, capture date-time, an embedded thumbnail or image (any), one that
  cannot be decoded, frames after the first (``extra_frames``), an image file whose own pixels cannot
  be decoded (``undecodable_image``: it could hold anything), trailing bytes after the end of the image (other than
  zero padding), XMP
  packets (edit history and document IDs link the file to its source), IPTC records, comments and
  text chunks, maker notes, image unique IDs.
- ``info``: software, ICC profile (colour-space description; rarely identifying), zero padding
  after the end of the image, a file name equal to the original's.

A file **leaks** when it has at least one high or medium finding. An embedded image is a **copy of
the original** when, resized to the embedded image's size with area averaging, the original image
matches it better than the anonymized image does by at least ``thumbnail_margin_db`` PSNR and
matches it at ``min_thumbnail_psnr`` dB or better: the anonymizer replaced the pixels but not the
preview, frame or appended file that carries them. Embedded images are decoded by the safe reader
with the ``max_embedded_pixels`` limit (decompression bombs are refused, the error names the file
and the stream) and at most ``max_streams`` per file.

Metrics (baseline 0: a clean release has no metadata), Wilson 95% CIs over the released files,
with the same scan of the original files as the upper bound when the originals are files too:
``files_with_leak``, ``files_with_gps``, ``files_with_original_image`` (a copy of the original
anywhere in the file), ``files_with_trailing_data`` (bytes after the end of the image that are not
zero padding, whether or not they decode), ``files_named_after_identity`` (the identity label's
words, in order, in the file or folder name; over files whose identity has at least 3 letters or
digits). Files outside the evaluated pairs count in every metric's n except
``files_named_after_identity`` (their names are not checked). Each medium or high finding is also a
:class:`~anonaudit.attacks.base.FileFinding` naming the file and the metrics it counts toward
(``findings.csv``); a copy of the original appended after the end-of-image marker is the finding
``original_after_eoi``. A released file that keeps its original's name (without extension) gets an ``info``
finding, a ``named_like_original`` column in the details and a count in the notes, but no risk
metric: an external release paired by name has it by construction (a metric would read "risk 1"
for every such release), and the name links the file only for whoever holds the source files;
audit renamed files through a pairs table to measure the names they will be published with. A
release held in memory has no files: the result has ``n = 0`` and a note saying so.
"""

from __future__ import annotations

import base64
import io
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import cv2
import numpy as np
import pandas as pd
from PIL import ExifTags, Image

from ..data.containers import Stream, embedded_streams
from ..data.imageset import ImageSet, Release, ReleasedFile
from ..data.io import IMAGE_SUFFIXES, decode_image, pixel_limit
from ..params import check_range
from ..registry import ATTACKS
from ..stats import Estimate, proportion
from .base import Attack, AttackMetric, AttackResult, FileFinding

SEVERITY_RANK = {"info": 0, "medium": 1, "high": 2}

#: Gives the (original, anonymized) pixels a file's thumbnail is compared with.
PairFn = Callable[[], tuple[np.ndarray, np.ndarray]]

# EXIF tags (IFD0 and the Exif sub-IFD) -> (finding kind, severity).
_EXIF_TAGS: dict[int, tuple[str, str]] = {
    0x010F: ("device", "medium"),  # Make
    0x0110: ("device", "medium"),  # Model
    0x0131: ("software", "info"),  # Software
    0x0132: ("datetime", "medium"),  # DateTime
    0x013B: ("owner", "high"),  # Artist
    0x8298: ("owner", "medium"),  # Copyright
    0x010E: ("comment", "medium"),  # ImageDescription
    0x9C9C: ("comment", "medium"),  # XPComment
    0x9C9D: ("owner", "high"),  # XPAuthor
    0x9003: ("datetime", "medium"),  # DateTimeOriginal
    0x9004: ("datetime", "medium"),  # DateTimeDigitized
    0x9286: ("comment", "medium"),  # UserComment
    0x927C: ("maker_note", "medium"),  # MakerNote
    0xA420: ("unique_id", "medium"),  # ImageUniqueID
    0xA430: ("owner", "high"),  # CameraOwnerName
    0xA431: ("serial", "high"),  # BodySerialNumber
    0xA433: ("device", "medium"),  # LensMake
    0xA434: ("device", "medium"),  # LensModel
    0xA435: ("serial", "high"),  # LensSerialNumber
}

# XMP properties worth naming (regex on the packet) -> (finding kind, severity).
_XMP_FIELDS: dict[str, tuple[str, str]] = {
    r"exif:GPS(Latitude|Longitude)": ("gps", "high"),
    r"(aux|exifEX):(SerialNumber|BodySerialNumber|LensSerialNumber)": ("serial", "high"),
    r"(exifEX:CameraOwnerName|dc:creator)": ("owner", "high"),
    r"tiff:(Make|Model)": ("device", "medium"),
    r"(xmp:CreateDate|exif:DateTimeOriginal|photoshop:DateCreated)": ("datetime", "medium"),
    r"(photoshop:(City|State|Country)|Iptc4xmpCore:Location)": ("location", "medium"),
    r"xmpMM:(OriginalDocumentID|DocumentID|DerivedFrom)": ("document_id", "medium"),
    r"xmpGImg:image": ("thumbnail", "medium"),
}

_IPTC_NAMES = {
    (2, 5): "ObjectName", (2, 25): "Keywords", (2, 80): "By-line", (2, 90): "City", (2, 92): "Sub-location",
    (2, 95): "Province-State", (2, 101): "Country", (2, 116): "Copyright", (2, 120): "Caption",
}  # fmt: skip

_TRANSPOSE = {
    2: [Image.Transpose.FLIP_LEFT_RIGHT],
    3: [Image.Transpose.ROTATE_180],
    4: [Image.Transpose.FLIP_TOP_BOTTOM],
    5: [Image.Transpose.TRANSPOSE],
    6: [Image.Transpose.ROTATE_270],
    7: [Image.Transpose.TRANSVERSE],
    8: [Image.Transpose.ROTATE_90],
}


@dataclass(frozen=True)
class Finding:
    """One piece of metadata found in a file."""

    kind: str
    detail: str
    severity: str


@dataclass
class FileScan:
    """Everything :func:`scan_file` found in one file.

    ``thumbnail`` is the verdict over every embedded image (EXIF/XMP thumbnails, previews, frames,
    appended streams): ``"original"`` when one is a copy of the original, ``"other"`` when there
    are embedded images but none is, ``"none"`` otherwise; the PSNRs are those of the copy of the
    original (or of the last embedded image compared). ``trailing_bytes`` counts the bytes after
    the end of the image that no declared frame accounts for.
    """

    path: str
    findings: list[Finding]
    thumbnail: str = "none"  # "none", "original" or "other"
    thumbnail_psnr_original: float = float("nan")
    thumbnail_psnr_anonymized: float = float("nan")
    embedded_images: int = 0
    trailing_bytes: int = 0

    @property
    def leak(self) -> bool:
        return any(SEVERITY_RANK[f.severity] >= 1 for f in self.findings)

    @property
    def severity(self) -> str:
        if not self.findings:
            return "none"
        return max((f.severity for f in self.findings), key=SEVERITY_RANK.__getitem__)

    def has(self, kind: str, min_severity: str = "info") -> bool:
        return any(f.kind == kind and SEVERITY_RANK[f.severity] >= SEVERITY_RANK[min_severity] for f in self.findings)

    def summary(self) -> str:
        return "; ".join(f"{f.kind}: {f.detail}" for f in self.findings)


def _text(value: Any, limit: int = 80) -> str:
    if isinstance(value, bytes):
        value = (
            value.decode("utf-8", "replace")
            if not value.startswith(b"UNICODE\x00")
            else value[8:].decode("utf-16", "replace")
        )
        value = value.replace("\x00", "").strip()
    text = str(value).strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _dms(value: Any, ref: Any) -> float | None:
    try:
        d, m, s = (float(v) for v in value)
    except (TypeError, ValueError):
        return None
    sign = -1.0 if str(ref).strip().upper() in ("S", "W") else 1.0
    return sign * (d + m / 60.0 + s / 3600.0)


def _gps_detail(gps: dict[int, Any]) -> str:
    lat = _dms(gps.get(2), gps.get(1, "N"))
    lon = _dms(gps.get(4), gps.get(3, "E"))
    if lat is not None and lon is not None:
        return f"{abs(lat):.5f}{'S' if lat < 0 else 'N'} {abs(lon):.5f}{'W' if lon < 0 else 'E'}"
    names = [ExifTags.GPSTAGS.get(k, hex(k)) for k in sorted(gps)]
    return "GPS tags " + ", ".join(names)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def _resize_area(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def exif_thumbnail(img: Image.Image) -> bytes | None:
    """The JPEG thumbnail stored in EXIF IFD1 (``JPEGInterchangeFormat``), if any."""
    raw = img.info.get("exif")
    if not raw:
        return None
    ifd1 = img.getexif().get_ifd(ExifTags.IFD.IFD1)
    offset, length = ifd1.get(0x0201), ifd1.get(0x0202)
    if not offset or not length:
        return None
    base = 6 if raw.startswith(b"Exif\x00\x00") else 0  # offsets count from the TIFF header
    data = raw[base + int(offset) : base + int(offset) + int(length)]
    return data if len(data) == int(length) else None


def _once(pixels: PairFn) -> PairFn:
    """``pixels`` read at most once (a file may embed several images to compare)."""
    cache: list[tuple[np.ndarray, np.ndarray]] = []

    def get() -> tuple[np.ndarray, np.ndarray]:
        if not cache:
            cache.append(pixels())
        return cache[0]

    return get


def _xmp_packet(img: Image.Image) -> str | None:
    for key in ("xmp", "XML:com.adobe.xmp"):
        value = img.info.get(key)
        if value:
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return None


class _Scanner:
    def __init__(self, margin_db: float, min_psnr: float, max_pixels: int | None = None, max_streams: int = 16):
        self.margin_db = margin_db
        self.min_psnr = min_psnr
        self.max_pixels = max_pixels
        self.max_streams = max_streams

    def scan(self, path: Path, pixels: PairFn | None, check_image: bool = False,
             original: Callable[[], np.ndarray] | None = None) -> FileScan:
        """Scan ``path``; ``pixels()`` gives (original, anonymized) arrays, read only for embedded images.

        With ``check_image`` (a file outside the audited pairs, e.g. one whose pixels could not be
        decoded) the file's own first frame is decoded here: an image file that cannot be is an
        ``undecodable_image`` finding (it could hold anything). With ``original`` too, embedded images
        and frames are compared with it and with that first frame (mid-grey when it does not decode).
        """
        scan = FileScan(str(path), [])
        if pixels is not None:
            pixels = _once(pixels)
        try:
            img = Image.open(path)
        except Exception as exc:  # noqa: BLE001 - an unreadable file is reported, not fatal
            image = check_image and path.suffix.lower() in IMAGE_SUFFIXES  # else: a file of another type, e.g. text
            scan.findings.append(Finding("undecodable_image" if image else "unreadable", f"{type(exc).__name__}: {exc}",
                                         "medium" if image else "info"))
            exif = raw_exif(path.read_bytes())
            if exif is not None:  # a file too damaged to open (e.g. cut inside its header) may still carry EXIF
                self._exif_tags(exif, scan)
            return scan
        with img:
            if check_image:
                pixels = self._own_pixels(img, scan, original)
            for part in (self._exif, self._xmp, self._iptc, self._comments, self._icc, self._streams, self._frames):
                try:
                    part(img, scan, pixels)
                except Exception as exc:  # noqa: BLE001 - malformed metadata must not stop the scan
                    scan.findings.append(
                        Finding("malformed", f"{part.__name__.strip('_')}: {type(exc).__name__}: {exc}", "info")
                    )
        return scan

    def _own_pixels(self, img: Image.Image, scan: FileScan, original: Callable[[], np.ndarray] | None) -> PairFn | None:
        """(original, the file's first frame) to compare embedded images with; an undecodable first
        frame is a finding and is replaced by mid-grey. None when there is no original."""
        try:
            w, h = img.size
            limit = self.max_pixels or pixel_limit()
            if w * h > limit:
                raise ValueError(f"{w}x{h} pixels, over the limit of {limit:,}")
            img.seek(0)
            first = np.asarray(img.convert("RGB"))
        except Exception as exc:  # noqa: BLE001 - damaged files raise all sorts of errors
            scan.findings.append(
                Finding(
                    "undecodable_image", f"the image itself cannot be decoded ({type(exc).__name__}: {exc})", "medium"
                )
            )
            first = None
        if original is None:
            return None
        source = original()
        reference = first if first is not None else np.full_like(source, 128)
        return _once(lambda: (source, reference))

    def _frames(self, img: Image.Image, scan: FileScan, pixels: PairFn | None) -> None:
        """Every frame after the first of an animated or multi-page file (GIF, APNG, TIFF, WebP): each
        one could hold content the audited image does not (MPO frames are walked by :meth:`_streams`)."""
        n = int(getattr(img, "n_frames", 1) or 1)
        if n < 2 or img.format == "MPO":
            return
        w, h = img.size
        limit = self.max_pixels or pixel_limit()
        decoded = min(n - 1, self.max_streams) if w * h <= limit else 0
        scan.findings.append(
            Finding(
                "extra_frames",
                f"{n} frames (animated or multi-page {img.format}): {n - 1} after the "
                "first, which is the image the other attacks see",
                "medium",
            )
        )
        for k in range(1, decoded + 1):
            try:
                img.seek(k)
                frame = np.asarray(img.convert("RGB"))
            except Exception as exc:  # noqa: BLE001 - a damaged frame is a finding, not the end of the scan
                scan.findings.append(
                    Finding(
                        "extra_frames", f"frame {k + 1} of {n}: not decodable ({type(exc).__name__}: {exc})", "medium"
                    )
                )
                continue
            self._compare(
                Stream(f"frame {k + 1} of {n}", pixels=frame), f"frame {k + 1} of {n}", 1, scan, pixels, "extra_frames"
            )
        if n - 1 > decoded:
            scan.findings.append(Finding("extra_frames", f"{n - 1 - decoded} more frame(s) of {n} not decoded "
                                         f"({w}x{h} pixels; max_streams={self.max_streams})", "medium"))

    def _exif(self, img: Image.Image, scan: FileScan, pixels: PairFn | None) -> None:
        exif = img.getexif()
        if not exif and not img.info.get("exif"):
            return
        self._exif_tags(exif, scan)
        thumb = exif_thumbnail(img)
        if thumb is not None:
            self._compare(thumb, "EXIF IFD1", exif.get(0x0112, 1), scan, pixels, "thumbnail")

    @staticmethod
    def _exif_tags(exif: Image.Exif, scan: FileScan) -> None:
        """Findings of the EXIF tags (IFD0, Exif and GPS sub-IFDs) of :data:`_EXIF_TAGS`."""
        entries = dict(exif)
        entries.update(exif.get_ifd(ExifTags.IFD.Exif))
        for tag, value in sorted(entries.items()):
            if tag in _EXIF_TAGS and _text(value):
                kind, severity = _EXIF_TAGS[tag]
                scan.findings.append(Finding(kind, f"{ExifTags.TAGS.get(tag, hex(tag))}={_text(value)}", severity))
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
        if gps:
            scan.findings.append(Finding("gps", _gps_detail(gps), "high"))

    def _streams(self, img: Image.Image, scan: FileScan, pixels: PairFn | None) -> None:
        """Every embedded image stream and the trailing bytes (:mod:`anonaudit.data.containers`)."""
        layout = embedded_streams(Path(scan.path).read_bytes())
        if layout is None:
            return
        for problem in layout.problems:
            scan.findings.append(Finding("malformed", problem, "info"))
        known = exif_thumbnail(img) or b""  # compared by _exif already (its length may count padding)
        streams = [st for st in layout.streams if st.data is None or not known or not known.startswith(st.data)]
        orientation = img.getexif().get(0x0112, 1)
        for st in streams[: self.max_streams]:
            self._compare(st, st.where, orientation if st.in_exif else 1, scan, pixels, "embedded_image")
        if len(streams) > self.max_streams:
            scan.findings.append(Finding(
                "embedded_image", f"{len(streams) - self.max_streams} more embedded image stream(s) not decoded "
                f"(max_streams={self.max_streams})", "medium",
            ))
        scan.trailing_bytes = len(layout.trailing)
        if layout.trailing:
            padding = not layout.trailing.strip(b"\x00")
            inside = sum(st.where.startswith("after ") for st in layout.streams)
            detail = f"{len(layout.trailing)} bytes after {layout.end_marker}" + (
                " (zero padding)" if padding else f", {inside} image stream(s) among them" if inside else ""
            )
            scan.findings.append(Finding("trailing_data", detail, "info" if padding else "medium"))

    def _compare(
        self, source: bytes | Stream, where: str, orientation: int, scan: FileScan, pixels: PairFn | None, kind: str
    ) -> None:
        """Decode one embedded image and classify it as a copy of the original or not."""
        scan.embedded_images += 1
        raw = source.pixels if isinstance(source, Stream) else None
        data = source.data if isinstance(source, Stream) else source
        if raw is None:
            try:
                raw = decode_image(data or b"", f"{scan.path} ({where})", max_pixels=self.max_pixels)
            except Exception as exc:  # noqa: BLE001 - ImageReadError names the file and the stream
                scan.findings.append(
                    Finding(kind, f"{where}: {len(data or b'')} bytes, not decodable ({exc})", "medium")
                )
                return
        pil = Image.fromarray(raw)
        for op in _TRANSPOSE.get(int(orientation or 1), []):
            pil = pil.transpose(op)  # the main image is compared as displayed (orientation applied)
        thumb = np.asarray(pil)
        size = (thumb.shape[1], thumb.shape[0])
        detail = f"{where}: {size[0]}x{size[1]}"
        if pixels is not None:
            original, anonymized = pixels()
            p_orig = _psnr(thumb, _resize_area(original, size))
            p_anon = _psnr(thumb, _resize_area(anonymized, size))
            if scan.thumbnail != "original":
                scan.thumbnail_psnr_original, scan.thumbnail_psnr_anonymized = p_orig, p_anon
            if p_orig >= self.min_psnr and p_orig >= p_anon + self.margin_db:
                scan.thumbnail = "original"
                scan.findings.append(
                    Finding(
                        "original_image",
                        f"{detail} is a copy of the original (PSNR {p_orig:.1f} dB vs {p_anon:.1f} dB to the "
                        "anonymized image)",
                        "high",
                    )
                )
                return
            detail += f" (PSNR {p_orig:.1f} dB to the original, {p_anon:.1f} dB to the anonymized image)"
        scan.thumbnail = "other" if scan.thumbnail == "none" else scan.thumbnail
        scan.findings.append(Finding(kind, detail, "medium"))

    def _xmp(self, img: Image.Image, scan: FileScan, pixels: PairFn | None) -> None:
        packet = _xmp_packet(img)
        if not packet:
            return
        named = []
        for pattern, (kind, severity) in _XMP_FIELDS.items():
            match = re.search(pattern, packet)
            if match and kind != "thumbnail":
                named.append(match.group(0))
                if severity == "high" or kind in ("device", "datetime", "location"):
                    scan.findings.append(Finding(kind, f"XMP {match.group(0)}", severity))
        scan.findings.append(
            Finding("xmp", f"{len(packet)} characters" + (f" ({', '.join(named)})" if named else ""), "medium")
        )
        for b64 in re.findall(r"<xmpGImg:image>([^<]+)</xmpGImg:image>", packet) + re.findall(
            r'xmpGImg:image="([^"]+)"', packet
        ):
            data = base64.b64decode(re.sub(r"&#xA;|\s", "", b64), validate=False)
            self._compare(data, "XMP", 1, scan, pixels, "thumbnail")

    def _iptc(self, img: Image.Image, scan: FileScan, pixels: PairFn | None) -> None:
        from PIL import IptcImagePlugin

        info = IptcImagePlugin.getiptcinfo(img)
        if not info:
            return
        names = sorted(
            {_IPTC_NAMES.get(k, f"{k[0]}:{k[1]}") for k in info if k != (1, 90) and k[0] != 1 and k != (2, 0)}
        )
        if names:
            scan.findings.append(Finding("iptc", ", ".join(names), "medium"))

    def _comments(self, img: Image.Image, scan: FileScan, pixels: PairFn | None) -> None:
        comment = img.info.get("comment")
        if comment:
            scan.findings.append(Finding("comment", _text(comment), "medium"))
        text = getattr(img, "text", None) or {}
        for key, value in text.items():
            if key == "XML:com.adobe.xmp":
                continue
            severity = "info" if key.lower() == "software" else "medium"
            scan.findings.append(Finding("comment", f"{key}={_text(value)}", severity))

    def _icc(self, img: Image.Image, scan: FileScan, pixels: PairFn | None) -> None:
        icc = img.info.get("icc_profile")
        if not icc:
            return
        from PIL import ImageCms

        try:
            prof = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            desc = ImageCms.getProfileDescription(prof).strip()
        except (ImageCms.PyCMSError, OSError):
            desc = "unparsable"
        scan.findings.append(Finding("icc", f"{desc} ({len(icc)} bytes)", "info"))


_EXIF_HEADER = re.compile(rb"Exif\x00\x00(?=II\*\x00|MM\x00\*)")


def raw_exif(data: bytes) -> Image.Exif | None:
    """The first EXIF block found in raw bytes (a JPEG APP1 segment, a PNG ``eXIf`` or WebP ``EXIF``
    chunk with its ``Exif`` header), parsed without opening the image: for files whose image
    structure is too damaged for the decoder. None when there is none or it does not parse."""
    match = _EXIF_HEADER.search(data)
    if match is None:
        return None
    exif = Image.Exif()
    try:
        exif.load(data[match.start():])
        exif.get_ifd(ExifTags.IFD.GPSInfo)  # parse errors in the sub-IFDs surface here
    except Exception:  # noqa: BLE001 - a damaged block is no finding
        return None
    return exif if len(exif) else None


def scan_file(
    path: str | Path,
    original: np.ndarray | None = None,
    anonymized: np.ndarray | None = None,
    thumbnail_margin_db: float = 1.0,
    min_thumbnail_psnr: float = 20.0,
) -> FileScan:
    """Scan one file's metadata and embedded images; with ``original``/``anonymized`` pixels,
    classify embedded images as copies of the original or not."""
    pixels = None if original is None or anonymized is None else (lambda: (original, anonymized))
    return _Scanner(thumbnail_margin_db, min_thumbnail_psnr).scan(Path(path), pixels)


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[\W_]+", text.casefold()) if w]


def identity_in_name(identity: str | None, path: Path) -> bool | None:
    """Whether ``identity``'s words appear, adjacent and in order, among the words of ``path``'s file
    or folder name (case and separators ignored); None when the label has under 3 letters or digits."""
    words = _words(str(identity or ""))
    if len("".join(words)) < 3:
        return None
    names = _words(f"{path.parent.name}/{path.name}")
    k = len(words)
    return any(names[j : j + k] == words for j in range(len(names) - k + 1))


def name_findings(path: Path, original_name: str, identity: str | None) -> list[Finding]:
    """Findings about a file's name: the identity label in it (high), the original's name kept (info)."""
    out = []
    if identity_in_name(identity, path):
        out.append(
            Finding("identity_name", f"identity '{identity}' in the file name {path.parent.name}/{path.name}", "high")
        )
    if path.stem.casefold() == PurePosixPath(original_name).stem.casefold():
        out.append(
            Finding(
                "original_name",
                f"file name '{path.name}' equals the original's ('{PurePosixPath(original_name).name}')",
                "info",
            )
        )
    return out


@ATTACKS.register("metadata")
class MetadataLeak(Attack):
    """Scan released files for metadata, embedded images and names that leak location, device,
    the original or the person (module doc).

    Args:
        thumbnail_margin_db: PSNR margin by which an embedded image must match the original better
            than the anonymized image to count as a copy of the original.
        min_thumbnail_psnr: minimum PSNR (dB) between such a copy and the original.
        max_embedded_pixels: largest embedded image decoded, in pixels (None: the reader's limit,
            ``ANONAUDIT_MAX_PIXELS``); larger ones are reported as not decodable.
        max_streams: most embedded image streams decoded per file; the rest are counted.
    """

    criteria = ("singling_out", "linkability", "inference")  # names, device serials, GPS location
    attacker_holds = ("release_files",)
    folder_audit = {"plates": {}, "faces": {}}

    def __init__(
        self,
        thumbnail_margin_db: float = 1.0,
        min_thumbnail_psnr: float = 20.0,
        max_embedded_pixels: int | None = None,
        max_streams: int = 16,
    ):
        check_range(self, "max_embedded_pixels", max_embedded_pixels, ge=1, optional=True)  # null: the reader's limit
        check_range(self, "max_streams", max_streams, ge=1)
        self.thumbnail_margin_db = thumbnail_margin_db
        self.min_thumbnail_psnr = min_thumbnail_psnr
        self.max_embedded_pixels = max_embedded_pixels
        self.max_streams = max_streams

    def _scanner(self) -> _Scanner:
        return _Scanner(
            self.thumbnail_margin_db, self.min_thumbnail_psnr,
            None if self.max_embedded_pixels is None else int(self.max_embedded_pixels), int(self.max_streams),
        )

    def _scan_others(self, release: Release, scanned: set[str]) -> list[tuple[ReleasedFile, FileScan]]:
        """Every released file outside the pairs (not decoded, without an original, the auxiliary
        people's), each with the original it stands for when there is one."""
        scanner = self._scanner()
        out = []
        for f in release.files:
            if not f.file or f.file in scanned:
                continue
            has_original = f.status != "unpaired" and release.has_original(f.key)
            scan = scanner.scan(
                Path(f.file), None, True, (lambda key=f.key: release.original_of(key)) if has_original else None
            )
            out.append((f, scan))
        return out

    def _scan_set(self, images: ImageSet, release: Release) -> tuple[list[int], list[FileScan], list[bool | None]]:
        scanner = self._scanner()
        idx, scans, named = [], [], []
        for i, rec in enumerate(images.records):
            if rec.path is None:
                continue
            idx.append(i)
            scan = scanner.scan(Path(rec.path), lambda i=i: release.pair(i))
            original = release.originals.records[i]
            identity = None if original.identity is None else str(original.identity)
            scan.findings += name_findings(
                Path(rec.path), original.path.name if original.path else original.key, identity
            )
            scans.append(scan)
            named.append(identity_in_name(identity, Path(rec.path)))
        return idx, scans, named

    def run(self, release: Release) -> AttackResult:
        rel_idx, rel, rel_named = self._scan_set(release.anonymized, release)
        orig_idx, orig, orig_named = self._scan_set(release.originals, release)
        others = self._scan_others(release, {s.path for s in rel})
        notes = []
        if not rel and not others:
            notes.append("the release is held in memory: no files, so no metadata to scan (n=0)")
        elif len(rel) < len(release):
            notes.append(f"{len(release) - len(rel)} released image(s) have no file and were not scanned")
        if others:
            by = pd.Series([f.status for f, _ in others]).value_counts()
            notes.append(f"{len(others)} released file(s) outside the evaluated pairs scanned too ("
                         + ", ".join(f"{n} {status}" for status, n in by.items()) + "); their names are not checked")
            rel_idx += [-1] * len(others)
            rel += [scan for _, scan in others]
        if not orig:
            notes.append("the originals are held in memory: no scan of original files")
        unchecked = sum(v is None for v in rel_named)
        if rel and unchecked:
            notes.append(
                f"{unchecked} released file(s) have no identity label of 3 or more letters or digits: not checked for "
                "the identity in their name"
            )

        def est(values: list[bool | None]) -> Estimate:
            kept = [bool(v) for v in values if v is not None]
            if not kept:
                return Estimate(float("nan"), n=0, method="proportion of files, Wilson 95% CI (no files)")
            return proportion(kept, method="proportion of files, Wilson 95% CI")

        tests = {
            "files_with_leak": (
                lambda s: s.leak,
                ("files with high- or medium-severity findings (GPS, device, serial, embedded image, trailing data, "
                "XMP, identity in the name, ...)"),
            ),
            "files_with_gps": (lambda s: s.has("gps"), "files with a GPS position (EXIF or XMP)"),
            "files_with_original_image": (
                lambda s: s.thumbnail == "original",
                "files embedding a copy of the original image (thumbnail, preview, frame, appended or chunk stream)",
            ),
            "files_with_trailing_data": (
                lambda s: s.has("trailing_data", "medium"),
                "files with bytes after the end of the image (EOI/IEND), other than zero padding",
            ),
        }
        metrics = [
            AttackMetric(name, est([fn(s) for s in rel]), est([fn(s) for s in orig]) if orig else None, 0.0, desc)
            for name, (fn, desc) in tests.items()
        ]
        metrics.append(AttackMetric(
            "files_named_after_identity", est(rel_named), est(orig_named) if orig else None, 0.0,
            "files whose file or folder name contains the person's identity label",
        ))
        same_name = sum(s.has("original_name") for s in rel)
        if same_name:
            notes.append(
                f"{same_name} of {len(rel)} released files keep their original's file name: whoever holds the source "
                "files links them by name (an external release paired by name has this by construction; pair renamed "
                "files through a pairs table to audit the names they will be published with)"
            )
        orig_by_index = dict(zip(orig_idx, orig))
        keys = [release.keys[i] for i in rel_idx if i >= 0] + [f.key for f, _ in others]
        statuses = ["audited"] * (len(rel) - len(others)) + [f.status for f, _ in others]
        rows = []
        for i, key, status, s in zip(rel_idx, keys, statuses, rel):
            o = orig_by_index.get(i)
            rows.append(
                {
                    "key": key,
                    "status": status,
                    "path": s.path,
                    "leak": s.leak,
                    "severity": s.severity,
                    "gps": s.has("gps"),
                    "thumbnail": s.thumbnail,
                    "embedded_images": s.embedded_images,
                    "trailing_bytes": s.trailing_bytes,
                    "named_like_original": s.has("original_name"),
                    "thumbnail_psnr_original": s.thumbnail_psnr_original,
                    "thumbnail_psnr_anonymized": s.thumbnail_psnr_anonymized,
                    "findings": s.summary(),
                    "original_leak": None if o is None else o.leak,
                }
            )
        details = pd.DataFrame(
            rows,
            columns=[
                "key",
                "status",
                "path",
                "leak",
                "severity",
                "gps",
                "thumbnail",
                "embedded_images",
                "trailing_bytes",
                "named_like_original",
                "thumbnail_psnr_original",
                "thumbnail_psnr_anonymized",
                "findings",
                "original_leak",
            ],
        )
        findings = [ff for key, s in zip(keys, rel) for ff in file_findings(key, s)]
        return AttackResult(self.name, metrics, details, notes, findings)


#: Finding kinds that count toward a metric of their own (besides ``files_with_leak``).
_FINDING_METRICS = {"gps": "files_with_gps", "original_image": "files_with_original_image",
                    "trailing_data": "files_with_trailing_data", "identity_name": "files_named_after_identity"}


def file_findings(key: str, scan: FileScan) -> list[FileFinding]:
    """The medium- and high-severity findings of one file, as evidence for the metrics they count toward."""
    out = []
    for f in scan.findings:
        if SEVERITY_RANK[f.severity] < 1:
            continue
        metrics = ("files_with_leak",) + ((_FINDING_METRICS[f.kind],) if f.kind in _FINDING_METRICS else ())
        appended = f.kind == "original_image" and f.detail.startswith("after the end-of-image marker")
        out.append(
            FileFinding(
                key, "original_after_eoi" if appended else f.kind, f"{f.detail} ({f.severity})", metrics, scan.path
            )
        )
    return out
