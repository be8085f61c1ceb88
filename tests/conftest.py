"""Fixtures shared by the tests, and the rule for tests that need ``../shared/data``.

A test that needs the shared data carries ``@pytest.mark.shared_data("lfw")`` (the sub-folder it
reads, or none for the whole folder). Outside CI it is skipped with a reason when the folder is
absent (a user's fresh clone has no ``../shared``); in CI (``CI`` set) the data is always there, so
its absence fails the test instead of silently skipping it. A test that calls :func:`shared_path`
gets the same treatment. Likewise ``@pytest.mark.debian("tesseract")`` for tests that drive a Debian
program: skipped with the install command on a fresh machine, failed in CI (which installs it).
"""

from __future__ import annotations

import pytest
from shared_data import SHARED_DATA, debian_program, in_ci, shared_path

from anonaudit.data.imageset import ImageSet

LFW_IMAGES = SHARED_DATA / "lfw" / "images"


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in item.iter_markers("shared_data"):
        shared_path(*marker.args)
    for marker in item.iter_markers("debian"):
        for program in marker.args:
            debian_program(program)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    """In CI, a skip whose reason points at the shared data is a failure, marked test or not."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and in_ci() and isinstance(report.longrepr, tuple):
        reason = str(report.longrepr[2])
        if "shared" in reason and ("data" in reason or "lfw" in reason.lower()):
            report.outcome = "failed"
            report.longrepr = f"skipped in CI although CI always has ../shared/data: {reason}"
#: Five LFW photos: three of one person, two of others.
LFW_SAMPLE = (
    "Aaron_Peirsol/Aaron_Peirsol_0001.jpg",
    "Aaron_Peirsol/Aaron_Peirsol_0002.jpg",
    "Aaron_Peirsol/Aaron_Peirsol_0003.jpg",
    "Abdel_Nasser_Assidi/Abdel_Nasser_Assidi_0001.jpg",
    "AJ_Cook/AJ_Cook_0001.jpg",
)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Small CPU tensors run faster on one thread, above all on a shared machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def faces() -> ImageSet:
    """:data:`LFW_SAMPLE` read into memory, keyed by path, with identities."""
    shared_path("lfw/images")
    from anonaudit.data.io import read_image

    return ImageSet.from_arrays([read_image(LFW_IMAGES / f) for f in LFW_SAMPLE], keys=list(LFW_SAMPLE),
                                identities=[f.split("/")[0] for f in LFW_SAMPLE])
