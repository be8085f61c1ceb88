"""Inception Score (Salimans et al. 2016) from class logits, streamed over splits.

``IS = exp(E_x KL(p(y|x) || p(y)))`` computed separately on ``splits`` disjoint groups of images;
the score is the mean over groups and the spread their standard deviation (``ddof=0`` as in the
original improved-GAN code). Groups are assigned round-robin (image ``i`` goes to group
``i % splits``) so the score streams without knowing the number of images in advance; the
original code uses contiguous chunks of the (arbitrarily ordered) image list, which is the same
procedure up to the order of images. Each group keeps only ``sum p``, ``sum p log p`` and a count.
"""

from __future__ import annotations

import numpy as np
from scipy import special
from scipy import stats as _st

from ..errors import DataError


class SplitInceptionScore:
    """Streaming Inception Score over ``splits`` round-robin groups."""

    def __init__(self, splits: int = 10):
        if splits < 1:
            raise DataError(f"splits must be >= 1, got {splits}")
        self.splits = splits
        self.n = 0
        self._count = np.zeros(splits)
        self._sum_p: np.ndarray | None = None
        self._sum_plogp = np.zeros(splits)

    def update(self, logits: np.ndarray) -> None:
        z = np.asarray(logits, np.float64)
        if z.ndim != 2 or not np.all(np.isfinite(z)):
            raise DataError(f"logits must be a finite (n, classes) array, got shape {z.shape}")
        if self._sum_p is None:
            self._sum_p = np.zeros((self.splits, z.shape[1]))
        logp = special.log_softmax(z, axis=1)
        p = np.exp(logp)
        group = (self.n + np.arange(len(z))) % self.splits
        np.add.at(self._count, group, 1.0)
        np.add.at(self._sum_p, group, p)
        np.add.at(self._sum_plogp, group, (p * logp).sum(axis=1))
        self.n += len(z)

    @staticmethod
    def merged(parts: list[SplitInceptionScore]) -> SplitInceptionScore:
        """One accumulator of the ``parts``' logits streamed one after another, in order (equal to one
        pass up to float rounding): each part's round-robin groups start where the parts before it
        left off, so its sums are rotated by the number of logits already seen."""
        out = SplitInceptionScore(parts[0].splits)
        for part in parts:
            if part.splits != out.splits:
                raise DataError(f"cannot merge Inception Score accumulators of {part.splits} and {out.splits} splits")
            if part._sum_p is None:
                continue
            shift = out.n % out.splits  # the part's group g is group (g + shift) % splits of the whole stream
            if out._sum_p is None:
                out._sum_p = np.zeros_like(part._sum_p)
            out._count += np.roll(part._count, shift)
            out._sum_p += np.roll(part._sum_p, shift, axis=0)
            out._sum_plogp += np.roll(part._sum_plogp, shift)
            out.n += part.n
        return out

    def scores(self) -> np.ndarray:
        """The Inception Score of each group."""
        if self.n < self.splits:
            raise DataError(
                f"Inception Score with {self.splits} splits needs at least {self.splits} images, got {self.n}"
            )
        marginal = self._sum_p / self._count[:, None]
        entropy_term = np.where(marginal > 0, marginal * np.log(np.where(marginal > 0, marginal, 1.0)), 0.0).sum(axis=1)
        return np.exp(self._sum_plogp / self._count - entropy_term)

    def compute(self) -> tuple[float, float, float, float]:
        """``(mean, std, ci_low, ci_high)``: the CI is a t-interval over the independent groups."""
        s = self.scores()
        mean = float(s.mean())
        if self.splits < 2:
            return mean, 0.0, float("nan"), float("nan")
        half = float(_st.t.ppf(0.975, self.splits - 1) * s.std(ddof=1) / np.sqrt(self.splits))
        return mean, float(s.std()), mean - half, mean + half


def inception_score(logits: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """``(mean, std)`` of the Inception Score of ``logits`` ``(n, classes)`` over round-robin splits."""
    acc = SplitInceptionScore(splits)
    acc.update(logits)
    mean, std, _, _ = acc.compute()
    return mean, std
