"""Shared by the face attacks: re-applying a release's public anonymizer to the attacker's own
images, and identity-disjointness checks. The embedding helpers they share with the evaluators
(embedders by spec, the fallback face crop) are in :mod:`anonaudit.models.faces.embedding`.
"""

from __future__ import annotations

from ..data.imageset import ImageSet, Release
from ..errors import DataError
from ..registry import ANONYMIZERS


def public_anonymizer(release: Release):
    """The release's anonymizer, re-created from its registry name and parameters (as an attacker
    who knows the public method would), or ``(None, reason)`` when that is impossible.

    A trained method is public when its checkpoint is (a ``checkpoint`` parameter: the attacker
    loads the same weights); one trained inside the audit without a checkpoint is not.
    """
    if not release.name or release.name not in ANONYMIZERS:
        return None, f"the release's method '{release.name}' is not a registered anonymizer"
    anonymizer = ANONYMIZERS.create(release.name, **release.params)
    if not anonymizer.applies_to_new_images:
        return (
            None,
            (f"'{release.name}' is a ready-made release: it holds files for given names and cannot anonymize "
            "other images"),
        )
    if anonymizer.trainable and not release.params.get("checkpoint"):
        return None, (f"'{release.name}' is trainable and has no checkpoint: re-applying it needs its trained model, "
                      "which the release does not carry")
    return anonymizer, ""


def anonymized_auxiliary(release: Release, auxiliary: ImageSet) -> tuple[ImageSet | None, str]:
    """The intruder's ``auxiliary`` images as the release's method anonymizes them (labels kept),
    and how they were obtained; ``(None, reason)`` when they cannot be.

    When the release holds the auxiliary people's own released files (``release.auxiliary``, an
    external release) those are used, for the auxiliary images that have one; otherwise the public
    method is re-applied (:func:`public_anonymizer`).
    """
    if release.auxiliary is not None:
        have = set(release.auxiliary.keys)
        held = [release.auxiliary.index_of(k) for k in auxiliary.keys if k in have]
        if not held:
            return None, "the release holds no file of the auxiliary images"
        return release.auxiliary.subset(
            held
        ), f"the release's own files of {len(held)} of the {len(auxiliary)} auxiliary images"
    anonymizer, why = public_anonymizer(release)
    if anonymizer is None:
        return None, why
    return anonymizer.anonymize(
        auxiliary, show_progress=False
    ), f"the auxiliary images anonymized by {anonymizer.label()}"


def check_disjoint(auxiliary: ImageSet, release: Release, attack: str) -> None:
    """Refuse auxiliary data that shares identities with the evaluation originals."""
    if not auxiliary.has_labels("identity") or not release.originals.has_labels("identity"):
        return
    shared = sorted(set(auxiliary.identities) & set(release.originals.identities))
    if shared:
        raise DataError(
            f"attack '{attack}': the auxiliary data shares {len(shared)} identities with the evaluation images "
            f"(e.g. {shared[:3]}); the intruder's data must be identity-disjoint (split with by='identity')"
        )
