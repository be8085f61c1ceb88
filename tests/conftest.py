"""Fixtures shared by the face-model tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from anonaudit.data.imageset import ImageSet

LFW_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "data" / "lfw" / "images"
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
    if not LFW_IMAGES.is_dir():
        pytest.skip(f"needs the shared LFW images at {LFW_IMAGES} (absent in a fresh clone)")
    from anonaudit.data.io import read_image

    return ImageSet.from_arrays([read_image(LFW_IMAGES / f) for f in LFW_SAMPLE], keys=list(LFW_SAMPLE),
                                identities=[f.split("/")[0] for f in LFW_SAMPLE])
