"""An audit of a set read from files streams: releases of per-image targets go to an ImageStore in a
temporary folder instead of memory, give the same table as the in-memory path, and no decoded or
released image outlives the batch that uses it."""

from __future__ import annotations

import gc
import os
import weakref
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from anonaudit.anonymizers.classical import GaussianBlur, Mask
from anonaudit.audit import Audit
from anonaudit.data import imageset
from anonaudit.data.imageset import ImageSet, ImageStore
from anonaudit.errors import DataError, ImageReadError
from anonaudit.evaluators.fidelity import PSNR, SSIM

H, W = 96, 128  # 36 KiB per decoded image


def write_set(folder: Path, n: int, seed: int = 0) -> ImageSet:
    """``n`` smooth random RGB images written as PNG files (fast to encode), loaded lazily."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W]
    for i in range(n):
        a, b, c = rng.uniform(0.02, 0.2, 3)
        image = np.stack([127 + 120 * np.sin(a * xx + b * yy + c * k + i) for k in range(3)], axis=-1)
        image += rng.normal(0, 6, image.shape)
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(folder / f"im{i:04d}.png", compress_level=1)
    return ImageSet.from_folder(folder, name="smooth")


def audit(data: ImageSet, evaluators=None) -> Audit:
    return Audit(data, [GaussianBlur(sigma=1.5), Mask()], evaluators=evaluators or [PSNR(), SSIM()], seed=0,
                 on_error="raise", batch_size=8)


def comparable(table):
    """Rows without timings; ``image_width_px`` is reported for in-memory originals only."""
    return table[table.metric != "image_width_px"].drop(columns=["seconds"]).reset_index(drop=True)


def test_image_store_round_trip_subset_and_errors(tmp_path):
    images = [np.full((4, 5, 3), v, np.uint8) for v in (0, 7, 255)]
    files = ImageSet.from_arrays(images, ["a", "b", "c"])
    store = ImageStore(tmp_path / "store")
    for i in range(3):
        store.put(files.keys[i], files[i])
    stored = ImageSet(files.records, name="s", store=store)
    assert not stored.in_memory and len(store) == 3 and "b" in store
    assert all(np.array_equal(stored[i], images[i]) for i in range(3))
    part = stored.subset([2, 0])
    assert part.keys == ["c", "a"] and np.array_equal(part[0], images[2])
    with pytest.raises(DataError, match="without a stored image"):
        ImageSet(ImageSet.from_arrays(images[:1], ["zz"]).records, store=store)
    (tmp_path / "store" / "00000001.npy").write_bytes(b"not an array")
    with pytest.raises(ImageReadError, match=r"00000001\.npy"):
        stored[1]


def test_file_backed_audit_equals_in_memory_and_removes_its_store(tmp_path):
    (tmp_path / "data").mkdir()
    files = write_set(tmp_path / "data", 30)
    streamed = audit(files).run(tmp_path / "run", show_progress=False)
    in_memory = audit(files.load()).run(tmp_path / "run-memory", show_progress=False)
    assert (streamed.table.status == "ok").all()
    assert comparable(streamed.table).equals(comparable(in_memory.table))
    assert not list((tmp_path / "run").glob(".release-*"))  # the stored releases are removed after each target
    # the releases were stored, not held: the run's provenance hashes their pixels, as for in-memory outputs
    released = sorted((tmp_path / "run" / "provenance" / "released").glob("*.json"))
    assert len(released) == 2 and '"source": "pixels"' in released[0].read_text()


class Live:
    """Weak references to every image array handed out, and the most of them alive at one time."""

    def __init__(self):
        self.refs: list[weakref.ref] = []
        self.most = 0

    def track(self, array: np.ndarray) -> np.ndarray:
        self.refs.append(weakref.ref(array))
        return array

    def count(self) -> int:
        alive = sum(r() is not None for r in self.refs)
        self.most = max(self.most, alive)
        return alive


def test_audit_of_files_keeps_no_decoded_or_released_image_alive(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    files = write_set(tmp_path / "data", 60)
    live = Live()
    monkeypatch.setenv(imageset.DECODE_CACHE_ENV, "0")  # the streaming itself, without recent decodes kept
    read, get = imageset.read_image, ImageStore.get
    monkeypatch.setattr(imageset, "read_image", lambda path: live.track(read(path)))  # the real reader, observed
    monkeypatch.setattr(ImageStore, "get", lambda store, key: live.track(get(store, key)))

    class ObservedBlur(GaussianBlur):
        def anonymize_image(self, image, record):
            return live.track(super().anonymize_image(image, record))

    class ObservedPSNR(PSNR):
        def update(self, release):
            super().update(release)
            live.count()

    results = Audit(files, [ObservedBlur(sigma=1.5)], evaluators=[ObservedPSNR()], seed=0, on_error="raise",
                    batch_size=8).run(tmp_path / "run", show_progress=False)
    evaluated = int(results.table.query("metric == 'pairs'").value.iloc[0])
    assert evaluated == 48 and len(live.refs) > 3 * evaluated  # every image was read, released and read back
    # Held in memory, the 48 released images would all be alive while PSNR streams over them.
    assert live.most <= 2 * 8, f"{live.most} images alive at once while scoring batches of 8"
    gc.collect()
    assert live.count() == 0


def test_recent_decodes_are_kept_within_their_budget_and_read_only(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    files = write_set(tmp_path / "data", 6)
    nbytes = files[0].nbytes
    decoded = []
    read = imageset.read_image
    monkeypatch.setattr(imageset, "read_image", lambda path: decoded.append(path) or read(path))
    cache = imageset.DecodedFiles()
    monkeypatch.setenv(imageset.DECODE_CACHE_ENV, str(2.5 * nbytes / 2**20))  # room for two images
    paths = [r.path for r in files.records]
    first = [cache.read(p) for p in paths[:2]]
    again = [cache.read(p) for p in paths[:2]]
    assert len(decoded) == 2 and all(a is b for a, b in zip(first, again))  # decoded once
    with pytest.raises(ValueError, match="read-only"):
        again[0][0, 0, 0] = 1
    cache.read(paths[2])  # evicts the least recently used (paths[0])
    cache.read(paths[1])
    assert len(decoded) == 3
    cache.read(paths[0])
    assert len(decoded) == 4
    np.testing.assert_array_equal(cache.read(paths[0]), read(paths[0]))
    stat = paths[0].stat()
    paths[0].write_bytes(paths[3].read_bytes())  # a changed file (new size or time) is decoded again
    os.utime(paths[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    np.testing.assert_array_equal(cache.read(paths[0]), read(paths[3]))
    monkeypatch.setenv(imageset.DECODE_CACHE_ENV, "0")
    cache.read(paths[4])
    assert cache._bytes == 0 and not cache._items
    monkeypatch.setenv(imageset.DECODE_CACHE_ENV, "lots")
    with pytest.raises(DataError, match="ANONAUDIT_DECODE_CACHE_MB"):
        cache.read(paths[5])
