"""Packaging: every third-party module the package imports comes from a distribution pyproject.toml
declares (in ``dependencies`` or an extra), and the wheel carries every module and data file the code
reads at run time and works once installed outside the source tree.

The install test builds the wheel with the project's locked setuptools (no network: ``--no-deps
--no-build-isolation``), installs it with ``--no-deps`` into a new venv, and lets that venv see the
dependencies already installed in the test's environment through a ``.pth`` path line (a path line
only: the editable install's import hook there is not run, so ``import anonaudit`` can only find the
wheel's copy). Then, from a folder outside the checkout, the installed ``anonaudit`` command lists
the components, and the installed package loads its built-in policies, its report templates and
its demo config.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "anonaudit"
#: Calls that import a module named by a string literal (``importlib.util.find_spec("x")`` and the like).
STRING_IMPORTS = {"find_spec", "import_module", "__import__"}


def declared_distributions() -> dict[str, str]:
    """Canonical distribution name -> where pyproject.toml declares it (``dependencies`` or ``extra NAME``)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {canonicalize_name(Requirement(r).name): "dependencies" for r in project["dependencies"]}
    for extra, requirements in project["optional-dependencies"].items():
        for r in requirements:
            name = canonicalize_name(Requirement(r).name)
            if name != canonicalize_name(project["name"]):  # `all` names the project's own extras
                declared.setdefault(name, f"extra {extra}")
    return declared


def imported_modules(folder: Path) -> dict[str, set[str]]:
    """Top-level module name -> the files under ``folder`` that import it: absolute imports, and the
    names given to :data:`STRING_IMPORTS` as a literal or as a module-level string constant."""
    found: dict[str, set[str]] = {}
    for path in sorted(folder.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        constants = {
            target.id: node.value.value
            for node in tree.body
            if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif (isinstance(node, ast.Call) and node.args
                  and getattr(node.func, "attr", getattr(node.func, "id", None)) in STRING_IMPORTS):
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    names = [arg.value]
                elif isinstance(arg, ast.Name) and arg.id in constants:
                    names = [constants[arg.id]]
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(folder.parent)))
    return found


def third_party(modules: dict[str, set[str]]) -> dict[str, set[str]]:
    return {m: files for m, files in modules.items() if m not in sys.stdlib_module_names and m != PACKAGE.name}


def top_level_names(dist: metadata.Distribution) -> set[str]:
    """The importable top-level names a distribution installs: its packages and modules, extension
    modules included (which ``packages_distributions()`` misses when ``top_level.txt`` lists others)."""
    names = set((dist.read_text("top_level.txt") or "").split())
    for file in dist.files or []:
        first = file.parts[0]
        if first in ("..", "__pycache__") or first.endswith((".dist-info", ".egg-info", ".data", ".pth")):
            continue
        names.add(first.split(".")[0] if len(file.parts) == 1 else first)
    return names


def providers(declared: dict[str, str]) -> dict[str, set[str]]:
    """Top-level module name -> the declared distributions that install it (in the test's environment)."""
    out: dict[str, set[str]] = {}
    missing = []
    for name in declared:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
            continue
        for module in top_level_names(dist):
            out.setdefault(module, set()).add(name)
    assert not missing, f"declared in pyproject.toml but not installed here (run `make install`): {missing}"
    return out


def test_the_import_scan_finds_imports_of_every_form(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "a.py").write_text(
        "import os, numpy as np\nfrom yaml import safe_load\nfrom . import b\nfrom .b import c\n"
        "PLUGIN = 'xgboost'\n"
        "def f():\n    import torch.nn\n    importlib.util.find_spec('dlib')\n    importlib.import_module(name)\n"
        "    importlib.import_module(PLUGIN)\n"
    )
    found = imported_modules(pkg)
    assert set(found) == {"os", "numpy", "yaml", "torch", "dlib", "xgboost"}
    assert set(third_party(found)) == {"numpy", "yaml", "torch", "dlib", "xgboost"}
    assert found["torch"] == {"pkg/a.py"}


def test_every_third_party_module_the_package_imports_is_declared_in_pyproject():
    declared = declared_distributions()
    by_module = providers(declared)
    imports = third_party(imported_modules(PACKAGE))
    undeclared = {m: sorted(files)[:3] for m, files in imports.items() if not by_module.get(m)}
    assert not undeclared, (
        "imported by the package but installed by no distribution that pyproject.toml declares "
        f"(add it to dependencies or an extra): {undeclared}"
    )
    # The scan is not vacuous: core imports resolve to core dependencies, optional ones to their extras.
    where = {m: sorted(declared[d] for d in by_module[m]) for m in imports}
    assert where["numpy"] == ["dependencies"] and where["yaml"] == ["dependencies"]
    assert where["facenet_pytorch"] == ["extra faces"] and where["dlib"] == ["extra faces"]
    assert where["ray"] == ["extra scale"] and where["fpdf"] == ["extra reports"]
    assert "face_recognition_models" in where  # imported through importlib.util.find_spec


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a copy of the package's sources (an in-tree build would reuse ``build/``, where
    modules deleted since the last build linger)."""
    out = tmp_path_factory.mktemp("wheel")
    source = out / "source"
    shutil.copytree(PACKAGE, source / PACKAGE.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", str(out),
         str(source)],
        capture_output=True, text=True, timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    wheels = list(out.glob("anonaudit-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_the_wheel_carries_every_module_and_data_file_of_the_package(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        str(p.relative_to(ROOT))
        for p in PACKAGE.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }
    assert {"anonaudit/reports/templates/report.html", "anonaudit/verdicts/policies/strict-public-release.yaml",
            "anonaudit/configs/demo.yaml", "anonaudit/cli.py"} <= expected  # the expectation is not empty
    assert sorted(expected - names) == [], "files of the package that the wheel leaves out (see package-data)"
    dist_info = f"anonaudit-{metadata.version('anonaudit')}.dist-info/"
    assert [n for n in names if not n.startswith(("anonaudit/", dist_info))] == [], "files outside the package"
    entry_points = zipfile.ZipFile(wheel).read(dist_info + "entry_points.txt").decode()
    assert re.search(r"^anonaudit = anonaudit\.cli:main$", entry_points, re.M), entry_points


INSTALLED_CHECK = """
import json, sys
from importlib import resources
import anonaudit
from anonaudit.reports.html import environment
from anonaudit.verdicts.policy import BUILTIN, load_policy
templates = sorted(environment().list_templates())
for name in templates:
    environment().get_template(name)
print(json.dumps({
    "file": anonaudit.__file__,
    "version": anonaudit.__version__,
    "policies": {name: load_policy(name).name for name in BUILTIN},
    "templates": templates,
    "demo": resources.files("anonaudit").joinpath("configs/demo.yaml").is_file(),
}))
"""


def test_the_wheel_installed_in_a_new_venv_runs_outside_the_checkout(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    # the dependencies: this environment's site-packages as a plain path, after the venv's own
    Path(site, "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run = tmp_path / "elsewhere"
    run.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    listing = subprocess.run([venv / "bin" / "anonaudit", "list"], cwd=run, env=env, capture_output=True, text=True,
                             timeout=300)
    assert listing.returncode == 0, listing.stderr[-2000:]
    assert re.search(r"^anonymizers:", listing.stdout, re.M) and re.search(r"^\s+pixelate\b", listing.stdout, re.M)
    out = subprocess.run([python, "-c", INSTALLED_CHECK], cwd=run, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert Path(got["file"]).resolve().is_relative_to(venv.resolve()), got["file"]  # the wheel's copy, not the checkout
    assert got["version"] == metadata.version("anonaudit")
    assert got["policies"] and all(got["policies"].values())
    assert {"report.html", "compare.html", "compliance.html"} <= set(got["templates"])
    assert got["demo"]
