"""The parrot classifier (McPherson, Shokri and Shmatikov, "Defeating Image Obfuscation with Deep
Learning", 2016): a network trained on *anonymized* photos of the gallery people names the people in
anonymized photos, where a recogniser trained on clear faces fails.

**Attacker model (closed set, as the paper).** The intruder holds labelled photos of every gallery
person, other than the released ones, and the release's method in a form it can run on them
(:func:`~anonaudit.attacks.replay.attacker_anonymizer`: the target's own anonymizer when the release
carries it, else the public method from the registry, else the declared operator; with none of these,
the released files of its photos, which it labels: the release itself is anonymized photos of the
gallery people). It anonymizes its photos, trains a small CNN from pixels (three conv-BN-ReLU-pool
blocks, global average pooling, a linear layer over the identities; RGB crops of the face centre,
``size`` x ``size``, random horizontal flips) to tell the people apart, and classifies every released
face.

**Protocol.** The evaluation originals play the intruder's photos of the gallery people, with the
probe's own photo never among them: each person's photos are dealt round-robin (seeded order) into
``folds`` folds; for each fold a CNN is trained on the other folds' photos, anonymized by the
attacker, and identifies the released images of the fold. A probe whose person has no photo outside
its fold is not evaluated (counted in the notes). The classes are the people with a training photo,
so chance is ``min(k, N) / N`` for ``N`` of them.

Metrics (higher = more successful attack): ``rank1`` and ``rank5``, the share of evaluated probes
whose identity is among the CNN's top k (ties broken at random, seeded: a network that sees nothing
ranks like a guess), Wilson 95% CIs, with chance as the baseline. The "original" value (the upper
bound) is the same protocol with nothing anonymized: a CNN trained on clear photos identifies clear
photos. Each probe ranked first is a finding. The training cost (steps, seconds, per fold) is in the
notes and in each metric's ``extra``; trained weights are cached (:mod:`anonaudit.attacks.learned`).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from ..data.imageset import ImageSet, Release
from ..models.small_nets import TrainingCost, cache_key, cached_network, fit_network
from ..params import check_range
from ..registry import ATTACKS
from ..stats import proportion
from .attribute import crops
from .base import Attack, AttackMetric, AttackResult, FileFinding
from .learned import budget, check_threads, images_digest, torch_threads
from .reid import identification_ranks
from .replay import attacker_anonymizer

RANKS = (1, 5)


def fold_of(identities: list[str], folds: int, seed: int) -> np.ndarray:
    """Fold of each image: every identity's images, in a seeded random order, dealt round-robin."""
    rng = np.random.default_rng(seed)
    out = np.zeros(len(identities), dtype=int)
    ids = np.asarray(identities, dtype=object)
    for person in sorted(set(identities)):
        idx = np.flatnonzero(ids == person)
        out[rng.permutation(idx)] = np.arange(len(idx)) % folds
    return out


def classifier_net(n_classes: int, width: int = 32):
    """Three conv-BN-ReLU-pool blocks (``width``, 2x, 4x channels), global average pooling, dropout
    and a linear layer over ``n_classes``."""
    from torch import nn

    def block(i: int, o: int) -> list:
        return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True), nn.MaxPool2d(2)]

    return nn.Sequential(
        *block(3, width), *block(width, 2 * width), *block(2 * width, 4 * width),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(4 * width, n_classes),
    )


def to_tensor(x: np.ndarray):
    """``(n, s, s, 3)`` uint8 -> ``(n, 3, s, s)`` float in [-0.5, 0.5]."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).float().div(255.0).sub(0.5)


@ATTACKS.register("parrot_classifier")
class ParrotClassifier(Attack):
    """Identify anonymized faces with a CNN trained on the attacker's own anonymized photos of the gallery people."""

    requires = ("identity",)
    criteria = ("singling_out", "linkability")
    attacker_holds = ("release", "method", "gallery_other")
    attacker_trains = "a CNN classifier of the gallery people on their other photos, anonymized by the method"
    test_params = {"steps": 60, "size": 24, "width": 8, "lr": 5e-3, "threads": 1}

    def __init__(
        self,
        steps: int = 600,
        max_seconds: float | None = 600.0,
        batch_size: int = 32,
        lr: float = 2e-3,
        size: int = 48,
        width: int = 32,
        folds: int = 2,
        threads: int | None = None,
        seed: int = 0,
    ):
        budget("parrot_classifier", steps, max_seconds, batch_size, lr)
        check_threads("parrot_classifier", threads)
        for name, value, low in (("size", size, 8), ("width", width, 1), ("folds", folds, 2)):
            check_range(self, name, value, ge=low, integer=True)
        self.steps = steps
        self.max_seconds = max_seconds
        self.batch_size = batch_size
        self.lr = lr
        self.size = size
        self.width = width
        self.folds = folds
        self.threads = threads
        self.seed = seed

    # -- training and scoring ---------------------------------------------------------------------
    def _train(self, x: np.ndarray, y: np.ndarray, n_classes: int, key: str) -> tuple[object, TrainingCost]:
        """A classifier trained (or loaded from the cache under ``key``) on crops ``x`` with labels ``y``."""
        import torch

        torch.manual_seed(int(self.seed))
        net = classifier_net(n_classes, self.width)
        xt, yt = to_tensor(x), torch.from_numpy(y.astype(np.int64))

        def batch(rng: np.random.Generator, n: int) -> tuple:
            idx = torch.from_numpy(rng.integers(0, len(xt), min(n, len(xt))))
            flip = torch.from_numpy(rng.random(len(idx)) < 0.5)
            return torch.where(flip[:, None, None, None], xt[idx].flip(3), xt[idx]), yt[idx]

        def loss(model, xb, yb):
            return torch.nn.functional.cross_entropy(model(xb), yb)

        plan = budget(self.name, self.steps, self.max_seconds, self.batch_size, self.lr)
        with torch_threads(self.threads):
            return cached_network("parrot-classifier", key, net,
                                  lambda m: fit_network(m, batch, loss, plan, int(self.seed)))

    def _scores(self, net, x: np.ndarray) -> np.ndarray:
        """Class logits, in float64 rounded to 1e-6 so identical inputs tie exactly."""
        import torch

        with torch.no_grad(), torch_threads(self.threads):
            out = [net(to_tensor(x[s : s + 256])).double().numpy() for s in range(0, len(x), 256)]
        return np.round(np.concatenate(out), 6) if out else np.zeros((0, 0))

    def _identify(self, train_set: ImageSet, probes: ImageSet, folds: np.ndarray, what: str, target: str):
        """Per probe: 1-based rank of its identity (0: not evaluated) and the number of classes; and
        the training cost of each fold."""
        ids = [str(i) for i in train_set.identities]
        x_train, x_probe = crops(train_set, self.size), crops(probes, self.size)
        ranks, n_classes = np.zeros(len(ids), dtype=int), np.zeros(len(ids), dtype=int)
        costs = []
        for f in range(self.folds):
            held = np.flatnonzero(folds != f)
            classes = sorted({ids[i] for i in held})
            test = np.flatnonzero((folds == f) & np.isin(np.asarray(ids, dtype=object), classes))
            if len(classes) < 2 or len(test) == 0:
                continue
            y = np.array([classes.index(ids[i]) for i in held])
            key = cache_key(what=what, target=target, images=images_digest(train_set.subset(held.tolist())),
                            labels=[ids[i] for i in held], n_classes=len(classes),
                            **{k: v for k, v in self.get_params().items() if k != "threads"})
            net, done = self._train(x_train[held], y, len(classes), key)
            costs.append(done)
            r, _ = identification_ranks(self._scores(net, x_probe[test]), [ids[i] for i in test], classes,
                                        int(self.seed) + f)
            ranks[test], n_classes[test] = r, len(classes)
        return ranks, n_classes, costs

    # -- the attack -------------------------------------------------------------------------------
    def run(self, release: Release) -> AttackResult:
        self.check_labels(release)
        anonymizer, how = attacker_anonymizer(release)
        if anonymizer is None:
            gallery = release.anonymized
            how = f"nothing: it trained on the released files of its photos instead ({how})"
        else:
            gallery = anonymizer.anonymize(release.originals, show_progress=False)
        ids = [str(i) for i in release.originals.identities]
        folds = fold_of(ids, self.folds, int(self.seed))
        target = f"{release.name}:{sorted(release.params.items())}"
        ranks, n_cls, costs = self._identify(gallery, release.anonymized, folds, "anonymized", target)
        ranks_o, _, costs_o = self._identify(release.originals, release.originals, folds, "clear", "")
        seconds = sum(c.seconds for c in costs + costs_o)
        extra = {"training_seconds": round(seconds, 2), "training_steps": sum(c.steps for c in costs + costs_o),
                 "weights_cached": all(c.cached for c in costs + costs_o)}
        metrics = [self._metric(k, ranks, n_cls, ranks_o, extra) for k in RANKS]
        evaluated = ranks > 0
        notes = [
            (f"attacker anonymized its photos with {how}; small CNN from pixels ({self.size}x{self.size} face-centre "
             f"crops, width {self.width}), {self.folds} folds, {int(evaluated.sum())} of {len(ids)} probes evaluated "
             f"(the others' people have no photo outside their fold) against "
             f"{int(np.median(n_cls[evaluated])) if evaluated.any() else 0} identities"),
            "training on anonymized photos: " + "; ".join(c.describe() for c in costs),
            "training on clear photos (upper bound): " + "; ".join(c.describe() for c in costs_o),
        ]
        details = pd.DataFrame({"key": release.keys, "identity": ids, "fold": folds, "rank": ranks,
                                "rank_original": ranks_o, "classes": n_cls})
        findings = [
            FileFinding(key, "reidentified",
                        f"rank 1 of {n} identities, parrot classifier (identity withheld; rerun with --embed-examples)",
                        tuple(f"rank{k}" for k in RANKS), example=f"rank 1 of {n} identities, parrot classifier: {who}")
            for key, who, rank, n in zip(release.keys, ids, ranks, n_cls) if rank == 1
        ]
        return AttackResult(self.name, metrics, details, notes, findings)

    def _metric(self, k: int, ranks: np.ndarray, n_cls: np.ndarray, ranks_o: np.ndarray, extra: dict) -> AttackMetric:
        on, orig = ranks > 0, ranks_o > 0
        method = f"rank-{k} identification rate of the parrot classifier over probes, Wilson 95% CI"
        release = proportion(ranks[on] <= k, method)
        original = proportion(ranks_o[orig] <= k, method + " (trained and tested on clear photos)")
        release = dataclasses.replace(release, extra=dict(extra))
        chance = float(np.mean(np.minimum(k, n_cls[on]) / n_cls[on])) if on.any() else float("nan")
        return AttackMetric(f"rank{k}", release, original, chance,
                            f"rank-{k} identification by a CNN trained on anonymized photos of the gallery people")
