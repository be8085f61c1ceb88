"""What determinism depends on: the environment record, its comparison in words, the warnings when a
checkpoint or a resumed run was computed under another environment, and the dependency lock."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from anonaudit.anonymizers.classical import Mask
from anonaudit.audit import Audit
from anonaudit.data.imageset import ImageSet
from anonaudit.data.synthetic_plates import synthetic_plates
from anonaudit.environment import (
    LOCK_FILE,
    EnvironmentWarning,
    differences,
    environment,
    installed_packages,
    lock_sha256,
)
from anonaudit.evaluators.fidelity import PSNR
from anonaudit.verdicts import certify, write_certificate

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements" / "lock-linux-py311.txt"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def test_the_record_has_every_key_with_the_installed_values():
    import torch

    env = environment(device="cpu")
    assert set(env) == {"python", "machine", "versions", "threads", "deterministic", "device", "lock_sha256"}
    assert env["versions"]["numpy"] == np.__version__ and env["versions"]["torch"] == metadata.version("torch")
    assert {"scipy", "onnxruntime", "pillow", "opencv-python-headless"} <= set(env["versions"])
    assert env["threads"]["torch threads"] == torch.get_num_threads()
    assert env["threads"]["torch inter-op threads"] == torch.get_num_interop_threads()
    assert set(env["threads"]) >= {"OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"}
    assert env["threads"]["OMP_NUM_THREADS"] == os.environ.get("OMP_NUM_THREADS")
    assert env["deterministic"]["torch deterministic algorithms"] is torch.are_deterministic_algorithms_enabled()
    assert env["device"] == {"type": "cpu", "GPU": None}
    assert env["lock_sha256"] == hashlib.sha256(LOCK_FILE.read_bytes()).hexdigest() == lock_sha256(LOCK)
    assert json.loads(json.dumps(env)) == env  # JSON-ready, as stored in manifests and checkpoints


def test_thread_variables_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert environment()["threads"]["OMP_NUM_THREADS"] == "3"


def test_differences_name_exactly_what_changed():
    env = environment(device="cpu")
    assert differences(env, json.loads(json.dumps(env))) == []
    other = json.loads(json.dumps(env))
    other["versions"]["torch"] = "2.0.0"
    other["threads"]["torch threads"] = env["threads"]["torch threads"] + 5
    assert differences(other, env) == [
        f"torch version: 2.0.0 recorded, {env['versions']['torch']} now",
        f"torch threads: {env['threads']['torch threads'] + 5} recorded, {env['threads']['torch threads']} now",
    ]
    other = json.loads(json.dumps(env))
    other["device"] = {"type": "cuda", "GPU": "NVIDIA H100"}
    del other["lock_sha256"]
    assert differences(other, env) == ["device: cuda recorded, cpu now", "GPU: NVIDIA H100 recorded, not set now",
                                       f"lock sha256: not set recorded, {env['lock_sha256']} now"]


def test_installed_packages_lists_every_distribution():
    packages = installed_packages()
    assert packages["numpy"] == np.__version__ and packages["anonaudit"] == metadata.version("anonaudit")
    assert len(packages) == len({canonicalize_name(d.metadata["Name"]) for d in metadata.distributions()})
    assert list(packages) == sorted(packages)


def tiny_arcface_checkpoint(folder: Path) -> Path:
    """Two real training steps of the tiny ArcFace config on synthetic identities."""
    import yaml

    from anonaudit.training import TrainConfig, create_trainable, parse_train_config, train

    rng = np.random.default_rng(0)
    images, ids = [], []
    for k in range(2):
        base = rng.integers(0, 256, (56, 56, 3)).astype(float)
        for _ in range(4):
            images.append(np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8))
            ids.append(f"id{k}")
    data = ImageSet.from_arrays(images, identities=ids, name="synthetic-ids")
    job = parse_train_config(yaml.safe_load((REPO / "configs" / "train" / "arcface-tiny.yaml").read_text()))
    params = {k: v for k, v in job.method.items() if k != "name"}
    method = create_trainable("arcface", **{**params, "align": "none", "lr_steps": []})
    return train(method, data, TrainConfig(steps=2, batch_size=4, device="cpu", sample_every=0), folder, quiet=True)


@pytest.mark.usefixtures("one_torch_thread")
def test_a_checkpoint_loaded_under_another_environment_warns_with_each_difference(tmp_path):
    import torch

    from anonaudit.training import load_checkpoint

    ckpt = tiny_arcface_checkpoint(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    payload = torch.load(ckpt, weights_only=True)
    assert payload["environment"] == manifest["environment"] == environment(device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error", EnvironmentWarning)
        load_checkpoint(ckpt)  # the same environment: silent

    payload["environment"]["versions"]["numpy"] = "1.0.0"
    payload["environment"]["threads"]["torch threads"] = 64
    torch.save(payload, ckpt)
    with pytest.warns(EnvironmentWarning) as caught:
        load_checkpoint(ckpt)
    assert [str(w.message) for w in caught] == [
        (
            f"checkpoint {ckpt} was computed under another environment: numpy version: 1.0.0 recorded, "
            f"{np.__version__} now"
        ),
        f"checkpoint {ckpt} was computed under another environment: torch threads: 64 recorded, 1 now",
    ]


def tiny_audit() -> Audit:
    return Audit(synthetic_plates(n=4, seed=0), [Mask()], evaluators=[PSNR()], seed=0, name="env")


def test_a_run_and_its_certificate_record_the_environment_and_a_resume_under_another_warns(tmp_path):
    out = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("error", EnvironmentWarning)
        results = tiny_audit().run(out, show_progress=False)
    assert results.manifest["environment"] == environment()
    assert results.manifest["packages"] == installed_packages()
    certificate = json.loads(write_certificate(results, certify(results, "strict", kind="plates")).read_text())[
        "manifest"
    ]
    assert certificate["environment"] == environment() and certificate["packages"] == installed_packages()
    assert certificate["lock_sha256"] == lock_sha256() == hashlib.sha256(LOCK.read_bytes()).hexdigest()
    stored = out / "units" / "environment.json"
    assert json.loads(stored.read_text()) == environment()

    recorded = environment()
    recorded["versions"]["scipy"] = "0.1"
    stored.write_text(json.dumps(recorded))
    with pytest.warns(EnvironmentWarning) as caught:
        tiny_audit().run(out, show_progress=False)
    scipy = metadata.version("scipy")
    assert [str(w.message) for w in caught] == [(f"run {out} was computed under another environment: "
                                                f"scipy version: 0.1 recorded, {scipy} now")]
    assert json.loads(stored.read_text()) == recorded  # its reused units still come from there

    with warnings.catch_warnings():
        warnings.simplefilter("error", EnvironmentWarning)
        tiny_audit().run(out, resume=False, show_progress=False)  # every unit recomputed: nothing to warn about
    assert json.loads(stored.read_text()) == environment()


def lock_pins() -> dict[str, str]:
    """``{name: version}`` of the lock; every requirement line must be ``name==version`` with hashes."""
    pins: dict[str, str] = {}
    entries = re.split(r"\n(?=[^\s#])", LOCK.read_text(encoding="utf-8"))
    for entry in entries:
        lines = [ln.strip() for ln in entry.splitlines() if ln.strip() and not ln.strip().startswith("#")]
        if not lines:
            continue
        match = PIN.match(lines[0])
        assert match, f"{LOCK.name}: not pinned with ==: {lines[0]!r}"
        hashes = [ln for ln in lines[1:] if ln.startswith("--hash=sha256:")]
        assert hashes and len(hashes) == len(lines) - 1, f"{LOCK.name}: {match[1]} has no sha256 hashes"
        assert all(re.fullmatch(r"--hash=sha256:[0-9a-f]{64}( \\)?", h) for h in hashes), lines
        pins[canonicalize_name(match[1])] = match[2]
    return pins


def declared(extras: tuple[str, ...]) -> list[Requirement]:
    """The requirements of pyproject's core and ``extras``, self-references (``anonaudit[...]``) expanded."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    optional = project["optional-dependencies"]
    found = [Requirement(r) for r in project["dependencies"]]
    todo, seen = list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for text in optional[extra]:
            req = Requirement(text)
            if canonicalize_name(req.name) == canonicalize_name(project["name"]):
                todo += sorted(req.extras)
            else:
                found.append(req)
    return found


def test_the_lock_pins_every_declared_dependency_with_hashes_within_its_range():
    pins = lock_pins()
    assert len(pins) > 50 and "anonaudit" not in pins
    for req in declared(("all", "dev")):
        name = canonicalize_name(req.name)
        assert name in pins, f"{LOCK.name} lacks {req.name}, declared in pyproject.toml: run `make lock`"
        assert req.specifier.contains(pins[name], prereleases=True), f"{LOCK.name}: {name}=={pins[name]} outside {req}"
    for line in (REPO / "requirements" / "lock.in").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            req = Requirement(line)
            assert req.specifier.contains(pins[canonicalize_name(req.name)]), (
                f"{LOCK.name} does not follow lock.in: {req}"
            )


def test_the_environment_is_installed_from_the_lock():
    installed = installed_packages()
    wrong = {
        name: (version, installed.get(name)) for name, version in lock_pins().items() if installed.get(name) != version
    }
    if wrong and not os.environ.get("CI"):
        pytest.skip(f"this environment was not installed from the lock (`make install`): {sorted(wrong)[:5]}")
    assert not wrong, f"installed versions differ from {LOCK.name} (locked, installed): {wrong}"
