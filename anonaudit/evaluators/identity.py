"""Identity distance (paper 004's ID_DIS): how far the anonymized face moved from the original's identity.

``identity_distance``: per image pair, ``1 - cos(e_original, e_anonymized)`` of the face embeddings
(between 0 and 2), averaged with a bootstrap 95% CI. Paper 004 computes it with ArcFace; with any
other embedder (the offline default is dlib's ResNet) the number is labelled non-standard. Pairs
where no face is found on either side have no distance: they are left out and counted in
``Estimate.extra`` (``no_face_original``, ``no_face_anonymized``).

``box="own"`` embeds the face the embedder's detector finds on the anonymized image;
``box="original"`` embeds the anonymized image at the face found on its original (same region,
also where anonymization defeats the detector; needs a detecting embedder such as dlib).

Higher means more de-identified (the anonymization goal in paper 004), so ``higher_is_better`` is
True; the measurement's ``original`` is the originals' own distance, 0 by definition.
"""

from __future__ import annotations

import numpy as np

from ..data.imageset import Release
from ..errors import ConfigError
from ..measurement import Measurement
from ..registry import EVALUATORS
from ..stats import Estimate, mean_estimate
from .base import Evaluator


@EVALUATORS.register("identity_distance")
class IdentityDistance(Evaluator):
    """Mean ``1 - cosine`` between original and anonymized face embeddings."""

    higher_is_better = True

    param_alternatives = {"embedder": ("pixels",), "box": ("original",)}
    folder_audit = {"faces": {"embedder": "dlib"}}

    def __init__(self, embedder: str | dict = "dlib", box: str = "own"):
        if box not in ("own", "original"):
            raise ConfigError(f"identity_distance: box must be 'own' or 'original', got {box!r}")
        self.embedder = embedder
        self.box = box
        self._model = None  # the embedder, loaded on first use (a cache, not state)
        self._distances: list[float]
        self.add_state("_distances", [], merge="cat")
        self.add_state("_no_face_original", 0, merge="sum")
        self.add_state("_no_face_anonymized", 0, merge="sum")
        super().__init__()

    def update(self, release: Release) -> None:
        from ..models.faces.embedding import embed_at_faces, make_embedder

        if self._model is None:
            self._model = make_embedder(self.embedder)
            if self.box == "original" and not hasattr(self._model, "main_faces"):
                raise ConfigError(
                    f"identity_distance: box='original' needs a detecting embedder, not '{self._model.name}'"
                )
        a = np.asarray(self._model.embed(release.originals), np.float64)
        if self.box == "own":
            b = np.asarray(self._model.embed(release.anonymized), np.float64)
        else:
            faces = self._model.main_faces([release.originals[i] for i in range(len(release))])
            b = np.asarray(embed_at_faces(self._model, release.anonymized, faces), np.float64)
        ok_a, ok_b = np.all(np.isfinite(a), axis=1), np.all(np.isfinite(b), axis=1)
        self._no_face_original += int((~ok_a).sum())
        self._no_face_anonymized += int((ok_a & ~ok_b).sum())
        both = ok_a & ok_b
        self._distances += (1.0 - np.sum(a[both] * b[both], axis=1)).tolist()

    def compute(self) -> Measurement:
        from ..models.faces.embedding import embedder_name

        name = embedder_name(self.embedder)
        est = mean_estimate(
            self._distances, f"mean 1 - cosine of {name} face embeddings (original vs anonymized), bootstrap 95% CI"
        )
        standard = name.startswith("arcface")
        reason = "" if standard else f"paper 004's ID_DIS uses ArcFace embeddings; this uses {name}"
        extra = {
            "pairs": len(self._distances),
            "no_face_original": self._no_face_original,
            "no_face_anonymized": self._no_face_anonymized,
            "box": self.box,
        }
        n = len(self._distances)
        original = Estimate(0.0, 0.0, 0.0, n, "an embedding's distance to itself: 0 by definition", standard, reason)
        return self.measurement(
            Estimate(est.value, est.ci_low, est.ci_high, est.n, est.method, standard, reason, extra), original=original
        )
