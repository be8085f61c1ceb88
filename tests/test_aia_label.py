"""AIA's label names its adversarial term: the default is not the paper's eq. (8)."""

from __future__ import annotations

from anonaudit.anonymizers.aia import AIA


def test_label_always_names_the_adversarial_term():
    assert AIA().label() == "aia(alpha=0.5, beta=0.5, adversary_loss=decorrelation)"
    assert AIA(adversary_loss="paper").label() == "aia(alpha=0.5, beta=0.5, adversary_loss=paper)"
    # the paper's AIA\T baseline: no utility task T (alpha = 0)
    assert AIA(alpha=0.0, adversary_loss="paper").label() == "aia(alpha=0, beta=0.5, adversary_loss=paper)"
