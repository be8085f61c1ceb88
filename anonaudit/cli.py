"""Command line: ``anonaudit run|audit|certify|reaudit|train|demo|list|report|models``."""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

from .errors import AnonauditError

#: The demo audit's configuration, shipped inside the package (``anonaudit/configs/demo.yaml``).
DEMO_RESOURCE = "configs/demo.yaml"
#: Exit statuses of an interrupted command (128 + the signal's number, as a shell reports them).
EXIT_SIGINT, EXIT_SIGTERM = 130, 143


def _exit_status(*codes: tuple[int, str]) -> str:
    """A help epilog: one line per exit status, then the interrupted ones and how to resume."""
    codes += ((EXIT_SIGINT, "interrupted by Ctrl-C (SIGINT)"), (EXIT_SIGTERM, "stopped by SIGTERM"))
    lines = [f"  {code:<4d} {meaning}" for code, meaning in codes]
    return "\n".join(["exit status:", *lines, ("An interrupted audit keeps the units it finished: rerun the same "
                      "command to resume.")])


#: Exit statuses of ``anonaudit run`` (its help's epilog).
RUN_EXIT_STATUS = _exit_status(
    (0, ("the audit ran to the end (targets, attacks or metrics that failed or were unavailable are\n"
        "       recorded in results.csv and summed up on stderr)")),
    (2, "error: a bad config, data set or option, or a failure with --on-error raise"),
)


def _run_config(config, resume: bool, quiet: bool, policy: str | None = None, executor=None,
                embed_examples: bool = False) -> int:
    """Run an audit, write its report and print the headline; with ``policy``, certify it first (the
    report shows the verdict), print the verdict last and return its exit status (see ``certify``).
    ``executor`` runs the per-image work (default: this process; see :mod:`anonaudit.executors`).
    ``embed_examples`` puts the texts read and identities matched into findings.csv and the report."""
    from .audit import audit_from_config
    from .reports.html import write_html_report
    from .verdicts import load_policy

    if policy:
        load_policy(policy)  # a bad policy name or file fails now, not after the audit
    output = config.output or Path("runs") / config.name
    audit = audit_from_config(config, executor=executor)
    audit.embed_examples = embed_examples
    results = audit.run(output, resume=resume, show_progress=not quiet)
    verdict, problem = _write_verdict(results, policy) if policy else (None, "")
    report = write_html_report(results, embed_examples=embed_examples)
    _print_summary(results)
    print(f"\nresults: {output / 'results.csv'}\nfiles:   {output / 'files.csv'}\nfindings: {output / 'findings.csv'}"
          f"\nreport:  {report}")
    _print_failures(results.failures())
    if verdict is None:
        _print_files(results)  # the verdict prints them otherwise
        return 0
    return _print_verdict(verdict, results.output, problem)


def _write_verdict(results, policy: str, kind: str | None = None):
    """Certify ``results`` against ``policy``; write ``verdict.json`` and ``certificate.json`` in the run.
    Returns the verdict and why the certificate could not be written ("" when it was)."""
    from .errors import DataError
    from .verdicts import certify, write_certificate, write_verdict

    verdict = certify(results, policy, kind)
    write_verdict(verdict, results.output)
    try:
        write_certificate(results, verdict)
    except DataError as exc:  # e.g. an audited file changed since the audit
        return verdict, str(exc)
    return verdict, ""


def _print_verdict(verdict, run, problem: str = "") -> int:
    """Print the verdict and its files; the exit status (3 when the certificate could not be written)."""
    from .verdicts import format_verdict

    print("\n" + format_verdict(verdict))
    print(f"verdict:     {Path(run) / 'verdict.json'}")
    if problem:
        print(f"anonaudit: error: no certificate written: {problem}", file=sys.stderr)
        return 3
    print(f"certificate: {Path(run) / 'certificate.json'}")
    return verdict.exit_code


def cmd_audit(args) -> int:
    import yaml

    from .config import parse_config
    from .release_audit import audit_notes, release_config

    try:
        raw = release_config(
            args.originals, args.release, args.kind, args.labels, args.output, args.seed, args.on_mismatch
        )
        output = Path(raw["output"])
        roots = [Path(args.originals), Path(args.release), output.parent] + (
            [Path(args.labels).parent] if args.labels else []
        )
        config = parse_config(raw, roots=roots)
        output.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(raw, sort_keys=False)
        (output / "audit.yaml").write_text(text, encoding="utf-8")
        extra = " ".join(f"--root {r}" for r in sorted({str(Path(p).resolve()) for p in roots}))
        print(f"equivalent config ({output / 'audit.yaml'}; rerun or extend it with "
              f"`anonaudit run {output / 'audit.yaml'} {extra}`):\n\n{text}")
        for note in audit_notes(raw):  # attacks left out for want of labels; labels of the other kind
            print(f"anonaudit: {note}", file=sys.stderr)
        return _run_config(config, resume=not args.no_resume, quiet=args.quiet, policy=args.policy,
                           embed_examples=args.embed_examples)
    except AnonauditError as exc:
        print(f"anonaudit: error: {exc}", file=sys.stderr)
        return 3


def cmd_certify(args) -> int:
    from .results import Results

    try:
        results = Results.load(args.results_dir)
        verdict, problem = _write_verdict(results, args.policy, args.kind)
    except AnonauditError as exc:
        print(f"anonaudit: error: {exc}", file=sys.stderr)
        return 3
    return _print_verdict(verdict, results.output, problem)


#: Exit statuses of ``anonaudit reaudit`` (its help's epilog; a re-audit never resumes).
REAUDIT_EXIT_STATUS = "\n".join(f"  {code:<4d} {meaning}" for code, meaning in (
    (0, ("REPRODUCED: every row of the certified results came back (deterministic rows identical, rows\n"
        "       depending on training randomness within their 95% CIs) and the same verdict")),
    (1, "DIFFERS: a row, a verdict or an in-memory input differs (they are listed)"),
    (3, "error: not a certificate, no certified results.csv, a config that no longer parses"),
    (4, ("refused: a file the certificate rests on (original, released file, model weight, the policy,\n"
        "       the certified results.csv) changed or is missing; each is named")),
    (EXIT_SIGINT, "interrupted by Ctrl-C (SIGINT)"), (EXIT_SIGTERM, "stopped by SIGTERM"),
)).join(["exit status:\n", "\nAn interrupted re-audit leaves a partial folder: rerun into a new one."])


def cmd_reaudit(args) -> int:
    from .verdicts.reaudit import EXIT_ERROR, EXIT_REFUSED, Refused, format_reaudit, reaudit

    try:
        outcome = reaudit(args.certificate, args.output, args.data, args.root, show_progress=not args.quiet)
    except Refused as exc:
        print(
            f"anonaudit: re-audit refused: {len(exc.problems)} file(s) the certificate rests on changed or are "
            "missing:",
            file=sys.stderr,
        )
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_REFUSED
    except AnonauditError as exc:
        print(f"anonaudit: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(format_reaudit(outcome))
    return outcome.exit_code


def _print_failures(failures) -> None:
    """One line per distinct reason a component did not run (e.g. weights not fetched), then failures."""
    unavailable = failures[failures["status"] == "unavailable"]
    for (component, message), rows in unavailable.groupby(["component", "message"], sort=True):
        print(f"unavailable in {len(rows)} unit(s): {component}: {message}", file=sys.stderr)
    failed = failures[(failures["status"] == "failed") & (failures["kind"] != "data")]
    if not failed.empty:
        print(f"{len(failed)} unit(s) failed: see the report's last section and results.csv", file=sys.stderr)
    unread = failures[(failures["status"] == "failed") & (failures["kind"] == "data")]
    if not unread.empty:
        shown = "; ".join(str(m).removeprefix("skipped ") for m in unread["message"].head(5))
        print(f"{len(unread)} file(s) could not be read and were not audited (files.csv): {shown}"
              + (" ..." if len(unread) > 5 else ""), file=sys.stderr)


def _print_files(results) -> None:
    """Per target, its released files per status and the first files of each status other than audited."""
    from .verdicts.certify import file_summary, format_files

    labels = [lab for lab in dict.fromkeys(results.table["target_label"]) if isinstance(lab, str) and lab]
    for label in labels:
        print("\n".join([f"{label}:", *format_files(file_summary(results.files, label))]))


def _print_summary(results) -> None:
    import pandas as pd

    risk = results.max_risk()
    if risk.empty:
        print("no target in the results")
        return
    shown = pd.DataFrame({
        "target": risk["target_label"],
        "risk [95% CI]": [_risk_text(r) for r in risk.itertuples()],
        "kind": [k if isinstance(k, str) else "" for k in risk["risk_kind"]],
        "attack": [f"{c}:{m}" + (f" ({k})" if k in ("learned", "searching") else "") if isinstance(c, str) else ""
                   for c, m, k in zip(risk["component"], risk["metric"], risk["attacker"])],
        "on release": risk["value"].map(lambda v: "" if pd.isna(v) else f"{v:.3f}"),
        "n": risk["n"].map(lambda v: "" if pd.isna(v) else str(int(v))),
        "on originals": risk["original"].map(lambda v: "" if pd.isna(v) else f"{v:.3f}"),
        "baseline": risk["baseline"].map(lambda v: "" if pd.isna(v) else f"{v:.3g}"),
    })
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_colwidth", 60):
        print("\nstrongest attack per target (risk: 0 = chance, 1 = as the originals, >1 = leaks more than the "
              "originals; new_leak = (release - baseline) / (1 - baseline) where the originals leak nothing):")
        print(shown.to_string(index=False))
    for r in risk.itertuples():
        if r.reason:
            print(f"  {r.target_label}: no risk estimate: {r.reason}")


def _risk_text(r) -> str:
    """``0.250 [0.12, 0.41]`` (``inf`` for an unbounded end), or ``-`` without an estimate."""
    import math

    if r.risk is None or math.isnan(r.risk):
        return "-"
    ci = "" if r.risk_ci_low is None or math.isnan(r.risk_ci_low) else f" [{r.risk_ci_low:.2f}, {r.risk_ci_high:.2f}]"
    flag = " (leaks more than the originals)" if r.exceeds_original is True else ""
    return f"{r.risk:.3f}{ci}{flag}"


def cmd_run(args) -> int:
    from .config import load_config

    config = load_config(args.config, roots=args.root, overrides=args.set)
    if args.output:  # the user's own command line is trusted; only the config's paths are confined
        config.output = Path(args.output)
    if args.on_error:
        config.on_error = args.on_error
    executor = None
    if args.ray is not None:
        from .executors import RayExecutor

        executor = RayExecutor(address=args.ray or None)
    return _run_config(config, resume=not args.no_resume, quiet=args.quiet, executor=executor,
                       embed_examples=args.embed_examples)


def demo_config(n: int | None = None):
    """The packaged demo configuration, parsed; ``n`` replaces its number of synthetic plates."""
    from importlib import resources

    import yaml

    from .config import apply_overrides, parse_config

    raw = yaml.safe_load(resources.files(__package__).joinpath(DEMO_RESOURCE).read_text(encoding="utf-8"))
    return parse_config(apply_overrides(raw, [f"data.n={n}"]) if n is not None else raw)


def cmd_demo(args) -> int:
    config = demo_config(args.n)
    config.output = Path(args.output)
    n = config.data.params["n"]
    print(f"anonaudit demo: auditing blur, pixelation and mask on {n} synthetic Indian plates "
          f"({n - int(n * config.auxiliary['fraction'])} evaluated) with OCR, deblurring and depixelation attacks, "
          f"judged by the {args.policy} policy")
    _run_config(config, resume=not args.no_resume, quiet=args.quiet, policy=args.policy)
    return 0  # the demo succeeded whatever its verdict (`anonaudit certify` exits by verdict)


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
    import shutil

    from .registry import REGISTRIES

    kinds = [args.kind] if args.kind else list(REGISTRIES)
    width = max(60, shutil.get_terminal_size((100, 24)).columns - 1)
    for kind in kinds:
        print(f"{kind}:")
        for name in REGISTRIES[kind].names():
            # Whole sentences, wrapped under the description column (a long name gets a line of its own).
            head = f"  {name:24s} " if len(name) < 25 else f"  {name}\n{'':27s}"
            text = textwrap.fill(REGISTRIES[kind].describe(name), width, initial_indent=" " * 27,
                                 subsequent_indent=" " * 27, break_on_hyphens=False)
            print(head + text[27:] if text else head.rstrip())
    return 0


def cmd_report(args) -> int:
    from .reports.html import write_html_report
    from .results import Results

    results = Results.load(args.results_dir)
    path = write_html_report(results, args.out, embed_examples=args.embed_examples)
    print(f"report: {path}")
    if args.compliance:
        from .reports.compliance import write_compliance_report

        html, pdf = write_compliance_report(results, path.parent, embed_examples=args.embed_examples)
        print(f"compliance report: {html}\ncompliance PDF:    {pdf}")
    return 0


def cmd_compare(args) -> int:
    from .reports.compare import comparison_text, write_comparison
    from .verdicts.compare import compare_runs

    comparison = compare_runs(
        args.runs, args.weights, policy=args.policy, ignore_verdict=args.ignore_verdict, force=args.force
    )
    csv, html = write_comparison(comparison, Path(args.out))
    print(comparison_text(comparison))
    print(f"\ncomparison: {csv}\nreport:     {html}")
    return 0


def cmd_models(args) -> int:
    from .models import cache

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


def _add_embed_examples(parser: argparse.ArgumentParser) -> None:
    """The ``--embed-examples`` option of the commands that audit (``run``, ``audit``)."""
    parser.add_argument("--embed-examples", action="store_true",
                        help="write the plate texts read and identities matched into findings.csv and the report, and "
                             "embed example images as released (default: the findings state the fact only, images "
                             "redacted); for internal use only")


def build_parser() -> argparse.ArgumentParser:
    from .registry import REGISTRIES

    p = argparse.ArgumentParser(prog="anonaudit", description="Privacy audits of image anonymizers.")
    sub = p.add_subparsers(
        dest="command",
        required=True,
        metavar="COMMAND",
        help="run, audit, certify, reaudit, compare, report, demo, train, list or models (anonaudit COMMAND -h)",
    )

    r = sub.add_parser("run", help="run an audit from a YAML config",
                       description=textwrap.fill("Run the audit a YAML config describes (see configs/ and docs/), "
                       "write its run folder (units/, results.csv, report.html) and print the strongest attack per "
                       "target. Units already in the output folder are reused unless --no-resume.", 100),
                       epilog=RUN_EXIT_STATUS, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("config", help="the audit's YAML config file")
    r.add_argument("--output", help="output folder (overrides the config's)")
    r.add_argument("--root", action="append", default=[], help="extra folder the config may read or write (repeatable)")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value (YAML), e.g. --set data.limit=null --set seed=1 (repeatable)")
    r.add_argument("--on-error", choices=["skip", "raise"],
                   help="when a target, attack or metric fails: skip records the failure in results.csv and goes on, "
                        "raise stops the audit with the error (exit 2) (default: the config's on_error, else skip)")
    r.add_argument("--no-resume", action="store_true", help="recompute units already in the output folder")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    _add_embed_examples(r)
    r.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                   help="run the per-image work on Ray: a cluster's ADDRESS (e.g. auto, ray://head:10001), or "
                        "without one the cluster started on this machine by `ray start`, else a new local instance "
                        "(needs anonaudit[scale]; see docs/scale.md)")
    r.set_defaults(func=cmd_run)

    t = sub.add_parser("train", help="train a trainable method (paper anonymizers, ArcFace) from a YAML config")
    t.add_argument("config", help="the training job's YAML config file (see configs/train/)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value (YAML), e.g. --set train.epochs=5 (repeatable)")
    t.add_argument("--output", help="output folder (overrides the config's)")
    t.add_argument("--no-resume", action="store_true", help="start afresh even if the output folder has a checkpoint")
    t.add_argument("--device", choices=["cpu", "cuda", "auto"],
                   help="overrides train.device: cpu, cuda (a GPU, an error without one) or auto (cuda when available)")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    t.set_defaults(func=cmd_train)

    d = sub.add_parser(
        "demo",
        help="audit classical anonymizers on built-in synthetic plates",
        epilog=_exit_status(
            (0, "the demo ran, whatever its verdict (`anonaudit certify` exits by verdict)"), (2, "error")
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d.add_argument("--output", default="runs/demo", help="output folder (default runs/demo)")
    d.add_argument(
        "--n",
        type=int,
        help="synthetic plates to generate (default: the packaged demo config's; 20%% become the intruder's data)",
    )
    d.add_argument("--no-resume", action="store_true", help="recompute units already in the output folder")
    d.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    d.add_argument("--policy", default="strict", help="policy the demo's targets are judged by (default strict)")
    d.set_defaults(func=cmd_demo)

    ls = sub.add_parser("list", help="list registered components (built-in and plugins) with what each does")
    ls.add_argument("kind", nargs="?", choices=list(REGISTRIES),
                    help=f"list only this kind: {', '.join(REGISTRIES)} (default: every kind)")
    ls.set_defaults(func=cmd_list)

    rep = sub.add_parser("report", help="(re)write the HTML report of an audit output folder")
    rep.add_argument("results_dir", help="the audit's output folder")
    rep.add_argument("--out", help="report path (default RESULTS_DIR/report.html)")
    rep.add_argument(
        "--compliance",
        action="store_true",
        help="also write compliance.html and compliance.pdf (Art. 29 WP criteria, motivated-intruder test)",
    )
    rep.add_argument("--embed-examples", action="store_true",
                     help="embed example images as released (default: redacted); for internal use only")
    rep.set_defaults(func=cmd_report)

    cmp = sub.add_parser(
        "compare",
        help="compare methods across audit runs: table, verdicts, Pareto fronts, ranking",
        description="One row per (run, target) with 95% CIs from one or more audit output folders: "
        "each attack's risk, the worst-case risk upper bound, each utility metric, the "
        "privacy-utility "
        "Pareto front of every (attack, utility) pair, the policy's verdict (with --policy) and a "
        "ranking: PASS before NOT TESTED before FAIL, then by the weighted geometric mean of privacy "
        "(1 - worst-case risk upper bound) and utility (metrics on their own [0, 1] scale). Runs of "
        "different data kinds or data sets are refused. Reads results only.",
    )
    cmp.add_argument("runs", nargs="+", help="audit output folders")
    cmp.add_argument("--weights", help="ranking weights, e.g. privacy=0.7,utility=0.3 or per attack/metric: "
                     "ocr=2,ssim=1 (default privacy=0.5,utility=0.5)")
    cmp.add_argument("--policy", help="built-in policy (strict, research) or a policy YAML: certify every run, show "
                     "each method's verdict and rank PASS first, FAIL last (default: no verdicts)")
    cmp.add_argument(
        "--ignore-verdict",
        action="store_true",
        help="with --policy: rank on the score alone (a FAIL may then rank above a PASS); verdicts still shown",
    )
    cmp.add_argument(
        "--force",
        action="store_true",
        help="compare runs of different data kinds (faces, plates) or data sets anyway (noted in the output)",
    )
    cmp.add_argument(
        "--out", default="compare", help="output folder for compare.csv and compare.html (default ./compare)"
    )
    cmp.set_defaults(func=cmd_compare)

    a = sub.add_parser(
        "audit", help="audit a release folder against its originals and certify it (no config needed)",
        description=textwrap.fill("Pair RELEASE with ORIGINALS by file name, run every offline attack and utility "
        "metric of the kind (those needing labels only with --labels), write the run folder and report, print the "
        "equivalent YAML config, and end with the verdict of the policy.", 100),
        epilog=_exit_status((0, "PASS"), (1, "FAIL"), (2, "NOT TESTED"), (3, "error")),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    a.add_argument("originals", help="folder of the original images")
    a.add_argument("release", help="folder of the anonymized images (same file names, any image extension)")
    a.add_argument("--kind", required=True, choices=["faces", "plates"],
                   help="what the images show: plates (licence plates: OCR attacks) or faces (re-identification, "
                        "gender and face detection)")
    a.add_argument("--labels", help="labels CSV of the originals, a row for each (path, and text for plates; identity, "
                   "gender for faces); without it the attacks that need labels are not run (they are named)")
    a.add_argument("--on-mismatch", choices=["error", "drop"], default="error",
                   help="when a file of either folder has no counterpart: error (default) fails the release's audit "
                        "(verdict NOT TESTED, the files named), drop audits the pairs that exist and lists the "
                        "unpaired files in the run folder")
    a.add_argument(
        "--policy", default="strict", help="built-in policy (strict, research) or a policy YAML (default strict)"
    )
    a.add_argument("--output", help="run folder (default runs/audit-<release folder name>)")
    a.add_argument("--seed", type=int, default=0, help="seed of the auxiliary split and of the attacks (default 0)")
    a.add_argument("--no-resume", action="store_true", help="recompute units already in the run folder")
    a.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    _add_embed_examples(a)
    a.set_defaults(func=cmd_audit)

    c = sub.add_parser(
        "certify", help="judge an audit against a release policy; write verdict.json and certificate.json",
        description="Judge every target of an audit against a policy and write RUN/verdict.json and "
        "RUN/certificate.json (the verdict with sha256 of every audited file and model weight).",
        epilog="exit status: 0 PASS, 1 FAIL, 2 NOT TESTED (a criterion's attack or metric was absent, "
        "unavailable or failed), 3 error", formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("results_dir", help="the audit's output folder")
    c.add_argument(
        "--policy", default="strict", help="built-in policy (strict, research) or a policy YAML (default strict)"
    )
    c.add_argument("--kind", choices=["faces", "plates"],
                   help="data kind, faces or plates: which of the policy's criteria apply (default: read from the run)")
    c.set_defaults(func=cmd_certify)

    ra = sub.add_parser(
        "reaudit", help="rerun a certified audit from its certificate and check the results and verdict come back",
        description=textwrap.fill("Re-hash every file and model weight the certificate lists (refusing when one "
        "changed or is missing), rerun its audit config with its seed into a fresh folder, certify it with the "
        "same policy, and compare the results table row by row with the certified one: identical for "
        "deterministic rows, within the 95% CI for rows that depend on training randomness, the same verdict. "
        "Prints REPRODUCED or DIFFERS with the differing rows and the environment differences, and writes "
        "reaudit.json into the new folder.", 100),
        epilog=REAUDIT_EXIT_STATUS, formatter_class=argparse.RawDescriptionHelpFormatter)
    ra.add_argument("certificate", metavar="CERTIFICATE_OR_RUN",
                    help="a certificate.json, or the run folder holding it (its results.csv is the certified table)")
    ra.add_argument("--data", metavar="ROOT",
                    help="the data moved: read every recorded path under the recorded data root (the deepest folder "
                         "holding every audited file and config path) at the same place under ROOT")
    ra.add_argument(
        "--output", help="the new run folder, new or empty (default RUN-reaudit-<UTC timestamp> beside RUN)"
    )
    ra.add_argument("--root", action="append", default=[],
                    help="extra folder the certified config may read (repeatable), as for `anonaudit run`")
    ra.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    ra.set_defaults(func=cmd_reaudit)

    m = sub.add_parser("models", help="manage downloadable model weights")
    m.add_argument("action", choices=["list", "fetch", "add"],
                   help="list: every model, whether it is in the cache, its source and licence; fetch NAME: download "
                        "and verify it; add NAME PATH: put a file you downloaded into the cache (checked by sha256)")
    m.add_argument("name", nargs="?", help="model name, as `anonaudit models list` shows (fetch and add)")
    m.add_argument("path", nargs="?", help="the downloaded file (add)")
    m.set_defaults(func=cmd_models)
    return p


def main(argv: list[str] | None = None) -> int:
    from .parallel import Terminated, stop_on_signals

    args = build_parser().parse_args(argv)
    try:
        with stop_on_signals():
            return args.func(args)
    except AnonauditError as exc:
        print(f"anonaudit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # Ctrl-C (SIGINT) or SIGTERM; worker processes are already stopped
        which = "SIGTERM" if isinstance(exc, Terminated) else "SIGINT"
        print(f"anonaudit: interrupted ({which}); units finished so far are kept in the run folder: "
              "rerun the same command to resume", file=sys.stderr)
        return EXIT_SIGTERM if isinstance(exc, Terminated) else EXIT_SIGINT


if __name__ == "__main__":
    sys.exit(main())
