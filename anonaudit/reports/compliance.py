"""Compliance report: the audit read against the Article 29 Working Party Opinion 05/2014 on
anonymisation techniques (singling out, linkability, inference) and the UK ICO motivated-intruder
test, with the attacker model, data sizes, what was not tested and the limitations.

:func:`compliance_model` builds the content once from the run's files (results table, manifest,
``verdict.json``, example images; no model is run); :func:`write_compliance_report` lays the same content out as HTML
(template ``compliance.html``) and PDF (:mod:`.pdf`).

Each attack class declares the criteria it tests (``criteria = ("inference",)``; required, checked by
:func:`anonaudit.testing.check_component`); nothing is guessed from names: an attack in the results
that declares none (or is no longer installed) is listed as not mapped. Each criterion's cell lists
the evidence of every attack that tests it (highest risk first), so criteria tested by different
attacks show different evidence.
The attacker model describes only the attacks that ran in the results table (configured attacks
that were unavailable, failed or not applicable are listed under what was not tested), each as it
declares itself (:meth:`~anonaudit.attacks.base.Attack.intruder`, built with the parameters the
manifest gives it): what the intruder holds, what it trains or searches, and the training cost the
attack reported in this run (its ``training_seconds`` row, steps as n, or the ``training_seconds`` and
``training_steps`` details of its rows) beside the seconds the attack took.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..fileio import write_atomic
from ..results import attacker_model, configured_params
from . import fmt
from .html import environment, report_context, risk_badges

if TYPE_CHECKING:
    from ..results import Results

#: Article 29 Working Party, Opinion 05/2014 on Anonymisation Techniques (WP216), section 2.2.
CRITERIA: dict[str, tuple[str, str]] = {
    "singling_out": (
        "Singling out",
        "the possibility to isolate some or all records which identify an individual in the dataset",
    ),
    "linkability": (
        "Linkability",
        ("the ability to link at least two records concerning the same data subject or a group of "
        "data subjects (either in the same database or in two different databases)"),
    ),
    "inference": (
        "Inference",
        ("the possibility to deduce, with significant probability, the value of an attribute from the "
        "values of a set of other attributes"),
    ),
}
MOTIVATED_INTRUDER = (
    "UK ICO motivated-intruder test: would a person with no prior knowledge, but reasonably competent, with access to "
    "resources such as the internet, libraries and public documents, and using investigative techniques (without "
    "specialist "
    "skills or equipment, and without criminal acts), succeed in re-identifying someone from the release?"
)
_LABELS = {"text": "the true plate text", "identity": "who is in each image", "gender": "each person's gender"}

LIMITATIONS = [
    ("Attacks give lower bounds on the risk: a stronger or better-informed intruder may do better than every attack "
    "run here."),
    "Risks are measured on the evaluated images only; another population, resolution or camera can behave differently.",
    ("A rate measured on n images has a 95% confidence interval whose width shrinks with n; small n cannot show "
    "small risks."),
    (
        "Relative risk compares the release with the same attack on the originals; an attack that is weak on the "
        "originals also says little about the release."
    ),
    ("Only the attacks listed were run; the criteria they do not cover, and the components that were unavailable or "
    "failed, "
    "are untested (see 'What was not tested')."),
    ("This report supports, and does not replace, the controller's own assessment of identifiability in context (the "
    "means reasonably likely to be used, other data the recipients hold, the release's audience)."),
]


def attack_criteria(name: str) -> tuple[str, ...]:
    """The criteria attack ``name`` declares (empty for one no longer installed)."""
    from ..registry import ATTACKS

    try:
        declared = tuple(getattr(ATTACKS.get(name), "criteria", ()) or ())
    except Exception:  # noqa: BLE001 - an attack no longer installed still appears in old results
        declared = ()
    unknown = [c for c in declared if c not in CRITERIA]
    if unknown:
        from ..errors import ConfigError

        raise ConfigError(f"attack '{name}' declares unknown criteria {unknown} (known: {', '.join(CRITERIA)})")
    return declared


def scored_with(name: str) -> list[str]:
    """The ground truth the audit (not the intruder) holds to score an attack (its ``requires``)."""
    from ..registry import ATTACKS

    try:
        requires = tuple(getattr(ATTACKS.get(name), "requires", ()) or ())
    except Exception:  # noqa: BLE001 - see attack_criteria
        requires = ()
    return [_LABELS.get(r, r) for r in requires]


_DETAIL = re.compile(r"(?:^|; )(training_seconds|training_steps|weights_cached)=([^;]+)")


def _reported_training(rows: pd.DataFrame) -> tuple[float, float | None, bool] | None:
    """The training one attack reported on one target: seconds, steps (None when not reported) and
    whether the weights came from the cache; None when it reported none. Its ``training_seconds`` row
    (steps as n) first, else the details in its rows' messages."""
    found: dict[str, str] = {}
    for message in rows["message"].dropna().astype(str):
        for key, value in _DETAIL.findall(message):
            found.setdefault(key, value.strip())
    cached = found.get("weights_cached", "").lower() == "true"
    row = rows[rows["metric"] == "training_seconds"]
    if not row.empty and pd.notna(row["value"].iloc[0]):
        steps = pd.to_numeric(row["n"], errors="coerce").iloc[0]
        return float(row["value"].iloc[0]), None if pd.isna(steps) else float(steps), cached
    if "training_seconds" not in found:
        return None
    steps = float(found["training_steps"]) if "training_steps" in found else None
    return float(found["training_seconds"]), steps, cached


def _span(values: list[float], unit: str, digits: int = 1) -> str:
    lo, hi = min(values), max(values)
    same = f"{lo:.{digits}f}" == f"{hi:.{digits}f}"
    return f"{lo:.{digits}f} {unit}" if same else f"{lo:.{digits}f} to {hi:.{digits}f} {unit}"


def attack_cost(rows: pd.DataFrame) -> str:
    """What one attack cost in this run (its ok rows, every target): the training seconds and steps it
    reported (:func:`_reported_training`) and the seconds the attack took per target, in words."""
    per_target = [(g, _reported_training(g)) for _, g in rows.groupby("target_label", sort=False)]
    parts = []
    trained = [t for _, t in per_target if t is not None]
    if trained:
        text = f"training {_span([t[0] for t in trained], 's')}"
        steps = [t[1] for t in trained if t[1] is not None]
        text += f", {_span(steps, 'steps', 0)}" if steps else ""
        if cached := sum(t[2] for t in trained):
            text += f" ({cached} of {len(trained)} loaded from the cache: seconds of the earlier training)"
        parts.append(text)
    seconds = [float(pd.to_numeric(g["seconds"], errors="coerce").max()) for g, _ in per_target]
    if seconds := [x for x in seconds if x == x]:
        parts.append(f"the whole attack {_span(seconds, 's')}")
    per = f"per target ({len(per_target)} targets): " if parts and len(per_target) > 1 else ""
    return per + "; ".join(parts)


def describe_attacker(name: str, manifest: dict[str, Any], rows: pd.DataFrame) -> dict[str, Any]:
    """One attack's row of the attacker model: ``holds`` (in words), ``kind`` (learned, searching or
    classical), ``method`` (what it trains or searches, in words), ``auxiliary`` (whether it uses the
    intruder's auxiliary images) and ``cost`` (:func:`attack_cost`), from its declaration
    (:func:`~anonaudit.results.attacker_model`)."""
    model = attacker_model(name, configured_params(manifest, name))
    if model is None:
        return {"holds": ["not declared (attack not installed)"], "kind": "", "method": "–", "cost": attack_cost(rows),
                "auxiliary": False}
    method = "; ".join([*([f"trains {model.trains}"] if model.trains else []),
                        *([f"searches {model.searches}"] if model.searches else [])])
    return {"holds": model.holds_text(), "kind": model.kind, "method": method or "neither (classical)",
            "cost": attack_cost(rows), "auxiliary": any(h.split(":")[0] == "auxiliary" for h in model.holds)}


def _shown(r: pd.Series) -> dict:
    """One attack row as display cells: ``risk`` (``12.3% [8.1, 17.6]``), ``badges``, ``level``,
    ``by``, ``value`` (its success, in the same format where it is a rate) and ``n``."""
    f = fmt.pct_ci if fmt.is_rate(r["metric"], [r["value"], r["ci_low"], r["ci_high"]]) else fmt.num_ci
    risk = float(r["risk"])
    return {
        "risk": fmt.pct_ci(risk, r.get("risk_ci_low"), r.get("risk_ci_high")),
        "badges": risk_badges(r.get("risk_kind"), r.get("risk_ci_low")),
        "level": "high" if risk >= 0.5 else "mid" if risk >= 0.1 else "low",
        "by": f"{r['component']}: {r['metric']}",
        "value": f(r["value"], r["ci_low"], r["ci_high"]),
        "n": fmt.count(r["n"]),
    }


def evidence(rows: pd.DataFrame) -> list[dict]:
    """Per attack among ``rows``, its metric of highest risk (:func:`_shown`), highest risk first."""
    rows = rows.dropna(subset=["risk"])
    if rows.empty:
        return []
    rows = rows.assign(_risk=rows["risk"].astype(float)).sort_values("_risk", ascending=False, kind="stable")
    return [_shown(r) for _, r in rows.drop_duplicates("component").iterrows()]


def _worst(rows: pd.DataFrame) -> dict | None:
    """The row of highest risk as display cells (:func:`_shown`), or None."""
    found = evidence(rows)
    return found[0] if found else None


def _policy_status(verdict: dict | None, label: str, components: set[str]) -> str:
    """Worst policy status among the verdict's criteria on ``components`` for one target."""
    if not verdict:
        return ""
    statuses = []
    for c in (verdict.get("criteria") or {}).get(label, []):
        comp = str(c.get("component") or str(c.get("select", "")).split("/", 1)[0])
        if any(fnmatch.fnmatch(x, comp) for x in components):
            statuses.append(str(c.get("status")))
    for s in ("FAIL", "NOT TESTED", "PASS"):
        if s in statuses:
            return s
    return ""


def _attacker_intro(attacks: list[dict], names: list[str], n_aux: str, share: str) -> str:
    """The attacker model's opening sentence: which attacks learn, search or are classical, and who uses
    the intruder's auxiliary images."""
    def say(who: list[str], one: str, many: str) -> str:
        return f"{', '.join(who)} {one if len(who) == 1 else many}" if who else ""

    def kind(k: str) -> list[str]:
        return [a["name"] for a in attacks if a.get("kind") == k]

    own = f"{n_aux} images of the intruder's own ({share} of the data set), never among the evaluated images"
    parts = [say(kind("learned"), "trains a model", "train a model"),
             say(kind("searching"), "searches candidates", "search candidates"),
             say(kind("classical"), "neither trains nor searches (classical)", "neither train nor search (classical)"),
             say([a["name"] for a in attacks if a.get("auxiliary")], f"also uses {own}", f"also use {own}")]
    return (f"The attacks of this audit ({', '.join(names) or 'none ran'}) each declare what the intruder must hold "
            "and what it trains or searches" + "".join(f"; {x}" for x in parts if x)
            + ". Per attack, what the intruder holds, what it trains or searches and what that cost in this run:")


def compliance_model(results: Results, embed_examples: bool = False) -> dict[str, Any]:
    """Everything the compliance report states (plain data; see the module doc)."""
    ctx = report_context(results, embed_examples)
    table, manifest, order = results.table, ctx["manifest"], ctx["order"]
    ok = table[(table["status"] == "ok") & (table["kind"] == "attack")]
    names = list(dict.fromkeys(ok["component"].dropna()))  # the attacks that ran, in the table's order
    attacks = []
    for name in names:
        crit = attack_criteria(name)
        attacks.append({"name": name, "criteria": list(crit),
                        "criteria_text": ", ".join(CRITERIA[c][0] for c in crit) or "not mapped",
                        **describe_attacker(name, manifest, ok[ok["component"] == name]),
                        "scored_with": scored_with(name)})
    by_criterion = {c: {a["name"] for a in attacks if c in a["criteria"]} for c in CRITERIA}
    criteria_rows = []
    for label in order:
        mine = ok[ok["target_label"] == label]
        cells = []
        for key in CRITERIA:
            found = evidence(mine[mine["component"].isin(by_criterion[key])])
            ran = set(mine["component"]) & by_criterion[key]
            cells.append({"worst": found[0] if found else None, "evidence": found,
                          "missing": "" if found else ("no risk estimate" if ran else "not tested"),
                          "policy": _policy_status(ctx["verdict"], label, by_criterion[key])})
        criteria_rows.append({"target": label, "cells": cells})
    reident = {a["name"] for a in attacks if {"singling_out", "linkability"} & set(a["criteria"])}
    intruder_rows = []
    for label in order:
        w = _worst(ok[(ok["target_label"] == label) & ok["component"].isin(reident)])
        intruder_rows.append({"target": label, "worst": w, "missing": "" if w else "not tested"})
    data = manifest.get("data") or {}
    n_total, n_aux = data.get("n"), data.get("auxiliary")
    share = fmt.pct(n_aux / n_total) if n_total and n_aux is not None else fmt.MISSING
    pairs = table[(table["kind"] == "target") & (table["metric"] == "pairs")].drop_duplicates("target_label")
    pairs = pairs.set_index("target_label")["value"]
    ns = pd.to_numeric(ok["n"], errors="coerce").dropna()
    scope = [
        (f"Data set {data.get('name', '?')}: {fmt.count(n_total)} images; {fmt.count(data.get('evaluation'))} "
        f"evaluated (anonymized by each method and attacked); {fmt.count(n_aux)} ({share}) held by the intruder as "
        "their own auxiliary data, never among the evaluated images."),
        f"{len(order)} anonymization target(s): "
        + ", ".join(f"{lab} ({fmt.count(pairs.get(lab))} pairs)" for lab in order)
        + ".",
    ]
    if len(ns):
        span = fmt.count(ns.min()) + ("" if ns.min() == ns.max() else f" to {fmt.count(ns.max())}")
        scope.append(f"Attack rates measured on n = {span} images each, with 95% confidence intervals.")
    attacker_intro = _attacker_intro(attacks, names, fmt.count(n_aux), share)
    not_tested = [("not tested", f"criterion {CRITERIA[c][0]}", "no attack for it ran")
                  for c, members in by_criterion.items() if not (set(ok["component"]) & members)]
    not_tested += [
        ("no risk estimate", r["target_label"], r["reason"]) for r in ctx["headline"] if r.get("risk") is None
    ]
    for r in ctx["not_run"]:
        where = "input data" if r["kind"] == "data" else (
            f"all {len(r['targets'])} targets" if r["all_targets"] else ", ".join(r["targets"]))
        not_tested.append((r["status"], f"{r['component']} ({where})", r["message"]))
    limitations = list(LIMITATIONS)
    if "synthetic" in str(data.get("name", "")):
        limitations.insert(
            1, f"The data set '{data.get('name')}' is synthetic: real images may be easier or harder to attack."
        )
    if (table["standard"].astype(str).str.lower() == "false").any():
        limitations.append("Some metrics are non-standard (computed differently from their reference definition); "
                           "they are marked and must not be compared with published values.")
    return {
        **ctx,
        "criteria": [
            {"key": k, "title": t, "definition": d, "attacks": sorted(by_criterion[k])}
            for k, (t, d) in CRITERIA.items()
        ],
        "motivated_intruder": MOTIVATED_INTRUDER,
        "attacks": attacks,
        "criteria_rows": criteria_rows,
        "intruder_rows": intruder_rows,
        "reidentification_attacks": sorted(reident),
        "scope": scope,
        "attacker_intro": attacker_intro,
        "not_tested": not_tested,
        "limitations": limitations,
    }


def _title(model: dict[str, Any], title: str | None) -> str:
    return title or f"Compliance report: {model['manifest'].get('name', 'audit')}"


def write_compliance_report(results: Results, folder: Path, title: str | None = None,
                            embed_examples: bool = False) -> tuple[Path, Path]:
    """Write ``compliance.html`` and ``compliance.pdf`` into ``folder`` (atomically); returns both paths."""
    from .pdf import compliance_pdf

    model = compliance_model(results, embed_examples)
    html = environment().get_template("compliance.html").render(**model, title=_title(model, title))
    pdf = compliance_pdf(model, _title(model, title))
    return write_atomic(folder / "compliance.html", html), write_atomic(folder / "compliance.pdf", pdf)
