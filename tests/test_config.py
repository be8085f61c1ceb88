"""Audit configs: sweeps, "did you mean" on unknown keys, components and parameters, type errors,
and the ``anonaudit run`` command line end to end (exit code 2 with a clear message on a bad config)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from anonaudit.audit import audit_from_config, component_id
from anonaudit.cli import main
from anonaudit.config import expand_sweep, load_config, parse_config
from anonaudit.errors import ConfigError
from anonaudit.results import Results

REPO = Path(__file__).resolve().parents[1]


def base(**over) -> dict:
    raw = {"data": {"name": "synthetic_plates", "n": 12, "seed": 0}, "targets": ["mask"]}
    raw.update(over)
    return raw


# -- sweeps ---------------------------------------------------------------------------------------------
def test_sweep_is_the_cartesian_product_with_fixed_parameters_kept():
    specs = expand_sweep(
        {"name": "pixelate", "margin": 0.1, "sweep": {"block": [4, 8, 16], "region": ["image", "boxes"]}}, "t"
    )
    assert [s.params for s in specs] == [
        {"margin": 0.1, "block": b, "region": r} for b in (4, 8, 16) for r in ("image", "boxes")
    ]
    config = parse_config(base(targets=[
        {"name": "gaussian_blur", "sweep": {"sigma": [1, 2, 4]}, "region": "boxes"},
        {"name": "pixelate", "sweep": {"block": [4, 8], "region": ["image", "boxes"]}},
        "mask",
    ]))
    got = [(s.name, s.params) for s in config.targets]
    assert got == [("gaussian_blur", {"region": "boxes", "sigma": s}) for s in (1, 2, 4)] + [
        ("pixelate", {"block": b, "region": r}) for b in (4, 8) for r in ("image", "boxes")
    ] + [("mask", {})]
    audit = audit_from_config(config, show_progress=False)
    ids = {component_id(t.name, t.get_params()) for t in audit.targets}
    labels = {t.label() for t in audit.targets}
    assert len(audit.targets) == len(ids) == len(labels) == 8  # every point is its own target and unit folder


@pytest.mark.parametrize("target, message", [
    ({"name": "pixelate", "sweep": {"block": 8}}, "needs a non-empty list"),
    ({"name": "pixelate", "sweep": {"block": []}}, "needs a non-empty list"),
    ({"name": "pixelate", "block": 4, "sweep": {"block": [8]}}, "both fixed and swept"),
    ({"name": "pixelate", "sweep": [4, 8]}, "'sweep' must map parameter names"),
])
def test_bad_sweeps(target, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(base(targets=[target]))


def test_only_targets_are_swept():
    with pytest.raises(ConfigError, match=r"attacks\[0\]: only targets can be swept"):
        parse_config(base(attacks=[{"name": "ocr", "sweep": {"k": [1, 3]}}]))


# -- did you mean -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw, hint",
    [
        (base(evaluator=["ssim"]), "'evaluator' (did you mean 'evaluators'?)"),
        (base(seeds=1), "'seeds' (did you mean 'seed'?)"),
        (base(targets=["gausian_blur"]), "unknown anonymizers 'gausian_blur'; did you mean 'gaussian_blur'"),
        (base(evaluators=["psnrr"]), "did you mean 'psnr'"),
        (base(attacks=["orc"]), "did you mean 'ocr'"),
        (base(data={"name": "synthetic_plate"}), "did you mean 'synthetic_plates'"),
        (
            base(targets=[{"name": "gaussian_blur", "sigam": 2}]),
            "targets[0]: anonymizer 'gaussian_blur' has no parameter 'sigam' (did you mean 'sigma'?)",
        ),
        (base(attacks=[{"name": "ocr", "engin": "tesseract"}]), "has no parameter 'engin' (did you mean 'engine'?)"),
        (
            base(data={"name": "synthetic_plates", "count": 5}),
            "data: dataset 'synthetic_plates' has no parameter 'count'",
        ),
    ],
)
def test_unknown_names_get_did_you_mean(raw, hint):
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    assert hint in str(info.value)


# -- wrong types ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("raw, message", [
    (base(seed="1"), "seed must be an integer"),
    (base(seed=1.5), "seed must be an integer"),
    (base(batch_size=0), "config: batch_size must be an integer >= 1"),
    (base(on_error="ignore"), "on_error must be 'skip' or 'raise'"),
    (base(targets="mask"), "'targets' must be a list"),
    (base(targets=[]), "'targets' is empty"),
    (base(targets=[42]), r"targets\[0\]: expected a name or a mapping with 'name'"),
    (base(data=5), "data: expected a name"),
    (base(auxiliary=0.2), "'auxiliary' must be a mapping"),
    (base(auxiliary={"fraction": 1.5}), r"auxiliary: fraction must be a number in \[0, 1\)"),
    (base(auxiliary={"fraction": "most"}), "auxiliary: fraction must be a number"),
    (base(auxiliary={"fracton": 0.2}), "auxiliary: unknown key"),
    (base(output=["runs"]), "output must be a folder path"),
    (base(report="yes"), "'report' must be a mapping"),
    (base(name=["x"]), "name must be a plain name"),
    ({"targets": ["mask"]}, "missing required key 'data'"),
    (["data", "targets"], "top level must be a mapping"),
])
def test_wrong_types_are_config_errors(raw, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(raw)


@pytest.mark.parametrize("raw, message", [
    (base(targets=[{"name": "gaussian_blur", "sigma": "strong"}]), "sigma must be a finite number >= 0"),
    (base(evaluators=[{"name": "ssim", "region": "everywhere"}]), "region must be one of"),
    (base(data={"name": "synthetic_plates", "n": "many"}), "n must be an integer >= 0"),
])
def test_wrong_parameter_values_are_config_errors_before_running(raw, message):
    with pytest.raises(ConfigError, match=message):
        audit_from_config(parse_config(raw), show_progress=False)


def test_parameter_values_are_checked_before_data_is_loaded(tmp_path):
    raw = base(data={"name": "labeled_folder", "root": str(tmp_path / "absent")},
               targets=[{"name": "pixelate", "block": "big"}])
    with pytest.raises(ConfigError, match="block must be a finite number >= 0"):
        audit_from_config(parse_config(raw, roots=[tmp_path]), show_progress=False)


def test_yaml_syntax_error_names_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("data: {name: synthetic_plates\ntargets: [mask]\n")
    with pytest.raises(ConfigError, match=f"{path}: invalid YAML"):
        load_config(path)
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "absent.yaml")


# -- the command line -------------------------------------------------------------------------------------
TINY = {
    "name": "tiny",
    "data": {"name": "synthetic_plates", "n": 12, "seed": 1},
    "targets": [{"name": "gaussian_blur", "sweep": {"sigma": [1, 3]}}, {"name": "noise", "std": 30}, "mask"],
    "evaluators": ["ssim", "psnr"],
    "seed": 0,
    "output": "runs/tiny",
}


def run_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, ANONAUDIT_PROGRESS="0", PYTHONHASHSEED="4321")
    return subprocess.run([sys.executable, "-m", "anonaudit", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, check=False, timeout=120)


def test_cli_run_end_to_end_and_reproducible_in_process(tmp_path, monkeypatch):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY, sort_keys=False))
    proc = run_cli(tmp_path, "run", "tiny.yaml", "-q")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "runs" / "tiny"
    assert f"report:  {(out / 'report.html').resolve()}" in proc.stdout
    for name in ("results.csv", "results.json", "manifest.json", "report.html"):
        assert (out / name).is_file(), name
    table = Results.load(out).table
    assert list(dict.fromkeys(table["target_label"])) == [
        "gaussian_blur(sigma=1)",
        "gaussian_blur(sigma=3)",
        "noise(std=30)",
        "mask",
    ]
    ssim = table[table["component"] == "ssim"].set_index("target_label")["value"]
    assert ssim["gaussian_blur(sigma=1)"] > ssim["gaussian_blur(sigma=3)"] > ssim["mask"]  # stronger blur, lower SSIM
    assert (table["status"] == "ok").all() and set(table[table["kind"] == "evaluator"]["n"]) == {10}

    monkeypatch.chdir(tmp_path)  # the same config in this process gives the same table
    audit_from_config(load_config("tiny.yaml"), show_progress=False).run("again", show_progress=False)
    again = Results.load(tmp_path / "again").table
    pd.testing.assert_frame_equal(again.drop(columns="seconds"), table.drop(columns="seconds"))


def test_cli_names_each_unavailable_metric_once_with_its_fetch_command(tmp_path, monkeypatch, capsys):
    """Weights absent (an empty model cache): FID is reported, per reason, with the command that
    fetches it; the audit still succeeds and the other metrics are computed."""
    monkeypatch.setenv("ANONAUDIT_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.chdir(tmp_path)
    config = dict(TINY, evaluators=["ssim", "fid"])
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    assert main(["run", "tiny.yaml", "-q"]) == 0
    err = capsys.readouterr().err.splitlines()
    fid_lines = [line for line in err if line.startswith("unavailable in 4 unit(s): fid:")]
    assert len(fid_lines) == 1 and "run `anonaudit models fetch inception-fid`" in fid_lines[0]
    table = Results.load(tmp_path / "runs" / "tiny").table
    assert (table[table["component"] == "ssim"]["status"] == "ok").all()


def test_cli_bad_config_exits_2_with_a_clear_message(tmp_path):
    (tmp_path / "bad.yaml").write_text("data: {name: synthetic_plates, n: 5}\ntargets: [gausian_blur]\n")
    proc = run_cli(tmp_path, "run", "bad.yaml")
    assert proc.returncode == 2
    assert "anonaudit: error: unknown anonymizers 'gausian_blur'; did you mean 'gaussian_blur'" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "runs").exists()


@pytest.mark.parametrize("text, message", [
    ("data: {name: synthetic_plates, n: 5}\ntargets: [mask]\nseed: one\n", "seed must be an integer"),
    ("data: {name: labeled_folder, root: /etc}\ntargets: [mask]\n", "outside the allowed roots"),
    ("data: {name: synthetic_plates, n: 5}\ntargets: [{name: mask, colour: red}]\n", "did you mean 'color'"),
    ("data: !!python/object/apply:os.getcwd []\ntargets: [mask]\n", "invalid YAML"),
])
def test_cli_main_returns_2_on_bad_configs(tmp_path, monkeypatch, capsys, text, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cfg.yaml").write_text(text)
    assert main(["run", "cfg.yaml", "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("anonaudit: error: ") and message in err


def test_unknown_ocr_engine_fails_at_configuration_with_suggestion(tmp_path):
    from anonaudit.errors import UnknownComponentError

    path = tmp_path / "audit.yaml"
    path.write_text(
        "data: {name: synthetic_plates, n: 20}\n"
        "targets: [{name: mask}]\n"
        "attacks: [{name: deblur_ocr, engine: rapidocrr}]\n"
    )
    with pytest.raises(UnknownComponentError, match="did you mean 'rapidocr'"):
        load_config(path)


def test_quiet_run_prints_no_progress_bar_even_from_components(tmp_path):
    """``-q`` silences the evaluators' and attacks' own bars too (only results are printed)."""
    config = dict(TINY, evaluators=["ssim"], targets=["mask"], batch_size=4)  # 10 images: 3 batches, a bar
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    env = dict(os.environ, ANONAUDIT_PROGRESS="1")
    proc = subprocess.run([sys.executable, "-m", "anonaudit", "run", "tiny.yaml", "-q"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "it/s" not in proc.stderr and "%|" not in proc.stderr


def test_overrides_change_values_by_dotted_path_without_touching_the_file(tmp_path):
    from anonaudit.config import apply_overrides

    raw = {"data": {"name": "lfw", "limit": 600}, "targets": [{"name": "blur", "sweep": {"k": [1]}}, "mask"], "seed": 0}
    out = apply_overrides(raw, ["data.limit=null", "seed=3", "targets.0.sweep.k=[15, 25]", "targets.1.color=[9, 9, 9]",
                                "report.title=x=y"])
    assert out == {"data": {"name": "lfw", "limit": None}, "seed": 3, "report": {"title": "x=y"},
                   "targets": [{"name": "blur", "sweep": {"k": [15, 25]}}, {"name": "mask", "color": [9, 9, 9]}]}
    assert raw["data"]["limit"] == 600 and raw["targets"][1] == "mask"  # the input is not modified
    for bad, message in [("seed", "expected dotted.key=value"), ("targets.5.k=1", "not an index of a list of 2"),
                         ("seed.x=1", "'seed' is 0, not a mapping or list"), ("data..x=1", "expected dotted.key=value"),
                         ("seed=[1", "not valid YAML")]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            apply_overrides(raw, [bad])


def test_cli_set_overrides_the_config(tmp_path):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(dict(TINY, evaluators=["ssim"]), sort_keys=False))
    proc = run_cli(tmp_path, "run", "tiny.yaml", "-q", "--set", "data.n=20", "--set", "targets=[mask]")
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = Results.load(tmp_path / "runs" / "tiny").table
    assert set(table["target"]) == {"mask"} and set(table[table["component"] == "ssim"]["n"]) == {16}
    proc = run_cli(tmp_path, "run", "tiny.yaml", "-q", "--set", "data.nn=20")
    assert proc.returncode == 2 and "has no parameter 'nn'" in proc.stderr
