"""`scanshift report`: from result Parquet files to the tables, figures and report of a paper.

Inputs need at least: experiment, dataset, modality, train_domain, test_domain, seed, mix_fraction,
noise_alpha, auc (same_domain and data_source are derived when missing). Outputs in `out`:
table2.csv / table2.md, modality_summary.csv, fig2_bars.png, fig3_box.png, fig4_mixing.png,
fig5_noise.png (when those experiments are present), report.md and report.html.
"""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from scanshift_ray import figures, paper, stats
from scanshift_ray.errors import ScanshiftError
from scanshift_ray.summary import modality_summary, table2

REQUIRED = ("experiment", "dataset", "modality", "train_domain", "test_domain", "seed", "mix_fraction",
            "noise_alpha", "auc")


def prepare(rows: pd.DataFrame) -> pd.DataFrame:
    """Check the required columns and derive the optional ones."""
    missing = [c for c in REQUIRED if c not in rows.columns]
    if missing:
        raise ScanshiftError(f"results lack column(s) {', '.join(missing)}")
    rows = rows.copy()
    rows["train_domain"] = rows["train_domain"].astype(str)
    rows["test_domain"] = rows["test_domain"].astype(str)
    if "same_domain" not in rows.columns:
        rows["same_domain"] = rows["train_domain"] == rows["test_domain"]
    if "data_source" not in rows.columns:
        rows["data_source"] = "unknown"
    return rows


def full_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Table 2 plus per-setting paired test, bootstrap CI, warnings and (real data) the paper's values."""
    rows = prepare(rows)
    table = table2(rows)
    main = rows[rows["experiment"] == "main"]
    extra = []
    for r in table.itertuples():
        sel = main[(main["dataset"] == r.dataset) & (main["train_domain"] == r.train_domain)]
        s = stats.setting_stats(sel)
        warn = [w for w, bad in (("fewer than 3 seeds", r.n_seeds < 3), (f"{r.n_nan} NaN AUC", r.n_nan > 0)) if bad]
        same, diff, delta = paper.TABLE2.get((r.dataset, r.train_domain), (None, None, None))
        extra.append({**s, "warning": "; ".join(warn), "paper_same": same, "paper_diff": diff, "paper_delta": delta})
    return pd.concat([table, pd.DataFrame(extra, index=table.index)], axis=1)


def _markdown(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines)


def _cell(v: object) -> str:
    if isinstance(v, float):
        return "" if pd.isna(v) else f"{v:.3f}" if abs(v) >= 1e-3 or v == 0 else f"{v:.1e}"
    return "" if v is None else str(v)


def write_report(results: pd.DataFrame, out: str | Path) -> list[Path]:
    """Write every table, figure and the report for `results`; returns the paths written."""
    rows = prepare(results)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sources = sorted(rows["data_source"].astype(str).unique())
    real = sources == ["real"]
    table = full_table(rows)
    if table.empty:
        raise ScanshiftError("no rows of the main experiment: nothing to put in Table 2")
    shown = table if real else table.drop(columns=["paper_same", "paper_diff", "paper_delta"])
    written = [out / "table2.csv", out / "table2.md", out / "modality_summary.csv"]
    shown.to_csv(written[0], index=False)
    written[1].write_text(_markdown(shown) + "\n")
    summary = modality_summary(table)
    summary.to_csv(written[2], index=False)
    figs = {"Fig. 2: same vs other scanner": figures.bars(table, out / "fig2_bars.png"),
            "Fig. 3: delta by modality": figures.box(table, out / "fig3_box.png")}
    main = rows[rows["experiment"] == "main"]
    for exp, col, label, name, log in (("mixing", "mix_fraction", "target fraction f", "fig4_mixing.png", False),
                                       ("noise", "noise_alpha", "noise level alpha", "fig5_noise.png", True)):
        sub = rows[rows["experiment"] == exp]
        if not sub.empty:
            base = main[main["dataset"].isin(sub["dataset"].unique())]
            figs[f"AUC against {label}"] = figures.curves(sub, base, col, label, out / name, log)
    written += list(figs.values())
    written += _write_documents(out, shown, summary, figs, sources, real)
    return written


def _write_documents(out: Path, table: pd.DataFrame, summary: pd.DataFrame, figs: dict[str, Path],
                     sources: list[str], real: bool) -> list[Path]:
    kind = "real" if real else ("SYNTHETIC (built-in simulated scanners; not patient data)"
                                if sources == ["synthetic"] else ", ".join(sources))
    warnings = [f"- {r.dataset} / {r.train_domain}: {r.warning}" for r in table.itertuples() if r.warning]
    parts = [
        "# Scanner domain shift report", "", f"Data: **{kind}**.", "",
        "AUC mean and sample std (ddof=1) over seeds; delta = other-scanner mean - same-scanner mean; "
        "p from a two-sided paired t-test over seeds; CI: 95% percentile bootstrap of the mean delta "
        "(10,000 resamples of seeds)." + (" paper_*: published Table 2 of arXiv 2409.04368." if real else ""),
        "", "## Table 2", "", _markdown(table), "", "## Mean delta per modality", "", _markdown(summary), "",
    ]
    if warnings:
        parts += ["## Warnings", "", *warnings, ""]
    parts += ["## Figures", ""] + [f"### {title}\n\n![{title}]({p.name})\n" for title, p in figs.items()]
    md = "\n".join(parts)
    (out / "report.md").write_text(md)
    body = "".join(f"<h3>{html.escape(t)}</h3><img src='{p.name}' style='max-width:100%'>" for t, p in figs.items())
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>Scanner shift report</title></head><body>"
            f"<h1>Scanner domain shift report</h1><p>Data: <b>{html.escape(kind)}</b></p>"
            f"<h2>Table 2</h2>{table.to_html(index=False, na_rep='', float_format=lambda v: f'{v:.3f}')}"
            f"<h2>Mean delta per modality</h2>{summary.to_html(index=False, float_format=lambda v: f'{v:.3f}')}"
            + (f"<h2>Warnings</h2><ul>{''.join(f'<li>{html.escape(w[2:])}</li>' for w in warnings)}</ul>"
               if warnings else "") + f"<h2>Figures</h2>{body}</body></html>")
    (out / "report.html").write_text(page)
    return [out / "report.md", out / "report.html"]
