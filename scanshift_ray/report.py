"""`scanshift report`: from result Parquet files to the tables, figures and report of a paper.

Inputs need at least: experiment, dataset, modality, train_domain, test_domain, seed, auc
(same_domain and data_source are derived when missing). Outputs in `out`: table2.csv / table2.md,
modality_summary.csv, paper_comparison.csv, fig2_bars.png, fig3_box.png, one figure per further
experiment over its axis (fig4_mixing.png, fig5_noise.png for the paper's), report.md and report.html.
With rows of the separability diagnostic (`predict` "scanner") also separability.csv,
shift_vs_separability.csv and fig6_separability.png, in a section after the modality means.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from scanshift_ray import analysis, figures
from scanshift_ray.errors import ScanshiftError
from scanshift_ray.results import fill_later_columns
from scanshift_ray.study import AXES, EXPERIMENTS
from scanshift_ray.summary import as_text, check_pooling, config_columns, treatment_axes

REQUIRED = ("experiment", "dataset", "modality", "train_domain", "test_domain", "seed", "auc")
FIGURE_NAMES = {"mixing": "fig4_mixing.png", "noise": "fig5_noise.png"}


def prepare(rows: pd.DataFrame) -> pd.DataFrame:
    """Check the required columns and derive the optional ones."""
    missing = [c for c in REQUIRED if c not in rows.columns]
    if missing:
        raise ScanshiftError(f"results lack column(s) {', '.join(missing)}")
    rows = rows.copy()
    rows["train_domain"] = rows["train_domain"].astype(str)
    rows["test_domain"] = rows["test_domain"].astype(str)
    derived = rows["train_domain"] == rows["test_domain"]
    rows["same_domain"] = rows["same_domain"].fillna(derived).astype(bool) if "same_domain" in rows.columns \
        else derived
    if "data_source" not in rows.columns:
        rows["data_source"] = "unknown"
    return rows


def with_metric(rows: pd.DataFrame, predictions: pd.DataFrame | None, metric: str) -> pd.DataFrame:
    """`rows` with a column named `metric` (AUC is stored in the rows; the others come from predictions)."""
    if metric == "auc":
        return rows
    if predictions is None:
        raise ScanshiftError(f"--metric {metric} needs the stored predictions (<results>/_predictions)")
    return rows.assign(**{metric: analysis.metric_values(rows, predictions, metric)})


def experiment_axis(name: str, sub: pd.DataFrame) -> str | None:
    """The axis an experiment's curve runs over: its declared grid axis, else the treatment axis that varies."""
    if name in EXPERIMENTS and len(EXPERIMENTS.get(name).axes()) == 1:
        return EXPERIMENTS.get(name).axes()[0]
    varying = [a for a in treatment_axes() if a in sub.columns and sub[a].nunique() > 1]
    return varying[0] if len(varying) == 1 else None


def baseline(main: pd.DataFrame, sub: pd.DataFrame, axis: str) -> pd.DataFrame:
    """Main-experiment rows that are the x = neutral point of `sub`'s curves: `axis` at its neutral value,
    every other configuration value equal to the curve's (axes that only apply away from neutral aside),
    and the curve's seeds only."""
    neutral = AXES.get(axis).neutral
    main, sub = fill_later_columns(main), fill_later_columns(sub)
    skip = ("experiment", "grid_axes", axis, *_requiring(axis))
    cols = [c for c in config_columns(sub) if c not in skip and c in main.columns]
    cand = main[(pd.to_numeric(main[axis], errors="coerce") == neutral) if axis in main.columns else slice(None)]
    cand = cand[cand["seed"].isin(sub["seed"].unique())]
    keys = as_text(sub[cols]).drop_duplicates()
    hit = as_text(cand[cols]).merge(keys, how="left", indicator=True)["_merge"].eq("both").to_numpy()
    out = cand[hit].copy()
    out[axis] = neutral
    return out


def _requiring(axis: str) -> list[str]:
    """Axes that apply only when `axis` is away from its neutral value (directly or through another)."""
    out: list[str] = []
    for name in AXES.names():
        req = AXES.get(name).requires
        while req is not None and req != axis:
            req = AXES.get(req).requires
        if req == axis:
            out.append(name)
    return out


def experiment_figures(rows: pd.DataFrame, out: Path, value: str) -> dict[str, Path]:
    """One figure per experiment other than main: `value` against its axis."""
    figs = {}
    main = rows[rows["experiment"] == "main"]
    for name in sorted(set(rows["experiment"]) - {"main"}):
        sub = rows[rows["experiment"] == name]
        if not analysis.scanner_rows(sub).empty:  # the separability diagnostic: its own section, no curve
            continue
        axis = experiment_axis(name, sub)
        if axis is None or axis not in sub.columns:
            continue
        spec = AXES.get(axis)
        path = out / FIGURE_NAMES.get(name, f"fig_{name}.png")
        figs[f"{name}: {value} against {spec.title}"] = figures.curves(
            sub, baseline(main, sub, axis), axis, spec.title, path, spec.log_scale, value)
    return figs


def write_report(results: pd.DataFrame, out: str | Path, predictions: pd.DataFrame | None = None,
                 metric: str = "auc") -> list[Path]:
    """Write every table, figure and the report for `results`; returns the paths written."""
    rows = with_metric(prepare(results), predictions, metric)
    check_pooling(rows)
    table = analysis.full_table(rows, predictions, metric)
    if table.empty:
        raise ScanshiftError("no rows of the main experiment: nothing to put in Table 2")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary, comparison = analysis.modality_table(table), analysis.paper_comparison(table)
    written = [out / "table2.csv", out / "table2.md", out / "modality_summary.csv", out / "paper_comparison.csv"]
    table.to_csv(written[0], index=False)
    written[1].write_text(_markdown(table) + "\n")
    summary.to_csv(written[2], index=False)
    pd.DataFrame([comparison]).to_csv(written[3], index=False)
    figs = {"Fig. 2: same vs other scanner": figures.bars(table, out / "fig2_bars.png", metric),
            "Fig. 3: delta by modality": figures.box(table, out / "fig3_box.png", metric)}
    figs.update(experiment_figures(rows, out, metric))
    written += list(figs.values())
    section, section_html, paths = separability_section(rows, table, out, metric)
    written += paths
    doc = _document(rows, table, summary, comparison, figs, metric, section)
    written += _write_documents(out, doc, table, summary, figs, section_html)
    return written


SEPARABILITY_TEXT = (
    "Scanner AUC: each dataset's model, with the main protocol and the same patient splits, trained to tell "
    "the two scanners apart from the images alone, on both domains' training splits with equal class counts "
    "(the larger domain subsampled by sample, stratified by disease label), the epoch selected on both "
    "validation splits, tested on both test splits. Mean over seeds with the corrected resampled t 95% CI "
    "(Nadeau & Bengio 2003, clipped to [0, 1]); always AUC, whatever the report's metric. 0.5: the CNN cannot "
    "tell the scanners apart.")


def separability_section(rows: pd.DataFrame, table: pd.DataFrame, out: Path, metric: str
                         ) -> tuple[list[str], str, list[Path]]:
    """Markdown lines, HTML and files of the separability section; nothing without scanner rows."""
    sep = analysis.separability_table(rows)
    if sep.empty:
        return [], "", []
    points = analysis.shift_vs_separability(table, sep)
    corr = analysis.spearman_ci(points["scanner_auc"], points["delta"], points["dataset"])
    has_st = "delta_st" in points.columns and points["delta_st"].notna().any()
    corr_st = analysis.spearman_ci(points["scanner_auc"], points["delta_st"], points["dataset"]) if has_st else None
    paths = [out / "separability.csv", out / "shift_vs_separability.csv"]
    sep.to_csv(paths[0], index=False)
    points.to_csv(paths[1], index=False)
    paths.append(figures.separability(points, out / "fig6_separability.png", corr, corr_st, metric))
    sentence = _correlation_text(corr, corr_st, metric)
    title = "Fig. 6: delta against scanner separability"
    md = ["## Scanner separability", "", SEPARABILITY_TEXT, "", _markdown(sep), "", sentence, "",
          f"![{title}]({paths[2].name})", ""]
    fmt = {"na_rep": "", "float_format": lambda v: f"{v:.3f}", "index": False}
    page = (f"<h2>Scanner separability</h2><p>{html.escape(SEPARABILITY_TEXT)}</p>{sep.to_html(**fmt)}"
            f"<p>{html.escape(sentence)}</p><img src='{paths[2].name}' alt='{title}' style='max-width:100%'>")
    return md, page, paths


def _correlation_text(corr: dict, corr_st: dict | None, metric: str) -> str:
    def r(c: dict) -> str:
        if pd.isna(c["r"]):
            return "undefined (fewer than 3 datasets, or no spread)"
        return f"{c['r']:+.2f} [{c['ci_low']:+.2f}, {c['ci_high']:+.2f}]"

    sign = "positive (brier: higher is worse)" if metric == "brier" else "negative"
    return (f"Over {corr['n_points']} settings of {corr['n_groups']} datasets, Spearman r of delta against the "
            f"scanner AUC = {r(corr)}" + (f"; of delta_st = {r(corr_st)}" if corr_st is not None else "")
            + f". A {sign} r says: the better a CNN tells the scanners apart, the more a classifier loses on the "
            "other scanner. CI: percentile bootstrap over datasets, since a dataset's two settings share its "
            "scanner AUC and are not independent points; with this few datasets it is rough and likely too "
            "narrow, and it is conditional on these datasets.")


def _method_text(metric: str, has_boot: bool) -> str:
    return (f"Values are {metric} at the validation-selected epoch: mean and sample std (ddof=1) over seeds; "
            "delta = other-scanner mean - same-scanner mean (the paper's delta). delta CI and p: corrected "
            "resampled t-test over seeds (Nadeau & Bengio 2003; seeds re-split one cohort), one method for both, "
            f"so the 95% CI excludes 0 exactly when p < 0.05. Settings with fewer than {analysis.MIN_SEEDS} seeds "
            "are flagged. delta_st (same-test-set control, beyond the paper): on the other domain's test set, "
            "this model minus the model trained on that domain, paired by seed, with the same test. "
            + ("boot_*: patient-level bootstrap of the test sets from the stored predictions (models held "
               "fixed: test-set uncertainty only). " if has_boot else "")
            + "Modality CIs combine the settings' intervals (conditional on these datasets). paper_*: the "
            "published Table 2 of arXiv 2409.04368 (real data)." + (" For brier, higher is worse." if metric == "brier"
                                                                    else ""))


def _document(rows: pd.DataFrame, table: pd.DataFrame, summary: pd.DataFrame, comparison: dict,
              figs: dict[str, Path], metric: str, separability: Sequence[str] = ()) -> list[str]:
    statement = analysis.data_statement(rows)
    warnings = [f"- {r.dataset} / {r.train_domain}: {r.warning}" for r in table.itertuples() if r.warning]
    c = comparison
    beside = (f"Beside the paper over {c['n_settings']} settings: sign agrees in {c['sign_agree']}/{c['n_settings']}, "
              f"Spearman r = {c['spearman_r']:.2f}, mean |delta - paper delta| = {c['mean_abs_diff']:.3f}."
              + ("" if statement.startswith("Every") else " The paper's numbers are real data; ours here are not "
                 "all real, so this comparison illustrates, it does not replicate."))
    parts = ["# Scanner domain shift report", "", f"**{statement}**", "",
             _method_text(metric, "boot_ci_low" in table.columns), "", "## Table 2", "", _markdown(table), "",
             "## Mean delta per modality", "", _markdown(summary), "", *separability, "## Beside the paper", "",
             beside, ""]
    if warnings:
        parts += ["## Warnings", "", *warnings, ""]
    return parts + ["## Figures", ""] + [f"### {title}\n\n![{title}]({p.name})\n" for title, p in figs.items()]


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


def _write_documents(out: Path, doc: list[str], table: pd.DataFrame, summary: pd.DataFrame,
                     figs: dict[str, Path], separability: str = "") -> list[Path]:
    (out / "report.md").write_text("\n".join(doc))
    warnings = [line for line in doc if line.startswith("- ")]
    body = "".join(f"<h3>{html.escape(t)}</h3><img src='{p.name}' style='max-width:100%'>" for t, p in figs.items())
    fmt = {"na_rep": "", "float_format": lambda v: f"{v:.3f}", "index": False}
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>Scanner shift report</title></head><body>"
            f"<h1>Scanner domain shift report</h1><p><b>{html.escape(doc[2].strip('*'))}</b></p>"
            f"<p>{html.escape(doc[4])}</p><h2>Table 2</h2>{table.to_html(**fmt)}"
            f"<h2>Mean delta per modality</h2>{summary.to_html(**fmt)}{separability}"
            f"<h2>Beside the paper</h2><p>{html.escape(doc[doc.index('## Beside the paper') + 2])}</p>"
            + (f"<h2>Warnings</h2><ul>{''.join(f'<li>{html.escape(w[2:])}</li>' for w in warnings)}</ul>"
               if warnings else "")
            + f"<h2>Figures</h2>{body}</body></html>")
    (out / "report.html").write_text(page)
    return [out / "report.md", out / "report.html"]


def link_atlas(out: str | Path) -> None:
    """Add the shift atlas (written into `out` by `atlas.write_atlas`) to report.md and report.html."""
    out = Path(out)
    table = (out / "atlas_distances.csv")
    if not table.is_file():
        return
    section = ("\n## Shift atlas\n\nDistances between the two scanners' images, from the shards alone "
               "([atlas.md](atlas.md): example images and histograms per dataset).\n\n"
               + _markdown(pd.read_csv(table)) + "\n")
    with open(out / "report.md", "a") as md:
        md.write(section)
    page = (out / "report.html").read_text()
    body = (f"<h2>Shift atlas</h2><p><a href='atlas.md'>atlas.md</a>: example images and histograms</p>"
            f"{pd.read_csv(table).to_html(index=False, float_format=lambda v: f'{v:.3g}')}")
    (out / "report.html").write_text(page.replace("</body></html>", body + "</body></html>"))
