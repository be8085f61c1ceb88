"""The audit of one release from two folders (``anonaudit audit ORIGINALS RELEASE --kind ...``).

A data steward holds the original images and the anonymized release, not a config. This builds
the equivalent audit config: the originals as a ``labeled_folder`` data set (with the labels CSV
when given), the release as an ``external`` target paired by file name (every released file must
pair with an original: a file nobody audited must not be certified), and every attack and utility
metric of that kind that works offline, those needing labels only when the originals carry them:

============ ========================================================== ==========================
kind         always                                                     with labels
============ ========================================================== ==========================
``plates``   metadata; ssim, psnr, plate_detectability, FD-pixels16      ``text``: ocr, deblur_ocr,
                                                                        depixelate_ocr
``faces``    metadata, detector_miss (MTCNN); ssim, psnr,                ``identity``: reid (dlib,
             face_detection_rate (MTCNN), identity_distance (dlib)       other photos, parrot);
                                                                        ``gender``: gender (dlib)
============ ========================================================== ==========================

Faces with identity or gender labels keep 30% of the images (of the people, identity-disjoint, when
identities are known) as the intruder's auxiliary data, which the gender attack trains on;
otherwise every image is audited.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .data.loaders import load_labeled_folder
from .errors import ConfigError

#: Per kind: ``(component spec, labels it needs on the originals)``.
ATTACKS: dict[str, list[tuple[dict[str, Any], tuple[str, ...]]]] = {
    "plates": [
        ({"name": "metadata"}, ()),
        ({"name": "ocr", "engine": "rapidocr"}, ("text",)),
        ({"name": "deblur_ocr"}, ("text",)),
        ({"name": "depixelate_ocr"}, ("text",)),
    ],
    "faces": [
        ({"name": "metadata"}, ()),
        ({"name": "detector_miss", "detector": "mtcnn"}, ()),
        ({"name": "reid", "embedder": "dlib", "gallery": "other_images", "parrot": True}, ("identity",)),
        ({"name": "gender", "features": "embedding", "embedder": "dlib"}, ("gender",)),
    ],
}
EVALUATORS: dict[str, list[dict[str, Any]]] = {
    "plates": [{"name": "ssim"}, {"name": "psnr"}, {"name": "plate_detectability"}, {"name": "frechet_distance"}],
    "faces": [{"name": "ssim"}, {"name": "psnr"}, {"name": "face_detection_rate", "detector": "mtcnn"},
              {"name": "identity_distance", "embedder": "dlib"}],
}


def _labels_present(originals: str | Path, labels: str | Path | None) -> set[str]:
    """The labels every original carries (``text``, ``identity`` or an attribute column such as ``gender``)."""
    if labels is None:
        return set()
    images = load_labeled_folder(originals, labels=labels)
    found = {f for f in ("text", "identity") if images.has_labels(f)}
    columns = set().union(*(r.attributes.keys() for r in images.records)) if len(images) else set()
    return found | {c for c in columns if all(v not in (None, "") for v in images.attribute(c))}


def release_config(
    originals: str | Path,
    release: str | Path,
    kind: str,
    labels: str | Path | None = None,
    output: str | Path | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """The audit config (a mapping, as YAML would give it) of ``release`` against ``originals``."""
    if kind not in ATTACKS:
        raise ConfigError(f"kind must be one of {sorted(ATTACKS)}, got {kind!r}")
    originals, release = Path(originals).resolve(), Path(release).resolve()
    labels_path = None if labels is None else Path(labels).resolve()
    present = _labels_present(originals, labels_path)
    attacks = [dict(spec) for spec, needs in ATTACKS[kind] if set(needs) <= present]
    auxiliary: dict[str, Any] = {"fraction": 0.0}
    if kind == "faces" and "identity" in present:
        auxiliary = {"fraction": 0.3, "by": "identity"}
    elif kind == "faces" and "gender" in present:
        auxiliary = {"fraction": 0.3}
    name = f"audit-{release.name}"
    raw: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "data": {"name": "labeled_folder", "root": str(originals), "labels": None if labels_path is None else str(labels_path)},
        "auxiliary": auxiliary,
        "targets": [{"name": "external", "path": str(release)}],
        "attacks": attacks,
        "evaluators": [dict(spec) for spec in EVALUATORS[kind]],
        "seed": seed,
        "output": str(Path(output).resolve() if output else Path("runs", name).resolve()),
    }
    return raw
