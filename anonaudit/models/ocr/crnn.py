"""A small CRNN plate reader trained with CTC: the parrot recogniser's network.

McPherson, Shokri and Shmatikov ("Defeating Image Obfuscation with Deep Learning", 2016) train a
recogniser on *obfuscated* images; here the recogniser reads plate text. The network is a
convolutional stack (four 3x3 conv-BN-ReLU layers, the height pooled away) over a plate crop resized
to ``size`` = (height, width), two 1-D convolutions over the resulting columns (each column sees its
neighbours: the context a recurrent layer would give, at a fraction of the cost on a CPU) and a
per-column linear layer to the plate alphabet plus the CTC blank. :func:`train_crnn` trains it on
(image, text) samples the caller draws (CTC loss, seeded, budgeted and optionally cached: see
:mod:`anonaudit.models.small_nets`); :meth:`CRNNReader.read` decodes greedily (best class per column,
repeats merged, blanks dropped), so every reading is made of the alphabet's characters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import ConfigError
from ..restorer import resize_to, to_tensor
from ..small_nets import Budget, TrainingCost, cached_network, fit_network
from .base import PLATE_CHARS, Reading

#: ``samples_fn(rng, n)`` -> (images, texts): uint8 (n, height, width, 3) at the reader's size and
#: ``n`` texts over the alphabet, drawn with the seeded generator ``rng``.
SamplesFn = Callable[[np.random.Generator, int], tuple[np.ndarray, Sequence[str]]]


def build_crnn(n_classes: int, hidden: int = 64, channels: int = 16) -> Any:
    """A fresh CRNN (torch module): (n, 3, h, w) in [-1, 1] -> (w / 4, n, n_classes + 1) log-probabilities
    (class 0 is the CTC blank); ``h`` and ``w`` multiples of 8 and 4. ``channels``: of the first
    convolution (doubling twice); ``hidden``: half the channels of the column convolutions."""
    import torch
    from torch import nn

    def conv(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    c = int(channels)

    class CRNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                *conv(3, c), nn.MaxPool2d(2),
                *conv(c, 2 * c), nn.MaxPool2d(2),
                *conv(2 * c, 4 * c), nn.MaxPool2d((2, 1)),
                *conv(4 * c, 4 * c),
            )
            self.context = nn.Sequential(
                nn.Conv1d(4 * c, 2 * int(hidden), 3, padding=1), nn.BatchNorm1d(2 * int(hidden)), nn.ReLU(inplace=True),
                nn.Conv1d(2 * int(hidden), 2 * int(hidden), 3, padding=1), nn.BatchNorm1d(2 * int(hidden)),
                nn.ReLU(inplace=True),
            )
            self.out = nn.Conv1d(2 * int(hidden), n_classes + 1, 1)

        def forward(self, x):
            f = self.features(x).mean(dim=2)  # (n, c, w / 4): the height averaged away
            logits = self.out(self.context(f))  # (n, classes, t)
            return torch.log_softmax(logits.permute(2, 0, 1), dim=-1)

    return CRNN()


def check_reader_size(size: Sequence[int]) -> tuple[int, int]:
    """``size`` as (height, width), multiples of 8 and 4, at least (8, 16); else :class:`ConfigError`."""
    if not isinstance(size, (list, tuple)) or len(size) != 2:
        raise ConfigError(f"crnn: size must be (height, width), got {size!r}")
    h, w = int(size[0]), int(size[1])
    if h < 8 or w < 16 or h % 8 or w % 4:
        raise ConfigError(
            f"crnn: size (height, width) must be multiples of 8 and 4, at least (8, 16), got {tuple(size)!r}"
        )
    return h, w


@dataclass
class CRNNReader:
    """A trained CRNN, the crop size it reads at, its alphabet and what training it cost."""

    net: Any
    size: tuple[int, int]
    alphabet: str
    cost: TrainingCost

    def read(self, crops: Sequence[np.ndarray], batch_size: int = 128) -> list[Reading]:
        """One :class:`Reading` per uint8 RGB crop: greedy CTC decoding; the confidence is the mean
        probability of the emitted characters' best columns (nan when nothing is read)."""
        import torch

        out: list[Reading] = []
        with torch.no_grad():
            for start in range(0, len(crops), batch_size):
                x = to_tensor(np.stack([resize_to(c, self.size) for c in crops[start:start + batch_size]]))
                probs = self.net(x).exp().permute(1, 0, 2).numpy()  # (n, t, classes)
                out.extend(greedy_decode(p, self.alphabet) for p in probs)
        return out


def greedy_decode(probs: np.ndarray, alphabet: str) -> Reading:
    """Best class per column, runs merged, blanks (class 0) dropped; confidence: mean of each
    emitted character's highest column probability."""
    best = probs.argmax(axis=1)
    text, conf = [], []
    prev = 0
    for t, k in enumerate(best):
        if k != 0 and k != prev:
            text.append(alphabet[k - 1])
            conf.append(probs[t, k])
        elif k != 0 and conf:
            conf[-1] = max(conf[-1], probs[t, k])
        prev = k
    return Reading("".join(text), float(np.mean(conf)) if conf else float("nan"))


def train_crnn(
    samples_fn: SamplesFn,
    size: Sequence[int],
    steps: int,
    seed: int,
    *,
    alphabet: str = PLATE_CHARS,
    batch_size: int = 32,
    lr: float = 2e-3,
    max_seconds: float | None = None,
    hidden: int = 64,
    channels: int = 16,
    cache_key: str | None = None,
) -> CRNNReader:
    """Train a CRNN with CTC on samples drawn by ``samples_fn`` (see :data:`SamplesFn`).

    At most ``steps`` Adam steps (one-cycle schedule) and ``max_seconds`` seconds, seeded. Texts
    must use only ``alphabet``. With a ``cache_key`` (from the target, the auxiliary set's identity,
    the seed, the budget) the weights are cached in the suite's cache and reused;
    ``reader.cost`` says whether they were trained or loaded, with the steps and seconds.
    """
    import torch

    hw = check_reader_size(size)
    budget = Budget(int(steps), max_seconds, int(batch_size), float(lr))
    index = {ch: i + 1 for i, ch in enumerate(alphabet)}
    torch.manual_seed(seed)
    net = build_crnn(len(alphabet), hidden, channels)

    def batch(rng: np.random.Generator, n: int) -> tuple[Any, Any, Any]:
        images, texts = samples_fn(rng, n)
        if images.shape != (n, *hw, 3) or len(texts) != n:
            raise ValueError(f"samples_fn returned {images.shape} and {len(texts)} texts, expected {(n, *hw, 3)}")
        bad = sorted({ch for t in texts for ch in t if ch not in index})
        if bad or not all(texts):
            raise ValueError(f"samples_fn returned empty texts or characters outside the alphabet: {bad}")
        targets = torch.tensor([index[ch] for t in texts for ch in t], dtype=torch.long)
        lengths = torch.tensor([len(t) for t in texts], dtype=torch.long)
        return to_tensor(images), targets, lengths

    def ctc(model: Any, x: Any, targets: Any, lengths: Any) -> Any:
        log_probs = model(x)
        frames = torch.full((x.shape[0],), log_probs.shape[0], dtype=torch.long)
        return torch.nn.functional.ctc_loss(log_probs, targets, frames, lengths, blank=0, zero_infinity=True)

    arch = f"crnn-h{int(hidden)}-c{int(channels)}-{hw[0]}x{hw[1]}-{alphabet}"
    key = None if cache_key is None else f"{cache_key}:{arch}:{budget}:{seed}"
    net, cost = cached_network("crnn", key, net, lambda m: fit_network(m, batch, ctc, budget, seed))
    return CRNNReader(net, hw, alphabet, cost)
