"""The white-box protocol: what a trained anonymizer lets an auditor read beyond its released images.

A membership, memorisation or differential-privacy audit needs more than the release: the keys of
the images the method trained on, its critic, its reconstruction error, samples, or the ability
to train it again. Each anonymizer declares what it provides in the class attribute ``provides``
(words of :data:`CAPABILITIES`; :meth:`~anonaudit.anonymizers.base.Anonymizer.capabilities` may
narrow it per instance, e.g. MIKU's pretrained StyleGAN mapper trains nothing) and implements the
matching public methods:

==================  =================================================================================
capability          what the target implements
==================  =================================================================================
``training_keys``   after ``fit``, ``training_keys_``: the keys of the images it trained on
``critic``          ``critic_scores(images) -> (n,) float``: the critic / discriminator output on each
                    image's regions (mean over the regions; nan for an image without one)
``reconstruct``     ``reconstruction_errors(images) -> (n,) float``: the mean squared error of each
                    image through the method's encoder and decoder, at its working resolution
``generate``        ``generate(n, generator) -> torch.Tensor`` ``(n, 3, S, S)`` in [-1, 1]: samples
                    drawn with the noise of ``generator`` (a ``torch.Generator``)
``retrain``         ``retrained(images, seed) -> Anonymizer``: a fresh copy with the same public
                    parameters trained on ``images`` exactly as this one was trained (the same number
                    of optimisation steps, batch size and schedule; ``seed`` for its randomness);
                    ``training_recipe()`` says how
``representation``  ``represent(images) -> (n, d) float``: the feature vectors the method releases
``image_dp``        ``image_dp_claim(record, shape) -> ImageDPClaim``: a per-image differential-privacy
                    claim (epsilon, delta, m pixel values, the protected regions), and a ``seed``
                    parameter that draws the noise afresh (:mod:`~anonaudit.anonymizers.dp_pix`)
==================  =================================================================================

Attacks declare what they need in ``needs`` (these words, and what the release itself must carry:
:data:`~anonaudit.attacks.base.NEEDS`); the audit runner checks the target provides each before the
attack runs, and records "not applicable" with the missing capability otherwise. Nothing probes a
target's attributes: an undeclared capability is absent.

:func:`membership_signal` turns the critic or the reconstruction error into one per-model
standardised membership score (higher = more likely a member), the signal of the LiRA and
one-run DP audits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError, DataError

if TYPE_CHECKING:
    from ..data.imageset import ImageSet

#: The fixed vocabulary of white-box capabilities.
CAPABILITIES: tuple[str, ...] = ("training_keys", "critic", "reconstruct", "generate", "retrain", "representation",
                                 "image_dp")

#: The public method (or fitted attribute) each capability stands for.
CAPABILITY_MEMBERS: dict[str, str] = {
    "training_keys": "training_keys_",
    "critic": "critic_scores",
    "reconstruct": "reconstruction_errors",
    "generate": "generate",
    "retrain": "retrained",
    "representation": "represent",
    "image_dp": "image_dp_claim",
}

#: Membership signals: the capability each reads.
SIGNALS: dict[str, str] = {"critic": "critic", "reconstruction": "reconstruct"}

#: Reconstruction errors are compared on a log scale; this floor keeps an exact reconstruction finite.
ERROR_FLOOR = 1e-12


class WhiteBoxError(DataError):
    """A target does not provide the white-box capability an audit asked for."""


def check_capabilities(words: Any, where: str) -> tuple[str, ...]:
    """``words`` as a tuple of :data:`CAPABILITIES`; a :class:`ConfigError` naming ``where`` and the
    unknown words otherwise (a string instead of a tuple included)."""
    if isinstance(words, str) or not isinstance(words, (tuple, list, frozenset, set)):
        raise ConfigError(f"{where}: capabilities must be a tuple of words of {CAPABILITIES}, got {words!r}")
    unknown = [w for w in words if w not in CAPABILITIES]
    if unknown:
        raise ConfigError(f"{where}: unknown white-box capabilities {unknown} (known: {', '.join(CAPABILITIES)})")
    return tuple(words)


def capabilities(target: Any) -> frozenset[str]:
    """The capabilities ``target`` provides: its declared ones (none for no target)."""
    if target is None:
        return frozenset()
    return frozenset(check_capabilities(target.capabilities(), f"target {target.label()}"))


def missing(target: Any, needs: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The white-box words of ``needs`` that ``target`` does not provide (other words are ignored)."""
    have = capabilities(target)
    return tuple(n for n in needs if n in CAPABILITIES and n not in have)


def require(target: Any, capability: str, who: str) -> None:
    """Raise :class:`WhiteBoxError` unless ``target`` provides ``capability`` (``who`` names the caller)."""
    check_capabilities((capability,), who)
    if target is None or capability not in capabilities(target):
        label = "no target" if target is None else f"target {target.label()}"
        have = sorted(capabilities(target))
        raise WhiteBoxError(
            f"{who}: {label} provides no {capability} (needs: {capability}; provides: {', '.join(have) or 'nothing'})"
        )


def standardise(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``(values - mean) / std`` with the mean and standard deviation of ``reference`` (finite entries).

    One model's scores are only comparable with another's after this: a critic is defined up to an
    added constant (and a scale), so LiRA compares each model's score of a candidate relative to the
    same model's scores of a common reference set. Raises :class:`DataError` when the reference set
    has fewer than two finite scores or no spread.
    """
    ref = np.asarray(reference, float)
    ref = ref[np.isfinite(ref)]
    if len(ref) < 2 or not np.std(ref) > 0:
        raise DataError(
            f"cannot standardise a membership signal over {len(ref)} finite reference scores with no spread"
        )
    return (np.asarray(values, float) - ref.mean()) / ref.std()


def raw_signal(target: Any, images: ImageSet, signal: str) -> np.ndarray:
    """The unstandardised membership signal (higher = member): the critic's score, or minus the log of
    the reconstruction error (log: errors differ between models by a factor, which standardising a
    log turns into a shift)."""
    if signal not in SIGNALS:
        raise ConfigError(f"membership signal must be one of {sorted(SIGNALS)}, got {signal!r}")
    require(target, SIGNALS[signal], f"membership signal '{signal}'")
    if signal == "critic":
        return np.asarray(target.critic_scores(images), float)
    return -np.log(np.asarray(target.reconstruction_errors(images), float) + ERROR_FLOOR)


def default_signal(target: Any) -> str:
    """The signal a target supports: ``critic`` when it has one, else ``reconstruction``."""
    have = capabilities(target)
    for signal, capability in SIGNALS.items():
        if capability in have:
            return signal
    raise WhiteBoxError(
        f"target {target.label()} provides neither a critic nor a reconstruction (needs: critic or reconstruct)"
    )


def membership_signal(
    target: Any, images: ImageSet, signal: str | None = None, reference: ImageSet | None = None
) -> np.ndarray:
    """Per-model standardised membership score of each of ``images`` (higher = more likely a member).

    ``signal``: ``"critic"`` (the critic / discriminator score) or ``"reconstruction"`` (minus the log
    reconstruction error); default: the critic when the target has one. The raw signal is standardised
    by its mean and standard deviation over ``reference`` (default: ``images`` themselves) under the
    same model, so scores of different models (a target and its shadows, or runs with different
    seeds) are on one scale. An image the signal cannot score (e.g. no region to crop) is nan.
    """
    signal = signal or default_signal(target)
    values = raw_signal(target, images, signal)
    ref = values if reference is None else raw_signal(target, reference, signal)
    return standardise(values, ref)
