"""Contract tests over every registered anonymizer, attack and evaluator through the public
:func:`anonaudit.testing.check_component` (in the spirit of scikit-learn's ``check_estimator``):
cheap construction, ``get_params`` / ``set_params`` / clone round trips, no fitted state before
``fit``, ``set_params`` validating like the constructor, labels, registry names, no parameter
shadowing a method; for anonymizers the output contract of ``anonymize``; for attacks their declared
Article 29 criteria. What a component needs for the checks is declared on its class (``test_params``,
``param_alternatives``), never in a table here. Then, for every attack, an unchanged release leaks as
much as the originals and a fully masked one no more than chance.
Then the package's structure: components discovered from the source tree (no optional heavy
import), results and reports independent of the runner, the runner cloning each component per
unit, and the demo configuration shipped once as a packaged YAML."""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import math
import shutil
import subprocess
import sys
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
from anonaudit.evaluators.base import Evaluator
from anonaudit.params import clone
from anonaudit.registry import (
    ANONYMIZERS,
    ATTACKS,
    EVALUATORS,
    REGISTRIES,
    REGISTRY_NAMES,
    Registry,
    load_builtin_components,
)
from anonaudit.testing import (
    ContractError,
    check_anonymize_output,
    check_component,
    component_params,
    fitted_attributes,
    init_params,
    tiny_images,
)

load_builtin_components()

KINDS: dict[str, tuple[Registry, type]] = {
    "anonymizers": (ANONYMIZERS, Anonymizer),
    "attacks": (ATTACKS, Attack),
    "evaluators": (EVALUATORS, Evaluator),
}

#: Deterministic models without weights in place of the defaults (the white-square test detector of
#: ``face_data``): dlib and MTCNN are tested elsewhere.
STAND_INS: dict[str, Any] = {"detector": "test_white_square"}


def _ids() -> list:
    return [pytest.param(kind, name, id=f"{kind}:{name}") for kind, (reg, _) in KINDS.items() for name in reg.names()]


COMPONENTS = _ids()


# -- every registered component passes check_component -----------------------------------------------------------------
def test_every_kind_has_components():
    assert len(ANONYMIZERS.names()) >= 5 and len(ATTACKS.names()) >= 3 and len(EVALUATORS.names()) >= 2


@pytest.mark.parametrize("kind, name", COMPONENTS)
def test_component_contract(kind: str, name: str):
    """Construction, parameters, labels, clones, validation; anonymizers' output, attacks' criteria."""
    cls = KINDS[kind][0].get(name)
    report = check_component(cls, stand_ins=STAND_INS)
    assert report["check_get_params"] == "passed" and report["check_non_default_parameters_appear_in_label"] == "passed"
    if kind == "anonymizers" and cls.applies_to_new_images:  # a ready-made release: tested on its files below
        assert report["check_anonymizes_tiny_images"] == "passed", report


def test_external_release_keeps_keys_and_shapes(tmp_path: Path):
    """A ready-made release anonymizes only the images it holds: checked on a folder of them."""
    images = tiny_images()
    images.to_folder(tmp_path / "released")
    check_anonymize_output(ANONYMIZERS.create("external", path=str(tmp_path / "released")), images, changes=False)


# -- check_component itself fails loudly ---------------------------------------------------------------------------
class _Required(Anonymizer):
    name = "contract_required"

    def __init__(self, strength: float):
        self.strength = strength

    def anonymize_image(self, image, record):
        return 255 - image


class _Declared(_Required):
    test_params = {"strength": 1.0}


class _RejectsDefault(_Required):
    test_params = {"strength": 1.0}
    param_alternatives = {"strength": (-3.0,)}

    def __init__(self, strength: float, mode: str = "a"):
        if strength < 0:
            raise ConfigError(f"strength must be >= 0, got {strength}")
        self.strength, self.mode = strength, mode


class _NoCriteria(Attack):
    name = "contract_no_criteria"

    def __init__(self, k: int = 2):
        self.k = k


class _Shadowing(_NoCriteria):
    name = "contract_shadowing"
    criteria = ("inference",)

    def __init__(self, label: str = "x"):
        self.label = label


def test_check_component_passes_a_component_declaring_what_it_needs():
    report = check_component(_Declared)
    assert report["check_anonymizes_tiny_images"] == "passed" and "check_declares_criteria" not in report
    assert check_component(_Declared(strength=2.0))["check_get_params"] == "passed"  # an instance: its own params


def test_check_component_fails_a_required_parameter_without_test_params():
    with pytest.raises(
        ContractError,
        match=r"anonymizer 'contract_required' requires \['strength'\] and declares no value "
        r"for them: add small working values to the class attribute test_params",
    ):
        check_component(_Required)


def test_check_component_fails_an_attack_without_criteria():
    with pytest.raises(
        ContractError, match="attack 'contract_no_criteria': check_declares_criteria: declares no criteria"
    ):
        check_component(_NoCriteria)


def test_check_component_fails_a_parameter_shadowing_the_api_and_a_rejected_alternative():
    with pytest.raises(ContractError, match=r"parameters \['label'\] collide with the base API"):
        check_component(_Shadowing)
    with pytest.raises(
        ContractError, match=r"param_alternatives\['strength'\] holds -3.0, which the constructor rejects"
    ):
        check_component(_RejectsDefault)


def test_set_params_keeps_fitted_state_and_revalidates():
    blur = ANONYMIZERS.create("gaussian_blur", sigma=2.0)
    blur.learned_ = "kept"
    assert blur.set_params(sigma=3.0, region="boxes") is blur
    assert (blur.sigma, blur.region, blur.learned_) == (3.0, "boxes", "kept")
    with pytest.raises(ConfigError, match="sigma must be a finite number >= 0"):
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
    with pytest.raises(
        ConfigError, match="targets\\[0\\]: things 'buggy': got an unexpected keyword argument 'colour'"
    ):
        _check_values(reg, ComponentSpec("buggy", {"colour": 3}), "targets[0]")


# -- every registered attack on an unchanged and on a fully masked release ------------------------------------------
#: Cheap stand-ins for model parameters, used where an attack has them: the attack's own logic runs
#: in full, on models that need no weights (pixel embeddings, the white-square test detector), with
#: the attack's declared ``test_params`` (e.g. fewer inversion candidates per image).
#: The attacks with their default models run on real faces in the ``shared_data`` test below.
CHEAP_MODELS: dict[str, Any] = {"embedder": "pixels", "detector": "test_white_square", "features": "pixels"}
FACE_BOX = Box(2, 2, 12, 12, "face")  # the white-square "face", away from the centre crop pixel embeddings use


def synthetic_faces(n_people: int, per_person: int, seed: int, prefix: str) -> ImageSet:
    """Identity patterns (re-identifiable), a red or blue tint by gender (inferable) and a white-square
    face (detectable by ``test_white_square``); keys do not name the person."""
    people = synthetic_identities(n_people, per_person, seed=seed, prefix=prefix)
    images, attributes = [], []
    for i in range(len(people)):
        gender = "male" if int(people.identities[i][len(prefix) :]) % 2 == 0 else "female"
        img = people[i].astype(float)
        img[..., 0 if gender == "male" else 2] += 30
        img = np.clip(img, 0, 250).astype(np.uint8)
        img[FACE_BOX.y : FACE_BOX.y + FACE_BOX.h, FACE_BOX.x : FACE_BOX.x + FACE_BOX.w] = 255
        images.append(img)
        attributes.append({"gender": gender})
    return ImageSet.from_arrays(
        images,
        [f"{prefix}{i:03d}" for i in range(len(people))],
        identities=people.identities,
        attributes=attributes,
        boxes=[[FACE_BOX]] * len(people),
        name=f"faces-{prefix}",
    )


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
    params = component_params(cls, CHEAP_MODELS)
    if "text" in getattr(cls, "requires", ()) or set(vars(cls).get("folder_audit", {})) == {"plates"}:
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
    assert fitted_attributes(clone(attack)) == []  # whatever fit/run learned stays with that object
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
            # (a rate the sample cannot resolve, e.g. TAR at a FAR below 1/impostors, is NaN on both)
            assert m.release.value == pytest.approx(m.original.value, abs=1e-9, nan_ok=True), m.metric


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
            f"[{m.release.ci_low:.3f}, {m.release.ci_high:.3f}], baseline {m.baseline:.3f})"
        )


@pytest.mark.shared_data("lfw/images")
@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, id=n)
        for n in ATTACKS.names()
        if {p.name for p in init_params(ATTACKS.get(n))} & {"embedder", "detector"}
    ],
)
def test_face_attack_with_its_default_models_on_real_faces(
    name: str, faces: ImageSet, tmp_path: Path, one_torch_thread
):
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


# -- discovery, import layering, the runner's clones, the packaged demo ------------------------------------------------
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
            if isinstance(cls, type) and module.startswith(
                "anonaudit."
            ):  # functions (data sets) are registered elsewhere
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
    assert [m for m, p in found.items() if registers_components(p.read_text(), REGISTRY_NAMES)] == [
        "pkg.attacks.newattack"
    ]


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
    blocked = _python(
        BLOCK_OPTIONAL + listing + "print(sorted(m for m in sys.modules if m.split('.')[0] in BLOCKED))\n"
    )
    names, imported = blocked.strip().split("\n")[-2:]
    assert imported == "[]"
    everything = json.loads(_python("import sys\n" + listing).strip().split("\n")[-1])
    assert json.loads(names) == everything and sum(map(len, everything.values())) > 20


def test_results_and_reports_do_not_import_the_runner():
    out = _python(
        "import sys\nimport anonaudit.results, anonaudit.reports.html\nprint('anonaudit.audit' in sys.modules)\n"
    )
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
        return AttackResult(
            self.name, [Measurement("unchanged", proportion(same), proportion([True] * len(same)), 0.0)]
        )


def test_runner_clones_every_component_per_unit(tmp_path: Path):
    from anonaudit.audit import Audit

    data = ImageSet.from_arrays([square_image(seed=s) for s in range(4)], [f"k{s}" for s in range(4)])
    attack, target = _CountingAttack(), ANONYMIZERS.create("noise", std=5.0)
    results = Audit(data, [target, ANONYMIZERS.create("mask")], [attack], aux_fraction=0, on_error="raise").run(
        tmp_path / "run", show_progress=False
    )
    assert fitted_attributes(attack) == [] and fitted_attributes(target) == []  # the caller's objects untouched
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
