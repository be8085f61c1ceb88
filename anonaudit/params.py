"""scikit-learn style parameter handling shared by every component."""

from __future__ import annotations

import copy
import inspect
import math
import numbers
from typing import Any, ClassVar, TypeVar

from .errors import ConfigError

P = TypeVar("P", bound="ParamsMixin")

#: The kinds of release the audit of two folders knows (``anonaudit audit ORIGINALS RELEASE --kind``).
RELEASE_KINDS: tuple[str, ...] = ("plates", "faces")


class ParamsMixin:
    """``get_params`` / ``set_params`` / ``repr`` from the ``__init__`` signature.

    Like scikit-learn estimators, components store each ``__init__`` argument unchanged as an
    attribute of the same name, so a component is fully described by ``name`` + ``get_params()``.
    ``__init__`` only checks and stores its arguments; what ``fit`` learns is kept in attributes
    ending with ``_`` and never created in ``__init__`` (see :func:`clone`).
    """

    name: str = ""

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]

    def get_params(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self._param_names()}

    def set_params(self, **params: Any):
        """Change parameters, validated exactly as the constructor validates them.

        The component is re-constructed with the merged parameters (so an invalid value raises what
        ``__init__`` raises, and ``self`` is left unchanged) and the new instance's attributes are
        copied over; fitted state (trailing-underscore attributes) is kept, as in scikit-learn."""
        valid = set(self._param_names())
        for k in params:
            if k not in valid:
                raise ValueError(f"{type(self).__name__} has no parameter '{k}' (valid: {sorted(valid)})")
        if params:
            fresh = type(self)(**{**self.get_params(), **params})
            vars(self).update(vars(fresh))
        return self

    #: Parameters always shown in :meth:`label`, even at their default (e.g. a swept strength).
    label_params: tuple[str, ...] = ()
    #: Small working parameters for :func:`anonaudit.testing.check_component`: a value for every
    #: parameter the constructor cannot do without, and cheaper settings where the defaults are slow
    #: (small networks, fewer candidates). Never used by audits.
    test_params: ClassVar[dict[str, Any]] = {}
    #: Valid non-default values the contract checks try for parameters they cannot vary by themselves
    #: (strings, parameters defaulting to ``None``), e.g. ``{"region": ("boxes",)}``.
    param_alternatives: ClassVar[dict[str, tuple[Any, ...]]] = {}
    #: Attacks and evaluators: the parameters with which the audit of two folders (``anonaudit audit
    #: ORIGINALS RELEASE --kind K``, :mod:`anonaudit.release_audit`) runs the component, per release
    #: kind ``K`` of :data:`RELEASE_KINDS`, e.g. ``{"plates": {"engine": "rapidocr"}}``. A kind not
    #: named (by default: none) leaves the component out of that audit. Name a kind only when, with
    #: these parameters, the component works offline from the two folders alone: models shipped or
    #: installed, no trained target, shadow models, training keys or other ``needs``. Label columns an
    #: attack reads (:meth:`~anonaudit.attacks.base.Attack.labels_read`) are fine: the attack then
    #: runs when every original carries them.
    folder_audit: ClassVar[dict[str, dict[str, Any]]] = {}

    def always_shown(self) -> tuple[str, ...]:
        """The parameters :meth:`label` shows even at their default: ``label_params``; a class may add
        some that depend on other values (a DP-trained target shows the delta of the epsilon it claims)."""
        return tuple(self.label_params)

    def label(self) -> str:
        """Short readable name: the registry name with parameters that differ from their defaults."""
        sig = inspect.signature(type(self).__init__).parameters
        always = self.always_shown()
        shown = []
        for k, v in self.get_params().items():
            default = sig[k].default
            if k in always or default is inspect.Parameter.empty or _differs(v, default):
                shown.append(f"{k}={_show(v)}")
        return f"{self.name}({', '.join(shown)})" if shown else self.name

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def clone(component: P) -> P:
    """A new, unfitted component of the same class with the same parameters (like
    ``sklearn.base.clone``): parameters are deep-copied (nested components cloned), no fitted state
    or accumulated data is carried over."""
    params = {
        k: clone(v) if isinstance(v, ParamsMixin) else copy.deepcopy(v) for k, v in component.get_params().items()
    }
    return type(component)(**params)


def _show(value: Any) -> str:
    """A parameter value as written in labels: floats to 10 significant digits (``2.6``, not
    ``2.5999999999999996`` from arithmetic on a swept value)."""
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value)


def _differs(value: Any, default: Any) -> bool:
    if isinstance(value, (list, tuple)) and isinstance(default, (list, tuple)):
        return list(value) != list(default)
    try:
        return bool(value != default)
    except Exception:  # noqa: BLE001 - e.g. arrays: treat as different
        return True


def check_range(
    owner: Any,
    name: str,
    value: Any,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    integer: bool = False,
    finite: bool = False,
    optional: bool = False,
) -> None:
    """Raise :class:`ConfigError` unless ``value`` is a number within the given bounds.

    The one range check of the suite: ``ge``/``gt`` (>=, >) and ``le``/``lt`` (<=, <) bound the
    value, ``integer`` asks for a whole number (``True``/``False`` are never numbers here),
    ``finite`` rules out infinities, ``optional`` lets ``None`` through, and NaN is always out of
    range. ``owner`` names the component in the message: a component (its registry ``name``, else its
    class name), a class or a string. The message names the owner, the parameter, the allowed range
    and the value, e.g. ``gaussian_blur: sigma must be a finite number >= 0, got -1``.
    """
    if value is None and optional:
        return
    number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if integer:
        number = number and isinstance(value, numbers.Integral)
    ok = number and not math.isnan(value) and not (finite and math.isinf(value)) and _within(value, ge, gt, le, lt)
    if not ok:
        allowed = describe_range(ge=ge, gt=gt, le=le, lt=lt, integer=integer, finite=finite)
        allowed += " or null" if optional else ""
        raise ConfigError(f"{owner_name(owner)}: {name} must be {allowed}, got {value!r}")


def _within(value: float, ge: float | None, gt: float | None, le: float | None, lt: float | None) -> bool:
    return (
        (ge is None or value >= ge)
        and (gt is None or value > gt)
        and (le is None or value <= le)
        and (lt is None or value < lt)
    )


def describe_range(
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    integer: bool = False,
    finite: bool = False,
) -> str:
    """The range as words: ``a number in [0, 1)``, ``an integer >= 1``, ``a finite number > 0``."""
    what = "an integer" if integer else "a finite number" if finite else "a number"
    if (ge is not None and gt is not None) or (le is not None and lt is not None):
        raise ValueError("give at most one lower bound (ge or gt) and one upper bound (le or lt)")
    low = (ge, "[", ">=") if ge is not None else (gt, "(", ">")
    high = (le, "]", "<=") if le is not None else (lt, ")", "<")
    if low[0] is not None and high[0] is not None:
        return f"{what} in {low[1]}{_num(low[0])}, {_num(high[0])}{high[1]}"
    if low[0] is not None:
        return f"{what} {low[2]} {_num(low[0])}"
    if high[0] is not None:
        return f"{what} {high[2]} {_num(high[0])}"
    return what


def _num(bound: float) -> str:
    return f"{bound:.10g}" if isinstance(bound, float) else str(bound)


def owner_name(owner: Any) -> str:
    """How a message names ``owner``: a string as is, a component or class by its registry ``name``
    (else its class name)."""
    if isinstance(owner, str):
        return owner
    cls = owner if isinstance(owner, type) else type(owner)
    return getattr(cls, "name", "") or cls.__name__
