"""Safe image IO: every image becomes an RGB uint8 HxWx3 array, or a clear error naming the file."""

from __future__ import annotations

import io as _io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from ..errors import ConfigError, ImageReadError
from ..fileio import atomic_path

#: Default largest image accepted, in pixels (about 16k x 16k); guards against decompression bombs.
#: ``ANONAUDIT_MAX_PIXELS`` overrides it (read at every call, so it can be changed at run time).
MAX_PIXELS = 268_435_456

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm")

# A truncated file must fail loudly, not decode as grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False


def _to_rgb(img: Image.Image, path: str) -> np.ndarray:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "I;16N"):
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        grey = np.clip(np.round(arr / hi * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        scale = 255.0 if arr.max(initial=0) <= 1.0 else 1.0
        grey = np.clip(np.round(arr * scale), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    if mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img)


def pixel_limit() -> int:
    """The decompression-bomb limit in pixels: ``ANONAUDIT_MAX_PIXELS`` or :data:`MAX_PIXELS`."""
    text = os.environ.get("ANONAUDIT_MAX_PIXELS", "").strip()
    if not text:
        return MAX_PIXELS
    try:
        limit = int(text)
    except ValueError:
        limit = 0
    if limit < 1:
        raise ConfigError(f"ANONAUDIT_MAX_PIXELS must be a positive whole number of pixels, got {text!r}")
    return limit


def decode_image(data: bytes, name: str = "<bytes>", max_pixels: int | None = None) -> np.ndarray:
    """Decode encoded image bytes (see :func:`read_image`)."""
    limit = pixel_limit() if max_pixels is None else max_pixels
    if not data:
        raise ImageReadError(name, "file is empty (0 bytes)")
    pil_limit = Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # Opening reads the header only; its size is checked here against our limit (Pillow's
            # fixed one would otherwise refuse images ANONAUDIT_MAX_PIXELS allows), and Pillow's
            # checks while loading (e.g. GIF frame sizes) then use the same limit.
            Image.MAX_IMAGE_PIXELS = None
            img = Image.open(_io.BytesIO(data))
            Image.MAX_IMAGE_PIXELS = limit
            w, h = img.size
            if w * h > limit:
                raise ImageReadError(
                    name, f"image is {w}x{h} = {w * h:,} pixels, over the limit of {limit:,} "
                    "(set ANONAUDIT_MAX_PIXELS to raise it for trusted files)"
                )
            if w < 1 or h < 1:
                raise ImageReadError(name, f"image has no pixels ({w}x{h})")
            frames = getattr(img, "n_frames", 1)
            if frames > 1:
                raise ImageReadError(
                    name, f"has {frames} frames (animated or multi-page); anonaudit audits single-frame "
                    "images, and extra frames in a release could hide un-anonymized content"
                )
            img.load()
            img = ImageOps.exif_transpose(img)
            return _to_rgb(img, name)
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        raise ImageReadError(name, "not a readable image (unknown or corrupt format)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageReadError(
            name, f"refused as a possible decompression bomb, over the limit of {limit:,} pixels ({exc}); "
            "set ANONAUDIT_MAX_PIXELS to raise it for trusted files"
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(name, f"corrupt or truncated image data: {exc}") from None
    except MemoryError:
        raise ImageReadError(name, "not enough memory to decode it") from None
    except Exception as exc:  # noqa: BLE001 - decoders of damaged files raise TypeError, KeyError, ...
        raise ImageReadError(name, f"corrupt image data ({type(exc).__name__}: {exc})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = pil_limit


def read_image(path: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """Read ``path`` as an RGB uint8 ``(H, W, 3)`` array.

    EXIF orientation is applied; grey, palette, CMYK, 16-bit and alpha images are converted
    (alpha composited on white). Empty, truncated, corrupt, multi-frame and oversized files raise
    :class:`ImageReadError` naming the file.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageReadError(path, "file does not exist") from None
    except IsADirectoryError:
        raise ImageReadError(path, "is a directory, not an image file") from None
    except OSError as exc:
        raise ImageReadError(path, f"cannot be read: {exc.strerror or exc}") from None
    return decode_image(data, str(path), max_pixels)


def _full_scale(arr: np.ndarray) -> float:
    """The value meaning "full intensity" for ``arr``'s dtype (floats: 1.0 if all values are <= 1)."""
    if arr.dtype == np.uint16:
        return 65535.0
    if arr.dtype == np.bool_:
        return 1.0
    if np.issubdtype(arr.dtype, np.floating):
        return 255.0 if arr.max(initial=0) > 1.0 else 1.0
    return 255.0


def as_rgb_uint8(array: np.ndarray, name: str = "<array>") -> np.ndarray:
    """Validate/convert an in-memory image to contiguous RGB uint8 ``(H, W, 3)``.

    uint16 is scaled by 255/65535, bool to 0/255, floats with every value <= 1 are read as [0, 1]
    (others as [0, 255]); other integers are clipped to [0, 255]. An alpha channel (in the same
    scale as the colours) is composited on white.
    """
    arr = np.asarray(array)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ImageReadError(name, f"array of shape {arr.shape} is not an HxW, HxWx1, HxWx3 or HxWx4 image")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ImageReadError(name, f"array of shape {arr.shape} has no pixels")
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise ImageReadError(name, "float image contains NaN or infinite values")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif arr.shape[2] == 4:
        full = _full_scale(arr)
        values = np.clip(arr.astype(np.float64), 0.0, full) / full
        rgb = values[..., :3] * values[..., 3:4] + (1.0 - values[..., 3:4])
        arr = np.round(rgb * 255.0).astype(np.uint8)
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating):
            scale = 255.0 if arr.max(initial=0) <= 1.0 else 1.0
            arr = np.clip(np.round(arr * scale), 0, 255).astype(np.uint8)
        elif arr.dtype == np.uint16:
            arr = np.round(arr / 257.0).astype(np.uint8)
        elif arr.dtype == np.bool_:
            arr = arr.astype(np.uint8) * 255
        else:
            arr = np.clip(arr, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def write_image(path: str | Path, array: np.ndarray) -> None:
    """Write an RGB uint8 image (PNG unless the suffix says otherwise), atomically, with no metadata."""
    path = Path(path)
    img = Image.fromarray(as_rgb_uint8(array))
    fmt = Image.registered_extensions().get(path.suffix.lower(), "PNG")
    with atomic_path(path) as tmp:
        img.save(tmp, format=fmt)


def content_hash(array: np.ndarray) -> str:
    """A stable hash of an image's pixels and shape (cache key for embeddings, OCR, detections)."""
    import hashlib

    arr = np.ascontiguousarray(array)
    h = hashlib.blake2b(digest_size=16)
    h.update(str(arr.shape).encode())
    h.update(arr.tobytes())
    return h.hexdigest()
