"""Component registries: names, "did you mean" on unknown names, bad parameters as ConfigError,
registration rules, and real entry-point plugins (a package and its ``.dist-info`` written to a
temporary folder on ``sys.path``; ``importlib.metadata`` finds them as it finds installed ones)."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from anonaudit.anonymizers import GaussianBlur, Mask
from anonaudit.anonymizers.base import Anonymizer
from anonaudit.data.imageset import ImageSet
from anonaudit.errors import ConfigError, UnknownComponentError
from anonaudit.registry import (
    ANONYMIZERS,
    ATTACKS,
    EVALUATORS,
    REGISTRIES,
    Registry,
    create_anonymizer,
    create_attack,
    create_evaluator,
    load_builtin_components,
)

load_builtin_components()


# -- names and lookups ------------------------------------------------------------------------------------
def test_registries_by_kind():
    assert set(REGISTRIES) == {
        "anonymizers",
        "attacks",
        "evaluators",
        "embedders",
        "ocr_engines",
        "detectors",
        "datasets",
    }
    assert all(r.kind == k for k, r in REGISTRIES.items())


def test_names_are_sorted_and_hold_the_builtins():
    names = ANONYMIZERS.names()
    assert names == sorted(names)
    assert {"gaussian_blur", "box_blur", "pixelate", "mask", "noise", "external"} <= set(names)
    assert {"ocr", "deblur_ocr", "depixelate_ocr"} <= set(ATTACKS.names())
    assert {"ssim", "psnr"} <= set(EVALUATORS.names())
    assert list(ANONYMIZERS) == names
    assert "mask" in ANONYMIZERS and "masque" not in ANONYMIZERS
    assert ANONYMIZERS.get("gaussian_blur") is GaussianBlur


@pytest.mark.parametrize("registry, typo, suggestion", [
    (ANONYMIZERS, "gausian_blur", "gaussian_blur"),
    (ANONYMIZERS, "pixelat", "pixelate"),
    (ANONYMIZERS, "Mask", "mask"),
    (ATTACKS, "orc", "ocr"),
    (EVALUATORS, "psnrr", "psnr"),
    (EVALUATORS, "ssmi", "ssim"),
])
def test_unknown_name_suggests_close_matches(registry: Registry, typo: str, suggestion: str):
    with pytest.raises(UnknownComponentError) as info:
        registry.get(typo)
    msg = str(info.value)
    assert msg.startswith(f"unknown {registry.kind} '{typo}'; did you mean ")
    assert f"'{suggestion}'" in msg.split("(known:")[0]
    # every known name is listed, and the message is not KeyError-quoted
    assert msg.endswith(f"(known: {', '.join(registry.names())})")
    assert not msg.startswith('"')
    # usable as both a ConfigError and a KeyError
    assert isinstance(info.value, ConfigError) and isinstance(info.value, KeyError)


def test_unknown_name_without_close_match_has_no_suggestion():
    with pytest.raises(UnknownComponentError) as info:
        ANONYMIZERS.get("zzzzzzzz")
    assert "did you mean" not in str(info.value)
    assert "(known: " in str(info.value) and "box_blur, " in str(info.value)


def test_create_passes_parameters():
    blur = ANONYMIZERS.create("gaussian_blur", sigma=3.5, region="boxes")
    assert isinstance(blur, GaussianBlur) and blur.sigma == 3.5 and blur.region == "boxes"
    assert create_anonymizer("mask", color=[1, 2, 3]).color == (1, 2, 3)
    assert create_attack("ocr", k=5).k == 5
    assert create_evaluator("psnr", region="boxes").region == "boxes"


@pytest.mark.parametrize("name, params, fragment", [
    ("gaussian_blur", {"sigam": 2}, "unexpected keyword argument 'sigam'"),
    ("mask", {"colour": (1, 2, 3)}, "unexpected keyword argument 'colour'"),
    ("pixelate", {"block": 4, "extra": 1}, "unexpected keyword argument 'extra'"),
])
def test_create_turns_bad_keywords_into_config_errors(name: str, params: dict, fragment: str):
    with pytest.raises(ConfigError) as info:
        ANONYMIZERS.create(name, **params)
    assert str(info.value).startswith(f"anonymizers '{name}': ")
    assert fragment in str(info.value)
    assert isinstance(info.value.__cause__, TypeError)


def test_create_keeps_the_components_own_config_errors():
    with pytest.raises(ConfigError, match=r"gaussian_blur: sigma must be a finite number >= 0, got -1"):
        ANONYMIZERS.create("gaussian_blur", sigma=-1)


# -- registration rules ---------------------------------------------------------------------------------------
class _Thing:
    name = "thing"


def test_register_uses_the_class_name_and_sets_it():
    reg: Registry = Registry("things")
    reg._plugins_loaded = True  # no entry points for this made-up kind

    @reg.register()
    class A(_Thing):
        pass

    @reg.register("other")
    class B(_Thing):
        pass

    assert reg.names() == ["other", "thing"]
    assert A.name == "thing" and B.name == "other"  # the registry name becomes the class's name
    assert reg.register("other")(B) is B  # registering the same class again is harmless
    with pytest.raises(ConfigError, match=r"things 'other' is registered twice \(.*B, .*C\)"):
        @reg.register("other")
        class C(_Thing):
            pass

    with pytest.raises(ConfigError, match="has no registry name"):
        @reg.register()
        class D:
            pass


# -- entry-point plugins ----------------------------------------------------------------------------------------
PLUGIN_SOURCE = '''
"""A third-party anonymizer package."""
import numpy as np
from anonaudit.anonymizers.base import Anonymizer


class Invert(Anonymizer):
    """Photographic negative (plugin)."""

    def __init__(self, level: int = 255):
        self.level = level

    def anonymize_image(self, image, record):
        return (self.level - image.astype(np.int16)).clip(0, 255).astype(np.uint8)
'''


def write_distribution(root: Path, package: str, source: str, entry_points: dict[str, str],
                       group: str = "anonaudit.anonymizers") -> None:
    """An installed-looking distribution: ``root/<package>/__init__.py`` and its ``.dist-info``."""
    (root / package).mkdir()
    (root / package / "__init__.py").write_text(textwrap.dedent(source))
    info = root / f"{package}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 1.0\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{group}]\n{lines}\n")


@pytest.fixture
def plugin_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``tmp_path`` on ``sys.path``; modules imported from it are forgotten afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for mod in set(sys.modules) - before:
        if getattr(sys.modules[mod], "__file__", None) and str(tmp_path) in str(sys.modules[mod].__file__):
            del sys.modules[mod]


def test_entry_point_plugin_is_found_in_a_fresh_registry(plugin_root: Path):
    write_distribution(plugin_root, "aa_plugin_good", PLUGIN_SOURCE, {"invert": "aa_plugin_good:Invert"})
    reg: Registry = Registry("anonymizers")
    assert reg.names() == ["invert"]  # a fresh registry holds only what the entry points give
    cls = reg.get("invert")
    assert cls.__module__ == "aa_plugin_good" and cls.__name__ == "Invert"
    assert cls.name == "invert"
    inst = reg.create("invert", level=200)
    assert inst.get_params() == {"level": 200} and inst.label() == "invert(level=200)"
    out = inst.anonymize(ImageSet.from_arrays([np.full((4, 4, 3), 50, np.uint8)]), show_progress=False)
    assert np.all(out[0] == 150)
    with pytest.raises(UnknownComponentError, match="did you mean 'invert'"):
        reg.get("invret")


def test_entry_point_plugin_joins_the_global_registry(plugin_root: Path, monkeypatch: pytest.MonkeyPatch):
    """The global registry loads plugins next to the built-ins; a plugin never replaces a built-in."""
    write_distribution(plugin_root, "aa_plugin_global", PLUGIN_SOURCE,
                       {"invert_global": "aa_plugin_global:Invert", "mask": "aa_plugin_global:Invert"})
    monkeypatch.setattr(ANONYMIZERS, "_items", dict(ANONYMIZERS._items))  # restored after the test
    monkeypatch.setattr(ANONYMIZERS, "_plugins_loaded", False)
    assert "invert_global" in ANONYMIZERS.names()
    assert isinstance(ANONYMIZERS.create("invert_global"), Anonymizer)
    assert ANONYMIZERS.get("mask") is Mask
    saved = plugin_root / "target.json"
    ANONYMIZERS.create("invert_global", level=128).save(saved)
    # a saved plugin target loads back through the same registry
    assert Anonymizer.load(saved).get_params() == {"level": 128}


@pytest.mark.parametrize("target, cause", [
    ("aa_plugin_broken.missing:Nope", "ModuleNotFoundError"),
    ("aa_plugin_broken:Nope", "AttributeError"),
    ("aa_plugin_broken.explodes:Thing", "RuntimeError: plugin import failed"),
])
def test_broken_plugin_warns_stays_out_and_fails_clearly_when_asked_for(plugin_root: Path, target: str, cause: str):
    """One broken third-party package must not stop every audit: the other components (and the
    working plugin of the same package) stay usable; asking for the broken one names it and why."""
    write_distribution(plugin_root, "aa_plugin_broken", PLUGIN_SOURCE,
                       {"invert": "aa_plugin_broken:Invert", "broken_one": target})
    (plugin_root / "aa_plugin_broken" / "explodes.py").write_text("raise RuntimeError('plugin import failed')\n")
    reg: Registry = Registry("anonymizers")
    with pytest.warns(RuntimeWarning, match="anonymizers plugin 'broken_one'"):
        names = reg.names()
    assert names == ["invert"]  # a fresh registry: only the working plugin
    for _ in range(2):  # asked again, it fails the same way instead of answering "unknown"
        with pytest.raises(ConfigError) as info:
            reg.get("broken_one")
        msg = str(info.value)
        assert "anonymizers plugin 'broken_one'" in msg
        assert f"'{target}'" in msg and "'anonaudit.anonymizers'" in msg
        assert cause in msg


def test_plugins_of_another_group_are_ignored(plugin_root: Path):
    write_distribution(plugin_root, "aa_plugin_attack", PLUGIN_SOURCE, {"invert_attack": "aa_plugin_attack:Invert"},
                       group="anonaudit.attacks")
    assert Registry("anonymizers").names() == []
    assert Registry("attacks").names() == ["invert_attack"]


@pytest.mark.parametrize(("package", "registry"), [("anonaudit.anonymizers", "ANONYMIZERS"),
                                                   ("anonaudit.attacks", "ATTACKS"),
                                                   ("anonaudit.evaluators", "EVALUATORS")])
def test_subpackages_export_every_registered_class_of_theirs(package, registry):
    """No export list is kept by hand: every component class a subpackage registers is importable from it
    by its class name, and nothing else registered there is missing."""
    import importlib

    from anonaudit import registry as registries

    registries.load_builtin_components()
    module = importlib.import_module(package)
    mine = {cls for cls in getattr(registries, registry)._items.values()
            if isinstance(cls, type) and cls.__module__.startswith(f"{package}.")}
    assert mine and all(getattr(module, cls.__name__) is cls for cls in mine)
    assert {cls.__name__ for cls in mine} <= set(module.__all__)
    with pytest.raises(AttributeError, match="has no attribute 'NoSuchThing'"):
        module.NoSuchThing  # noqa: B018 - the attribute access is the test


def test_importing_the_subpackages_imports_no_component_module():
    import subprocess
    import sys

    code = ("import sys, anonaudit.anonymizers, anonaudit.attacks, anonaudit.evaluators; "
            "print(sorted(m for m in sys.modules if m.startswith(('anonaudit.attacks.', 'anonaudit.anonymizers.', "
            "'anonaudit.evaluators.')) and not m.endswith(('.base', '.whitebox'))))")  # base classes, protocol
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"
