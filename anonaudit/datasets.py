"""Data sets: synthetic plates and loaders for plate and face data on disk.

Each returns an :class:`~anonaudit.data.imageset.ImageSet`::

    from anonaudit import datasets
    plates = datasets.synthetic_plates(n=200, seed=0)
    us = datasets.load_labeled_folder("../shared/data/plates_us")

They are registered in :data:`anonaudit.registry.DATASETS`, so an audit config's
``data: {name: synthetic_plates, n: 200, seed: 0}`` is ``DATASETS.create(name, **params)``:

==================== =========================================
registry name        function
==================== =========================================
``synthetic_plates`` :func:`synthetic_plates`
``labeled_folder``   :func:`load_labeled_folder`
``openalpr_scenes``  :func:`load_openalpr_scenes`
``pascal_voc``       :func:`load_pascal_voc`
``lfw``              :func:`load_lfw`
``celeba``           :func:`load_celeba`
==================== =========================================

Every loader takes ``limit`` (and ``seed`` to choose which images) for quick runs.
"""

from __future__ import annotations

from .data.face_loaders import load_celeba, load_lfw, load_lfw_pairs
from .data.loaders import load_labeled_folder, load_openalpr_scenes, load_pascal_voc
from .data.synthetic_plates import PLATE_TEXT_RE, STATE_CODES, synthetic_plates
from .registry import DATASETS

__all__ = [
    "PLATE_TEXT_RE",
    "STATE_CODES",
    "load_celeba",
    "load_labeled_folder",
    "load_lfw",
    "load_lfw_pairs",
    "load_openalpr_scenes",
    "load_pascal_voc",
    "synthetic_plates",
]

for _name, _fn in (
    ("synthetic_plates", synthetic_plates),
    ("labeled_folder", load_labeled_folder),
    ("openalpr_scenes", load_openalpr_scenes),
    ("pascal_voc", load_pascal_voc),
    ("lfw", load_lfw),
    ("celeba", load_celeba),
):
    DATASETS.register(_name)(_fn)
