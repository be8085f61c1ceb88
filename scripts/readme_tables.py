"""Regenerate the README's result tables from audit runs, so a change that moves them is noticed.

Each table in README.md sits between ``<!-- results:NAME -->`` and ``<!-- /results:NAME -->`` and is
rendered from a snapshot of the run's results in ``docs/results/NAME.csv`` (only the rows the table
shows). ``tests/test_readme_tables.py`` checks that every README table equals its rendering, and a
slow test reruns the demo and checks that it reproduces its snapshot.

    python scripts/readme_tables.py check                       # README == snapshots (exit 1 if not)
    python scripts/readme_tables.py update demo runs/demo       # snapshot a run, rewrite its README table
    python scripts/readme_tables.py render demo runs/demo       # print the table of a run

The runs behind the tables: ``anonaudit demo --output runs/demo``, ``anonaudit run
configs/plates-us.yaml --root ../shared/data``, ``anonaudit run configs/faces-lfw.yaml --root ../shared/data``,
``anonaudit run configs/scenes-eu-left-readable.yaml --root ../shared/data`` and
(after the two
training commands at its top) ``anonaudit run configs/paper-004-pose.yaml``.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
SNAPSHOTS = REPO / "docs" / "results"
SNAPSHOT_COLUMNS = ["target_label", "component_label", "metric", "value", "ci_low", "ci_high", "n", "original"]


@dataclass(frozen=True)
class Column:
    """One table column: the value of ``metric`` from the component whose label starts with ``component``."""

    header: str
    component: str
    metric: str
    percent: bool = True  # rates in % with the Wilson CI; otherwise a plain number to 3 decimals


@dataclass(frozen=True)
class Table:
    targets: tuple[str, ...]  # target labels, in the order shown
    columns: tuple[Column, ...]
    originals: bool = True  # first row: the attacks on the originals (the upper bound)


OCR = (
    Column("OCR, raw release", "ocr", "exact_match"),
    Column("after deblurring", "deblur_ocr", "exact_match_inverted"),
    Column("after depixelation", "depixelate_ocr", "exact_match_inverted"),
    Column("plate still detected", "plate_detectability", "plate_detectability"),
    Column("SSIM", "ssim", "ssim", percent=False),
)

TABLES: dict[str, Table] = {
    "demo": Table(
        ("gaussian_blur(sigma=4)", "gaussian_blur(sigma=8)", "pixelate(block=4)", "pixelate(block=8)",
         "pixelate(block=16)", "mask"),
        OCR,
    ),
    "plates-us": Table(
        tuple(f"gaussian_blur(sigma={s}, relative=True)" for s in (0.01, 0.02, 0.04, 0.08))
        + tuple(f"pixelate(block={b}, relative=True)" for b in (0.04, 0.08, 0.16)) + ("mask",),
        OCR,
    ),
    "faces-lfw": Table(
        ("face_blur(kernel=15, detector=dlib_hog)", "face_blur(kernel=25, detector=dlib_hog)",
         "face_pixelate(block=15, detector=dlib_hog)", "face_pixelate(block=25, detector=dlib_hog)",
         "face_mask(detector=dlib_hog)"),
        (
            Column("re-ID rank-1 (other photos)", "reid(gallery=other_images, parrot=True)", "rank1"),
            Column("parrot rank-1", "reid(gallery=other_images, parrot=True)", "parrot_rank1"),
            Column("re-ID rank-1 (source photos)", "reid", "rank1"),
            Column("gender accuracy", "gender", "accuracy"),
            Column("adaptive gender accuracy", "gender(adaptive=True)", "accuracy"),
            Column("MTCNN detection", "face_detection_rate", "face_detection_rate_mtcnn"),
            Column("dlib detection", "face_detection_rate(detector=dlib_hog)", "face_detection_rate_dlib_hog"),
            Column("faces left clear", "detector_miss", "faces_left_clear"),
            Column("main face left clear", "detector_miss", "main_face_left_clear"),
            Column("SSIM outside face", "ssim(region=outside_boxes)", "ssim_outside_boxes", percent=False),
            Column("SSIM", "ssim", "ssim", percent=False),
        ),
    ),
    "faces-learned": Table(
        ("face_blur(kernel=25, detector=dlib_hog)", "face_pixelate(block=15, detector=dlib_hog)",
         "face_pixelate(block=25, detector=dlib_hog)", "face_mask(detector=dlib_hog)"),
        (
            Column("re-ID rank-1 (other photos)", "reid(gallery=other_images, parrot=True)", "rank1"),
            Column("parrot gallery rank-1", "reid(gallery=other_images, parrot=True)", "parrot_rank1"),
            Column("parrot classifier rank-1", "parrot_classifier", "rank1"),
            Column("restorer, re-ID rank-1", "restore_then_reid", "rank1"),
            Column("open-set DIR @ FAR 1%", "reid(gallery=other_images, parrot=True)", "dir@far=0.01"),
            Column("gender accuracy", "gender", "accuracy"),
            Column("adaptive gender accuracy", "gender(adaptive=True)", "accuracy"),
            Column("restorer, gender accuracy", "restore_then_gender", "accuracy"),
        ),
    ),
    "scenes-eu-left-readable": Table(
        ("gaussian_blur(sigma=0.25, region=boxes, relative=True, margin=0.1)", "gaussian_blur(sigma=1)",
         "external(path=...)"),
        (
            Column("plates left readable", "plates_left_readable", "plates_left_readable"),
            Column("char accuracy", "plates_left_readable", "char_accuracy"),
            Column("OCR on the annotated box", "ocr", "exact_match"),
            Column("finder recall", "plates_left_readable", "finder_recall"),
            Column("finder precision", "plates_left_readable", "finder_precision"),
            Column("SSIM", "ssim", "ssim", percent=False),
        ),
    ),
    "paper-004": Table(
        ("pose_face(decoder=small-cpu, image_size=64, ...)", "face_blur(kernel=25, detector=dlib_hog)",
         "face_pixelate(block=15, detector=dlib_hog)"),
        (
            Column("dlib detection", "face_detection_rate(detector=dlib_hog)", "face_detection_rate_dlib_hog"),
            Column("MTCNN detection", "face_detection_rate", "face_detection_rate_mtcnn"),
            Column("re-ID rank-1, dlib (other photos)", "reid(gallery=other_images", "rank1"),
            Column("TAR @ FAR 1e-3, dlib", "reid(gallery=other_images", "tar@far=0.001"),
            Column("re-ID rank-1, tiny ArcFace", "reid(embedder={'name': 'arcface_trained'", "rank1"),
            Column("gender ROC AUC", "gender(n_boot", "roc_auc", percent=False),
            Column("adaptive gender ROC AUC", "gender(adaptive", "roc_auc", percent=False),
            Column("linkability pair AUC", "linkability", "pair_roc_auc", percent=False),
            Column("landmark error", "landmark_error", "landmark_error", percent=False),
            Column("head-pose difference (deg)", "pose_difference", "pose_difference", percent=False),
            Column("SSIM", "ssim", "ssim", percent=False),
        ),
    ),
}


def _target_rows(rows: pd.DataFrame, target: str) -> pd.Series:
    """Which rows belong to ``target``: its exact label, or with ``...`` the labels starting with
    what precedes it (a trained target's label carries its checkpoint's path, which differs by machine)."""
    labels = rows["target_label"].astype(str)
    return labels.str.startswith(target.split("...")[0]) if "..." in target else labels == target


def _pick(rows: pd.DataFrame, target: str, column: Column) -> pd.Series | None:
    """The row of ``column`` for ``target``: its component label equal to ``column.component``, else
    the first that starts with it (``deblur_ocr`` for ``deblur_ocr(methods=[...])``)."""
    rows = rows[_target_rows(rows, target) & (rows["metric"] == column.metric)]
    labels = rows["component_label"].astype(str)
    hit = rows[labels == column.component]
    if hit.empty:
        hit = rows[labels.str.startswith(column.component)]
    return None if hit.empty else hit.iloc[0]


def _fmt(value: float, low: float = math.nan, high: float = math.nan, percent: bool = True) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if not percent:
        return f"{value:.3f}"
    ci = "" if math.isnan(low) or math.isnan(high) else f" [{100 * low:.1f}, {100 * high:.1f}]"
    return f"{100 * value:.1f}{ci}"


def snapshot(results: pd.DataFrame, table: Table) -> pd.DataFrame:
    """The rows of ``results`` that ``table`` shows (what docs/results/NAME.csv keeps)."""
    ok = results[results["status"] == "ok"] if "status" in results else results
    keep = []
    for target in table.targets:
        for column in table.columns:
            hit = _pick(ok, target, column)
            if hit is not None:
                keep.append(hit[SNAPSHOT_COLUMNS])
    return pd.DataFrame(keep, columns=SNAPSHOT_COLUMNS).reset_index(drop=True)


def render(rows: pd.DataFrame, table: Table) -> str:
    """The markdown table for ``rows`` (a run's results or its snapshot)."""
    first = [h for t in table.targets if (h := _pick(rows, t, table.columns[0])) is not None]
    n = pd.Series([h["n"] for h in first], dtype=float).dropna()  # the first column's sample size
    lines = [
        f"| target (n = {int(n.max()) if len(n) else '?'}) | " + " | ".join(c.header for c in table.columns) + " |",
        "|---" * (len(table.columns) + 1) + "|",
    ]
    if table.originals:
        cells = []
        for column in table.columns:
            hit = next((h for t in table.targets if (h := _pick(rows, t, column)) is not None), None)
            original = None if hit is None else hit["original"]
            cells.append("1" if column.metric.startswith("ssim") else _fmt(float(original), percent=column.percent)
                         if original is not None and not pd.isna(original) else "")
        lines.append("| originals | " + " | ".join(cells) + " |")
    for target in table.targets:
        cells = []
        for column in table.columns:
            hit = _pick(rows, target, column)
            cells.append(
                ""
                if hit is None
                else _fmt(float(hit["value"]), float(hit["ci_low"]), float(hit["ci_high"]), column.percent)
            )
        lines.append(f"| `{target}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _block(name: str) -> re.Pattern:
    return re.compile(rf"<!-- results:{re.escape(name)} -->\n(.*?)<!-- /results:{re.escape(name)} -->", re.S)


def readme_table(name: str, text: str | None = None) -> str | None:
    m = _block(name).search(README.read_text() if text is None else text)
    return None if m is None else m.group(1).rstrip("\n")


def snapshot_path(name: str) -> Path:
    return SNAPSHOTS / f"{name}.csv"


def check() -> list[str]:
    """Names of the README tables that differ from the rendering of their snapshot."""
    text = README.read_text()
    return [name for name, table in TABLES.items()
            if readme_table(name, text) is not None
            and readme_table(name, text) != render(pd.read_csv(snapshot_path(name)), table)]


def update(name: str, run: Path) -> None:
    table = TABLES[name]
    rows = snapshot(pd.read_csv(run / "results.csv"), table)
    SNAPSHOTS.mkdir(parents=True, exist_ok=True)
    rows.to_csv(snapshot_path(name), index=False)
    text = README.read_text()
    if _block(name).search(text) is None:
        raise SystemExit(f"README.md has no <!-- results:{name} --> block")
    block = f"<!-- results:{name} -->\n{render(rows, table)}\n<!-- /results:{name} -->"
    README.write_text(_block(name).sub(lambda m: block, text))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check")
    for cmd in ("update", "render"):
        p = sub.add_parser(cmd)
        p.add_argument("name", choices=sorted(TABLES))
        p.add_argument("run", type=Path)
    args = parser.parse_args(argv)
    if args.command == "check":
        stale = check()
        for name in stale:
            print(
                f"README table '{name}' differs from docs/results/{name}.csv: run scripts/readme_tables.py update "
                f"{name} RUN"
            )
        return 1 if stale else 0
    if args.command == "update":
        update(args.name, args.run)
        return 0
    print(render(snapshot(pd.read_csv(args.run / "results.csv"), TABLES[args.name]), TABLES[args.name]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
