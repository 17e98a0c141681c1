"""Table-2-style summaries of result rows (pure pandas; no I/O), and the rule that nothing is pooled silently.

A *configuration* is everything in a cell except its seed (the columns `config_columns` finds). A
*setting* is (experiment, dataset, train_domain); within one, only the experiment's treatment axes
(mixing fraction, noise level: axes with a neutral value) may vary. `check_pooling` refuses results
where anything else varies inside a setting, or where one seed of a configuration appears twice, with
one line naming what differs and how to select (`--where key=value`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from scanshift_ray.datasets import DATASETS
from scanshift_ray.errors import ScanshiftError
from scanshift_ray.results import LATER_COLUMNS, later_column
from scanshift_ray.study import AXES

MODALITY_ORDER = {"CT": 0, "MRI": 1, "X-ray": 2}
SETTING = ("experiment", "dataset", "train_domain")
# Resolved cell values that identify a configuration (besides the axes in AXES); see Cell.describe.
CONFIG_COLUMNS = ("experiment", "dataset", "train_domain", "model", "data_source", "data_id", "protocol_version",
                  "epochs", "batch_size", "lr", "width", "val_every", "input_shape", "window", "shared_patients",
                  "grid_axes")


def config_columns(rows: pd.DataFrame) -> list[str]:
    """The configuration columns present in `rows` (results of older versions have fewer)."""
    return [c for c in (*CONFIG_COLUMNS, *AXES.names()) if c in rows.columns]


def as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Values as text for comparing configurations; missing values (NaN, None) become "none".

    A missing value of an axis with a neutral value (e.g. `predict` in rows written before that axis
    existed) becomes the neutral value: such rows always carry it otherwise, and their cells are the same;
    likewise a configuration column added later (`LATER_COLUMNS`) takes the value every older row had.
    """
    frame = frame.astype(object)
    for col in frame.columns:
        if col in AXES and AXES.get(col).neutral is not None:
            frame[col] = frame[col].where(frame[col].notna(), AXES.get(col).neutral)
        elif col in LATER_COLUMNS:
            frame[col] = later_column(col, frame[col])
    return frame.where(frame.notna(), "none").astype(str)


def grid_axes(rows: pd.DataFrame) -> list[str]:
    """The axes the experiment of `rows` varies: from the rows' `grid_axes` column, else the registry."""
    from scanshift_ray.study import EXPERIMENTS

    if "grid_axes" in rows.columns:
        return sorted({a for v in rows["grid_axes"].dropna().astype(str) for a in v.split(",") if a})
    names = set(rows["experiment"].astype(str)) if "experiment" in rows.columns else set()
    return sorted({a for n in names if n in EXPERIMENTS for a in EXPERIMENTS.get(n).axes()})


def treatment_axes() -> list[str]:
    """Axes whose values are points of an experiment's curve (they have a neutral value)."""
    return [n for n in AXES.names() if AXES.get(n).neutral is not None]


def select(rows: pd.DataFrame, where: Sequence[str] = ()) -> pd.DataFrame:
    """Rows matching every `key=value` in `where` (values compared as text, so 0.001 matches 1e-3 only as
    written in the data: the error for a value not found lists the values present)."""
    for item in where:
        key, sep, value = item.partition("=")
        if not sep or key not in rows.columns:
            raise ScanshiftError(f"--where takes COLUMN=VALUE with a result column, got {item!r}")
        col = as_text(rows[[key]])[key]
        hit = col == value
        if not hit.any() and _is_number(value):
            hit = pd.to_numeric(rows[key], errors="coerce") == float(value)
        if not hit.any():
            raise ScanshiftError(f"--where {item}: no rows; {key} has {', '.join(sorted(col.unique())[:8])}")
        rows = rows[hit]
    return rows


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def check_pooling(rows: pd.DataFrame) -> None:
    """Raise a one-line ScanshiftError when `rows` would pool different configurations or repeat a seed.

    Within a setting only the axes its experiment varies (`grid_axes`) may take several values.
    """
    cols = config_columns(rows)
    keys = [c for c in SETTING if c in rows.columns]
    text = as_text(rows[cols])
    for setting, g in text.groupby(keys, sort=False):
        varied = grid_axes(rows.loc[g.index])
        for col in (c for c in cols if c not in (*SETTING, *varied)):
            values = sorted(g[col].unique())
            if len(values) > 1:
                name = " / ".join(map(str, setting if isinstance(setting, tuple) else (setting,)))
                raise ScanshiftError(f"results pool {len(values)} configurations of {name} that differ in {col} "
                                     f"({', '.join(values[:4])}); select one with --where {col}={values[0]}")
    key = [*cols, "seed", "test_domain"]
    full = text.assign(seed=as_text(rows[["seed"]])["seed"], test_domain=as_text(rows[["test_domain"]])["test_domain"])
    counts = full.groupby(key, sort=False, dropna=False).size()
    if (counts > 1).any():
        where: dict[str, Any] = dict(zip(key, counts[counts > 1].index[0], strict=True))
        dup = rows[(full[key] == pd.Series(where)).all(axis=1).to_numpy()]
        ids = sorted(dup["cell_id"].astype(str).unique()) if "cell_id" in dup.columns else []
        raise ScanshiftError(f"seed {where['seed']} appears {int(counts.max())} times in one configuration of "
                             f"{where.get('experiment', '?')} / {where.get('dataset', '?')} / "
                             f"{where.get('train_domain', '?')}" + (f" (cells {', '.join(ids[:4])})" if ids else "")
                             + ": two result sets of the same run; keep one")


def table2(rows: pd.DataFrame, experiment: str = "main", value: str = "auc") -> pd.DataFrame:
    """One row per (dataset, train_domain): same/other-scanner `value` mean and std over seeds, and delta.

    std is the sample standard deviation (ddof=1); delta is the mean over seeds of the paired difference
    (other - same, seeds where both are defined), so it is the centre of its own interval; it equals
    diff_mean - same_mean when no value is NaN. NaN values are counted in `n_nan` and left out of the
    means, never silently averaged. Callers check pooling first.
    """
    df = rows[rows["experiment"] == experiment]
    if "predict" in df.columns:  # Table 2 is about disease models; scanner cells have their own table
        df = df[df["predict"].fillna("disease") == "disease"]
    if df.empty:
        return pd.DataFrame(columns=["modality", "dataset", "train_domain", "same_mean", "same_std",
                                     "diff_mean", "diff_std", "delta", "n_seeds", "n_nan"])
    out = []
    for (dataset, train), g in df.groupby(["dataset", "train_domain"], sort=False):
        same, diff = g[g["same_domain"]], g[~g["same_domain"]]
        for part in (same, diff):
            if part["seed"].duplicated().any():
                raise ScanshiftError(f"{experiment} / {dataset} / {train}: a seed appears twice; check the results "
                                     "with scanshift summary (two configurations or two copies of one run)")
        paired = (diff.set_index("seed")[value] - same.set_index("seed")[value]).dropna()
        out.append({"modality": g["modality"].iloc[0], "dataset": dataset, "train_domain": train,
                    "same_mean": same[value].mean(), "same_std": same[value].std(ddof=1),
                    "diff_mean": diff[value].mean(), "diff_std": diff[value].std(ddof=1),
                    "delta": paired.mean(), "n_seeds": g["seed"].nunique(),
                    "n_nan": int(g[value].isna().sum())})
    table = pd.DataFrame(out)
    order = {k: i for i, k in enumerate(DATASETS.names())}
    table["_m"] = table["modality"].map(MODALITY_ORDER)
    table["_d"] = table["dataset"].map(order)
    return table.sort_values(["_m", "_d", "train_domain"]).drop(columns=["_m", "_d"]).reset_index(drop=True)


def format_table2(table: pd.DataFrame, source: str, metric: str = "AUC") -> str:
    """A plain-text Table 2 for the terminal (CI columns shown when the table has them)."""
    ci = "ci_low" in table.columns
    lines = [f"Scanner shift, {metric} mean +/- std over seeds ({source} data)",
             f"{'modality':<7} {'dataset':<17} {'train':<8} {'same scanner':>14} {'other scanner':>14} "
             f"{'delta':>7}" + (f" {'95% CI':>17}" if ci else "") + f" {'seeds':>5}"]
    for r in table.itertuples():
        lines.append(f"{r.modality:<7} {r.dataset:<17} {r.train_domain:<8} "
                     f"{r.same_mean:>7.3f} +/- {_fmt(r.same_std)} {r.diff_mean:>7.3f} +/- {_fmt(r.diff_std)} "
                     f"{r.delta:>+7.3f}" + (f" [{_fmt(r.ci_low, '+')}, {_fmt(r.ci_high, '+')}]" if ci else "")
                     + f" {r.n_seeds:>5}" + (f"  ({r.n_nan} NaN)" if r.n_nan else ""))
    return "\n".join(lines)


def _fmt(x: float, sign: str = "") -> str:
    return "   nan" if pd.isna(x) else f"{x:{sign}.3f}"
