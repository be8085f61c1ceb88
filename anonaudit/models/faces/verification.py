"""Face verification accuracy on image pairs, LFW protocol (10-fold, threshold chosen on 9 folds)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ...data.imageset import ImageSet
from ...errors import DataError
from ...stats import Estimate, wilson_interval
from .base import FaceEmbedder


def best_threshold(similarity: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """The threshold (``same`` when ``similarity >= t``) with the highest accuracy, and that accuracy.

    Every cut between consecutive sorted similarities is tried (exhaustive, like LFW's protocol);
    the threshold is the midpoint of the cut.
    """
    sim = np.asarray(similarity, dtype=float)
    lab = np.asarray(same, dtype=bool)
    if sim.size == 0:
        raise ValueError("no pairs to choose a threshold on")
    order = np.argsort(sim, kind="stable")
    s, y = sim[order], lab[order]
    # cut k: pairs order[:k] predicted different, order[k:] predicted same
    diff_below = np.concatenate([[0], np.cumsum(~y)])
    same_above = y.sum() - np.concatenate([[0], np.cumsum(y)])
    correct = diff_below + same_above
    valid = np.ones(len(s) + 1, dtype=bool)
    valid[1:-1] = s[1:] > s[:-1]  # a cut between equal values is not realisable
    k = int(np.argmax(np.where(valid, correct, -1)))
    if k == 0:
        t = s[0] - 1e-6
    elif k == len(s):
        t = s[-1] + 1e-6
    else:
        t = (s[k - 1] + s[k]) / 2
    return float(t), float(correct[k] / len(s))


def stratified_folds(same: np.ndarray, folds: int, seed: int = 0) -> np.ndarray:
    """Fold number of every pair: each class shuffled with ``seed`` and dealt round-robin to folds."""
    same = np.asarray(same, dtype=bool)
    out = np.empty(len(same), dtype=int)
    rng = np.random.default_rng(seed)
    for cls in (True, False):
        idx = np.flatnonzero(same == cls)
        out[rng.permutation(idx)] = np.arange(len(idx)) % folds
    return out


def verification_accuracy(similarity: np.ndarray, same: np.ndarray, folds: int = 10, seed: int = 0) -> Estimate:
    """k-fold verification accuracy: threshold from the other folds, accuracy on each held-out fold.

    ``value`` is the share of pairs classified correctly when held out (every pair is tested once),
    with a Wilson 95% CI; ``extra`` has the per-fold accuracies (LFW reports their mean and std),
    thresholds, balanced accuracy and the threshold-free ROC AUC.
    """
    sim = np.asarray(similarity, dtype=float)
    lab = np.asarray(same, dtype=bool)
    n_same, n_diff = int(lab.sum()), int((~lab).sum())
    if min(n_same, n_diff) < folds:
        raise DataError(
            f"{folds}-fold verification needs >= {folds} matched and mismatched pairs, got {n_same} and {n_diff}"
        )
    fold = stratified_folds(lab, folds, seed)
    pred = np.zeros(len(sim), dtype=bool)
    accs, thresholds = [], []
    for f in range(folds):
        test = fold == f
        t, _ = best_threshold(sim[~test], lab[~test])
        pred[test] = sim[test] >= t
        accs.append(float(np.mean(pred[test] == lab[test])))
        thresholds.append(t)
    correct = int(np.sum(pred == lab))
    lo, hi = wilson_interval(correct, len(lab))
    from sklearn.metrics import roc_auc_score

    tpr, tnr = float(np.mean(pred[lab])), float(np.mean(~pred[~lab]))
    return Estimate(
        correct / len(lab),
        lo,
        hi,
        len(lab),
        method=f"{folds}-fold verification accuracy (threshold chosen on the other folds), Wilson 95% CI",
        extra={
            "fold_accuracies": accs,
            "fold_mean": float(np.mean(accs)),
            "fold_std": float(np.std(accs, ddof=1)),
            "thresholds": thresholds,
            "true_accept_rate": tpr,
            "true_reject_rate": tnr,
            "balanced_accuracy": (tpr + tnr) / 2,
            "roc_auc": float(roc_auc_score(lab, sim)),
            "n_same": n_same,
            "n_different": n_diff,
        },
    )


def verify_pairs(
    embedder: FaceEmbedder,
    images: ImageSet,
    pairs: Sequence[tuple[str, str, bool]],
    folds: int = 10,
    seed: int = 0,
    batch_size: int = 32,
) -> Estimate:
    """LFW-protocol verification accuracy of ``embedder`` on ``pairs`` of ``images`` keys.

    ``pairs`` are ``(key_a, key_b, same_person)`` (as ``anonaudit.data.face_loaders.load_lfw_pairs``
    returns them). Only the images the pairs use are embedded. Similarity is the cosine of the
    L2-normalised embeddings. Pairs where either face is not detected are excluded and counted in
    ``extra["dropped_no_face"]``; when any is excluded the estimate is flagged non-standard.
    Folds are drawn at random per class (stratified, ``seed``), as ``pairsDevTrain``-style files
    have no fold structure.
    """
    if not pairs:
        raise DataError("verify_pairs: no pairs given")
    known = set(images.keys)
    unknown = sorted({k for a, b, _ in pairs for k in (a, b) if k not in known})
    if unknown:
        raise DataError(f"verify_pairs: {len(unknown)} pair image(s) not in '{images.name}': {unknown[:5]}")
    needed = sorted({k for a, b, _ in pairs for k in (a, b)}, key=images.index_of)
    pos = {k: j for j, k in enumerate(needed)}
    emb = embedder.embed(images.subset([images.index_of(k) for k in needed]), batch_size=batch_size)
    ok_face = np.all(np.isfinite(emb), axis=1)
    ia = np.array([pos[a] for a, _, _ in pairs])
    ib = np.array([pos[b] for _, b, _ in pairs])
    same = np.array([bool(s) for _, _, s in pairs])
    keep = ok_face[ia] & ok_face[ib]
    sim = np.sum(emb[ia[keep]] * emb[ib[keep]], axis=1)
    est = verification_accuracy(sim, same[keep], folds, seed)
    dropped = int((~keep).sum())
    extra = dict(
        est.extra,
        n_pairs_given=len(pairs),
        dropped_no_face=dropped,
        dropped_same=int((~keep & same).sum()),
        dropped_different=int((~keep & ~same).sum()),
        images_without_face=int((~ok_face).sum()),
        n_images=len(needed),
        embedder=embedder.name,
    )
    reason = (
        f"{dropped} of {len(pairs)} pairs excluded because a face was not detected (accuracy on the rest)"
        if dropped
        else ""
    )
    return Estimate(
        est.value, est.ci_low, est.ci_high, est.n, est.method, standard=not dropped, reason=reason, extra=extra
    )
