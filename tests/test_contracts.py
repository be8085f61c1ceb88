"""Contract tests over every registered anonymizer, attack and evaluator (in the spirit of
scikit-learn's ``check_estimator``): cheap construction, ``get_params`` / ``set_params`` /
clone round trips, labels, registry names, no parameter shadowing a method, and for anonymizers
the output contract of ``anonymize`` (same keys, uint8 RGB of the same shape, deterministic)."""

from __future__ import annotations

import inspect
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from face_data import (
    square_image,  # also registers the deterministic 'test_white_square' detector
)

from anonaudit.anonymizers.base import Anonymizer
from anonaudit.attacks.base import Attack
from anonaudit.components import load_builtin_components
from anonaudit.data.imageset import Box, ImageSet
from anonaudit.evaluators.base import Evaluator, PerImageEvaluator
from anonaudit.params import ParamsMixin
from anonaudit.registry import ANONYMIZERS, ATTACKS, EVALUATORS, Registry

load_builtin_components()

KINDS: dict[str, tuple[Registry, type]] = {
    "anonymizers": (ANONYMIZERS, Anonymizer),
    "attacks": (ATTACKS, Attack),
    "evaluators": (EVALUATORS, Evaluator),
}

#: Values for parameters without a usable default (found with ``inspect.signature`` below).
REQUIRED_VALUES: dict[tuple[str, str], dict[str, Any]] = {
    ("anonymizers", "external"): {"path": "released"},
}

#: Names a constructor parameter must never take: they are methods or attributes of the bases.
RESERVED = {"label", "get_params", "set_params", "name", "fit", "run", "anonymize", "compute", "update", "reset",
            "anonymize_image", "save", "load", "check_labels", "requires", "trainable", "label_params",
            "higher_is_better", "method", "score_pair"}
for _base in (ParamsMixin, Anonymizer, Attack, Evaluator, PerImageEvaluator):
    RESERVED |= {n for n in dir(_base) if not n.startswith("_")}

#: Valid alternatives for string parameters (numbers and booleans are varied generically).
STRING_ALTERNATIVES: dict[str, list[str]] = {
    "region": ["boxes", "plate"],
    "on_mismatch": ["drop"],
    "path": ["elsewhere"],
    "net": ["vgg"],
    "box": ["original"],
    "measure": ["psnr", "ssim"],
    "detector": ["test_white_square"],
    "engine": ["tesseract", "easyocr"],
    "embedder": ["pixels"],
    "gallery": ["auxiliary"],
    "blind": ["always", "never", "off"],
    "classifier": ["mlp", "svm"],
    "features": ["pixels"],
    "select": ["first", "best"],
    "attribute": ["smiling"],
    "device": ["cpu"],
    "features_name": ["custom"],
    "projection": ["pca", "lda"],
}


def _ids() -> list:
    return [pytest.param(kind, name, id=f"{kind}:{name}") for kind, (reg, _) in KINDS.items() for name in reg.names()]


COMPONENTS = _ids()


def _required(kind: str, name: str) -> dict[str, Any]:
    cls = KINDS[kind][0].get(name)
    given = dict(REQUIRED_VALUES.get((kind, name), {}))
    missing = [p.name for p in _init_params(cls) if p.default is inspect.Parameter.empty and p.name not in given]
    if missing:  # a new component with required parameters: add simple values to REQUIRED_VALUES
        pytest.skip(f"{kind} '{name}' requires {missing}; no simple value known")
    return given


def _init_params(cls: type) -> list[inspect.Parameter]:
    return [p for p in inspect.signature(cls.__init__).parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def make(kind: str, name: str, **over: Any):
    return KINDS[kind][0].create(name, **{**_required(kind, name), **over})


def same(a: Any, b: Any) -> bool:
    """Parameter equality, lists and tuples alike (JSON and YAML give lists)."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return bool(a == b)


def same_params(p: dict, q: dict) -> bool:
    return p.keys() == q.keys() and all(same(p[k], q[k]) for k in p)


# -- construction and parameters --------------------------------------------------------------------------
def test_every_kind_has_components():
    assert len(ANONYMIZERS.names()) >= 5 and len(ATTACKS.names()) >= 3 and len(EVALUATORS.names()) >= 2


@pytest.mark.parametrize("kind, name", COMPONENTS)
def test_default_construction_is_cheap(kind: str, name: str):
    """No model is loaded in ``__init__`` (weights load lazily, on first use)."""
    t0 = time.perf_counter()
    c = make(kind, name)
    elapsed = time.perf_counter() - t0
    assert elapsed < 1.0, f"{kind} '{name}' took {elapsed:.2f} s to construct"
    assert isinstance(c, KINDS[kind][1])


@pytest.mark.parametrize("kind, name", COMPONENTS)
def test_registry_name(kind: str, name: str):
    c = make(kind, name)
    assert c.name == name and type(c).name == name
    assert KINDS[kind][0].get(name) is type(c)


@pytest.mark.parametrize("kind, name", COMPONENTS)
def test_get_params_are_exactly_the_constructor_parameters(kind: str, name: str):
    c = make(kind, name)
    params = c.get_params()
    sig = _init_params(type(c))
    assert list(params) == [p.name for p in sig]
    given = _required(kind, name)
    for p in sig:  # stored unchanged (up to list/tuple)
        expected = given.get(p.name, p.default)
        assert same(params[p.name], expected), f"{name}.{p.name}: {params[p.name]!r} != {expected!r}"


@pytest.mark.parametrize("kind, name", COMPONENTS)
def test_set_params_round_trips(kind: str, name: str):
    c = make(kind, name)
    params = c.get_params()
    other = make(kind, name)
    assert other.set_params(**params) is other
    assert same_params(other.get_params(), params)
    with pytest.raises(ValueError, match="has no parameter 'no_such_parameter'"):
        other.set_params(no_such_parameter=1)


@pytest.mark.parametrize("kind, name", COMPONENTS)
def test_clone_from_params(kind: str, name: str):
    c = make(kind, name)
    clone = type(c)(**c.get_params())
    assert same_params(clone.get_params(), c.get_params())
    assert clone.label() == c.label()
    # and through JSON, as audits store them
    again = KINDS[kind][0].create(name, **json.loads(json.dumps(c.get_params())))
    assert same_params(again.get_params(), c.get_params())


@pytest.mark.parametrize("kind, name", COMPONENTS)
def test_label_and_repr(kind: str, name: str):
    c = make(kind, name)
    assert callable(c.label)
    label = c.label()
    assert isinstance(label, str) and (label == name or label.startswith(f"{name}("))
    assert repr(c).startswith(f"{type(c).__name__}(")


@pytest.mark.parametrize("kind, name", COMPONENTS)
def test_no_parameter_shadows_a_method_or_base_attribute(kind: str, name: str):
    """Regression: a parameter named ``label`` once replaced the ``label()`` method on instances."""
    cls = KINDS[kind][0].get(name)
    names = {p.name for p in _init_params(cls)}
    assert not names & RESERVED, f"{name}: parameters {sorted(names & RESERVED)} collide with the base API"
    for p in names:
        attr = inspect.getattr_static(cls, p, None)
        assert not isinstance(attr, (property, classmethod, staticmethod)) and not inspect.isfunction(attr), \
            f"{name}: parameter '{p}' shadows {cls.__qualname__}.{p}"


def _variants(value: Any, param: str) -> list[Any]:
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 2, value + 1, 2 * value, 1]
    if isinstance(value, float):
        return [2 * value if value else 0.5, value / 2, value + 0.5, 0.5]
    if isinstance(value, str):
        return STRING_ALTERNATIVES.get(param, [])
    if value is None:
        return STRING_ALTERNATIVES.get(param, []) + [0.5, 1]
    if isinstance(value, (list, tuple)) and value:
        shorter = [type(value)(value[:-1])] if len(value) > 1 else []
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            return shorter + [type(value)(v + 1 for v in value)]
        return shorter
    return []


def _shown(value: Any) -> str:
    return f"{value:.10g}" if isinstance(value, float) else str(value)


@pytest.mark.parametrize("kind, name", COMPONENTS)
def test_non_default_parameters_appear_in_label(kind: str, name: str):
    base = make(kind, name)
    checked = []
    for param, default in base.get_params().items():
        for value in _variants(default, param):
            if same(value, default):
                continue
            try:
                c = make(kind, name, **{param: value})
            except (ValueError, TypeError):  # ConfigError is a ValueError: not a valid value here
                continue
            stored = c.get_params()[param]
            assert same(stored, value)
            label = c.label()
            assert f"{param}={_shown(stored)}" in label, f"{param}={value!r} missing from {label!r}"
            assert label != base.label()
            checked.append(param)
            break
    numeric = [k for k, v in base.get_params().items() if isinstance(v, (int, float))]
    assert checked or not numeric, f"{name}: no valid non-default value found for {numeric}"


# -- anonymizers: the output contract ------------------------------------------------------------------------------
FACE = Box(12, 10, 20, 22)


def tiny_set() -> ImageSet:
    images = [square_image(size=48, box=FACE, seed=s) for s in range(3)]
    images[2] = images[2][:40]  # a different shape: outputs must keep each input's shape
    return ImageSet.from_arrays(images, ["a", "b", "sub/c"], boxes=[[FACE]] * 3, texts=["X1", "X2", "X3"],
                                identities=["p", "q", "p"], name="tiny")


def make_anonymizer(name: str, tmp_path: Path, images: ImageSet) -> Anonymizer:
    params: dict[str, Any] = {}
    if "detector" in ANONYMIZERS.get(name).__init__.__code__.co_varnames:
        params["detector"] = "test_white_square"  # deterministic, no model; dlib/MTCNN are tested elsewhere
    if name == "external":
        images.to_folder(tmp_path / "released")  # somebody else's release of the same images
        params["path"] = str(tmp_path / "released")
    return make("anonymizers", name, **params)


ANONYMIZER_NAMES = [pytest.param(n, id=n) for n in ANONYMIZERS.names()]


@pytest.mark.parametrize("name", ANONYMIZER_NAMES)
def test_anonymize_keeps_keys_shapes_and_is_deterministic(name: str, tmp_path: Path):
    images = tiny_set()
    before = [im.copy() for im in images]
    anon = make_anonymizer(name, tmp_path, images)
    assert anon.fit(images) is anon
    out = anon.anonymize(images, show_progress=False)
    assert isinstance(out, ImageSet) and len(out) == len(images)
    assert out.keys == images.keys
    assert [r.text for r in out.records] == images.texts and out.identities == images.identities
    for i in range(len(images)):
        assert out[i].dtype == np.uint8 and out[i].shape == images[i].shape and out[i].shape[2] == 3
        np.testing.assert_array_equal(images[i], before[i])  # the input is never modified
    again = anon.anonymize(images, show_progress=False)
    for i in range(len(images)):
        np.testing.assert_array_equal(out[i], again[i])
    if name != "external":  # an external release here is a copy of the originals
        assert any(not np.array_equal(out[i], images[i]) for i in range(len(images))), f"{name} changed nothing"


@pytest.mark.parametrize("name", ANONYMIZER_NAMES)
def test_anonymizer_save_and_load(name: str, tmp_path: Path):
    anon = make_anonymizer(name, tmp_path, tiny_set())
    anon.save(tmp_path / "target.json")
    loaded = Anonymizer.load(tmp_path / "target.json")
    assert type(loaded) is type(anon) and same_params(loaded.get_params(), anon.get_params())
