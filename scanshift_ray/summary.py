"""Table-2-style summaries of result rows (pure pandas; no I/O)."""

from __future__ import annotations

import pandas as pd

from scanshift_ray.datasets import DATASETS

MODALITY_ORDER = {"CT": 0, "MRI": 1, "X-ray": 2}


def table2(rows: pd.DataFrame, experiment: str = "main") -> pd.DataFrame:
    """One row per (dataset, train_domain): same/other-scanner AUC mean and std over seeds, and delta.

    std is the sample standard deviation (ddof=1); delta = diff_mean - same_mean. NaN AUCs are
    counted in `n_nan` and left out of the means, never silently averaged.
    """
    df = rows[rows["experiment"] == experiment]
    if df.empty:
        return pd.DataFrame(columns=["modality", "dataset", "train_domain", "same_mean", "same_std",
                                     "diff_mean", "diff_std", "delta", "n_seeds", "n_nan"])
    out = []
    for (dataset, train), g in df.groupby(["dataset", "train_domain"], sort=False):
        same, diff = g[g["same_domain"]]["auc"], g[~g["same_domain"]]["auc"]
        out.append({"modality": g["modality"].iloc[0], "dataset": dataset, "train_domain": train,
                    "same_mean": same.mean(), "same_std": same.std(ddof=1),
                    "diff_mean": diff.mean(), "diff_std": diff.std(ddof=1),
                    "delta": diff.mean() - same.mean(), "n_seeds": g["seed"].nunique(),
                    "n_nan": int(g["auc"].isna().sum())})
    table = pd.DataFrame(out)
    order = {k: i for i, k in enumerate(DATASETS.names())}
    table["_m"] = table["modality"].map(MODALITY_ORDER)
    table["_d"] = table["dataset"].map(order)
    return table.sort_values(["_m", "_d", "train_domain"]).drop(columns=["_m", "_d"]).reset_index(drop=True)


def modality_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean delta per modality over its (dataset, train_domain) settings."""
    g = table.groupby("modality", sort=False)["delta"]
    out = pd.DataFrame({"mean_delta": g.mean(), "n_settings": g.size()}).reset_index()
    return out.sort_values("modality", key=lambda s: s.map(MODALITY_ORDER)).reset_index(drop=True)


def format_table2(table: pd.DataFrame, source: str) -> str:
    """A plain-text Table 2 for the terminal."""
    lines = [f"Scanner shift, AUC mean +/- std over seeds ({source} data)",
             f"{'modality':<7} {'dataset':<17} {'train':<8} {'same scanner':>14} {'other scanner':>14} "
             f"{'delta':>7} {'seeds':>5}"]
    for r in table.itertuples():
        lines.append(f"{r.modality:<7} {r.dataset:<17} {r.train_domain:<8} "
                     f"{r.same_mean:>7.3f} +/- {_fmt(r.same_std)} {r.diff_mean:>7.3f} +/- {_fmt(r.diff_std)} "
                     f"{r.delta:>+7.3f} {r.n_seeds:>5}" + (f"  ({r.n_nan} NaN AUC)" if r.n_nan else ""))
    lines.append("Mean delta per modality: " + ", ".join(
        f"{r.modality} {r.mean_delta:+.3f} (n={r.n_settings})" for r in modality_summary(table).itertuples()))
    return "\n".join(lines)


def _fmt(x: float) -> str:
    return "  nan" if pd.isna(x) else f"{x:.3f}"
