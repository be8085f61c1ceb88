"""Release policies: criteria a release must meet, read from YAML.

```yaml
name: strict-public-release
description: what the policy is for
criteria:
  - id: ocr-exact-match
    description: no more than 1% of plates read back exactly, by the strongest OCR attack
    select: "*ocr/exact_match"     # component/metric, shell-style globs
    require: "<= 1%"               # comparison and threshold
    bound: upper                   # which number is compared: upper | lower (95% CI ends) | value
    on: value                      # value (the measured rate) or risk (the row's risk)
    kinds: [plates]                # data kinds the criterion applies to (default: every kind)
```

A threshold is a number (``0.01``, ``1%``) or relative to the judged row's baseline, which the
attack reports as chance (re-identification: one over the gallery size) or the majority-class
rate (attribute inference): ``2x chance``, ``majority + 5 points``, ``baseline + 0.05``,
``1.5 * baseline - 1%``. ``baseline``, ``chance`` and ``majority`` are the same number, named as
the reader expects it. ``bound`` defaults to ``upper`` for ``<=``/``<`` (a risk or attack rate is
judged on the upper end of its 95% CI, so a CI straddling the threshold fails), ``lower`` for
``>=``/``>`` (utility on its lower end) and ``value`` for ``==``. ``bound: lower`` on a risk fails only a
leak the sample shows; the built-in policies use it for the membership ROC AUC, whose upper bound for an
attacker at chance on the default 64 + 64 candidates is itself near any useful threshold. A row the sample
cannot resolve (e.g. TPR at 0.1% FPR with fewer than 1000 non-members) is measured as nothing and its
criterion is NOT TESTED, with the sample size it needs.

Built-in policies (``load_policy("strict")``): :data:`BUILTIN` names the files shipped in
``anonaudit/verdicts/policies/`` (linked from ``configs/policies/``).
"""

from __future__ import annotations

import hashlib
import math
import operator
import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError

POLICY_DIR = Path(__file__).resolve().parent / "policies"
#: Built-in policy names -> files in :data:`POLICY_DIR` (the file stems work too).
BUILTIN = {"strict": "strict-public-release.yaml", "research": "research-sharing.yaml"}
KINDS = ("faces", "plates")
COMPARISONS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt, "==": operator.eq}
BOUNDS = ("upper", "lower", "value")
REFERENCES = ("baseline", "chance", "majority")
TOLERANCE = 1e-9

_NUMBER = r"\d+(?:\.\d*)?|\.\d+"
_REQUIRE = re.compile(r"^\s*(<=|>=|==|<|>|=)\s*(.+?)\s*$")
_ABSOLUTE = re.compile(rf"^(?P<x>{_NUMBER})\s*(?P<pct>%)?$")
_RELATIVE = re.compile(
    rf"^(?:(?P<scale>{_NUMBER})\s*[x*×]\s*)?(?P<ref>{'|'.join(REFERENCES)})"
    rf"(?:\s*(?P<sign>[+-])\s*(?P<add>{_NUMBER})\s*(?P<unit>%|points?)?)?$"
)


@dataclass(frozen=True)
class Threshold:
    """``scale * baseline + offset`` (``ref`` set) or the number ``offset`` (``ref`` None)."""

    text: str
    offset: float
    scale: float = 1.0
    ref: str | None = None

    @classmethod
    def parse(cls, text: str, where: str) -> Threshold:
        t = str(text).strip().lower()
        if m := _ABSOLUTE.match(t):
            return cls(str(text).strip(), float(m["x"]) / (100.0 if m["pct"] else 1.0))
        if m := _RELATIVE.match(t):
            add = 0.0
            if m["add"] is not None:
                add = float(m["add"]) / (100.0 if m["unit"] else 1.0)
                add = -add if m["sign"] == "-" else add
            return cls(str(text).strip(), add, float(m["scale"]) if m["scale"] else 1.0, m["ref"])
        raise ConfigError(
            f"{where}: threshold {text!r} is not a number (0.01, 1%) or relative to the baseline "
            "('2x chance', 'majority + 5 points', 'baseline + 0.05')"
        )

    def resolve(self, baseline: float | None) -> float:
        """The threshold as a number for a row with this ``baseline`` (nan when it needs one and has none)."""
        if self.ref is None:
            return self.offset
        if baseline is None or not math.isfinite(baseline):
            return float("nan")
        return self.scale * baseline + self.offset


@dataclass(frozen=True)
class Criterion:
    """One requirement on the rows whose ``component/metric`` matches ``select``."""

    id: str
    select: str
    comparison: str
    threshold: Threshold
    bound: str
    on: str = "value"
    kinds: tuple[str, ...] = KINDS
    description: str = ""

    def matches(self, component: str, metric: str) -> bool:
        return fnmatchcase(f"{component}/{metric}", self.select)

    def matches_component(self, component: str) -> bool:
        """Whether rows of ``component`` could satisfy the selection (used for units that did not run)."""
        return fnmatchcase(component, self.select.split("/", 1)[0])

    def holds(self, observed: float, threshold: float) -> bool:
        """Whether ``observed`` meets the threshold; ``<=``, ``>=`` and ``==`` allow :data:`TOLERANCE`
        for the rounding of computed thresholds (``0.6 + 0.05`` is ``0.6499...`` in floating point)."""
        slack = {"<=": TOLERANCE, ">=": -TOLERANCE}.get(self.comparison, 0.0)
        if self.comparison == "==":
            return abs(observed - threshold) <= TOLERANCE
        return COMPARISONS[self.comparison](observed, threshold + slack)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "description": self.description, "select": self.select, "on": self.on,
                "comparison": self.comparison, "threshold_text": self.threshold.text, "bound": self.bound,
                "kinds": list(self.kinds)}


@dataclass
class Policy:
    """A named list of criteria; ``source`` and ``sha256`` identify the text it was read from."""

    name: str
    criteria: list[Criterion]
    description: str = ""
    source: str = ""
    sha256: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    def for_kind(self, kind: str | None) -> list[Criterion]:
        """The criteria that apply to data of ``kind`` (all of them when the kind is unknown)."""
        return [c for c in self.criteria if kind is None or kind in c.kinds]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "source": self.source, "sha256": self.sha256,
                "criteria": [c.to_dict() for c in self.criteria]}


def _criterion(item: Any, where: str) -> Criterion:
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: a criterion must be a mapping with id, select and require, got {item!r}")
    unknown = set(item) - {"id", "description", "select", "require", "bound", "on", "kinds"}
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {sorted(unknown)} (known: id, description, select, require, bound, on, kinds)"
        )
    for key in ("id", "select", "require"):
        if not isinstance(item.get(key), str) or not item[key].strip():
            raise ConfigError(f"{where}: '{key}' is required and must be a non-empty string")
    where = f"{where} ({item['id']})"
    if "/" not in item["select"]:
        raise ConfigError(
            f"{where}: select {item['select']!r} must be 'component/metric' (globs allowed, e.g. '*ocr/exact_match')"
        )
    m = _REQUIRE.match(item["require"])
    if not m:
        raise ConfigError(f"{where}: require {item['require']!r} must start with <=, <, >=, > or == (e.g. '<= 1%')")
    comparison = "==" if m[1] == "=" else m[1]
    threshold = Threshold.parse(m[2], where)
    default_bound = {"<=": "upper", "<": "upper", ">=": "lower", ">": "lower", "==": "value"}[comparison]
    bound = item.get("bound", default_bound)
    if bound not in BOUNDS:
        raise ConfigError(f"{where}: bound must be one of {', '.join(BOUNDS)}, got {bound!r}")
    on = item.get("on", "value")
    if on not in ("value", "risk"):
        raise ConfigError(f"{where}: 'on' must be 'value' or 'risk', got {on!r}")
    if on == "risk" and threshold.ref is not None:
        raise ConfigError(f"{where}: a risk is already relative to the baseline; give a number, not {threshold.text!r}")
    kinds = item.get("kinds", list(KINDS))
    if isinstance(kinds, str):
        kinds = [kinds]
    if not isinstance(kinds, list) or not kinds or any(k not in KINDS for k in kinds):
        raise ConfigError(f"{where}: kinds must be a list drawn from {list(KINDS)}, got {kinds!r}")
    return Criterion(item["id"].strip(), item["select"].strip(), comparison, threshold, bound, on, tuple(kinds),
                     str(item.get("description", "")).strip())


def parse_policy(raw: Any, source: str = "", text: str = "") -> Policy:
    """Validate a policy mapping (as loaded from YAML)."""
    where = source or "policy"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: a policy must be a mapping with 'name' and 'criteria'")
    unknown = set(raw) - {"name", "description", "criteria"}
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)} (known: name, description, criteria)")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}: 'name' is required")
    items = raw.get("criteria")
    if not isinstance(items, list) or not items:
        raise ConfigError(f"{where}: 'criteria' must be a non-empty list")
    criteria = [_criterion(item, f"{where}: criteria[{i}]") for i, item in enumerate(items)]
    ids = [c.id for c in criteria]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ConfigError(f"{where}: criterion ids must be unique, repeated: {dup}")
    digest = hashlib.sha256(text.encode()).hexdigest() if text else ""
    return Policy(name.strip(), criteria, str(raw.get("description", "")).strip(), source, digest, raw)


def builtin_path(name: str) -> Path | None:
    """The file of a built-in policy name (``strict``) or stem (``strict-public-release``), else None."""
    filename = BUILTIN.get(name) or (f"{name}.yaml" if f"{name}.yaml" in BUILTIN.values() else None)
    return POLICY_DIR / filename if filename else None


def load_policy(name_or_path: str | Path | Policy) -> Policy:
    """A built-in policy by name (see :data:`BUILTIN`) or a policy YAML file (read with ``safe_load``)."""
    if isinstance(name_or_path, Policy):
        return name_or_path
    path = builtin_path(str(name_or_path)) or Path(name_or_path)
    if not path.is_file():
        raise ConfigError(
            f"policy {str(name_or_path)!r} is neither a built-in name ({', '.join(BUILTIN)}) nor a file"
        )
    try:
        text = path.read_text(encoding="utf-8")
        raw = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read policy ({exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    return parse_policy(raw, str(path), text)
