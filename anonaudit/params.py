"""scikit-learn style parameter handling shared by every component."""

from __future__ import annotations

import copy
import inspect
from typing import Any, ClassVar, TypeVar

P = TypeVar("P", bound="ParamsMixin")


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

    def label(self) -> str:
        """Short readable name: the registry name with parameters that differ from their defaults."""
        sig = inspect.signature(type(self).__init__).parameters
        shown = []
        for k, v in self.get_params().items():
            default = sig[k].default
            if k in self.label_params or default is inspect.Parameter.empty or _differs(v, default):
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
