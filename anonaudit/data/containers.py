"""Where images hide inside image files: every embedded image stream and the bytes after the end.

:func:`embedded_streams` walks a JPEG, PNG or WebP file's structure without decoding pixels and
returns a :class:`Layout`:

- **JPEG**: the marker segments up to the end-of-image (EOI) marker of the first image. Every
  APPn and COM segment is searched for complete JPEG (SOI..EOI) and PNG streams: EXIF IFD1
  thumbnails and maker-note previews (APP1), JFXX JPEG thumbnails (APP0), Photoshop thumbnails
  (APP13), FlashPix and other vendor previews. Uncompressed JFIF and JFXX thumbnails (RGB or
  palette) are returned as pixels. Frames declared in an MPF index (APP2, MPO files) are returned
  as ``MPO frame k``; every other byte after the EOI marker is *trailing data*, itself searched for
  streams.
- **PNG**: the chunks up to IEND; every ancillary chunk (lower-case first letter: eXIf, custom
  preview chunks, ...) is searched for streams; the bytes after IEND are trailing data.
- **WebP**: the RIFF chunks; EXIF, XMP, ICCP and unknown chunks are searched; the bytes after the
  RIFF length are trailing data.

A stream is found by its signature and walked to its own end (JPEG segments and entropy-coded
data, PNG chunks), so thumbnails nested inside an embedded stream belong to that stream. A JPEG
signature not followed by at least one well-formed segment is not counted (random bytes can hold
``FF D8 FF``). Compressed or hex-encoded text chunks are not unpacked, and other formats (TIFF, GIF,
BMP) are not walked: :func:`embedded_streams` returns None for them.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

import numpy as np

JPEG_SOI = b"\xff\xd8\xff"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# In entropy-coded data 0xFF is followed by 0x00 (stuffing) or a restart marker; anything else
# (after optional 0xFF fill bytes) is the next marker.
_NEXT_MARKER = re.compile(rb"\xff(?=[^\x00\xd0-\xd7\xff])")
_SIGNATURES = re.compile(re.escape(JPEG_SOI) + b"|" + re.escape(PNG_SIGNATURE))
_WEBP_IMAGE_CHUNKS = {b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ANIM", b"ANMF"}


@dataclass(frozen=True)
class Stream:
    """One image embedded in a file: encoded bytes (JPEG/PNG) or raw pixels (JFIF/JFXX thumbnails).

    ``in_exif`` is True for streams inside an EXIF block, which are shown with the main image's
    EXIF orientation.
    """

    where: str
    data: bytes | None = None
    pixels: np.ndarray | None = field(default=None, compare=False)
    in_exif: bool = False


@dataclass
class Layout:
    """What :func:`embedded_streams` found: the streams, the trailing bytes and structural problems."""

    container: str
    end_marker: str
    streams: list[Stream] = field(default_factory=list)
    trailing: bytes = b""
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Segment:
    marker: int
    start: int  # first payload byte
    end: int  # one past the last payload byte


def _walk_jpeg(data: bytes, start: int, stop: int) -> tuple[list[_Segment], int | None]:
    """Segments of the JPEG stream starting (with SOI) at ``start``, and the offset just past its EOI
    marker (None when the stream does not end before ``stop`` or is malformed)."""
    segments: list[_Segment] = []
    pos = start + 2
    while pos < stop:
        if data[pos] != 0xFF:
            return segments, None
        while pos < stop and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= stop:
            break
        marker = data[pos]
        pos += 1
        if marker == 0xD9:
            return segments, pos
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            continue
        if marker in (0x00, 0xD8) or pos + 2 > stop:
            return segments, None
        length = struct.unpack_from(">H", data, pos)[0]
        if length < 2 or pos + length > stop:
            return segments, None
        segments.append(_Segment(marker, pos + 2, pos + length))
        pos += length
        if marker == 0xDA:  # start of scan: entropy-coded data up to the next marker
            match = _NEXT_MARKER.search(data, pos, stop)
            if match is None:
                return segments, None
            pos = match.start()
    return segments, None


def _walk_png(data: bytes, start: int, stop: int) -> tuple[list[tuple[bytes, int, int]], int | None]:
    """``(type, data start, data end)`` of each chunk of the PNG at ``start`` and the offset past IEND."""
    chunks = []
    pos = start + len(PNG_SIGNATURE)
    while pos + 12 <= stop:
        length = struct.unpack_from(">I", data, pos)[0]
        kind = bytes(data[pos + 4 : pos + 8])
        end = pos + 12 + length
        if end > stop or not kind.isalpha():
            return chunks, None
        chunks.append((kind, pos + 8, pos + 8 + length))
        pos = end
        if kind == b"IEND":
            return chunks, pos
    return chunks, None


def find_streams(data: bytes, start: int, stop: int, where: str, in_exif: bool = False) -> list[Stream]:
    """Every JPEG or PNG stream in ``data[start:stop]``, each cut at its own end (or at ``stop``
    when it is truncated)."""
    streams = []
    pos = start
    while True:
        match = _SIGNATURES.search(data, pos, stop)
        if match is None:
            return streams
        s = match.start()
        if data.startswith(JPEG_SOI, s):
            segments, end = _walk_jpeg(data, s, stop)
            if not segments:  # a signature in random bytes, not a stream
                pos = s + 2
                continue
        else:
            _, end = _walk_png(data, s, stop)
        end = stop if end is None else end
        streams.append(Stream(f"{where} at byte {s}", bytes(data[s:end]), in_exif=in_exif))
        pos = end


def _segment_name(marker: int, payload: bytes) -> str:
    if marker == 0xFE:
        return "COM"
    ident = payload[:20].split(b"\x00", 1)[0]
    label = ident.decode("ascii", "replace") if ident and all(32 <= c < 127 for c in ident) else ""
    return f"APP{marker - 0xE0}" + (f" {label}" if label else "")


def _raw_thumbnail(payload: bytes) -> tuple[str, np.ndarray] | None:
    """An uncompressed JFIF (RGB) or JFXX (RGB or palette) thumbnail in an APP0 payload."""
    if payload.startswith(b"JFIF\x00") and len(payload) >= 14:
        w, h, body, what = payload[12], payload[13], payload[14:], "JFIF RGB thumbnail"
        palette = None
    elif payload.startswith(b"JFXX\x00") and len(payload) >= 8 and payload[5] in (0x11, 0x13):
        w, h = payload[6], payload[7]
        if payload[5] == 0x13:
            body, palette, what = payload[8:], None, "JFXX RGB thumbnail"
        else:
            palette = np.frombuffer(payload[8 : 8 + 768], np.uint8)
            body, what = payload[8 + 768 :], "JFXX palette thumbnail"
    else:
        return None
    if w == 0 or h == 0:
        return None
    if palette is not None:
        if len(palette) != 768 or len(body) < w * h:
            raise ValueError(f"{what}: {w}x{h} declared, payload too short")
        return what, palette.reshape(256, 3)[np.frombuffer(body[: w * h], np.uint8)].reshape(h, w, 3)
    if len(body) < 3 * w * h:
        raise ValueError(f"{what}: {w}x{h} declared, payload too short")
    return what, np.frombuffer(body[: 3 * w * h], np.uint8).reshape(h, w, 3).copy()


def _mpf_frames(data: bytes, base: int) -> list[tuple[int, int]]:
    """``(start, end)`` of the frames after the first one listed in the MPF index whose TIFF header
    is at ``base`` (offsets in the index count from it)."""
    e = {b"II": "<", b"MM": ">"}.get(bytes(data[base : base + 2]))
    if e is None:
        return []
    ifd = base + struct.unpack_from(e + "I", data, base + 4)[0]
    spans = []
    for k in range(struct.unpack_from(e + "H", data, ifd)[0]):
        tag, _, count, value = struct.unpack_from(e + "HHII", data, ifd + 2 + 12 * k)
        if tag != 0xB002:  # MPEntry: 16 bytes per image
            continue
        for j in range(count // 16):
            _, size, offset, _, _ = struct.unpack_from(e + "IIIHH", data, base + value + 16 * j)
            if offset > 0:
                spans.append((base + offset, base + offset + size))
    return sorted(spans)


def _jpeg_layout(data: bytes) -> Layout:
    layout = Layout("JPEG", "the end-of-image marker")
    segments, end = _walk_jpeg(data, 0, len(data))
    frames: list[tuple[int, int]] = []
    for seg in segments:
        if not (0xE0 <= seg.marker <= 0xEF or seg.marker == 0xFE):
            continue
        payload = data[seg.start : seg.end]
        name = _segment_name(seg.marker, payload)
        if seg.marker == 0xE0:
            try:
                raw = _raw_thumbnail(payload)
            except ValueError as exc:
                layout.problems.append(f"{name}: {exc}")
                raw = None
            if raw is not None:
                layout.streams.append(Stream(f"{name} {raw[0]}", pixels=raw[1]))
        if seg.marker == 0xE2 and payload.startswith(b"MPF\x00"):
            try:
                frames = _mpf_frames(data, seg.start + 4)
            except struct.error:
                layout.problems.append(f"{name}: malformed MPF index")
        exif = seg.marker == 0xE1 and payload.startswith(b"Exif\x00\x00")
        layout.streams += find_streams(data, seg.start, seg.end, name, in_exif=exif)
    if end is None:
        layout.problems.append("JPEG structure could not be followed to its end-of-image marker")
        return layout
    trailing, pos = [], end
    for k, (s, e) in enumerate(frames, start=2):
        if s < pos or e > len(data):
            layout.problems.append(f"MPF index lists frame {k} outside the file or overlapping the data before it")
            continue
        trailing.append((pos, s))
        layout.streams.append(Stream(f"MPO frame {k}", bytes(data[s:e])))
        pos = e
    trailing.append((pos, len(data)))
    for s, e in trailing:
        if e > s:
            layout.trailing += data[s:e]
            layout.streams += find_streams(data, s, e, "after the end-of-image marker")
    return layout


def _png_layout(data: bytes) -> Layout:
    layout = Layout("PNG", "IEND")
    chunks, end = _walk_png(data, 0, len(data))
    for kind, s, e in chunks:
        if kind[0] & 0x20:  # ancillary chunk
            layout.streams += find_streams(data, s, e, f"chunk {kind.decode('ascii')}", in_exif=kind == b"eXIf")
    if end is None:
        layout.problems.append("PNG chunks could not be followed to IEND")
        return layout
    layout.trailing = data[end:]
    layout.streams += find_streams(data, end, len(data), "after IEND")
    return layout


def _webp_layout(data: bytes) -> Layout:
    layout = Layout("WebP", "the end of the RIFF container")
    end = min(len(data), 8 + struct.unpack_from("<I", data, 4)[0])
    pos = 12
    while pos + 8 <= end:
        kind = bytes(data[pos : pos + 4])
        size = struct.unpack_from("<I", data, pos + 4)[0]
        s, e = pos + 8, min(end, pos + 8 + size)
        if kind not in _WEBP_IMAGE_CHUNKS:
            layout.streams += find_streams(
                data, s, e, f"chunk {kind.decode('latin-1').strip()}", in_exif=kind == b"EXIF"
            )
        pos = s + size + (size & 1)
    layout.trailing = data[end:]
    layout.streams += find_streams(data, end, len(data), "after the end of the RIFF container")
    return layout


def embedded_streams(data: bytes) -> Layout | None:
    """The embedded image streams and trailing bytes of a JPEG, PNG or WebP file (None otherwise)."""
    if data.startswith(JPEG_SOI):
        return _jpeg_layout(data)
    if data.startswith(PNG_SIGNATURE):
        return _png_layout(data)
    if len(data) >= 12 and data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return _webp_layout(data)
    return None
