"""The report's evidence section: which released files were not fully audited, and which files leak.

:func:`evidence_section` lists, per target, the released files that were not fully audited (status
and reason, from ``files.csv``) and, per attack metric, the files whose findings count toward it
(``findings.csv``): the first :data:`SHOWN` of each, then a relative link to the CSV with the total,
so a steward can fix exactly those files and rerun. What an attack recovered (a plate text read, an
identity matched) is shown only when the report embeds examples; otherwise the detail says it is
withheld. Everything from the run is HTML-escaped.
"""

from __future__ import annotations

import os
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from ..results import Results

#: Files listed per status and per metric before the link to the CSV.
SHOWN = 20
WITHHELD = "recovered content withheld (write the report with --embed-examples to show it)"


def _name(file: str, key: str) -> str:
    """A file's name as listed (its path in a tooltip), or the image key of an in-memory release."""
    if not file:
        return f"<code>{escape(key)}</code>"
    return f'<code title="{escape(file, quote=True)}">{escape(Path(file).name)}</code>'


def _link(results: Results, report_dir: Path | None, csv: str, total: int, what: str) -> str:
    """``all N <what> in <a href=csv>csv</a>`` relative to the report (plain text without a run folder)."""
    if results.output is None:
        return f"{total} {what} in all"
    target = Path(results.output) / csv
    href = os.path.relpath(target, report_dir) if report_dir is not None else target.as_posix()
    return f'all {total} {what} in <a href="{escape(Path(href).as_posix(), quote=True)}">{escape(csv)}</a>'


def _detail(row: pd.Series, embed_examples: bool) -> str:
    recovered = str(row["recovered"]).strip().lower() == "true"
    return WITHHELD if recovered and not embed_examples else str(row["detail"])


def _files_part(results: Results, label: str, report_dir: Path | None) -> str:
    files = results.files
    if files is None:
        return "<p class=\"fail\">No record of which released files were read (no files.csv): rerun the audit.</p>"
    mine = files[(files["target_label"].astype(str) == label) & (files["status"].astype(str) != "audited")]
    if mine.empty:
        return ""
    items = "".join(
        f"<li>{_name(str(r.file), str(r.key))}: {escape(str(r.status))}"
        f"{' (' + escape(str(r.reason)) + ')' if str(r.reason) else ''}</li>"
        for r in mine.head(SHOWN).itertuples()
    )
    more = f"<li>{_link(results, report_dir, 'files.csv', len(mine), 'such files')}</li>" if len(mine) > SHOWN else ""
    return (
        f'<p class="fail">{len(mine)} released file(s) not fully audited: no criterion of this target can pass.</p>'
        f'<ul class="reasons">{items}{more}</ul>'
    )


def _findings_part(results: Results, label: str, report_dir: Path | None, embed_examples: bool) -> str:
    found = results.findings
    mine = found[found["target_label"].astype(str) == label]
    if mine.empty:
        return ""
    per_metric = mine.assign(metric=mine["metric"].astype(str).str.split(";")).explode("metric")
    parts = []
    for (attack, metric), rows in per_metric.groupby(["attack", "metric"], sort=True):
        by_file = rows.assign(_f=rows["file"].where(rows["file"].astype(str) != "", rows["key"]).astype(str))
        names = list(dict.fromkeys(by_file["_f"]))
        items = []
        for name in names[:SHOWN]:
            of = by_file[by_file["_f"] == name]
            what = "; ".join(
                f"{escape(str(r['finding']))}: {escape(_detail(r, embed_examples))}" for _, r in of.iterrows()
            )
            items.append(f"<li>{_name(str(of['file'].iloc[0]), str(of['key'].iloc[0]))}: {what}</li>")
        link = _link(results, report_dir, "findings.csv", len(rows), "findings")
        more = f" (first {SHOWN} listed)" if len(names) > SHOWN else ""
        parts.append(f"<li><b>{escape(str(attack))}/{escape(str(metric))}</b>: {len(names)} file(s){more}; {link}"
                     f"<ul>{''.join(items)}</ul></li>")
    return f"<ul class=\"reasons\">{''.join(parts)}</ul>"


def evidence_section(results: Results, report_dir: Path | None = None, embed_examples: bool = False) -> str:
    """The evidence section as HTML (see the module doc); links are relative to ``report_dir``."""
    labels = [lab for lab in dict.fromkeys(results.table["target_label"]) if isinstance(lab, str) and lab]
    blocks = []
    for label in labels:
        body = _files_part(results, label, report_dir) + _findings_part(results, label, report_dir, embed_examples)
        if body:
            blocks.append(f"<h3>{escape(label)}</h3>{body}")
    if not blocks:
        return ('<h2 id="evidence">Evidence per file</h2><p class="meta">Every released file was audited and no '
                "attack reported a finding in any file.</p>")
    return (
        '<h2 id="evidence">Evidence per file</h2><p class="meta">Released files not fully audited, and per attack '
        "metric the files whose findings count toward it (fix these files and rerun the audit).</p>" + "".join(blocks)
    )


def with_evidence(page: str, results: Results, report: Path | None = None, embed_examples: bool = False) -> str:
    """``page`` with :func:`evidence_section` inserted before its per-target results (or at the end of
    the body); links relative to the folder of the ``report`` file."""
    section = evidence_section(results, None if report is None else Path(report).parent, embed_examples)
    for anchor in ("<h2>Results per target</h2>", "</body>"):
        if anchor in page:
            return page.replace(anchor, section + "\n" + anchor, 1)
    return page + section
