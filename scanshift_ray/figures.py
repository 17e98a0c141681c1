"""The report's figures (matplotlib, Agg backend): paper Figs. 2-5 from result rows, and Fig. 6
(shift against scanner separability, beyond the paper)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from scanshift_ray.summary import MODALITY_ORDER  # noqa: E402


def bars(table: pd.DataFrame, path: Path, metric: str = "auc") -> Path:
    """Fig. 2: same- vs other-scanner `metric` per (dataset, training domain), +/- std."""
    fig, ax = plt.subplots(figsize=(max(6.0, 0.8 * len(table)), 4))
    x = np.arange(len(table))
    ax.bar(x - 0.2, table["same_mean"], 0.4, yerr=table["same_std"].fillna(0), label="same scanner", capsize=2)
    ax.bar(x + 0.2, table["diff_mean"], 0.4, yerr=table["diff_std"].fillna(0), label="other scanner", capsize=2)
    ax.set_xticks(x, [f"{d}\n{t}" for d, t in zip(table["dataset"], table["train_domain"], strict=True)],
                  rotation=60, fontsize=7)
    ax.set_ylabel(f"test {metric}")
    if metric == "auc":
        ax.set_ylim(0.4, 1.0)
    ax.legend()
    return _save(fig, path)


def box(table: pd.DataFrame, path: Path, metric: str = "auc") -> Path:
    """Fig. 3: deltas by modality, mean as a red line."""
    mods = sorted(table["modality"].unique(), key=lambda m: MODALITY_ORDER.get(m, 9))
    data = [table.loc[table["modality"] == m, "delta"].dropna().to_numpy() for m in mods]
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.boxplot(data, showmeans=True, meanline=True, meanprops={"color": "red"})
    ax.set_xticks(range(1, len(mods) + 1), mods)
    ax.axhline(0.0, color="grey", lw=0.5)
    ax.set_ylabel(f"delta {metric} (other - same scanner)")
    return _save(fig, path)


def curves(rows: pd.DataFrame, baseline: pd.DataFrame, x_col: str, xlabel: str, path: Path,
           log_x: bool = False, value: str = "auc") -> Path:
    """Figs. 4/5: `value` against `x_col` per (dataset, training domain); one line per test domain, +/- std.

    `baseline` (main-experiment rows) supplies the x = 0 point of each curve when present.
    """
    keys = rows[["dataset", "train_domain"]].drop_duplicates().to_numpy().tolist()
    cols = min(2, len(keys))
    nrows = -(-len(keys) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(5 * cols, 3.2 * nrows), squeeze=False)
    for ax, (dataset, train) in zip(axes.flat, keys, strict=False):
        sel = pd.concat([rows, baseline])
        sel = sel[(sel["dataset"] == dataset) & (sel["train_domain"] == train)]
        for test, g in sel.groupby("test_domain"):
            stat = g.groupby(x_col)[value].agg(["mean", "std"]).reset_index()
            line = ax.plot(stat[x_col], stat["mean"], marker="o", label=f"test {test}")[0]
            ax.fill_between(stat[x_col], stat["mean"] - stat["std"].fillna(0), stat["mean"] + stat["std"].fillna(0),
                            color=line.get_color(), alpha=0.2)
        ax.set_title(f"{dataset}, trained on {train}", fontsize=9)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"test {value}")
        if log_x:
            ax.set_xscale("symlog", linthresh=1.0)
        ax.legend(fontsize=7)
    for ax in axes.flat[len(keys):]:
        ax.axis("off")
    return _save(fig, path)


def separability(points: pd.DataFrame, path: Path, corr: dict, corr_st: dict | None = None,
                 metric: str = "auc") -> Path:
    """Fig. 6: each Table-2 setting's delta (and delta_st, another marker) against its dataset's scanner AUC.

    `points` is `analysis.shift_vs_separability`; `corr` / `corr_st` are `analysis.spearman_ci` of delta /
    delta_st against the scanner AUC, shown in the legend.
    """
    fig, ax = plt.subplots(figsize=(6, 4.2))
    ax.scatter(points["scanner_auc"], points["delta"], marker="o", label=f"delta: {_r_text(corr)}")
    if corr_st is not None and "delta_st" in points.columns and points["delta_st"].notna().any():
        ax.scatter(points["scanner_auc"], points["delta_st"], marker="^", facecolors="none", edgecolors="C1",
                   label=f"delta_st (same test set): {_r_text(corr_st)}")
    for r in points.drop_duplicates("dataset").itertuples():
        ax.annotate(r.dataset, (r.scanner_auc, r.delta), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.axhline(0.0, color="grey", lw=0.5)
    ax.set_xlabel("scanner AUC (CNN telling the two scanners apart)")
    ax.set_ylabel(f"delta {metric} (other - same scanner)")
    ax.legend(fontsize=7, title="Spearman r [95% CI, bootstrap over datasets]", title_fontsize=7)
    return _save(fig, path)


def _r_text(corr: dict) -> str:
    if not np.isfinite(corr["r"]):
        return "r n/a"
    ci = "" if not np.isfinite(corr["ci_low"]) else f" [{corr['ci_low']:+.2f}, {corr['ci_high']:+.2f}]"
    return f"r = {corr['r']:+.2f}{ci}, n = {corr['n_points']}"


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
