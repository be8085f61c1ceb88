"""The audit of one release from two folders (``anonaudit audit ORIGINALS RELEASE --kind ...``).

A data steward holds the original images and the anonymized release, not a config. This builds
the equivalent audit config: the originals as a ``labeled_folder`` data set (with the labels CSV
when given), the release as an ``external`` target paired by file name (every released file must
pair with an original: a file nobody audited must not be certified), and every registered attack and
evaluator that declares the kind in its ``folder_audit`` (the parameters it runs with; see
:class:`~anonaudit.params.ParamsMixin`), an attack only when the originals carry every label column
it reads (:meth:`~anonaudit.attacks.base.Attack.labels_read`) and it needs nothing the two folders
cannot give (``needs``: a target object, training keys, shadows). No list is kept here: a new
component that declares ``folder_audit`` runs without any other edit. Today (checked by a test):

============ ========================================================== ==========================
kind         always                                                     with labels
============ ========================================================== ==========================
``plates``   ``metadata``, ``plates_left_readable``;                    ``text``: ``deblur_ocr``,
             ``frechet_distance``, ``plate_detectability``, ``psnr``,    ``depixelate_ocr``, ``ocr``
             ``ssim``
``faces``    ``detector_miss``, ``metadata``; ``face_detection_rate``,  ``identity``: ``reid``;
             ``identity_distance``, ``psnr``, ``ssim``                  ``gender``: ``gender``
============ ========================================================== ==========================

Attacks and evaluators run in the order of their names. Faces with identity or gender labels keep
30% of the images (of the people, identity-disjoint, when identities are known) as the intruder's
auxiliary data, which the gender attack trains on; otherwise every image is audited.

A labels CSV must have a row for every original (the files it misses are named in the error).
:func:`audit_notes` says which attacks a config leaves out for want of labels, and warns when the
labels' columns are those of the other kind (``--kind plates`` with identity/gender labels, say).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from .data.imageset import ImageSet
from .data.loaders import load_labeled_folder
from .errors import ConfigError, DataError
from .params import RELEASE_KINDS
from .registry import ATTACKS, EVALUATORS, Registry


def folder_components(registry: Registry, kind: str) -> list[tuple[dict[str, Any], tuple[str, ...]]]:
    """``(component spec, label columns it reads)`` of every component of ``registry`` that declares
    ``kind`` in its own ``folder_audit`` (not inherited: a subclass opts in for itself) and needs
    nothing beyond the two folders, in the order of their names."""
    found = []
    for name in registry.names():
        cls = registry.get(name)
        declared = vars(cls).get("folder_audit") or {}
        if kind not in declared:
            continue
        params = dict(declared[kind])
        component = registry.create(name, **params)
        if getattr(component, "needs", ()):
            continue
        labels = component.labels_read() if callable(getattr(component, "labels_read", None)) else ()
        found.append(({"name": name, **params}, tuple(labels)))
    return found


def folder_attacks(kind: str) -> list[tuple[dict[str, Any], tuple[str, ...]]]:
    """The attacks of the audit of two folders of ``kind``, with the label columns each reads."""
    return folder_components(ATTACKS, kind)


def folder_evaluators(kind: str) -> list[dict[str, Any]]:
    """The evaluators of the audit of two folders of ``kind``."""
    return [spec for spec, _ in folder_components(EVALUATORS, kind)]


#: What each label column an attack needs holds, for the messages.
LABEL_MEANING = {"text": "the plate text", "identity": "the person's identity", "gender": "the person's gender"}
#: The ``on_mismatch`` of the external target for each ``--on-mismatch`` of ``anonaudit audit``.
ON_MISMATCH = {"error": "raise", "drop": "drop"}
#: Files named in a message before "and N more".
SHOWN = 5


def _names(keys: list[str]) -> str:
    more = f" and {len(keys) - SHOWN} more" if len(keys) > SHOWN else ""
    return ", ".join(keys[:SHOWN]) + more


def _labelled(originals: Path, labels: Path) -> ImageSet:
    """The originals with their labels; every image in ``originals`` must have a row in ``labels``."""
    images = load_labeled_folder(originals, labels=labels)
    unlabelled = sorted(set(ImageSet.from_folder(originals).keys) - set(images.keys))
    if unlabelled:
        raise DataError(
            f"{labels}: no labels for {len(unlabelled)} of the {len(images) + len(unlabelled)} images in {originals}: "
            f"{_names(unlabelled)}; add a row for each (column path, relative to {originals}), move them out of "
            "the folder, or audit without --labels"
        )
    return images


def _empty(images: ImageSet, column: str) -> list[str]:
    """Keys of the images whose ``column`` label is empty."""
    if column in ("text", "identity"):
        return [r.key for r in images.records if getattr(r, column) in (None, "")]
    return [r.key for r in images.records if r.attributes.get(column) in (None, "")]


def _labels_present(originals: str | Path, labels: str | Path | None) -> set[str]:
    """The labels every original carries (``text``, ``identity`` or an attribute column such as ``gender``)."""
    if labels is None:
        return set()
    images = _labelled(Path(originals), Path(labels))
    columns = {"text", "identity"} | (
        set().union(*(r.attributes.keys() for r in images.records)) if len(images) else set()
    )
    return {c for c in columns if len(images) and not _empty(images, c)}


def _header(labels: Path) -> set[str]:
    """The column names of a labels CSV (already checked by :func:`_labelled`)."""
    with labels.open(encoding="utf-8-sig", newline="") as f:
        return {c.strip() for c in next(csv.reader(f), [])}


def audit_notes(config: dict[str, Any]) -> list[str]:
    """What the audit ``config`` of :func:`release_config` leaves out for want of labels, one line per
    missing label column (the attacks and why), and a warning when the labels' columns are those of
    the other kind."""
    kind, data = config["kind"], config["data"]
    originals, labels = Path(data["root"]), data.get("labels")
    images = _labelled(originals, Path(labels)) if labels else None
    header = _header(Path(labels)) if labels else set()
    run = {a["name"] for a in config["attacks"]}
    attacks = folder_attacks(kind)
    notes = []
    for column in sorted({c for _, needs in attacks for c in needs}):
        skipped = [spec["name"] for spec, needs in attacks if column in needs and spec["name"] not in run]
        if not skipped:
            continue
        if images is None:
            why = "without --labels,"
        elif column not in header:
            why = f"{labels} has no {column} column, so"
        else:
            empty = _empty(images, column)
            why = f"{labels} leaves {column} empty for {len(empty)} image(s) ({_names(empty)}), so"
        notes.append(f"{why} {', '.join(skipped)} {'is' if len(skipped) == 1 else 'are'} not run: "
                     f"{'it needs' if len(skipped) == 1 else 'they need'} {LABEL_MEANING.get(column, column)} "
                     f"of every image (column {column})")
    return notes + _kind_warning(kind, header, labels)


def _kind_warning(kind: str, header: set[str], labels: str | None) -> list[str]:
    """A warning when the labels have none of ``kind``'s label columns but another kind's."""
    own = {c for _, needs in folder_attacks(kind) for c in needs}
    if not labels or own & header:
        return []
    for other in sorted(set(RELEASE_KINDS) - {kind}):
        theirs = sorted({c for _, needs in folder_attacks(other) for c in needs} & header)
        if theirs:
            return [(f"warning: --kind {kind}, but {labels} has no {' or '.join(sorted(own))} column and has "
                    f"{', '.join(theirs)}, the labels of {other}: is --kind {other} meant?")]
    return []


def release_config(
    originals: str | Path,
    release: str | Path,
    kind: str,
    labels: str | Path | None = None,
    output: str | Path | None = None,
    seed: int = 0,
    on_mismatch: str = "error",
) -> dict[str, Any]:
    """The audit config (a mapping, as YAML would give it) of ``release`` against ``originals``.

    ``on_mismatch`` (see :data:`ON_MISMATCH`): ``"error"`` fails the release's audit when a file of
    either folder has no counterpart, ``"drop"`` audits the pairs that exist and lists the others."""
    if kind not in RELEASE_KINDS:
        raise ConfigError(f"kind must be one of {sorted(RELEASE_KINDS)}, got {kind!r}")
    if on_mismatch not in ON_MISMATCH:
        raise ConfigError(f"on_mismatch must be one of {sorted(ON_MISMATCH)}, got {on_mismatch!r}")
    originals, release = Path(originals).resolve(), Path(release).resolve()
    labels_path = None if labels is None else Path(labels).resolve()
    present = _labels_present(originals, labels_path)
    attacks = [spec for spec, needs in folder_attacks(kind) if set(needs) <= present]
    auxiliary: dict[str, Any] = {"fraction": 0.0}
    if kind == "faces" and "identity" in present:
        auxiliary = {"fraction": 0.3, "by": "identity"}
    elif kind == "faces" and "gender" in present:
        auxiliary = {"fraction": 0.3}
    name = f"audit-{release.name}"
    raw: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "data": {
            "name": "labeled_folder",
            "root": str(originals),
            "labels": None if labels_path is None else str(labels_path),
        },
        "auxiliary": auxiliary,
        "targets": [
            {"name": "external", "path": str(release)}
            | ({} if on_mismatch == "error" else {"on_mismatch": ON_MISMATCH[on_mismatch]})
        ],
        "attacks": attacks,
        "evaluators": folder_evaluators(kind),
        "seed": seed,
        "output": str(Path(output).resolve() if output else Path("runs", name).resolve()),
    }
    return raw
