"""Hostile inputs: tampered or booby-trapped weight files, configs reaching outside their roots,
unsafe YAML, and script payloads in file names, labels and error messages of the HTML report."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from anonaudit.anonymizers.external import ExternalRelease
from anonaudit.attacks.base import Attack, AttackMetric, AttackResult
from anonaudit.audit import Audit
from anonaudit.config import load_config, parse_config
from anonaudit.errors import ConfigError, ModelUnavailableError, WeightIntegrityError
from anonaudit.evaluators.fidelity import SSIM
from anonaudit.models import cache
from anonaudit.models.cache import MODEL_SPECS, ModelSpec, register_model
from anonaudit.models.faces.embedders import FaceNetEmbedder
from anonaudit.registry import DATASETS
from anonaudit.reports.html import write_html_report
from anonaudit.stats import proportion

PACKAGE = Path(__file__).resolve().parents[1] / "anonaudit"


class Payload:
    """Unpickling this object opens (creates) ``marker``: arbitrary code execution in miniature."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


@pytest.fixture
def model_cache(tmp_path, monkeypatch):
    """A private ANONAUDIT_CACHE and a helper registering a test model spec (removed afterwards)."""
    monkeypatch.setenv("ANONAUDIT_CACHE", str(tmp_path / "cache"))
    names: list[str] = []

    def register(name: str, content_of: Path) -> Path:
        spec = register_model(ModelSpec(name=name, url="https://example.invalid/none", filename="weights.pt",
                                        sha256=cache.sha256_file(content_of), description="test weights"))
        names.append(spec.name)
        dest = cache.model_path(name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        return dest

    yield register
    for name in names:
        MODEL_SPECS.pop(name, None)


def booby_trapped(path: Path, marker: Path) -> Path:
    torch.save({"weight": torch.zeros(2), "trap": Payload(marker)}, path)
    return path


def test_payload_is_live_without_weights_only(tmp_path):
    """Control: the trapped file really runs code when unpickled the unsafe way."""
    marker = tmp_path / "pwned"
    trap = booby_trapped(tmp_path / "trap.pt", marker)
    torch.load(trap, weights_only=False)
    assert marker.exists()


def test_tampered_weights_are_refused_before_loading(tmp_path, model_cache):
    marker = tmp_path / "pwned"
    genuine = tmp_path / "genuine.pt"
    torch.save({"weight": torch.ones(3)}, genuine)
    dest = model_cache("hostile-tampered", genuine)  # registered hash: the genuine file's
    booby_trapped(dest, marker)  # what sits in the cache is something else
    with pytest.raises(WeightIntegrityError, match="does not match hostile-tampered's registered hash"):
        cache.resolve("hostile-tampered")
    embedder = FaceNetEmbedder(weights="hostile-tampered")
    with pytest.raises(WeightIntegrityError, match="refusing to load it"):
        embedder.embed_crops([np.zeros((160, 160, 3), np.uint8)])
    assert not marker.exists()
    assert not cache.is_available("hostile-tampered")


def test_registered_but_malicious_pickle_is_not_executed(tmp_path, model_cache):
    """Even a file matching its hash is loaded with weights_only=True: the pickle payload is refused."""
    marker = tmp_path / "pwned"
    trap = booby_trapped(tmp_path / "trap.pt", marker)
    dest = model_cache("hostile-pickle", trap)
    dest.write_bytes(trap.read_bytes())
    assert cache.resolve("hostile-pickle") == dest  # integrity passes
    embedder = FaceNetEmbedder(weights="hostile-pickle")
    with pytest.raises(ModelUnavailableError, match="corrupt or not a weight file"):
        embedder.embed_crops([np.zeros((160, 160, 3), np.uint8)])
    assert not marker.exists()


def test_models_add_refuses_a_mismatching_file(tmp_path, model_cache):
    genuine = tmp_path / "genuine.pt"
    torch.save({"weight": torch.ones(3)}, genuine)
    dest = model_cache("hostile-add", genuine)
    other = tmp_path / "other.pt"
    torch.save({"weight": torch.zeros(3)}, other)
    with pytest.raises(WeightIntegrityError):
        cache.add("hostile-add", other)
    assert not dest.exists()
    assert cache.add("hostile-add", genuine) == dest and cache.is_available("hostile-add")


def _calls(tree: ast.AST, module: str, func: str):
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == func
                and isinstance(node.func.value, ast.Name) and node.func.value.id == module):
            yield node


def test_no_unsafe_deserialisation_anywhere_in_the_package():
    """torch.load is called in one place, anonaudit.fileio.torch_load, with weights_only=True; no pickle,
    yaml.load or allow_pickle=True anywhere."""
    torch_loads = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for call in _calls(tree, "torch", "load"):
            torch_loads.append(path.relative_to(PACKAGE).as_posix())
            kw = {k.arg: k.value for k in call.keywords}
            assert isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is True, (
                f"{path.name}:{call.lineno}: torch.load without weights_only=True")
        for module, func in (("pickle", "load"), ("pickle", "loads"), ("yaml", "load"), ("yaml", "unsafe_load"),
                             ("joblib", "load"), ("dill", "load")):
            found = list(_calls(tree, module, func))
            assert not found, f"{path.name}:{found[0].lineno}: {module}.{func}"
        for call in _calls(tree, "np", "load"):
            kw = {k.arg: k.value for k in call.keywords}
            assert not (isinstance(kw.get("allow_pickle"), ast.Constant) and kw["allow_pickle"].value), (
                f"{path.name}:{call.lineno}"
            )
    assert torch_loads == ["fileio.py"]  # the scan really sees the loader, and every weight file goes through it


# -- config paths stay inside the allowed roots ----------------------------------------------------------
@pytest.fixture
def project(tmp_path, monkeypatch):
    """``tmp/project`` as working directory (an allowed root) and ``tmp/outside`` beyond it."""
    (tmp_path / "project" / "data").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    monkeypatch.chdir(tmp_path / "project")
    monkeypatch.delenv("ANONAUDIT_ROOTS", raising=False)
    return tmp_path / "project"


def config_with(**over) -> dict:
    raw = {"data": {"name": "labeled_folder", "root": "data", "labels": None}, "targets": ["mask"]}
    raw.update(over)
    return raw


@pytest.mark.parametrize("root", ["../outside", "../../etc", "/etc", "data/../../outside", "~/"])
def test_data_root_cannot_escape(project, root):
    with pytest.raises(ConfigError, match="outside the allowed roots"):
        parse_config(config_with(data={"name": "labeled_folder", "root": root}), project / "cfg.yaml")


def test_symlink_pointing_outside_is_refused(project):
    (project / "link").symlink_to(project.parent / "outside", target_is_directory=True)
    with pytest.raises(ConfigError, match=r"resolves to .*outside, outside the allowed roots"):
        parse_config(config_with(data={"name": "labeled_folder", "root": "link"}), project / "cfg.yaml")
    (project / "inner").symlink_to(project / "data", target_is_directory=True)  # inside: fine
    assert parse_config(config_with(data={"name": "labeled_folder", "root": "inner"})).data.params["root"] == str(
        project / "data"
    )


def test_output_release_and_nested_weight_paths_are_confined(project):
    with pytest.raises(ConfigError, match="output"):
        parse_config(config_with(output="/tmp/anywhere"))
    with pytest.raises(ConfigError, match=r"targets\[0\]\.path"):
        parse_config(config_with(targets=[{"name": "external", "path": "../outside"}]))
    evil = {"name": "reid", "embedder": {"name": "facenet", "weights": "/etc/ssl/evil.pt"}}
    with pytest.raises(ConfigError, match=r"attacks\[0\]\.embedder\.weights"):
        parse_config(config_with(attacks=[evil]))
    ok = parse_config(
        config_with(attacks=[{"name": "reid", "embedder": {"name": "facenet", "weights": "facenet-vggface2"}}])
    )
    assert ok.attacks[0].params["embedder"]["weights"] == "facenet-vggface2"  # a cache name, not a path
    with pytest.raises(ConfigError, match="plain name"):
        parse_config(config_with(name="../../escape"))  # would be the default output runs/<name>


def test_user_given_roots_widen_the_reach(project, monkeypatch):
    outside = project.parent / "outside"
    raw = config_with(data={"name": "labeled_folder", "root": str(outside)})
    assert parse_config(raw, roots=[outside]).data.params["root"] == str(outside)
    monkeypatch.setenv("ANONAUDIT_ROOTS", str(outside))
    assert parse_config(raw).data.params["root"] == str(outside)


def test_config_file_cannot_widen_its_own_reach(project):
    cfg = project / "cfg.yaml"
    cfg.write_text("data: {name: labeled_folder, root: ../outside}\ntargets: [mask]\nroots: [..]\n")
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(cfg)


def test_yaml_object_payload_is_rejected(project):
    marker = project / "pwned"
    text = f"data: !!python/object/apply:builtins.open ['{marker}', 'w']\ntargets: [mask]\n"
    cfg = project / "evil.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(cfg)
    assert not marker.exists()
    yaml.unsafe_load(text)  # control: the payload is live under an unsafe loader
    assert marker.exists()


# -- the HTML report escapes every user-provided string ------------------------------------------------
class ExplodingProbe(Attack):
    """Fails with a message carrying markup, like an exception quoting a hostile file name."""

    name = "exploding_probe"

    def run(self, release):
        raise ValueError("cannot parse <script>alert('msg')</script> in " + release.keys[0])


class LabelEcho(Attack):
    """Succeeds, reporting a user-provided caption (in its label, description and notes)."""

    name = "label_echo"

    def __init__(self, caption: str = ""):
        self.caption = caption

    def run(self, release):
        est = proportion([True, False, True])
        return AttackResult(self.name, [AttackMetric("echo", est, est, 0.5, self.caption)], notes=[self.caption])


def test_report_escapes_file_names_labels_and_messages(tmp_path):
    data = tmp_path / "data"
    rel = tmp_path / "rel<script>alert('target')</script>"  # a folder name inside the target's label
    for folder in (data, rel):
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(3):
            Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(folder / f"img{i}.png")
    hostile = data / "<script>alert(1)</script>.png"  # '/' makes it a sub-folder + file: same path text
    hostile.parent.mkdir(parents=True)
    hostile.write_bytes(b"not an image")
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(rel / "<img src=x onerror=alert(2)>.png")
    images = DATASETS.create("labeled_folder", root=str(data), labels=None)
    assert str(hostile.relative_to(data)) in images.keys
    audit = Audit(
        images, [ExternalRelease(path=str(rel), on_mismatch="drop")],
        attacks=[ExplodingProbe(), LabelEcho("<script>alert('label')</script>")], evaluators=[SSIM()],
        name="<script>alert('name')</script>", seed=0,
    )
    results = audit.run(tmp_path / "out", show_progress=False)
    assert (results.table["status"] == "failed").sum() == 2  # the unreadable file, the exploding attack
    html = write_html_report(results).read_text(encoding="utf-8")
    assert "<script" not in html.lower() and "<img src=x" not in html
    for escaped in ("&lt;script&gt;alert(1)&lt;/script&gt;.png", "alert(&#39;msg&#39;)", "alert(&#39;label&#39;)",
                    "alert(&#39;name&#39;)", "alert(&#39;target&#39;)", "&lt;img src=x onerror=alert(2)&gt;.png"):
        assert escaped in html, escaped  # the strings are shown, as text
