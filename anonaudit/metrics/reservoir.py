"""A uniform reservoir sample of paired feature rows (Vitter's algorithm R), for bootstrap CIs and
KID, whose kernels need the samples themselves: memory stays bounded however many images stream by."""

from __future__ import annotations

import numpy as np


class PairReservoir:
    """Keeps a uniform sample of at most ``capacity`` rows of two aligned arrays."""

    def __init__(self, capacity: int, seed: int = 0):
        if capacity < 2:
            raise ValueError(f"reservoir capacity must be >= 2, got {capacity}")
        self.capacity = capacity
        self.seed = seed
        self.seen = 0
        self._rng = np.random.default_rng(seed)
        self._a: np.ndarray | None = None
        self._b: np.ndarray | None = None
        self._filled = 0

    def update(self, a: np.ndarray, b: np.ndarray) -> None:
        a, b = np.asarray(a), np.asarray(b)
        if len(a) != len(b):
            raise ValueError(f"paired rows differ in number: {len(a)} vs {len(b)}")
        if self._a is None and len(a):
            self._a = np.empty((self.capacity, *a.shape[1:]), a.dtype)
            self._b = np.empty((self.capacity, *b.shape[1:]), b.dtype)
        for i in range(len(a)):
            if self._filled < self.capacity:
                slot = self._filled
                self._filled += 1
            else:
                slot = int(self._rng.integers(0, self.seen + 1))
            if slot < self.capacity:
                self._a[slot], self._b[slot] = a[i], b[i]
            self.seen += 1

    @staticmethod
    def merged(parts: list[PairReservoir]) -> PairReservoir:
        """A reservoir of the ``parts``' streams one after another, in order (capacity and seed of the
        first). While every row seen fits (``seen <= capacity``) it keeps them all in stream order, as
        one pass does; beyond, it is a uniform sample of the union (a multivariate hypergeometric
        number of rows from each part, drawn uniformly from its sample): as uniform as one pass's
        sample, but another draw."""
        out = PairReservoir(parts[0].capacity, seed=parts[0].seed)
        total = sum(p.seen for p in parts)
        if total <= out.capacity:
            for part in parts:
                if part._a is not None:
                    out.update(*part.arrays())
            return out
        rng = np.random.default_rng([out.seed, total])
        take = rng.multivariate_hypergeometric([p.seen for p in parts], out.capacity)
        rows = []
        for part, k in zip(parts, take):
            a, b = part.arrays()
            keep = np.sort(rng.choice(len(a), size=int(k), replace=False))
            rows.append((a[keep], b[keep]))
        out._a = np.concatenate([a for a, _ in rows if len(a)])
        out._b = np.concatenate([b for _, b in rows if len(b)])
        out._filled, out.seen, out._rng = out.capacity, total, rng
        return out

    @property
    def complete(self) -> bool:
        """True when every row seen is kept."""
        return self._filled == self.seen

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if self._a is None:
            return np.empty((0, 0)), np.empty((0, 0))
        return self._a[: self._filled], self._b[: self._filled]
