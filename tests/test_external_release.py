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
from anonaudit.errors import DataError, MismatchError


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
        originals,
        [ExternalRelease(path=str(rel))],
        attacks=[
            GenderInference(features="pixels", adaptive=True, n_boot=50),
            GenderInference(features="pixels", n_boot=50),
        ],
        aux_fraction=0.25,
        seed=0,
        on_error="raise",
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


def test_a_renamed_release_pairs_through_a_table_and_its_names_no_longer_leak(tmp_path):
    from anonaudit.attacks.metadata import MetadataLeak

    originals, rel = on_disk(tmp_path)
    by_name = ExternalRelease(path=str(rel)).anonymize(originals)
    named = MetadataLeak().run(Release(originals, by_name, "external", {}))
    assert named.metric("files_named_after_identity").release.value == 1.0  # rel/p000/0.png: the identity's folder
    assert named.details["named_like_original"].all()
    renamed = tmp_path / "renamed"
    lines = ["released,original"]
    for i, key in enumerate(originals.keys):
        write_image(renamed / f"{i:04d}.png", swap_red_blue(originals[i]))
        lines.append(f"{i:04d}.png,{key}.png")
    table = tmp_path / "pairs.csv"
    table.write_text("\n".join(lines) + "\n")
    released = ExternalRelease(path=str(renamed), pairs=str(table)).anonymize(originals)
    assert released.keys == originals.keys and released.records[5].path.name == "0005.png"
    assert np.array_equal(released[5], swap_red_blue(originals[5]))
    result = MetadataLeak().run(Release(originals, released, "external", {}))
    for name in ("files_named_after_identity", "files_with_leak"):
        assert result.metric(name).release.value == 0.0 and result.metric(name).release.n == 36, name
    assert not result.details["named_like_original"].any()
    assert result.metric("files_named_after_identity").original.value == 1.0


def test_pairs_table_errors_name_the_line(tmp_path):
    originals, rel = on_disk(tmp_path)
    table = tmp_path / "pairs.csv"
    cases = {
        "released,source\np000/0.png,p000/0\n": "needs the columns 'released' and 'original'",
        "released,original\np000/0.png,p000/0\nnope.png,p000/1\n": r"pairs.csv:3: released file 'nope.png' is not "
        r"an image",
        "released,original\np000/0.png,p000/0\np000/0.png,p000/1\n": r"pairs.csv:3: released file 'p000/0.png' is "
        r"listed twice",
        "released,original\np000/0.png,\n": r"pairs.csv:2: no original named",
    }
    for text, message in cases.items():
        table.write_text(text)
        with pytest.raises(DataError, match=message):
            ExternalRelease(path=str(rel), pairs=str(table), on_mismatch="drop").anonymize(originals)
    table.write_text("released,original\np000/0.png,p000/0\np000/1.png,p000/0.jpg\n")  # two files for one original
    with pytest.raises(DataError, match="two released files map to the same original name 'p000/0'"):
        ExternalRelease(path=str(rel), pairs=str(table), on_mismatch="drop").anonymize(originals)
    table.write_text("released,original\np000/0.png,p000/1\np000/1.png,p000/0\n")  # swapped on purpose
    target = ExternalRelease(path=str(rel), pairs=str(table), on_mismatch="drop")
    out = target.anonymize(originals)
    assert out.keys == ["p000/0", "p000/1"] and out.records[0].path.name == "1.png"
    assert len(target.unpaired_["extra"]) == 34 and len(target.unpaired_["missing"]) == 34


def test_a_trained_method_is_public_only_with_its_checkpoint(tmp_path):
    originals = ImageSet.from_arrays([np.zeros((8, 8, 3), np.uint8)] * 2, identities=["a", "b"])
    release = Release(originals, originals, "face_dcgan", {"image_size": 32})
    anonymizer, why = public_anonymizer(release)
    assert anonymizer is None and "no checkpoint" in why
    checkpoint = str(tmp_path / "checkpoint.pt")
    anonymizer, why = public_anonymizer(
        Release(originals, originals, "face_dcgan", {"image_size": 32, "checkpoint": checkpoint})
    )
    assert why == "" and anonymizer.get_params()["checkpoint"] == checkpoint and anonymizer.trainable
