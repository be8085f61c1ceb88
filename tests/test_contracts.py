"""Contract tests over every registered anonymizer, attack and evaluator (in the spirit of
scikit-learn's ``check_estimator``): cheap construction, ``get_params`` / ``set_params`` /
clone round trips, no fitted state before ``fit``, ``set_params`` validating like the constructor,
labels, registry names, no parameter shadowing a method; for anonymizers the output contract of
``anonymize`` (same keys, uint8 RGB of the same shape, deterministic); for every attack, an
unchanged release leaks as much as the originals and a fully masked one no more than chance.
Then the package's structure: components discovered from the source tree (no optional heavy
import), results and reports independent of the runner, the runner cloning each component per
unit, and the demo configuration shipped once as a packaged YAML."""

from __future__ import annotations

import dataclasses
import fnmatch
import inspect
import json
import math
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from face_data import (
    square_image,  # also registers the deterministic 'test_white_square' detector
    synthetic_identities,
)

from anonaudit import components
from anonaudit.anonymizers.base import Anonymizer
from anonaudit.anonymizers.classical import Mask
from anonaudit.attacks.base import Attack, AttackResult
from anonaudit.components import builtin_modules, registers_components
from anonaudit.config import ComponentSpec, _check_values
from anonaudit.data.imageset import Box, ImageSet, Release
from anonaudit.data.synthetic_plates import synthetic_plates
from anonaudit.errors import ConfigError, DataError, ModelUnavailableError
from anonaudit.evaluators.base import Evaluator, PerImageEvaluator
from anonaudit.params import ParamsMixin, clone
from anonaudit.registry import (
    ANONYMIZERS,
    ATTACKS,
    EVALUATORS,
    REGISTRIES,
    REGISTRY_NAMES,
    Registry,
    load_builtin_components,
)

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
    params.update(getattr(ANONYMIZERS.get(name), "tiny_params", {}))  # trained targets: the tiny CPU networks
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


# -- fitted state, clone, set_params validation ----------------------------------------------------------------
def _fitted_attributes(component: Any) -> list[str]:
    """Attributes holding what ``fit`` learned: trailing underscore (scikit-learn's convention)."""
    return sorted(k for k in vars(component) if k.endswith("_") and not k.startswith("__"))


@pytest.mark.parametrize("kind, name", COMPONENTS)
def test_no_fitted_state_after_construction(kind: str, name: str):
    assert _fitted_attributes(make(kind, name)) == []


@pytest.mark.parametrize("kind, name", COMPONENTS)
def test_clone_is_unfitted_with_equal_params_and_label(kind: str, name: str):
    c = make(kind, name)
    c.learned_ = np.arange(3)  # as a fit would leave it
    copy = clone(c)
    assert type(copy) is type(c) and copy is not c
    assert same_params(copy.get_params(), c.get_params())
    assert _fitted_attributes(copy) == []
    assert copy.label() == c.label() == c.label()  # stable, and the same for a clone
    assert c.set_params(**c.get_params()).label() == copy.label()


#: Values no constructor should accept for a parameter of the default's type (tried in order).
INVALID_VALUES: list[Any] = [-1, -0.5, float("nan"), "no-such-choice", [], 0]


def _invalid_value(kind: str, name: str) -> tuple[str, Any, type[BaseException], str] | None:
    """A (parameter, value) the constructor rejects with a ValueError (ConfigError), and what it raised."""
    for param in make(kind, name).get_params():
        for value in INVALID_VALUES:
            try:
                make(kind, name, **{param: value})
            except ValueError as exc:
                return param, value, type(exc), str(exc)
            except Exception:  # noqa: BLE001 - another error type: not a value check, try the next value
                continue
    return None


@pytest.mark.parametrize("kind, name", COMPONENTS)
def test_set_params_validates_like_the_constructor(kind: str, name: str):
    found = _invalid_value(kind, name)
    if found is None:
        pytest.skip(f"{kind} '{name}' accepts every value tried for each parameter")
    param, value, error, message = found
    c = make(kind, name)
    before = c.get_params()
    with pytest.raises(error) as info:
        c.set_params(**{param: value})
    assert str(info.value) == message
    assert same_params(c.get_params(), before)  # a rejected value leaves the component unchanged


def test_set_params_keeps_fitted_state_and_revalidates():
    blur = ANONYMIZERS.create("gaussian_blur", sigma=2.0)
    blur.learned_ = "kept"
    assert blur.set_params(sigma=3.0, region="boxes") is blur
    assert (blur.sigma, blur.region, blur.learned_) == (3.0, "boxes", "kept")
    with pytest.raises(ConfigError, match="sigma must be a non-negative number"):
        blur.set_params(sigma=-1)
    with pytest.raises(ConfigError, match="region must be 'image' or 'boxes'"):
        blur.set_params(region="everywhere")
    assert (blur.sigma, blur.region) == (3.0, "boxes")


def test_clone_copies_parameters_deeply():
    attack = ATTACKS.create("ocr", engine_params={"allowlist": "ABC"})
    copy = clone(attack)
    copy.engine_params["allowlist"] = "XYZ"
    assert attack.engine_params == {"allowlist": "ABC"}


# -- a TypeError inside a constructor is a bug, not a config mistake ------------------------------------------
class _BuggyConstructor:
    name = "buggy"

    def __init__(self, size: int = 3):
        self.size = size
        len(size)  # a bug: raises TypeError for every int


def test_type_error_inside_a_constructor_is_not_a_config_error():
    reg: Registry = Registry("things")
    reg._plugins_loaded = True  # no built-ins or entry points for this private registry
    reg.register()(_BuggyConstructor)
    with pytest.raises(ConfigError, match="unexpected keyword argument 'sise'") as info:
        reg.create("buggy", sise=3)
    assert isinstance(info.value.__cause__, TypeError)
    with pytest.raises(TypeError, match="has no len") as info:
        reg.create("buggy", size=3)
    assert not isinstance(info.value, ConfigError)
    with pytest.raises(TypeError, match="has no len"):  # nor while a config is read
        _check_values(reg, ComponentSpec("buggy", {"size": 3}), "targets[0]")
    with pytest.raises(ConfigError, match="targets\\[0\\]: things 'buggy': got an unexpected keyword argument 'colour'"):
        _check_values(reg, ComponentSpec("buggy", {"colour": 3}), "targets[0]")


# -- every registered attack on an unchanged and on a fully masked release ------------------------------------------
#: Cheap stand-ins for model parameters, used where an attack has them: the attack's own logic runs
#: in full, on models that need no weights (pixel embeddings, the white-square test detector).
#: The attacks with their default models run on real faces in the ``shared_data`` test below.
CHEAP_MODELS: dict[str, Any] = {"embedder": "pixels", "detector": "test_white_square", "features": "pixels"}
#: Fewer inversion candidates per image keep the file fast; the attacks' logic is unchanged.
CHEAP_PARAMS: dict[str, dict[str, Any]] = {
    "deblur_ocr": {"methods": ["wiener"], "wiener_balances": [0.01], "sigma_scales": [1.0], "blind_sigmas": [0.05]},
    "depixelate_ocr": {"methods": ["gaussian"], "blind_blocks": [8]},
    "k_anonymity": {"k": 2},  # the claim a k-anonymity release would carry in its params
}
FACE_BOX = Box(2, 2, 12, 12, "face")  # the white-square "face", away from the centre crop pixel embeddings use


def synthetic_faces(n_people: int, per_person: int, seed: int, prefix: str) -> ImageSet:
    """Identity patterns (re-identifiable), a red or blue tint by gender (inferable) and a white-square
    face (detectable by ``test_white_square``); keys do not name the person."""
    people = synthetic_identities(n_people, per_person, seed=seed, prefix=prefix)
    images, attributes = [], []
    for i in range(len(people)):
        gender = "male" if int(people.identities[i][len(prefix):]) % 2 == 0 else "female"
        img = people[i].astype(float)
        img[..., 0 if gender == "male" else 2] += 30
        img = np.clip(img, 0, 250).astype(np.uint8)
        img[FACE_BOX.y : FACE_BOX.y + FACE_BOX.h, FACE_BOX.x : FACE_BOX.x + FACE_BOX.w] = 255
        images.append(img)
        attributes.append({"gender": gender})
    return ImageSet.from_arrays(images, [f"{prefix}{i:03d}" for i in range(len(people))], identities=people.identities,
                                attributes=attributes, boxes=[[FACE_BOX]] * len(people), name=f"faces-{prefix}")


def as_files(images: ImageSet, folder: Path, stem: str, exif: bool) -> ImageSet:
    """``images`` as JPEG files named ``<stem><i>.jpg`` (with camera make and model in EXIF when
    ``exif``: metadata a release must not carry), read back lazily with the same labels."""
    from PIL import Image

    folder.mkdir(parents=True)
    records = []
    for i in range(len(images)):
        path = folder / f"{stem}{i:03d}.jpg"
        info = Image.Exif()
        if exif:
            info[0x010F], info[0x0110] = "TestCam", "Model 7"  # Make, Model
        Image.fromarray(images[i]).save(path, quality=95, exif=info)
        records.append(dataclasses.replace(images.record(i), path=path))
    return ImageSet(records, name=images.name)


def copied(originals: ImageSet, folder: Path) -> ImageSet:
    """The unchanged release: byte copies of the original files under other names."""
    folder.mkdir(parents=True)
    records = []
    for i, rec in enumerate(originals.records):
        path = folder / f"r{i:03d}{rec.path.suffix}"
        shutil.copyfile(rec.path, path)
        records.append(dataclasses.replace(rec, path=path))
    return ImageSet(records, name="unchanged")


def attack_setup(name: str, tmp: Path) -> tuple[dict[str, Any], ImageSet, ImageSet]:
    """Parameters, file-backed originals and the intruder's auxiliary images for attack ``name``."""
    cls = ATTACKS.get(name)
    accepted = {p.name for p in _init_params(cls)}
    params = {k: v for k, v in CHEAP_MODELS.items() if k in accepted} | CHEAP_PARAMS.get(name, {})
    if "text" in getattr(cls, "requires", ()):
        originals, aux = synthetic_plates(6, seed=5), synthetic_plates(6, seed=6)
    else:
        originals, aux = synthetic_faces(6, 2, seed=0, prefix="p"), synthetic_faces(6, 2, seed=1, prefix="a")
    return params, as_files(originals, tmp / "originals", "o", exif=True), aux


def _run(name: str, params: dict, aux: ImageSet, release: Release):
    attack = ATTACKS.create(name, **params)
    if attack.needs:  # white-box and adaptive-only attacks: their own tests give them trained targets
        pytest.skip(f"attack '{name}' needs the release to carry {', '.join(attack.needs)}")
    try:
        result = attack.fit(aux).run(release)
    except ModelUnavailableError as exc:
        pytest.skip(f"attack '{name}': {exc}")
    assert _fitted_attributes(clone(attack)) == []  # whatever fit/run learned stays with that object
    return result


def _at_chance(m) -> bool:
    """Risk at most 0.1, or the release's 95% CI reaches down to the baseline (small test samples)."""
    return m.risk <= 0.1 or math.isnan(m.baseline) or m.release.ci_low <= m.baseline + 1e-9


def _no_gain(m) -> bool:
    """The attack gains nothing on the originals over its baseline (no relative risk defined)."""
    return m.original is None or math.isclose(m.original.value, m.baseline, abs_tol=1e-12) or math.isnan(m.risk)


ATTACK_NAMES = [pytest.param(n, id=n) for n in ATTACKS.names()]


@pytest.mark.parametrize("name", ATTACK_NAMES)
def test_attack_on_unchanged_release_does_as_well_as_on_originals(name: str, tmp_path: Path):
    params, originals, aux = attack_setup(name, tmp_path)
    result = _run(name, params, aux, Release(originals, copied(originals, tmp_path / "release"), "unchanged", {}))
    assert result.metrics, f"{name} reported no metric"
    risks = [m.risk for m in result.metrics if not _no_gain(m)]
    assert risks, f"{name}: no metric gains anything on the originals of its test data; the data plants nothing"
    assert max(risks) >= 0.99, f"{name}: strongest risk on an unchanged release {max(risks):.3f} < 1"
    for m in result.metrics:
        if _no_gain(m) and m.original is not None:  # no advantage on the originals: the release does the same
            assert m.release.value == pytest.approx(m.original.value, abs=1e-9), m.metric


@pytest.mark.parametrize("name", ATTACK_NAMES)
def test_attack_on_fully_masked_release_is_at_chance(name: str, tmp_path: Path):
    params, originals, aux = attack_setup(name, tmp_path)
    masked = as_files(Mask().anonymize(originals.load(), show_progress=False), tmp_path / "release", "m", exif=False)
    result = _run(name, params, aux, Release(originals, masked, "mask", {}))
    for m in result.metrics:
        if math.isnan(m.risk):
            continue
        assert _at_chance(m), (
            f"{name}.{m.metric}: risk {m.risk:.3f} on a fully masked release (release {m.release.value:.3f} "
            f"[{m.release.ci_low:.3f}, {m.release.ci_high:.3f}], baseline {m.baseline:.3f})")


@pytest.mark.shared_data("lfw/images")
@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in ATTACKS.names()
                                  if {p.name for p in _init_params(ATTACKS.get(n))} & {"embedder", "detector"}])
def test_face_attack_with_its_default_models_on_real_faces(name: str, faces: ImageSet, tmp_path: Path, one_torch_thread):
    """The attacks that use face models, with their defaults, on five LFW photos: an unchanged release is
    as re-identifiable / detectable as the originals, a masked one is not."""
    attack = ATTACKS.create(name)
    if attack.needs:
        pytest.skip(f"attack '{name}' needs the release to carry {', '.join(attack.needs)}")
    try:
        attack.fit(None)
    except DataError as exc:  # e.g. an attribute attacker needs labelled auxiliary data (tested above)
        pytest.skip(f"attack '{name}' needs auxiliary data: {exc}")
    for masked in (False, True):
        images = Mask().anonymize(faces, show_progress=False) if masked else faces
        try:
            result = ATTACKS.create(name).fit(None).run(Release(faces, images, "", {}))
        except ModelUnavailableError as exc:
            pytest.skip(f"attack '{name}': {exc}")
        gains = [m for m in result.metrics if not _no_gain(m)]
        assert gains, f"{name}: no metric gains anything on the originals"
        if masked:
            assert all(_at_chance(m) for m in gains), f"{name}: {[(m.metric, m.risk) for m in gains]}"
        else:
            assert max(m.risk for m in gains) >= 0.99, f"{name}: {[(m.metric, m.risk) for m in gains]}"


# -- discovery, import layering, the runner's clones, the packaged demo ---------------------------------------------------
def test_registers_components_finds_decorators_and_calls_only_on_registries():
    assert registers_components('@ATTACKS.register("x")\nclass X: ...\n', REGISTRY_NAMES)
    assert registers_components("for n, f in ITEMS:\n    DATASETS.register(n)(f)\n", REGISTRY_NAMES)
    assert not registers_components("import atexit\natexit.register(print)\n", REGISTRY_NAMES)
    assert not registers_components('"""Use ``ATTACKS.register("x")`` to add one."""\n', REGISTRY_NAMES)


def test_every_registered_builtin_comes_from_a_discovered_module():
    modules = set(builtin_modules(REGISTRY_NAMES))
    for kind, reg in REGISTRIES.items():
        for name in reg.names():
            cls = reg.get(name)
            module = cls.__module__
            if isinstance(cls, type) and module.startswith("anonaudit."):  # functions (data sets) are registered elsewhere
                assert module in modules, f"{kind} '{name}' is registered in {module}, which discovery missed"


def test_a_new_module_is_discovered_without_editing_any_list(tmp_path: Path):
    package = tmp_path / "pkg" / "attacks"
    package.mkdir(parents=True)
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "newattack.py").write_text('from x import ATTACKS\n\n@ATTACKS.register("new")\nclass New: ...\n')
    (package / "helpers.py").write_text("import torch\n")  # registers nothing: never imported
    found = dict(components._walk(tmp_path / "pkg", "pkg."))
    assert set(found) == {"pkg.attacks", "pkg.attacks.newattack", "pkg.attacks.helpers"}
    assert [m for m, p in found.items() if registers_components(p.read_text(), REGISTRY_NAMES)] == ["pkg.attacks.newattack"]


BLOCK_OPTIONAL = """
import importlib.abc, sys
BLOCKED = {"torch", "torchvision", "dlib", "facenet_pytorch", "lpips", "easyocr", "pytesseract", "xgboost",
           "face_recognition_models", "onnx", "pytorch_fid", "torchmetrics"}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
sys.meta_path.insert(0, Block())
"""


def _python(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_discovery_imports_no_optional_heavy_dependency():
    """Without torch, dlib, EasyOCR, ... every built-in still registers (their imports are lazy)."""
    listing = (
        "import json\n"
        "from anonaudit.registry import load_builtin_components\n"
        "from anonaudit.registry import REGISTRIES\n"
        "load_builtin_components()\n"
        "print(json.dumps({k: r.names() for k, r in REGISTRIES.items()}))\n"
    )
    blocked = _python(BLOCK_OPTIONAL + listing + "print(sorted(m for m in sys.modules if m.split('.')[0] in BLOCKED))\n")
    names, imported = blocked.strip().split("\n")[-2:]
    assert imported == "[]"
    everything = json.loads(_python("import sys\n" + listing).strip().split("\n")[-1])
    assert json.loads(names) == everything and sum(map(len, everything.values())) > 20


def test_results_and_reports_do_not_import_the_runner():
    out = _python("import sys\nimport anonaudit.results, anonaudit.reports.html\n"
                  "print('anonaudit.audit' in sys.modules)\n")
    assert out.strip() == "False"


class _CountingAttack(Attack):
    """Fails when it is fitted or run twice: the runner must give every unit a fresh clone."""

    name = "counting"

    def __init__(self, scale: float = 1.0):
        self.scale = scale

    def fit(self, auxiliary=None):
        assert not hasattr(self, "fitted_"), "fitted twice: the runner reused a unit's component"
        self.fitted_ = True
        return self

    def run(self, release):
        from anonaudit.measurement import Measurement
        from anonaudit.stats import proportion

        assert not hasattr(self, "ran_"), "run twice: the runner reused a unit's component"
        self.ran_ = True
        same = [bool(np.array_equal(*release.pair(i))) for i in range(len(release))]
        return AttackResult(self.name, [Measurement("unchanged", proportion(same), proportion([True] * len(same)), 0.0)])


def test_runner_clones_every_component_per_unit(tmp_path: Path):
    from anonaudit.audit import Audit

    data = ImageSet.from_arrays([square_image(seed=s) for s in range(4)], [f"k{s}" for s in range(4)])
    attack, target = _CountingAttack(), ANONYMIZERS.create("noise", std=5.0)
    results = Audit(data, [target, ANONYMIZERS.create("mask")], [attack], aux_fraction=0, on_error="raise").run(
        tmp_path / "run", show_progress=False)
    assert _fitted_attributes(attack) == [] and _fitted_attributes(target) == []  # the caller's objects untouched
    rows = results.table[results.table["kind"] == "attack"]
    assert list(rows["value"]) == [0.0, 0.0] and rows["target_id"].nunique() == 2
    assert all((tmp_path / "run" / "examples" / t).is_dir() for t in rows["target_id"])
    # the report finds each target's examples through the table's target_id alone
    from anonaudit.reports.examples import target_examples
    from anonaudit.results import Results

    loaded = Results.load(tmp_path / "run")
    shown = target_examples(loaded.output, loaded.table, ["noise(std=5)", "mask"])
    assert [e["label"] for e in shown] == ["noise(std=5)", "mask"] and all(e["examples"] for e in shown)


def test_demo_configuration_is_the_packaged_yaml():
    from importlib import resources

    from anonaudit import cli

    assert not hasattr(cli, "DEMO_CONFIG")
    text = resources.files("anonaudit").joinpath(cli.DEMO_RESOURCE).read_text(encoding="utf-8")
    raw = yaml.safe_load(text)
    config = cli.demo_config()
    assert config.name == raw["name"] and {"name": config.data.name, **config.data.params} == raw["data"]
    assert [t.name for t in config.targets] == ["gaussian_blur"] * 4 + ["pixelate"] * 3 + ["mask"]
    assert [a.name for a in config.attacks] == [a["name"] for a in raw["attacks"]]
    assert cli.demo_config(40).data.params["n"] == 40
    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    shipped = pyproject["tool"]["setuptools"]["package-data"]["anonaudit"]
    assert any(fnmatch.fnmatch(cli.DEMO_RESOURCE, pattern) for pattern in shipped)  # installed with the package
