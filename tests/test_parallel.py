"""Worker processes: same results in the same order as in-process, for any worker count, and a
broken pool falls back to computing here."""

from __future__ import annotations

import os

import numpy as np
import pytest
from face_data import lfw_people, needs_lfw

from anonaudit import parallel
from anonaudit.errors import ConfigError

PARENT = os.getpid()


def square_with_pid(items: list[int]) -> list[tuple[int, int]]:
    return [(i * i, os.getpid()) for i in items]


def die_in_worker(items: list[int]) -> list[int]:
    if os.getpid() != PARENT:
        os._exit(3)
    return [i + 1 for i in items]


@pytest.fixture(autouse=True)
def _fresh_pool():
    yield
    parallel.shutdown()


@pytest.mark.parametrize("workers", ["1", "2", "3"])
def test_results_in_order_for_any_worker_count(monkeypatch, workers):
    monkeypatch.setenv("ANONAUDIT_WORKERS", workers)
    items = list(range(50))
    out = parallel.map_chunks(square_with_pid, items)
    assert [v for v, _ in out] == [i * i for i in items]
    pids = {pid for _, pid in out}
    if workers == "1":
        assert pids == {os.getpid()}
    else:
        assert os.getpid() not in pids and 1 <= len(pids) <= int(workers)


def test_small_batches_stay_in_process(monkeypatch):
    monkeypatch.setenv("ANONAUDIT_WORKERS", "4")
    out = parallel.map_chunks(square_with_pid, list(range(10)), min_per_worker=8)
    assert {pid for _, pid in out} == {os.getpid()}


def test_broken_pool_falls_back_with_a_warning(monkeypatch):
    monkeypatch.setenv("ANONAUDIT_WORKERS", "2")
    with pytest.warns(RuntimeWarning, match="worker processes failed"):
        assert parallel.map_chunks(die_in_worker, list(range(20))) == list(range(1, 21))
    assert parallel.map_chunks(square_with_pid, [2] * 16)[0][0] == 4  # a new pool starts afterwards


@pytest.mark.parametrize("bad", ["0", "-2", "many"])
def test_bad_worker_setting_is_a_config_error(monkeypatch, bad):
    monkeypatch.setenv("ANONAUDIT_WORKERS", bad)
    with pytest.raises(ConfigError, match="ANONAUDIT_WORKERS must be a positive integer"):
        parallel.worker_count()


@needs_lfw
def test_dlib_embeddings_identical_with_workers(monkeypatch):
    pytest.importorskip("dlib", reason="dlib not installed")
    from anonaudit import memo
    from anonaudit.registry import EMBEDDERS, load_builtin_components

    images = lfw_people(6)
    load_builtin_components()
    model = EMBEDDERS.create("dlib")
    monkeypatch.setenv("ANONAUDIT_WORKERS", "1")
    serial = model.embed(images)
    memo.clear_memory()
    monkeypatch.setenv("ANONAUDIT_WORKERS", "2")
    pooled = model.embed(images)
    np.testing.assert_array_equal(serial, pooled)
    assert len(images) >= 12 and np.isfinite(serial).all(axis=1).sum() >= 12


@pytest.mark.parametrize("workers", ["1", "2", "3"])
def test_thread_map_keeps_input_order_and_values(monkeypatch, workers):
    import threading

    from scipy import ndimage

    monkeypatch.setenv("ANONAUDIT_WORKERS", workers)
    rng = np.random.default_rng(0)
    images = [rng.random((40, 50)) for _ in range(9)]
    seen: set[int] = set()

    def blur(image):
        seen.add(threading.get_ident())
        return ndimage.gaussian_filter(image, 1.5)

    out = parallel.thread_map(blur, images)
    for got, image in zip(out, images, strict=True):
        np.testing.assert_array_equal(got, ndimage.gaussian_filter(image, 1.5))
    assert len(seen) <= int(workers)
    seen.clear()
    assert len(parallel.thread_map(blur, images[:3])) == 3 and seen == {threading.get_ident()}  # few items: run here
