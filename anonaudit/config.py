"""YAML audit configurations: parsing, validation, parameter sweeps and path confinement.

```yaml
data: {name: synthetic_plates, n: 200}
targets:
  - {name: gaussian_blur, sweep: {sigma: [1, 2, 4, 8]}}
  - mask
attacks: [{name: ocr, engine: rapidocr}, deblur_ocr]
evaluators: [ssim, psnr]
auxiliary: {fraction: 0.2}       # the intruder's own data, split off the data set by seed
seed: 0
on_error: skip                   # or raise
output: runs/plates-quick
```

Relative paths are resolved against the working directory. Every path a config names (data roots,
external releases, the output folder) must lie inside an allowed root: the working directory,
the config file's folder, and any root the *user* adds (``--root`` on the command line or
``ANONAUDIT_ROOTS``); a config cannot widen its own reach.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError
from .registry import ANONYMIZERS, ATTACKS, DATASETS, EVALUATORS

TOP_LEVEL_KEYS = {"data", "targets", "attacks", "evaluators", "seed", "output", "auxiliary", "on_error", "batch_size", "report", "name"}
PATH_PARAMS = {"root", "path", "labels", "pairs", "folder", "checkpoint"}


@dataclass
class ComponentSpec:
    """One component: registry name and its parameters."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class AuditConfig:
    data: ComponentSpec
    targets: list[ComponentSpec]
    attacks: list[ComponentSpec]
    evaluators: list[ComponentSpec]
    seed: int = 0
    output: Path | None = None
    auxiliary: dict[str, Any] = field(default_factory=lambda: {"fraction": 0.2})
    on_error: str = "skip"
    batch_size: int = 32
    report: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


def _spec(item: Any, where: str) -> dict[str, Any]:
    if isinstance(item, str):
        return {"name": item}
    if isinstance(item, dict) and isinstance(item.get("name"), str):
        return dict(item)
    raise ConfigError(f"{where}: expected a name or a mapping with 'name', got {item!r}")


def expand_sweep(item: dict[str, Any], where: str) -> list[ComponentSpec]:
    """``{name, sweep: {p: [a, b]}, q: 1}`` -> one spec per point of the cartesian product."""
    item = dict(item)
    name = item.pop("name")
    sweep = item.pop("sweep", None) or {}
    if not isinstance(sweep, dict):
        raise ConfigError(f"{where}: 'sweep' must map parameter names to lists of values")
    for k, values in sweep.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}: sweep over '{k}' needs a non-empty list, got {values!r}")
        if k in item:
            raise ConfigError(f"{where}: '{k}' is both fixed and swept")
    keys = list(sweep)
    return [ComponentSpec(name, {**item, **dict(zip(keys, combo))}) for combo in itertools.product(*(sweep[k] for k in keys))]


def _check_known(registry, spec: ComponentSpec) -> None:
    registry.get(spec.name)  # raises UnknownComponentError with "did you mean"


def allowed_roots(config_path: Path | None, extra: list[str | Path] | None = None) -> list[Path]:
    roots = [Path.cwd()]
    if config_path is not None:
        roots.append(config_path.resolve().parent)
    env = os.environ.get("ANONAUDIT_ROOTS", "")
    roots += [Path(p) for p in env.split(os.pathsep) if p]
    roots += [Path(p) for p in (extra or [])]
    return [r.resolve() for r in roots]


def confine(path: str | Path, roots: list[Path], what: str) -> Path:
    """Resolve ``path`` (symlinks too) and refuse it unless it lies inside one of ``roots``."""
    resolved = Path(path).expanduser().resolve()
    for root in roots:
        if resolved == root or root in resolved.parents:
            return resolved
    raise ConfigError(
        f"{what} '{path}' resolves to {resolved}, outside the allowed roots {[str(r) for r in roots]}; "
        "add its folder with --root (or ANONAUDIT_ROOTS) if you trust it"
    )


def _confine_params(params: dict[str, Any], roots: list[Path], where: str) -> dict[str, Any]:
    out = dict(params)
    for k, v in params.items():
        if k in PATH_PARAMS and isinstance(v, str) and v:
            if k == "labels" and not ("/" in v or os.sep in v):
                continue  # a file name inside the data root
            out[k] = str(confine(v, roots, f"{where}.{k}"))
    return out


def parse_config(raw: dict[str, Any], config_path: Path | None = None, roots: list[str | Path] | None = None) -> AuditConfig:
    """Validate a config mapping (as loaded from YAML) into an :class:`AuditConfig`."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{config_path or 'config'}: top level must be a mapping, got {type(raw).__name__}")
    unknown = set(raw) - TOP_LEVEL_KEYS
    if unknown:
        import difflib

        hints = [f"'{u}' (did you mean '{m[0]}'?)" if (m := difflib.get_close_matches(u, TOP_LEVEL_KEYS, 1)) else f"'{u}'" for u in sorted(unknown)]
        raise ConfigError(f"{config_path or 'config'}: unknown key(s) {', '.join(hints)}")
    for key in ("data", "targets"):
        if key not in raw:
            raise ConfigError(f"{config_path or 'config'}: missing required key '{key}'")
    allowed = allowed_roots(config_path, roots)

    data = _spec(raw["data"], "data")
    data_spec = ComponentSpec(data.pop("name"), _confine_params(data, allowed, "data"))
    _check_known(DATASETS, data_spec)

    def specs(key: str, registry, sweeps: bool) -> list[ComponentSpec]:
        items = raw.get(key) or []
        if not isinstance(items, list):
            raise ConfigError(f"'{key}' must be a list")
        out: list[ComponentSpec] = []
        for i, item in enumerate(items):
            d = _spec(item, f"{key}[{i}]")
            if sweeps:
                expanded = expand_sweep(d, f"{key}[{i}]")
            else:
                if "sweep" in d:
                    raise ConfigError(f"{key}[{i}]: only targets can be swept")
                expanded = [ComponentSpec(d.pop("name"), d)]
            for s in expanded:
                s.params = _confine_params(s.params, allowed, f"{key}[{i}]")
                _check_known(registry, s)
            out.extend(expanded)
        return out

    targets = specs("targets", ANONYMIZERS, True)
    if not targets:
        raise ConfigError("'targets' is empty: nothing to audit")
    on_error = raw.get("on_error", "skip")
    if on_error not in ("skip", "raise"):
        raise ConfigError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
    seed = raw.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"seed must be an integer, got {seed!r}")
    aux = raw.get("auxiliary", {"fraction": 0.2})
    if not isinstance(aux, dict):
        raise ConfigError("'auxiliary' must be a mapping like {fraction: 0.2, by: identity}")
    output = raw.get("output")
    batch_size = raw.get("batch_size", 32)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    return AuditConfig(
        data=data_spec,
        targets=targets,
        attacks=specs("attacks", ATTACKS, False),
        evaluators=specs("evaluators", EVALUATORS, False),
        seed=seed,
        output=confine(output, allowed, "output") if output else None,
        auxiliary=aux,
        on_error=on_error,
        batch_size=batch_size,
        report=dict(raw.get("report") or {}),
        name=str(raw.get("name", config_path.stem if config_path else "audit")),
        raw=raw,
    )


def load_config(path: str | Path, roots: list[str | Path] | None = None) -> AuditConfig:
    """Read a YAML config safely (``yaml.safe_load``: no arbitrary objects) and validate it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror or exc})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    return parse_config(raw, path, roots)
