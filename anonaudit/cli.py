"""Command line: ``anonaudit run|train|demo|list|report|models``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import AnonauditError

DEMO_CONFIG = {
    "name": "demo-synthetic-plates",
    "data": {"name": "synthetic_plates", "n": 250, "seed": 0},
    "auxiliary": {"fraction": 0.2},
    "targets": [
        {"name": "gaussian_blur", "sweep": {"sigma": [1, 2, 4, 8]}},
        {"name": "pixelate", "sweep": {"block": [4, 8, 16]}},
        {"name": "mask"},
    ],
    "attacks": [
        {"name": "ocr", "engine": "rapidocr"},
        # One deconvolution and one depixelation candidate per image keep the demo within minutes on 2 cores;
        # the attacks' defaults try more candidates (and are stronger).
        {"name": "deblur_ocr", "methods": ["wiener"], "wiener_balances": [0.01], "sigma_scales": [1.0]},
        {"name": "depixelate_ocr", "methods": ["gaussian"]},
    ],
    # FID and LPIPS report themselves unavailable (with the fetch command) until their weights are
    # fetched; FD-pixels16 is the offline, non-standard alternative.
    "evaluators": ["ssim", "psnr", "plate_detectability", "fid", "lpips", "frechet_distance"],
    "seed": 0,
}


def _run_config(config, resume: bool, quiet: bool) -> int:
    from .audit import audit_from_config

    output = config.output or Path("runs") / config.name
    audit = audit_from_config(config)
    results = audit.run(output, resume=resume, show_progress=not quiet)
    report = results.report()
    _print_summary(results)
    print(f"\nresults: {output / 'results.csv'}\nreport:  {report}")
    _print_failures(results.failures())
    return 0


def _print_failures(failures) -> None:
    """One line per distinct reason a component did not run (e.g. weights not fetched), then failures."""
    unavailable = failures[failures["status"] == "unavailable"]
    for (component, message), rows in unavailable.groupby(["component", "message"], sort=True):
        print(f"unavailable in {len(rows)} unit(s): {component}: {message}", file=sys.stderr)
    failed = failures[failures["status"] == "failed"]
    if not failed.empty:
        print(f"{len(failed)} unit(s) failed: see the report's last section and results.csv", file=sys.stderr)


def _print_summary(results) -> None:
    import pandas as pd

    risk = results.max_risk()
    if risk.empty:
        print("no attack produced a risk estimate")
        return
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print("\nstrongest attack per target (relative risk: 0 = chance, 1 = as the originals):")
        print(risk.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


def cmd_run(args) -> int:
    from .config import load_config

    config = load_config(args.config, roots=args.root, overrides=args.set)
    if args.output:  # the user's own command line is trusted; only the config's paths are confined
        config.output = Path(args.output)
    if args.on_error:
        config.on_error = args.on_error
    return _run_config(config, resume=not args.no_resume, quiet=args.quiet)


def cmd_demo(args) -> int:
    from .config import parse_config

    raw = dict(DEMO_CONFIG, data=dict(DEMO_CONFIG["data"], n=args.n))
    config = parse_config(raw)
    config.output = Path(args.output)
    print(f"anonaudit demo: auditing blur, pixelation and mask on {args.n} synthetic Indian plates "
          f"({int(args.n * 0.8)} evaluated) with OCR, deblurring and depixelation attacks")
    return _run_config(config, resume=not args.no_resume, quiet=args.quiet)


def cmd_train(args) -> int:
    from .training import load_train_config, train

    job = load_train_config(args.config, overrides=args.set)
    if args.output:
        job.output = Path(args.output)
    if args.device:
        job.train.device = args.device
    method, data = job.create_method(), job.load_data()
    print(f"training {method.label()} on {len(data)} images of '{data.name}' -> {job.output}", file=sys.stderr)
    checkpoint = train(method, data, job.train, job.output, resume=not args.no_resume, quiet=args.quiet)
    print(f"checkpoint: {checkpoint}\nmanifest:   {job.output / 'manifest.json'}")
    return 0


def cmd_list(args) -> int:
    from .registry import REGISTRIES

    kinds = [args.kind] if args.kind else list(REGISTRIES)
    for kind in kinds:
        if kind not in REGISTRIES:
            raise AnonauditError(f"unknown kind '{kind}' (known: {', '.join(REGISTRIES)})")
        print(f"{kind}:")
        for name in REGISTRIES[kind].names():
            doc = (REGISTRIES[kind].get(name).__doc__ or "").strip().splitlines()
            print(f"  {name:24s} {doc[0] if doc else ''}")
    return 0


def cmd_report(args) -> int:
    from .results import Results

    results = Results.load(args.results_dir)
    path = results.report(args.out)
    print(f"report: {path}")
    return 0


def cmd_models(args) -> int:
    from .models import cache

    cache._ensure_specs_loaded()
    if args.action == "list":
        for name, spec in sorted(cache.MODEL_SPECS.items()):
            state = "ok" if cache.is_available(name) else "absent"
            print(f"{name:18s} {state:7s} {spec.description}\n{'':27s}{spec.url}\n{'':27s}licence: {spec.licence}")
        print(f"cache: {cache.cache_dir()}")
        return 0
    if not args.name:
        raise AnonauditError(f"`anonaudit models {args.action}` needs a model name (see `anonaudit models list`)")
    if args.action == "fetch":
        print(f"{args.name}: {cache.fetch(args.name)}")
    else:
        if not args.path:
            raise AnonauditError("`anonaudit models add NAME PATH` needs the path of the file you downloaded")
        print(f"{args.name}: {cache.add(args.name, args.path)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="anonaudit", description="Privacy audits of image anonymizers.")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run an audit from a YAML config")
    r.add_argument("config")
    r.add_argument("--output", help="output folder (overrides the config's)")
    r.add_argument("--root", action="append", default=[], help="extra folder the config may read or write (repeatable)")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value (YAML), e.g. --set data.limit=null --set seed=1 (repeatable)")
    r.add_argument("--on-error", choices=["skip", "raise"])
    r.add_argument("--no-resume", action="store_true", help="recompute units already in the output folder")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    r.set_defaults(func=cmd_run)

    t = sub.add_parser("train", help="train a trainable method (paper anonymizers, ArcFace) from a YAML config")
    t.add_argument("config")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value (YAML), e.g. --set train.epochs=5 (repeatable)")
    t.add_argument("--output", help="output folder (overrides the config's)")
    t.add_argument("--no-resume", action="store_true", help="start afresh even if the output folder has a checkpoint")
    t.add_argument("--device", choices=["cpu", "cuda", "auto"], help="overrides train.device")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    t.set_defaults(func=cmd_train)

    d = sub.add_parser("demo", help="audit classical anonymizers on built-in synthetic plates")
    d.add_argument("--output", default="runs/demo")
    d.add_argument("--n", type=int, default=250, help="synthetic plates to generate (20%% become the intruder's data)")
    d.add_argument("--no-resume", action="store_true")
    d.add_argument("-q", "--quiet", action="store_true")
    d.set_defaults(func=cmd_demo)

    ls = sub.add_parser("list", help="list registered components")
    ls.add_argument("kind", nargs="?")
    ls.set_defaults(func=cmd_list)

    rep = sub.add_parser("report", help="(re)write the HTML report of an audit output folder")
    rep.add_argument("results_dir")
    rep.add_argument("--out", help="report path (default RESULTS_DIR/report.html)")
    rep.set_defaults(func=cmd_report)

    m = sub.add_parser("models", help="manage downloadable model weights")
    m.add_argument("action", choices=["list", "fetch", "add"])
    m.add_argument("name", nargs="?")
    m.add_argument("path", nargs="?")
    m.set_defaults(func=cmd_models)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except AnonauditError as exc:
        print(f"anonaudit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("anonaudit: interrupted; finished units are saved and a rerun resumes", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
