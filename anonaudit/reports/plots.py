"""Matplotlib figures for reports, returned as PNG bytes (no model is run here)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def tradeoff_points(table: pd.DataFrame, utility_metric: str) -> pd.DataFrame:
    """Per target: the utility value and the strongest attack success (max over attack metrics with a risk)."""
    ok = table[table["status"] == "ok"]
    util = ok[(ok["kind"] == "evaluator") & (ok["metric"] == utility_metric)][["target_label", "target", "value"]]
    att = ok[(ok["kind"] == "attack") & ok["risk"].notna()]
    if util.empty or att.empty:
        return pd.DataFrame(columns=["target_label", "target", "utility", "risk"])
    risk = att.groupby("target_label")["risk"].max().rename("risk")
    pts = util.rename(columns={"value": "utility"}).merge(risk, left_on="target_label", right_index=True)
    return pts.drop_duplicates("target_label")


def swept_params(labels: list[str]) -> list[str]:
    """For labels of one method (``name(a=1, b=2)``), the parameters that differ between them:
    ``["sigma=1", "sigma=2"]`` for a blur sweep that also fixes ``region=boxes``; ``""`` where none differ."""
    parts = [[p.strip() for p in lab.split("(", 1)[1].rstrip(")").split(", ")] if "(" in lab else [] for lab in labels]
    common = set.intersection(*(set(p) for p in parts)) if parts else set()
    return [", ".join(p for p in ps if p not in common) for ps in parts]


def tradeoff_png(table: pd.DataFrame, utility_metric: str, higher_is_better: bool = True) -> bytes | None:
    """Privacy-utility trade-off: x = utility, y = highest relative re-identification risk."""
    pts = tradeoff_points(table, utility_metric)
    if pts.empty:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    for name, group in pts.groupby("target", sort=True):
        group = group.sort_values("utility")
        ax.plot(group["utility"], group["risk"], marker="o", label=str(name))
        for (_, r), text in zip(group.iterrows(), swept_params(list(group["target_label"]))):
            if text:
                ax.annotate(text[:24], (r["utility"], r["risk"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel(f"{utility_metric} ({'higher' if higher_is_better else 'lower'} = more utility)")
    ax.set_ylabel("max relative risk over attacks (0 = chance, 1 = as originals)")
    ax.set_ylim(-0.05, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Privacy-utility trade-off")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
