"""Regenerate the README's result tables from audit runs, so a change that moves them is noticed.

Each table in README.md sits between ``<!-- results:NAME -->`` and ``<!-- /results:NAME -->`` and is
rendered from a snapshot of the run's results in ``docs/results/NAME.csv`` (only the rows the table
shows). ``tests/test_readme_tables.py`` checks that every README table equals its rendering, and a
slow test reruns the demo and checks that it reproduces its snapshot.

    python scripts/readme_tables.py check                       # README == snapshots (exit 1 if not)
    python scripts/readme_tables.py update demo runs/demo       # snapshot a run, rewrite its README table
    python scripts/readme_tables.py render demo runs/demo       # print the table of a run
    python scripts/readme_tables.py templates                   # rewrite the prose blocks from their templates

Prose tables (the README's paper-claim table, the docs' paper tables) are templates, docs/results/NAME.md.tmpl,
whose placeholders name a snapshot's cell (see ``fill``); ``update SNAPSHOT RUN`` also keeps the rows they read.
The paper and membership runs come from ``scripts/papers.py`` (``make papers``), which times each step.

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
    ci: bool = False  # a plain number with its 95% CI, to 2 decimals (AUCs)


@dataclass(frozen=True)
class Beyond:
    """A computed column: does the best of the ``learned`` columns (searching or learning attackers) beat the
    best of the ``ladder`` columns (the classical attacks) beyond both 95% CIs, i.e. is the learned attack's
    CI low above the ladder's CI high? Each entry is the header of a column of the same table."""

    header: str
    ladder: tuple[str, ...]
    learned: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    targets: tuple[str, ...]  # target labels, in the order shown
    columns: tuple[Column, ...]
    originals: bool = True  # first row: the attacks on the originals (the upper bound)
    beyond: tuple[Beyond, ...] = ()  # computed last columns (see Beyond)


OCR = (
    Column("OCR, raw release", "ocr", "exact_match"),
    Column("after deblurring", "deblur_ocr", "exact_match_inverted"),
    Column("after depixelation", "depixelate_ocr", "exact_match_inverted"),
    Column("plate still detected", "plate_detectability", "plate_detectability"),
    Column("SSIM", "ssim", "ssim", percent=False),
)

#: The classical ladder beside the searching and learning intruders (configs/plates-learned.yaml,
#: configs/plates-us-learned.yaml).
LEARNED_OCR = (
    Column("OCR, raw release", "ocr", "exact_match"),
    Column("after deblurring", "deblur_ocr", "exact_match_inverted"),
    Column("after depixelation", "depixelate_ocr", "exact_match_inverted"),
    Column("render-and-match", "render_match_ocr", "exact_match"),
    Column("render-and-match char accuracy", "render_match_ocr", "char_accuracy"),
    Column("parrot recogniser", "parrot_ocr", "exact_match"),
    Column("parrot char accuracy", "parrot_ocr", "char_accuracy"),
    Column("restorer, then OCR", "restore_then_ocr", "exact_match"),
    Column("parrot training (s)", "parrot_ocr", "training_seconds", percent=False),
    Column("restorer training (s)", "restore_then_ocr", "training_seconds", percent=False),
)
LEARNED_OCR_BEYOND = (
    Beyond("searching or learned attacker beyond the ladder's CI",
           ("OCR, raw release", "after deblurring", "after depixelation"),
           ("render-and-match", "parrot recogniser", "restorer, then OCR")),
)

#: The one-run DP audit (configs/dp-audit-plates.yaml, configs/dp-audit-faces.yaml).
DP_AUDIT = (
    Column("epsilon lower bound (95%)", "dp_audit", "epsilon_lower_bound", percent=False),
    Column("lower bound minus claimed epsilon", "dp_audit", "epsilon_lower_bound_minus_claimed", percent=False),
)

#: The classical face ladder beside the learning intruder (configs/faces-learned.yaml,
#: configs/papers-learned-faces.yaml).
LEARNED_FACES = (
    Column("re-ID rank-1 (other photos)", "reid(gallery=other_images, parrot=True)", "rank1"),
    Column("parrot gallery rank-1", "reid(gallery=other_images, parrot=True)", "parrot_rank1"),
    Column("parrot classifier rank-1", "parrot_classifier", "rank1"),
    Column("restorer, re-ID rank-1", "restore_then_reid", "rank1"),
    Column("open-set DIR @ FAR 1%", "reid(gallery=other_images, parrot=True)", "dir@far=0.01"),
    Column("gender accuracy", "gender", "accuracy"),
    Column("adaptive gender accuracy", "gender(adaptive=True)", "accuracy"),
    Column("restorer, gender accuracy", "restore_then_gender", "accuracy"),
)
LEARNED_FACES_BEYOND = (
    Beyond("learned re-ID beyond the ladder's CI", ("re-ID rank-1 (other photos)", "parrot gallery rank-1"),
           ("parrot classifier rank-1", "restorer, re-ID rank-1")),
    Beyond("learned gender beyond the ladder's CI", ("gender accuracy", "adaptive gender accuracy"),
           ("restorer, gender accuracy",)),
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
    "plates-learned": Table(
        ("gaussian_blur(sigma=8)", "pixelate(block=8)", "pixelate(block=16)", "mask"),
        LEARNED_OCR,
        beyond=LEARNED_OCR_BEYOND,
    ),
    "plates-us-learned": Table(
        ("gaussian_blur(sigma=0.08, relative=True)", "pixelate(block=0.08, relative=True)",
         "pixelate(block=0.16, relative=True)", "mask"),
        LEARNED_OCR,
        beyond=LEARNED_OCR_BEYOND,
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
        LEARNED_FACES,
        beyond=LEARNED_FACES_BEYOND,
    ),
    "papers-learned-plates": Table(("plate_wgan(image_size=32, latent_dim=64, g_channels=16, d_channels=16, ...)",),
                                   LEARNED_OCR, beyond=LEARNED_OCR_BEYOND),
    "papers-learned-faces": Table(
        ("face_dcgan(image_size=32, latent_dim=64, g_channels=16, d_channels=16, ...)",
         "face_progan(image_size=16, latent_dim=64, max_channels=64, ...)",
         "aia(alpha=0.5, beta=0.5, adversary_loss=decorrelation, ...)", "miku(mapper=autoencoder, k=2, ...)",
         "pose_face(decoder=small-cpu, image_size=64, ...)"),
        LEARNED_FACES,
        beyond=LEARNED_FACES_BEYOND,
    ),
    "dp-audit-plates": Table(
        ("plate_wgan(image_size=32, latent_dim=64, g_channels=16, d_channels=16, lr=0.0002, device=cpu)",
         ("plate_wgan(image_size=32, latent_dim=64, g_channels=16, d_channels=16, lr=0.0002, device=cpu, dp_epsilon=8, "
         "dp_delta=1e-05)"),
         "miku(mapper=pca, k=2, size=16, device=cpu)"),
        DP_AUDIT,
        originals=False,
    ),
    "membership-faces": Table(
        ("face_dcgan(image_size=32, latent_dim=64, g_channels=16, d_channels=16, release_format=memory, device=cpu)",
         "face_progan(image_size=16, latent_dim=64, max_channels=64, release_format=memory, device=cpu)",
         "aia(alpha=0.5, beta=0.5, adversary_loss=decorrelation, pretrain_steps=150, device=cpu)",
         "miku(mapper=autoencoder, k=2, size=32, latent=64, device=cpu)",
         "pose_face(decoder=small-cpu, image_size=64, ...)",
         "face_blur(kernel=25)", "face_mask"),
        (
            Column("LiRA AUC, online", "membership_lira", "roc_auc", percent=False, ci=True),
            Column("LiRA AUC, offline", "membership_lira", "offline_roc_auc", percent=False, ci=True),
            Column("critic AUC", "membership_critic", "roc_auc", percent=False, ci=True),
            Column("reconstruction AUC", "membership_reconstruction", "roc_auc", percent=False, ci=True),
            Column("DCR AUC (dlib)", "membership_dcr", "roc_auc", percent=False, ci=True),
            Column("DCR AUC per person", "membership_dcr", "identity_roc_auc", percent=False, ci=True),
            Column("judges' ensemble FNR", "real_fake_judges", "fnr_ensemble"),
            Column("linkability pair AUC", "linkability", "pair_roc_auc", percent=False, ci=True),
            Column("re-ID rank-1 (other photos)", "reid", "rank1"),
        ),
        originals=False,
    ),
    "dp-audit-faces": Table(
        tuple(base + dp for base in (
            "face_dcgan(image_size=32, latent_dim=64, g_channels=16, d_channels=16, release_format=memory, device=cpu",
            "face_progan(image_size=16, latent_dim=64, max_channels=64, release_format=memory, device=cpu",
            "miku(mapper=autoencoder, k=2, size=32, latent=64, device=cpu",
            "aia(alpha=0, beta=0, adversary_loss=decorrelation, pretrain_steps=150, device=cpu")
            for dp in (")", ", dp_epsilon=8, dp_delta=1e-05)")),
        DP_AUDIT,
        originals=False,
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


def _fmt(value: float, low: float = math.nan, high: float = math.nan, percent: bool = True, ci: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if not percent and ci and not (math.isnan(low) or math.isnan(high)):
        return f"{value:.2f} [{low:.2f}, {high:.2f}]"
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
    headers = [c.header for c in table.columns] + [b.header for b in table.beyond]
    lines = [
        f"| target (n = {int(n.max()) if len(n) else '?'}) | " + " | ".join(headers) + " |",
        "|---" * (len(headers) + 1) + "|",
    ]
    if table.originals:
        cells = []
        for column in table.columns:
            hit = next((h for t in table.targets if (h := _pick(rows, t, column)) is not None), None)
            original = None if hit is None else hit["original"]
            cells.append("1" if column.metric.startswith("ssim") else _fmt(float(original), percent=column.percent)
                         if original is not None and not pd.isna(original) else "")
        lines.append("| originals | " + " | ".join(cells + [""] * len(table.beyond)) + " |")
    for target in table.targets:
        cells = []
        for column in table.columns:
            hit = _pick(rows, target, column)
            cells.append(
                ""
                if hit is None
                else _fmt(float(hit["value"]), float(hit["ci_low"]), float(hit["ci_high"]), column.percent, column.ci)
            )
        cells += [beyond_cell(rows, table, target, b) for b in table.beyond]
        lines.append(f"| `{target}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def beyond_cell(rows: pd.DataFrame, table: Table, target: str, beyond: Beyond) -> str:
    """``yes: HEADER`` when the best learned column's CI low exceeds the best ladder column's CI high (the best
    by value; a column without a CI counts its value), ``no`` when it does not, empty when either side has no row."""
    by_header = {c.header: c for c in table.columns}

    def best(headers: tuple[str, ...]) -> tuple[str, pd.Series] | None:
        hits = [(h, hit) for h in headers if (hit := _pick(rows, target, by_header[h])) is not None
                and not pd.isna(hit["value"])]
        return max(hits, key=lambda item: float(item[1]["value"])) if hits else None

    ladder, learned = best(beyond.ladder), best(beyond.learned)
    if ladder is None or learned is None:
        return ""
    ladder_high = ladder[1]["ci_high"] if not pd.isna(ladder[1]["ci_high"]) else ladder[1]["value"]
    learned_low = learned[1]["ci_low"] if not pd.isna(learned[1]["ci_low"]) else learned[1]["value"]
    return f"yes: {learned[0]}" if float(learned_low) > float(ladder_high) else "no"


def _block(name: str) -> re.Pattern:
    return re.compile(rf"<!-- results:{re.escape(name)} -->\n(.*?)<!-- /results:{re.escape(name)} -->", re.S)


def readme_table(name: str, text: str | None = None) -> str | None:
    m = _block(name).search(README.read_text() if text is None else text)
    return None if m is None else m.group(1).rstrip("\n")


def snapshot_path(name: str) -> Path:
    return SNAPSHOTS / f"{name}.csv"


def check() -> list[str]:
    """Names of the README tables that differ from the rendering of their snapshot, and of the prose blocks
    (README.md, docs/*.md) that differ from their filled template."""
    text = README.read_text()
    stale = [name for name, table in TABLES.items()
             if readme_table(name, text) is not None
             and readme_table(name, text) != render(pd.read_csv(snapshot_path(name)), table)]
    for name in template_names():
        shown = [(path, got) for path in DOCUMENTS if (got := readme_table(name, path.read_text())) is not None]
        if not shown or any(got != fill(template_path(name).read_text()) for _, got in shown):
            stale.append(name)
    return stale


# Prose tables: docs/results/NAME.md.tmpl is the text of the block <!-- results:NAME --> (in README.md or a
# docs/*.md file) with placeholders filled from the snapshots, so that no measured number is typed by hand:
#   {{SNAPSHOT | TARGET | COMPONENT | METRIC | FORMAT}}  a cell of docs/results/SNAPSHOT.csv: TARGET is a target
#       label (ending in ``...``: the labels starting with what precedes it), COMPONENT a component label or its
#       start, METRIC the metric's name (as for a Column); FORMAT one of FORMATS, ``orig_`` before it for the
#       value on the originals, ``base_`` for the baseline
#   {{times | STEP | minutes}}  the wall time of a step of `make papers` (docs/results/papers-times.csv)
DOCUMENTS = (README, *sorted((REPO / "docs").glob("*.md")))
TIMES = SNAPSHOTS / "papers-times.csv"
PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}")
FORMATS = {
    "pct": lambda v, lo, hi, n: f"{100 * v:.1f}%",
    "pct_ci": lambda v, lo, hi, n: f"{100 * v:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]",
    "f2": lambda v, lo, hi, n: f"{v:.2f}",
    "f2_ci": lambda v, lo, hi, n: f"{v:.2f} [{lo:.2f}, {hi:.2f}]",
    "f3": lambda v, lo, hi, n: f"{v:.3f}",
    "f3_ci": lambda v, lo, hi, n: f"{v:.3f} [{lo:.3f}, {hi:.3f}]",
    "f1": lambda v, lo, hi, n: f"{v:.1f}",
    "n": lambda v, lo, hi, n: f"{int(n)}",
    "count": lambda v, lo, hi, n: f"{round(v * n)}/{int(n)}",
}


def template_path(name: str) -> Path:
    return SNAPSHOTS / f"{name}.md.tmpl"


def template_names() -> list[str]:
    """The prose blocks that have a template in docs/results/."""
    return sorted(p.name.removesuffix(".md.tmpl") for p in SNAPSHOTS.glob("*.md.tmpl"))


def _fields(placeholder: str) -> list[str]:
    return [f.strip() for f in placeholder.split("|")]


def _minutes(step: str) -> str:
    times = pd.read_csv(TIMES)
    hit = times[times["step"] == step]
    if hit.empty:
        raise KeyError(f"{TIMES.name} has no step '{step}': run scripts/papers.py")
    minutes = float(hit["seconds"].iloc[-1]) / 60
    return "under a minute" if minutes < 1 else f"{minutes:.0f} minute{'s' if round(minutes) != 1 else ''}"


def _cell(placeholder: str, snapshots: dict[str, pd.DataFrame]) -> str:
    """The text of one ``{{...}}`` placeholder (KeyError naming it when its row or snapshot is missing)."""
    fields = _fields(placeholder)
    if fields[0] == "times":
        return _minutes(fields[1])
    source, target, component, metric, fmt = fields
    if source not in snapshots:
        snapshots[source] = pd.read_csv(snapshot_path(source))
    hit = _pick(snapshots[source], target, Column("", component, metric))
    if hit is None:
        raise KeyError(f"docs/results/{source}.csv has no row for {{{{{placeholder}}}}}")
    column = {"orig": "original", "base": "baseline"}.get(fmt.split("_")[0], "value")
    value = float(hit[column])
    return FORMATS[fmt.removeprefix("orig_").removeprefix("base_")](
        value, float(hit["ci_low"]), float(hit["ci_high"]), float(hit["n"]))


def fill(template: str, snapshots: dict[str, pd.DataFrame] | None = None) -> str:
    """``template`` with each placeholder replaced by its snapshot's cell."""
    cache = {} if snapshots is None else snapshots
    return PLACEHOLDER.sub(lambda m: _cell(m.group(1), cache), template).rstrip("\n")


def _template_rows(name: str, results: pd.DataFrame) -> list[pd.Series]:
    """The rows of ``results`` that the templates' placeholders on snapshot ``name`` read."""
    rows = []
    for template in template_names():
        for placeholder in PLACEHOLDER.findall(template_path(template).read_text()):
            fields = _fields(placeholder)
            if fields[0] == name and len(fields) == 5:
                hit = _pick(results, fields[1], Column("", fields[2], fields[3]))
                if hit is None:
                    raise SystemExit(f"the run has no row for {{{{{placeholder}}}}} ({template_path(template)})")
                rows.append(hit[[*SNAPSHOT_COLUMNS, "baseline"]] if "baseline" in hit else hit[SNAPSHOT_COLUMNS])
    return rows


def snapshot_names() -> list[str]:
    """Every snapshot a table or a template reads."""
    names = set(TABLES)
    for template in template_names():
        names |= {f[0] for p in PLACEHOLDER.findall(template_path(template).read_text())
                  if (f := _fields(p))[0] != "times"}
    return sorted(names)


def _rewrite(name: str, body: str) -> None:
    """Replace the block ``name`` in every document that has it."""
    block = f"<!-- results:{name} -->\n{body}\n<!-- /results:{name} -->"
    for path in DOCUMENTS:
        text = path.read_text()
        if _block(name).search(text) is not None:
            path.write_text(_block(name).sub(lambda m: block, text))


def update(name: str, run: Path) -> None:
    """Snapshot the rows of ``run`` that the table ``name`` and the templates read, and rewrite the blocks."""
    results = pd.read_csv(run / "results.csv")
    ok = results[results["status"] == "ok"] if "status" in results else results
    parts = [snapshot(results, TABLES[name])] if name in TABLES else []
    extra = _template_rows(name, ok)
    if extra:
        parts.append(pd.DataFrame(extra))
    rows = pd.concat(parts, ignore_index=True)
    rows = rows.drop_duplicates(["target_label", "component_label", "metric"], keep="last")  # the template's columns
    SNAPSHOTS.mkdir(parents=True, exist_ok=True)
    rows.to_csv(snapshot_path(name), index=False)
    if name in TABLES:
        if not any(_block(name).search(p.read_text()) for p in DOCUMENTS):
            raise SystemExit(f"no document has a <!-- results:{name} --> block")
        _rewrite(name, render(rows, TABLES[name]))
    render_templates()


def render_templates() -> list[str]:
    """Rewrite every prose block whose snapshots all exist; the names of those left as they are."""
    left = []
    for name in template_names():
        try:
            body = fill(template_path(name).read_text())
        except (KeyError, FileNotFoundError) as error:
            left.append(f"{name}: {error}")
            continue
        _rewrite(name, body)
    return left


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check")
    sub.add_parser("templates", help="rewrite the prose blocks from their templates and the snapshots")
    update_parser = sub.add_parser("update")
    update_parser.add_argument("name", choices=snapshot_names())
    update_parser.add_argument("run", type=Path)
    render_parser = sub.add_parser("render")
    render_parser.add_argument("name", choices=sorted(TABLES))
    render_parser.add_argument("run", type=Path)
    args = parser.parse_args(argv)
    if args.command == "check":
        stale = check()
        for name in stale:
            print(
                f"table '{name}' differs from docs/results/{name}.csv (or its template): run scripts/readme_tables.py "
                f"update {name} RUN (or templates)"
            )
        return 1 if stale else 0
    if args.command == "templates":
        for line in render_templates():
            print(f"left as typed: {line}")
        return 0
    if args.command == "update":
        update(args.name, args.run)
        return 0
    print(render(snapshot(pd.read_csv(args.run / "results.csv"), TABLES[args.name]), TABLES[args.name]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
