"""An external (folder) release audited with an identity-disjoint auxiliary split: the auxiliary
people's released files are expected, they are what the adaptive attacker trains on, and only files
that match no original at all are a mismatch."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from face_data import tinted_people

from anonaudit.anonymizers.external import ExternalRelease
from anonaudit.attacks.attribute import GenderInference
from anonaudit.attacks.face_common import anonymized_auxiliary, public_anonymizer
from anonaudit.attacks.reid import ReIdentification
from anonaudit.audit import Audit
from anonaudit.data.imageset import ImageSet, Release
from anonaudit.data.io import write_image
from anonaudit.errors import MismatchError


def swap_red_blue(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image[..., ::-1])


def on_disk(tmp_path: Path, stray: bool = False) -> tuple[ImageSet, Path]:
    """12 people x 3 images with a planted gender signal (red = male, blue = female) written to
    ``orig/``; the release in ``rel/`` swaps red and blue, so the signal is inverted in it."""
    people = tinted_people(12, 3, male_share=0.5, seed=3, prefix="p")
    paths = people.to_folder(tmp_path / "orig")
    originals = ImageSet([dataclasses.replace(r, path=p) for r, p in zip(people.records, paths)], name="people")
    for i, key in enumerate(people.keys):
        write_image(tmp_path / "rel" / f"{key}.png", swap_red_blue(people[i]))
    if stray:
        write_image(tmp_path / "rel" / "nobody.png", people[0])
    return originals, tmp_path / "rel"


def test_audit_with_an_auxiliary_split_pairs_the_auxiliary_peoples_files(tmp_path):
    originals, rel = on_disk(tmp_path)
    audit = Audit(
        originals, [ExternalRelease(path=str(rel))],
        attacks=[GenderInference(features="pixels", adaptive=True, n_boot=50), GenderInference(features="pixels", n_boot=50)],
        aux_fraction=0.25, seed=0, on_error="raise",
    )
    aux, evaluation = audit.split()
    assert len(aux) == 9 and len(evaluation) == 27  # 3 of 12 people, identity-disjoint
    t = audit.run(show_progress=False).table
    release = t[t["component"] == "release"].set_index("metric")
    assert release.loc["pairs", "value"] == 27 and release.loc["unpaired_release_files", "value"] == 0
    accuracy = t[t["metric"] == "accuracy"]
    adaptive, direct = accuracy["value"].tolist()
    # Trained on the auxiliary people's released (swapped) files, the adaptive attacker reads the
    # inverted signal; the attacker trained on original auxiliary images gets every image wrong.
    assert adaptive == 1.0 and direct == 0.0
    assert "the release's own files of 9 of the 9 auxiliary images" in accuracy.iloc[0]["message"]


def test_files_matching_no_original_are_still_a_mismatch(tmp_path):
    originals, rel = on_disk(tmp_path, stray=True)
    aux, evaluation = originals.split(0.25, seed=0, by="identity")
    with pytest.raises(MismatchError, match=r"1 released file\(s\) without an original \['nobody.png'\]"):
        ExternalRelease(path=str(rel)).anonymize_with_auxiliary(evaluation, aux)
    target = ExternalRelease(path=str(rel), on_mismatch="drop")
    released, released_aux = target.anonymize_with_auxiliary(evaluation, aux)
    assert released.keys == evaluation.keys and released_aux.keys == aux.keys
    assert target.unpaired_ == {"missing": [], "extra": ["nobody.png"]}
    assert np.array_equal(released_aux[0], swap_red_blue(aux[0]))
    assert released_aux.identities == aux.identities  # labels travel with the released files
    with pytest.raises(MismatchError, match=r"released file\(s\) without an original"):  # no auxiliary given
        ExternalRelease(path=str(rel)).anonymize(evaluation)


def test_attackers_use_the_released_files_instead_of_rerunning_an_external_release(tmp_path):
    originals, rel = on_disk(tmp_path)
    aux, evaluation = originals.split(0.25, seed=0, by="identity")
    released, released_aux = ExternalRelease(path=str(rel)).anonymize_with_auxiliary(evaluation, aux)
    release = Release(evaluation, released, "external", {"path": str(rel)}, auxiliary=released_aux)
    anonymizer, why = public_anonymizer(release)
    assert anonymizer is None and "ready-made release" in why
    held, how = anonymized_auxiliary(release, aux.subset(range(4)))
    assert held.keys == aux.keys[:4] and how == "the release's own files of 4 of the 4 auxiliary images"
    assert anonymized_auxiliary(Release(evaluation, released, "external", {"path": str(rel)}), aux)[0] is None
    # The parrot re-identifier needs to anonymize its own gallery: impossible without the method.
    result = ReIdentification(embedder="pixels", parrot=True, n_boot=20).fit(aux).run(release)
    assert not any(m.metric.startswith("parrot_") for m in result.metrics)
    assert any("parrot attacker skipped" in n and "ready-made release" in n for n in result.notes)
