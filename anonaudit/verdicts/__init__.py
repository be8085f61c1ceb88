"""Decisions on a results table: policies, certification and the release certificate.

Everything here reads only an audit's output (the tidy results table, its manifest and the file
hashes the audit recorded); nothing runs a model. The public API::

    from anonaudit.verdicts import load_policy, certify, write_verdict, write_certificate

    policy = load_policy("strict")            # built-in name (strict, research) or a YAML path
    verdict = certify(results, policy)         # Results, or a run folder; kind read from the run
    verdict.overall                            # "PASS" | "FAIL" | "NOT TESTED"
    verdict.targets                            # {target_label: "PASS" | "FAIL" | "NOT TESTED"}
    verdict.criteria                           # {target_label: [CriterionResult, ...]}, policy order
    verdict.to_dict()                          # JSON-ready, the content of RUN/verdict.json
    write_verdict(verdict, run)                # RUN/verdict.json (atomic)
    write_certificate(results, verdict)        # RUN/certificate.json (atomic): verdict + manifest

``CriterionResult`` fields (also the keys of each criterion in ``verdict.json``): ``id``,
``description``, ``select`` (``component/metric`` glob), ``on`` (``value`` or ``risk``),
``comparison`` (``<=``, ``<``, ``>=``, ``>``, ``==``), ``threshold_text`` (as written, e.g.
``2x chance``), ``threshold`` (the number it resolved to on the judged row), ``bound`` (``upper``,
``lower`` or ``value``: which end of the 95% CI is compared), ``status`` (``PASS``, ``FAIL``,
``NOT TESTED``), ``reason`` (why, in words), and for the judged row (the worst matching one)
``component``, ``metric``, ``value``, ``ci_low``, ``ci_high``, ``n``, ``baseline``,
``bound_value``.

Rules: a criterion FAILS when any matching row's bound breaks the threshold (so a CI that
straddles a risk threshold fails); otherwise it is NOT TESTED when its attack or evaluator was
absent, unavailable or failed, or measured nothing (n = 0) or cannot be resolved at the sample size;
otherwise it PASSES, unless the target has released files that were not fully audited (``files.csv``:
skipped, unpaired, partly read) or the run recorded no file statuses: fail closed, such a criterion is
NOT TESTED and names the files. A target FAILS if
any criterion fails, is NOT TESTED if any is not tested, and PASSES only when all pass. The run's
overall verdict is FAIL if any target fails, NOT TESTED if any is not tested, PASS otherwise.
``anonaudit certify RUN --policy strict`` and ``anonaudit audit ORIGINALS RELEASE --kind plates``
(which runs the audit first, see :mod:`anonaudit.release_audit`) exit 0 on PASS, 1 on FAIL, 2 on
NOT TESTED and 3 on an error. Built-in policies: ``strict`` (strict-public-release) and
``research`` (research-sharing), in ``policies/`` and linked from ``configs/policies/``; the file
format is in :mod:`anonaudit.verdicts.policy`.
"""

from .certificate import build_certificate, write_certificate
from .certify import (
    EXIT_CODES,
    FAIL,
    NOT_APPLICABLE,
    NOT_TESTED,
    PASS,
    CriterionResult,
    Verdict,
    certify,
    format_verdict,
    run_kind,
    write_verdict,
)
from .policy import BUILTIN, Criterion, Policy, Threshold, load_policy, parse_policy

__all__ = [
    "BUILTIN",
    "EXIT_CODES",
    "FAIL",
    "NOT_APPLICABLE",
    "NOT_TESTED",
    "PASS",
    "Criterion",
    "CriterionResult",
    "Policy",
    "Threshold",
    "Verdict",
    "build_certificate",
    "certify",
    "format_verdict",
    "load_policy",
    "parse_policy",
    "run_kind",
    "write_certificate",
    "write_verdict",
]
