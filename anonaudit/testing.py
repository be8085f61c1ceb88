"""Contract checks for components: :func:`check_component`, modelled on scikit-learn's ``check_estimator``.

Every anonymizer, attack and evaluator, built in or from a plugin, must pass::

    from anonaudit.testing import check_component

    check_component(MyAttack)          # a class: built from its declared ``test_params``
    check_component(MyAttack(k=3))     # an instance: checked with its own parameters

The checks need nothing but the class. What a class cannot say through its constructor's defaults
it declares as class attributes (see :class:`~anonaudit.params.ParamsMixin`):

``test_params``
    Small working values for the checks: a value for every parameter the constructor cannot do
    without (no default, or a default it rejects), and cheaper settings where the defaults are slow
    (small networks, fewer candidates). Never used by audits.
``param_alternatives``
    Valid non-default values for parameters the checks cannot vary by themselves (strings, and
    parameters whose default is ``None``); numbers, booleans and lists are varied generically.
``criteria`` (attacks)
    The Article 29 Working Party criteria the attack tests (``singling_out``, ``linkability``,
    ``inference``); required, the compliance report reads nothing else.
``attacker_holds``, ``attacker_trains``, ``attacker_searches`` (attacks)
    The attacker model: what the intruder must hold (a non-empty tuple of words of
    :data:`~anonaudit.attacks.base.ATTACKER_HOLDINGS`), what it trains and what it searches (strings,
    "" for none); required, read by the compliance report and the headline through ``intruder()``.
``folder_audit`` (attacks and evaluators, optional)
    The parameters with which ``anonaudit audit ORIGINALS RELEASE --kind K`` runs the component, per
    release kind; checked to name known kinds, build, and need nothing the two folders cannot give.

A failed check raises :class:`ContractError` naming the component, the check and the problem. A
check that needs a model whose weights are missing is skipped, and says so in the returned report.
"""

from __future__ import annotations

import inspect
import json
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .anonymizers.base import Anonymizer
from .anonymizers.whitebox import CAPABILITIES, CAPABILITY_MEMBERS
from .attacks.base import (
    ARTICLE29_CRITERIA,
    ATTACKER_HOLDINGS,
    NEEDS,
    Attack,
    AttackerModel,
    unknown_holdings,
    unknown_needs,
)
from .data.imageset import Box, ImageSet
from .errors import ModelUnavailableError
from .evaluators.base import Evaluator, PerImageEvaluator
from .params import RELEASE_KINDS, ParamsMixin, clone
from .registry import ANONYMIZERS, ATTACKS, EVALUATORS, Registry

__all__ = ["ContractError", "check_anonymize_output", "check_component", "component_params", "tiny_images"]

#: The component kinds: registry and base class.
KINDS: dict[str, tuple[Registry, type]] = {
    "anonymizers": (ANONYMIZERS, Anonymizer),
    "attacks": (ATTACKS, Attack),
    "evaluators": (EVALUATORS, Evaluator),
}

#: Names a constructor parameter must never take: methods and attributes of the base classes.
RESERVED: frozenset[str] = frozenset(
    {
        "label",
        "name",
        "fit",
        "run",
        "anonymize",
        "compute",
        "update",
        "reset",
        "save",
        "load",
        "requires",
        "trainable",
        "label_params",
        "higher_is_better",
        "method",
        "score_pair",
        "test_params",
        "param_alternatives",
        "criteria",
    }
    | {
        n
        for base in (ParamsMixin, Anonymizer, Attack, Evaluator, PerImageEvaluator)
        for n in dir(base)
        if not n.startswith("_")
    }
)

#: Values no constructor should accept for a parameter (tried in order by the validation check).
INVALID_VALUES: tuple[Any, ...] = (-1, -0.5, float("nan"), "no-such-choice", [], 0)

#: Seconds a constructor may take: models load lazily, on first use, never in ``__init__``.
MAX_CONSTRUCTION_SECONDS = 1.0


class ContractError(AssertionError):
    """A component breaks the component contract; the message names the component, check and problem."""


Check = Callable[[type, dict[str, Any]], str | None]


def check_component(component: type | ParamsMixin, stand_ins: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Run every contract check on an anonymizer, attack or evaluator class (or instance).

    A class is built from its ``test_params``; an instance's own parameters are used instead.
    ``stand_ins`` replaces parameters wherever the constructor accepts them (e.g.
    ``{"detector": "my_test_detector"}``: a deterministic model in place of one that needs weights).
    Returns ``{check: "passed" | "skipped: <reason>"}``; the first failed check raises :class:`ContractError`.
    """
    cls = component if isinstance(component, type) else type(component)
    kind = kind_of(cls)
    params = component_params(cls, stand_ins) if isinstance(component, type) else dict(component.get_params())
    report: dict[str, str] = {}
    for check in [*COMMON_CHECKS, *KIND_CHECKS[kind]]:
        try:
            skipped = check(cls, params)
        except ModelUnavailableError as exc:
            skipped = str(exc)
        except ContractError:
            raise
        except Exception as exc:
            raise ContractError(f"{_who(cls)}: {check.__name__}: raised {type(exc).__name__}: {exc}") from exc
        report[check.__name__] = f"skipped: {skipped}" if skipped else "passed"
    return report


def kind_of(cls: type) -> str:
    """``anonymizers``, ``attacks`` or ``evaluators``: the base class ``cls`` derives from."""
    for kind, (_, base) in KINDS.items():
        if isinstance(cls, type) and issubclass(cls, base):
            return kind
    raise ContractError(f"{cls!r} is not an Anonymizer, Attack or Evaluator subclass")


def component_params(cls: type, stand_ins: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The parameters the checks build ``cls`` with: its ``test_params``, then the ``stand_ins`` it
    accepts. Fails with a clear message when a parameter without a default is not declared."""
    accepted = [p.name for p in init_params(cls)]
    declared = dict(getattr(cls, "test_params", {}) or {})
    unknown = sorted(set(declared) - set(accepted))
    if unknown:
        raise ContractError(f"{_who(cls)}: test_params names {unknown}, which the constructor does not take")
    params = declared | {k: v for k, v in (stand_ins or {}).items() if k in accepted}
    missing = [p.name for p in init_params(cls) if p.default is inspect.Parameter.empty and p.name not in params]
    if missing:
        raise ContractError(
            f"{_who(cls)} requires {missing} and declares no value for them: add small working values "
            f"to the class attribute test_params (e.g. test_params = {{{missing[0]!r}: ...}})"
        )
    return params


def init_params(cls: type) -> list[inspect.Parameter]:
    """The constructor's named parameters (what ``get_params`` returns)."""
    return [
        p
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


def same(a: Any, b: Any) -> bool:
    """Parameter equality, lists and tuples alike (JSON and YAML give lists)."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return bool(a == b)


def same_params(p: Mapping[str, Any], q: Mapping[str, Any]) -> bool:
    return p.keys() == q.keys() and all(same(p[k], q[k]) for k in p)


def fitted_attributes(component: Any) -> list[str]:
    """Attributes holding what ``fit`` learned: trailing underscore (scikit-learn's convention)."""
    return sorted(k for k in vars(component) if k.endswith("_") and not k.startswith("__"))


def _who(cls: type) -> str:
    try:
        kind = kind_of(cls)
    except ContractError:
        kind = "component"
    return f"{kind[:-1] if kind.endswith('s') else kind} '{getattr(cls, 'name', '') or cls.__qualname__}'"


def _build(cls: type, params: Mapping[str, Any]) -> Any:
    """``cls(**params)``; a constructor that rejects its own test parameters fails the contract."""
    try:
        return cls(**params)
    except (ValueError, TypeError) as exc:
        raise ContractError(
            f"{_who(cls)} cannot be built from {dict(params)}: {type(exc).__name__}: {exc}; declare "
            f"working values in the class attribute test_params"
        ) from exc


def _fail(cls: type, check: str, problem: str) -> None:
    raise ContractError(f"{_who(cls)}: {check}: {problem}")


# -- construction and parameters ------------------------------------------------------------------------------------
def check_folder_audit_declaration(cls: type, params: dict[str, Any]) -> None:
    """A ``folder_audit`` the class declares itself maps kinds of :data:`~anonaudit.params.RELEASE_KINDS` to
    parameters that build the component, on an attack or evaluator that needs nothing beyond the two
    folders (no ``needs``) and reads label columns named by strings."""
    declared = vars(cls).get("folder_audit")
    if not declared:
        return
    check = "check_folder_audit_declaration"
    if issubclass(cls, Anonymizer):
        _fail(cls, check, "declares folder_audit, which only attacks and evaluators may declare")
    if not isinstance(declared, dict) or not all(isinstance(v, dict) for v in declared.values()):
        _fail(cls, check, f"folder_audit {declared!r}: a mapping of release kind to a mapping of parameters")
    if unknown := sorted(set(declared) - set(RELEASE_KINDS)):
        _fail(cls, check, f"folder_audit names unknown release kinds {unknown} (known: {', '.join(RELEASE_KINDS)})")
    for kind, kind_params in declared.items():
        component = _build(cls, kind_params)
        if getattr(component, "needs", ()):
            _fail(cls, check, f"folder_audit for {kind}, but needs {component.needs!r}: a release of two folders "
                              "carries no target object, training keys or shadows")
        labels = component.labels_read() if isinstance(component, Attack) else ()
        if not isinstance(labels, tuple) or not all(isinstance(c, str) for c in labels):
            _fail(cls, check, f"labels_read() returned {labels!r}: a tuple of label column names")


def check_construction_is_cheap(cls: type, params: dict[str, Any]) -> None:
    """No model is loaded in ``__init__`` (weights load lazily, on first use)."""
    t0 = time.perf_counter()
    _build(cls, params)
    elapsed = time.perf_counter() - t0
    if elapsed >= MAX_CONSTRUCTION_SECONDS:
        _fail(cls, "check_construction_is_cheap", f"took {elapsed:.2f} s to construct; load models lazily")


def check_registry_name(cls: type, params: dict[str, Any]) -> None:
    """A non-empty ``name``; when registered, under that name and as this class."""
    c = _build(cls, params)
    if not isinstance(cls.name, str) or not cls.name or c.name != cls.name:
        _fail(cls, "check_registry_name", f"no registry name (name = {cls.name!r})")
    registry = KINDS[kind_of(cls)][0]
    if cls.name in registry and registry.get(cls.name) is not cls:
        _fail(cls, "check_registry_name", f"'{cls.name}' is registered as {registry.get(cls.name).__qualname__}")


def check_get_params(cls: type, params: dict[str, Any]) -> None:
    """``get_params`` returns exactly the constructor's parameters, each stored unchanged."""
    c = _build(cls, params)
    got = c.get_params()
    names = [p.name for p in init_params(cls)]
    if list(got) != names:
        _fail(cls, "check_get_params", f"get_params gives {list(got)}, the constructor takes {names}")
    for p in init_params(cls):
        expected = params.get(p.name, p.default)
        if not same(got[p.name], expected):
            _fail(cls, "check_get_params", f"'{p.name}' is stored as {got[p.name]!r}, given {expected!r}")


def check_set_params_round_trips(cls: type, params: dict[str, Any]) -> None:
    """``set_params(**get_params())`` returns the component unchanged; unknown names raise ValueError."""
    c, other = _build(cls, params), _build(cls, params)
    if other.set_params(**c.get_params()) is not other or not same_params(other.get_params(), c.get_params()):
        _fail(
            cls,
            "check_set_params_round_trips",
            "set_params(**get_params()) changed the parameters or returned another object",
        )
    try:
        other.set_params(no_such_parameter=1)
    except ValueError as exc:
        if "has no parameter 'no_such_parameter'" not in str(exc):
            _fail(cls, "check_set_params_round_trips", f"an unknown parameter raised {exc!r}")
    else:
        _fail(cls, "check_set_params_round_trips", "set_params accepted an unknown parameter")


def check_clone_from_params(cls: type, params: dict[str, Any]) -> None:
    """``cls(**get_params())`` and the same through JSON (as audits store them) give equal components."""
    c = _build(cls, params)
    for how, again in (
        ("directly", cls(**c.get_params())),
        ("through JSON", cls(**json.loads(json.dumps(c.get_params())))),
    ):
        if not same_params(again.get_params(), c.get_params()) or again.label() != c.label():
            _fail(cls, "check_clone_from_params", f"rebuilt from its parameters {how}, it differs: {again!r} != {c!r}")


def check_label_and_repr(cls: type, params: dict[str, Any]) -> None:
    """``label()`` is the name, or the name with parameters in parentheses; ``repr`` names the class."""
    c = _build(cls, params)
    label = c.label()
    if not isinstance(label, str) or not (label == cls.name or label.startswith(f"{cls.name}(")):
        _fail(cls, "check_label_and_repr", f"label {label!r} does not start with the name '{cls.name}'")
    if not repr(c).startswith(f"{cls.__name__}("):
        _fail(cls, "check_label_and_repr", f"repr {repr(c)!r} does not start with '{cls.__name__}('")


def check_no_parameter_shadows_the_api(cls: type, params: dict[str, Any]) -> None:
    """No parameter named like a base-class method or attribute (``label`` once replaced ``label()``)."""
    names = {p.name for p in init_params(cls)}
    if names & RESERVED:
        _fail(
            cls,
            "check_no_parameter_shadows_the_api",
            f"parameters {sorted(names & RESERVED)} collide with the base API",
        )
    for p in names:
        attr = inspect.getattr_static(cls, p, None)
        if isinstance(attr, (property, classmethod, staticmethod)) or inspect.isfunction(attr):
            _fail(cls, "check_no_parameter_shadows_the_api", f"parameter '{p}' shadows {cls.__qualname__}.{p}")


def variants(cls: type, param: str, value: Any) -> list[Any]:
    """Candidate non-default values of ``param``: the declared ``param_alternatives`` first, then
    generic ones for numbers, booleans, lists and ``None``."""
    declared = list((getattr(cls, "param_alternatives", {}) or {}).get(param, ()))
    if isinstance(value, bool):
        return declared + [not value]
    if isinstance(value, int):
        return declared + [value + 2, value + 1, 2 * value, 1]
    if isinstance(value, float):
        return declared + [2 * value if value else 0.5, value / 2, value + 0.5, 0.5]
    if value is None:
        return declared + [0.5, 1]
    if isinstance(value, (list, tuple)) and value:
        shorter = [type(value)(value[:-1])] if len(value) > 1 else []
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            return declared + shorter + [type(value)(v + 1 for v in value)]
        return declared + shorter
    return declared


def _shown(value: Any) -> str:
    return f"{value:.10g}" if isinstance(value, float) else str(value)


def check_non_default_parameters_appear_in_label(cls: type, params: dict[str, Any]) -> None:
    """A parameter set to another valid value shows as ``param=value`` in the label (results rows
    are told apart by labels). Every declared alternative must be accepted."""
    base = _build(cls, params)
    alternatives = getattr(cls, "param_alternatives", {}) or {}
    unknown = sorted(set(alternatives) - set(base.get_params()))
    if unknown:
        _fail(
            cls,
            "check_non_default_parameters_appear_in_label",
            f"param_alternatives names unknown parameters {unknown}",
        )
    checked = []
    for param, default in base.get_params().items():
        for value in variants(cls, param, default):
            if same(value, default):
                continue
            try:
                c = cls(**{**params, param: value})
            except (ValueError, TypeError) as exc:  # ConfigError is a ValueError: not a valid value here
                if param in alternatives and any(same(value, a) for a in alternatives[param]):
                    _fail(
                        cls,
                        "check_non_default_parameters_appear_in_label",
                        f"param_alternatives['{param}'] holds {value!r}, which the constructor rejects: {exc}",
                    )
                continue
            label = c.label()
            stored = c.get_params()[param]
            if not same(stored, value) or f"{param}={_shown(stored)}" not in label or label == base.label():
                _fail(
                    cls,
                    "check_non_default_parameters_appear_in_label",
                    f"{param}={value!r} missing from label {label!r}",
                )
            checked.append(param)
            break
    numeric = [k for k, v in base.get_params().items() if isinstance(v, (int, float))]
    if numeric and not checked:
        _fail(cls, "check_non_default_parameters_appear_in_label", f"no valid non-default value found for {numeric}")


def check_no_fitted_state_after_construction(cls: type, params: dict[str, Any]) -> None:
    """``__init__`` creates no trailing-underscore (fitted) attribute."""
    found = fitted_attributes(_build(cls, params))
    if found:
        _fail(cls, "check_no_fitted_state_after_construction", f"__init__ sets fitted attributes {found}")


def check_clone_is_unfitted(cls: type, params: dict[str, Any]) -> None:
    """:func:`~anonaudit.params.clone` gives an unfitted component with equal parameters and label."""
    c = _build(cls, params)
    c.learned_ = np.arange(3)  # as a fit would leave it
    copy = clone(c)
    if type(copy) is not cls or copy is c or not same_params(copy.get_params(), c.get_params()):
        _fail(cls, "check_clone_is_unfitted", "clone() is not a new object of the same class with equal parameters")
    if fitted_attributes(copy):
        _fail(cls, "check_clone_is_unfitted", f"clone() carries fitted attributes {fitted_attributes(copy)}")
    if not copy.label() == c.label() == c.set_params(**c.get_params()).label():
        _fail(cls, "check_clone_is_unfitted", "the label changes across clone() or set_params()")


def _invalid_value(cls: type, params: dict[str, Any]) -> tuple[str, Any, type[BaseException], str] | None:
    """A (parameter, value) the constructor rejects with a ValueError (ConfigError), and what it raised."""
    for param in _build(cls, params).get_params():
        for value in INVALID_VALUES:
            try:
                cls(**{**params, param: value})
            except ValueError as exc:
                return param, value, type(exc), str(exc)
            except Exception:  # noqa: BLE001 - another error type: not a value check, try the next value
                continue
    return None


def check_set_params_validates_like_the_constructor(cls: type, params: dict[str, Any]) -> str | None:
    """A value the constructor rejects, ``set_params`` rejects with the same error, leaving the component unchanged."""
    found = _invalid_value(cls, params)
    if found is None:
        return "accepts every value tried for each parameter"
    param, value, error, message = found
    c = _build(cls, params)
    before = c.get_params()
    try:
        c.set_params(**{param: value})
    except error as exc:
        if str(exc) != message:
            _fail(cls, "check_set_params_validates_like_the_constructor", f"{param}={value!r}: '{exc}' != '{message}'")
    else:
        _fail(
            cls,
            "check_set_params_validates_like_the_constructor",
            f"set_params accepted {param}={value!r}, which the constructor rejects ({message})",
        )
    if not same_params(c.get_params(), before):
        _fail(cls, "check_set_params_validates_like_the_constructor", "a rejected value changed the parameters")
    return None


# -- anonymizers -----------------------------------------------------------------------------------------------------
#: The white-square "face" of :func:`tiny_images`.
TINY_FACE = Box(12, 10, 20, 22)


def tiny_images() -> ImageSet:
    """Three small textured images with a pure-white square "face" (box, text, identity labelled);
    the last has another shape, so outputs must keep each input's shape."""
    images = []
    for seed in range(3):
        img = np.clip(np.random.default_rng(seed).normal(90, 25, (48, 48, 3)), 0, 250).astype(np.uint8)
        f = TINY_FACE
        img[f.y : f.y + f.h, f.x : f.x + f.w] = 255
        images.append(img)
    images[2] = images[2][:40]
    return ImageSet.from_arrays(
        images,
        ["a", "b", "sub/c"],
        boxes=[[TINY_FACE]] * 3,
        texts=["X1", "X2", "X3"],
        identities=["p", "q", "p"],
        name="tiny",
    )


def check_anonymize_output(anonymizer: Anonymizer, images: ImageSet, changes: bool = True) -> None:
    """``fit`` returns self; ``anonymize`` keeps keys, labels and each shape, gives uint8 RGB, never
    modifies its input, is deterministic and (``changes``) changes some image."""
    cls = type(anonymizer)
    before = [im.copy() for im in images]
    if anonymizer.fit(images) is not anonymizer:
        _fail(cls, "check_anonymize_output", "fit() does not return self")
    out = anonymizer.anonymize(images, show_progress=False)
    if not isinstance(out, ImageSet) or len(out) != len(images) or out.keys != images.keys:
        _fail(cls, "check_anonymize_output", "anonymize() must return an ImageSet with the input's keys, in order")
    if [r.text for r in out.records] != images.texts or out.identities != images.identities:
        _fail(cls, "check_anonymize_output", "anonymize() lost the images' labels")
    again = anonymizer.anonymize(images, show_progress=False)
    for i in range(len(images)):
        if out[i].dtype != np.uint8 or out[i].shape != images[i].shape or out[i].shape[2] != 3:
            _fail(
                cls,
                "check_anonymize_output",
                f"image {i}: {out[i].dtype} {out[i].shape}, expected uint8 {images[i].shape}",
            )
        if not np.array_equal(images[i], before[i]):
            _fail(cls, "check_anonymize_output", f"image {i}: anonymize() modified its input")
        if not np.array_equal(out[i], again[i]):
            _fail(cls, "check_anonymize_output", f"image {i}: anonymize() is not deterministic")
    if changes and all(np.array_equal(out[i], images[i]) for i in range(len(images))):
        _fail(cls, "check_anonymize_output", "anonymize() changed nothing")


def check_anonymizes_tiny_images(cls: type, params: dict[str, Any]) -> str | None:
    """:func:`check_anonymize_output` on :func:`tiny_images` (not for ready-made releases, which
    hold files for given names only)."""
    if not getattr(cls, "applies_to_new_images", True):
        return "a ready-made release anonymizes only the images it holds"
    check_anonymize_output(_build(cls, params), tiny_images())
    return None


def check_capabilities_are_implemented(cls: type, params: dict[str, Any]) -> None:
    """An anonymizer's white-box ``provides`` are words of :data:`~anonaudit.anonymizers.whitebox.CAPABILITIES`,
    each with its public method (``training_keys``: the fitted ``training_keys_``, set by ``fit``)."""
    declared = _build(cls, params).capabilities()
    if not isinstance(declared, tuple) or any(c not in CAPABILITIES for c in declared):
        _fail(cls, "check_capabilities_are_implemented",
              f"provides {declared!r}: a tuple of {', '.join(CAPABILITIES)}")
    absent = [c for c in declared if c != "training_keys" and not callable(getattr(cls, CAPABILITY_MEMBERS[c], None))]
    if absent:
        _fail(cls, "check_capabilities_are_implemented",
              f"provides {absent} without {[CAPABILITY_MEMBERS[c] for c in absent]}")
    if "training_keys" in declared and not cls.trainable:
        _fail(cls, "check_capabilities_are_implemented", "provides training_keys but is not trainable")


def check_save_and_load(cls: type, params: dict[str, Any]) -> None:
    """``save`` then ``Anonymizer.load`` gives the same class with the same parameters."""
    anon = _build(cls, params)
    with tempfile.TemporaryDirectory(prefix="anonaudit-check-") as tmp:
        path = Path(tmp) / "target.json"
        anon.save(path)
        loaded = Anonymizer.load(path) if cls.name in ANONYMIZERS else cls(**json.loads(path.read_text())["params"])
    if type(loaded) is not cls or not same_params(loaded.get_params(), anon.get_params()):
        _fail(cls, "check_save_and_load", f"loaded {loaded!r}, saved {anon!r}")


# -- attacks ----------------------------------------------------------------------------------------------------------
def check_declares_criteria(cls: type, params: dict[str, Any]) -> None:
    """An attack declares the Article 29 criteria it tests, from :data:`~anonaudit.attacks.base.ARTICLE29_CRITERIA`."""
    criteria = tuple(getattr(cls, "criteria", ()) or ())
    if not criteria:
        _fail(
            cls,
            "check_declares_criteria",
            f"declares no criteria: set the class attribute criteria to those it tests "
            f"(of {', '.join(ARTICLE29_CRITERIA)}), e.g. criteria = ('linkability',)",
        )
    unknown = [c for c in criteria if c not in ARTICLE29_CRITERIA]
    if unknown or isinstance(cls.criteria, str):
        _fail(cls, "check_declares_criteria", f"criteria {cls.criteria!r}: a tuple of {', '.join(ARTICLE29_CRITERIA)}")


def check_needs_are_known(cls: type, params: dict[str, Any]) -> None:
    """An attack's ``needs`` (on the instance: it may depend on parameters) are words of
    :data:`~anonaudit.attacks.base.NEEDS`, the runner's fixed vocabulary."""
    needs = _build(cls, params).needs
    if unknown := unknown_needs(needs):
        _fail(cls, "check_needs_are_known", f"needs {needs!r}: unknown {unknown} (known: {', '.join(NEEDS)})")


def check_declares_attacker_model(cls: type, params: dict[str, Any]) -> None:
    """An attack declares its attacker model (on the instance: it may depend on parameters): what the
    intruder holds, in words of :data:`~anonaudit.attacks.base.ATTACKER_HOLDINGS`, and what it trains and
    searches, as strings ("" for none)."""
    model = _build(cls, params).intruder()
    if not isinstance(model, AttackerModel):
        _fail(cls, "check_declares_attacker_model", f"intruder() returned {model!r}, not an AttackerModel")
    if unknown := unknown_holdings(model.holds):
        _fail(cls, "check_declares_attacker_model",
              f"attacker_holds {model.holds!r}: unknown {unknown}; set the class attribute attacker_holds to a "
              f"non-empty tuple of {', '.join(ATTACKER_HOLDINGS)} (specifics after a colon: 'ocr_engine: rapidocr')")
    for what in ("trains", "searches"):
        if not isinstance(getattr(model, what), str):
            _fail(cls, "check_declares_attacker_model",
                  f"attacker_{what} {getattr(model, what)!r}: a string saying what it {what} (\"\" for nothing)")


def check_requires_label_names(cls: type, params: dict[str, Any]) -> None:
    """``requires`` is a tuple of label names (strings)."""
    if not isinstance(cls.requires, tuple) or not all(isinstance(r, str) for r in cls.requires):
        _fail(cls, "check_requires_label_names", f"requires {cls.requires!r} is not a tuple of label names")


def check_higher_is_better_is_a_bool(cls: type, params: dict[str, Any]) -> None:
    """``higher_is_better`` is a bool (evaluators orient trade-off plots by it)."""
    if not isinstance(cls.higher_is_better, bool):
        _fail(cls, "check_higher_is_better_is_a_bool", f"higher_is_better {cls.higher_is_better!r} is not a bool")


COMMON_CHECKS: tuple[Check, ...] = (
    check_folder_audit_declaration,
    check_construction_is_cheap,
    check_no_parameter_shadows_the_api,
    check_registry_name,
    check_get_params,
    check_set_params_round_trips,
    check_clone_from_params,
    check_label_and_repr,
    check_non_default_parameters_appear_in_label,
    check_no_fitted_state_after_construction,
    check_clone_is_unfitted,
    check_set_params_validates_like_the_constructor,
)
KIND_CHECKS: dict[str, tuple[Check, ...]] = {
    "anonymizers": (check_anonymizes_tiny_images, check_capabilities_are_implemented, check_save_and_load),
    "attacks": (check_declares_criteria, check_needs_are_known, check_requires_label_names,
                check_declares_attacker_model),
    "evaluators": (check_higher_is_better_is_a_bool,),
}
