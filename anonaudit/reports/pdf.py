"""The compliance report as a PDF (fpdf2, pure Python; the DejaVu fonts that ship with matplotlib
give full Unicode text). Lays out the content of :func:`anonaudit.reports.compliance.compliance_model`
in the same sections and order as the HTML page; nothing is recomputed here.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

from ..errors import AnonauditError

_COLOURS = {"PASS": (27, 110, 58), "FAIL": (179, 38, 30), "NOT TESTED": (161, 92, 0), "NOT APPLICABLE": (90, 90, 90),
            "none": (161, 92, 0),
            "high": (179, 38, 30), "mid": (161, 92, 0), "low": (27, 110, 58)}
_FILL = {"PASS": (238, 248, 241), "FAIL": (253, 240, 239), "NOT TESTED": (255, 248, 235), "none": (255, 248, 235)}
FONT = "dejavu"


def _fpdf():
    try:
        import fpdf
    except ImportError as exc:  # an optional dependency (extra "reports")
        raise AnonauditError(
            "the PDF report needs fpdf2: pip install 'anonaudit[reports]' (or pip install fpdf2)"
        ) from exc
    return fpdf


class _Doc:
    """A small layout helper over ``fpdf.FPDF``: headings, paragraphs, bullet lists, tables."""

    def __init__(self, title: str):
        fpdf = _fpdf()
        self.fpdf = fpdf
        pdf = fpdf.FPDF(orientation="P", unit="mm", format="A4")
        pdf.set_margins(15, 15, 15)
        pdf.set_auto_page_break(True, margin=15)
        fonts = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
        pdf.add_font(FONT, "", str(fonts / "DejaVuSans.ttf"))
        pdf.add_font(FONT, "B", str(fonts / "DejaVuSans-Bold.ttf"))
        pdf.add_font(FONT, "I", str(fonts / "DejaVuSans-Oblique.ttf"))
        pdf.set_title(title)
        pdf.set_creator("anonaudit")
        pdf.alias_nb_pages()
        pdf.add_page()
        self.pdf = pdf

    @property
    def width(self) -> float:
        return self.pdf.w - self.pdf.l_margin - self.pdf.r_margin

    def text(
        self,
        text: str,
        size: float = 9.5,
        style: str = "",
        colour: tuple[int, int, int] = (29, 35, 48),
        gap: float = 1.5,
    ) -> None:
        self.pdf.set_font(FONT, style, size)
        self.pdf.set_text_color(*colour)
        self.pdf.multi_cell(self.width, size * 0.5, text, align="L", new_x="LMARGIN", new_y="NEXT")
        self.pdf.ln(gap)

    def heading(self, text: str, level: int = 2) -> None:
        if self.pdf.get_y() > self.pdf.h - 45:
            self.pdf.add_page()
        self.pdf.ln(3 if level == 2 else 1)
        self.text(text, size=15 if level == 1 else 12, style="B", gap=1)
        if level == 2:
            y = self.pdf.get_y()
            self.pdf.set_draw_color(210, 215, 225)
            self.pdf.line(self.pdf.l_margin, y, self.pdf.l_margin + self.width, y)
            self.pdf.ln(2)

    def bullets(self, items: Sequence[str], size: float = 9) -> None:
        self.pdf.set_font(FONT, "", size)
        self.pdf.set_text_color(29, 35, 48)
        for item in items:
            x = self.pdf.l_margin
            self.pdf.set_x(x)
            self.pdf.cell(4, size * 0.5, "•")
            self.pdf.multi_cell(self.width - 4, size * 0.5, item, align="L", new_x="LMARGIN", new_y="NEXT")
            self.pdf.ln(0.8)
        self.pdf.ln(1)

    def table(
        self, headers: Sequence[str], rows: Sequence[Sequence[Any]], widths: Sequence[float], size: float = 7.5
    ) -> None:
        """Rows of cells; a cell is text or ``(text, colour_key)`` or ``(text, colour_key, colspan)``."""
        fpdf = self.fpdf
        self.pdf.set_font(FONT, "", size)
        self.pdf.set_text_color(29, 35, 48)
        self.pdf.set_draw_color(210, 215, 225)
        head = fpdf.FontFace(emphasis="BOLD", fill_color=(244, 246, 250))
        with self.pdf.table(col_widths=tuple(widths), width=self.width, line_height=size * 0.5, text_align="LEFT",
                            headings_style=head, borders_layout="HORIZONTAL_LINES", padding=1, v_align="TOP") as table:
            r = table.row()
            for h in headers:
                r.cell(h)
            for row in rows:
                r = table.row()
                for cell in row:
                    text, key, span = (*cell, 1)[:3] if isinstance(cell, tuple) else (cell, None, 1)
                    style = fpdf.FontFace(emphasis="BOLD", color=_COLOURS[key]) if key in _COLOURS else None
                    r.cell(str(text), style=style, colspan=span)
        self.pdf.ln(2)

    def verdict(self, verdict: dict | None, run_dir: str) -> None:
        key = str(verdict["overall"]) if verdict else "none"
        title = f"Verdict: {verdict['overall']}" if verdict else "No policy applied"
        body = (
            f"Policy {verdict['policy']}, certified {verdict['created']}. "
            "FAIL if any criterion fails (a 95% CI straddling a risk threshold fails); NOT TESTED if a criterion's "
            "attack or metric did not run: such a release cannot pass."
            if verdict
            else f"This report states no decision. Run `anonaudit certify {run_dir or 'RUN'} --policy strict` (or "
            "your own "
            "policy file) to get PASS / FAIL / NOT TESTED; the verdict then appears here."
        )
        pdf = self.pdf
        y0 = pdf.get_y()
        pdf.set_fill_color(*_FILL.get(key, (245, 245, 245)))
        pdf.set_draw_color(*_COLOURS.get(key, (120, 120, 120)))
        pdf.set_line_width(0.8)
        pdf.set_font(FONT, "", 9.5)
        lines = len(pdf.multi_cell(self.width - 8, 4.75, body, dry_run=True, output="LINES"))
        height = 12 + lines * 4.75 + 4
        pdf.rect(pdf.l_margin, y0, self.width, height, style="DF")
        pdf.set_xy(pdf.l_margin + 4, y0 + 3)
        pdf.set_font(FONT, "B", 15)
        pdf.set_text_color(*_COLOURS.get(key, (60, 60, 60)))
        pdf.cell(self.width - 8, 7, title, new_x="LMARGIN", new_y="NEXT")
        pdf.set_x(pdf.l_margin + 4)
        pdf.set_font(FONT, "", 9.5)
        pdf.set_text_color(29, 35, 48)
        pdf.multi_cell(self.width - 8, 4.75, body, align="L", new_x="LMARGIN", new_y="NEXT")
        pdf.set_line_width(0.2)
        pdf.set_fill_color(255, 255, 255)
        pdf.set_y(y0 + height + 3)

    def images(self, items: Sequence[tuple[bytes, str]], per_row: int = 4) -> None:
        gap = 3
        w = (self.width - gap * (per_row - 1)) / per_row
        from PIL import Image

        for start in range(0, len(items), per_row):
            row = items[start:start + per_row]
            heights = []
            for png, _ in row:
                with Image.open(io.BytesIO(png)) as im:
                    heights.append(w * im.height / im.width)
            h = max(heights) + 9
            if self.pdf.get_y() + h > self.pdf.h - 15:
                self.pdf.add_page()
            y = self.pdf.get_y()
            for i, (png, caption) in enumerate(row):
                x = self.pdf.l_margin + i * (w + gap)
                self.pdf.image(io.BytesIO(png), x=x, y=y, w=w)
                self.pdf.set_xy(x, y + heights[i] + 0.5)
                self.pdf.set_font(FONT, "", 6.5)
                self.pdf.set_text_color(90, 100, 117)
                self.pdf.multi_cell(w, 3, caption, align="L")
            self.pdf.set_y(y + h)

    def output(self) -> bytes:
        return bytes(self.pdf.output())


def _evidence_text(e: dict) -> str:
    """One attack's evidence in a criterion cell: risk [CI] (badges), then metric, success and n."""
    badges = "".join(f" ({b['text']})" for b in e["badges"] if b["cls"] != "note")
    return f"{e['risk']}{badges}\n{e['by']}: {e['value']}, n={e['n']}"


def compliance_pdf(model: dict[str, Any], title: str) -> bytes:
    """The PDF bytes of a compliance model (see :func:`~anonaudit.reports.compliance.compliance_model`)."""
    m = model
    doc = _Doc(title)
    doc.text(title, size=17, style="B", gap=1)
    manifest = m["manifest"]
    doc.text(f"Generated {m['generated']} · run {manifest.get('name', '?')} · seed {manifest.get('seed')} · "
             f"anonaudit {(manifest.get('versions') or {}).get('anonaudit', '')}", size=8.5, colour=(90, 100, 117))
    doc.verdict(m["verdict"], m["run_dir"])
    v = m["verdict"]
    if m["verdict_mismatch"]:
        doc.text(
            "This verdict does not match these results (targets only in one of them: "
            f"{', '.join(m['verdict_mismatch'])}): the audit changed after it was certified; run anonaudit "
            "certify again.",
            size=9,
            style="B",
            colour=_COLOURS["FAIL"],
        )
    if v and v["common"]:
        doc.bullets([f"On every target: {c.get('status')} {c.get('id')}: {c.get('reason', '')}" for c in v["common"]])
    if v and v["targets"]:
        rows = [
            [
                label,
                (v["targets"][label], v["targets"][label]),
                "\n".join(f"{c.get('status')} {c.get('id')}: {c.get('reason', '')}" for c in v["specific"][label])
                or "none",
            ]
            for label in m["order"]
            if label in v["targets"]
        ]
        doc.table(["target", "verdict", ("other " if v["common"] else "") + "criteria not passed"], rows, (3, 1.3, 7))

    doc.heading("1. Scope and data")
    doc.bullets(m["scope"])
    doc.heading("2. Attacker model")
    doc.text(m["attacker_intro"], size=9)
    doc.table(
        ["attack", "Art. 29 WP criteria", "the intruder holds", "trains or searches (cost in this run)",
         "scored against (held by the audit only)"],
        [
            [
                a["name"] + (f" ({a['kind']})" if a["kind"] in ("learned", "searching") else ""),
                a["criteria_text"],
                "; ".join(a["holds"]),
                "\n".join(x for x in (a["method"], a["cost"]) if x),
                "; ".join(a["scored_with"]) or "–",
            ]
            for a in m["attacks"]
        ],
        (1.2, 1.2, 3.0, 2.4, 1.1),
    )

    doc.heading("3. Article 29 Working Party Opinion 05/2014 criteria")
    doc.bullets([f"{c['title']}: {c['definition']}. Tested by: {', '.join(c['attacks']) or 'no attack of this audit'}."
                 for c in m["criteria"]])
    rows = []
    for r in m["criteria_rows"]:
        cells = [r["target"]]
        for cell in r["cells"]:
            w = cell["worst"]
            text = "\n".join(_evidence_text(e) for e in cell["evidence"]) or cell["missing"]
            if v and cell["policy"]:
                text += f"\npolicy: {cell['policy']}"
            cells.append((text, (w or {}).get("level", "NOT TESTED")))
        rows.append(cells)
    doc.table(["target", *(c["title"] for c in m["criteria"])], rows, (3, 3, 3, 2.4))

    doc.heading("4. Motivated-intruder test")
    doc.text(m["motivated_intruder"], size=9)
    doc.text("Re-identification attacks of this audit (singling out or linkability), each with the holdings listed in "
             f"section 2: {', '.join(m['reidentification_attacks']) or 'none'}.", size=9)
    if m["reidentification_attacks"]:
        doc.table(
            ["target", "highest re-identification risk [95% CI]", "by", "on release [95% CI]", "n"],
            [
                [
                    r["target"],
                    *(
                        [
                            (r["worst"]["risk"], r["worst"]["level"]),
                            r["worst"]["by"],
                            r["worst"]["value"],
                            r["worst"]["n"],
                        ]
                        if r["worst"]
                        else [(r["missing"], "NOT TESTED", 4)]
                    ),
                ]
                for r in m["intruder_rows"]
            ],
            (2.6, 2.4, 2.6, 2.2, 0.7),
        )

    doc.heading("5. What was not tested")
    doc.bullets([f"{status} · {subject}: {text}" for status, subject, text in m["not_tested"]]
                or ["Every configured attack and metric ran on every target; every criterion was tested."])
    doc.heading("6. Limitations")
    doc.bullets(m["limitations"])
    if m["examples"]:
        doc.heading("7. Examples of the release")
        doc.text(
            "Embedded as released, on request: internal use only, do not publish this report."
            if m["embed_examples"]
            else "Redacted (pixelated) so that this report does not publish readable plates or faces; originals are "
            "never included.",
            size=8.5,
        )
        doc.images([(e.png, e.caption) for row in m["examples_by_index"] for e in row["examples"]])
    return doc.output()
