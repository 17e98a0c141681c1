"""How much of a cross-scanner drop one physical difference causes: the ablation table.

For an ablation (`synthetic.ablations`), the main experiment runs twice on the same seeds, splits and
models: on the default twins and on twins whose domain 2 scanner has that difference turned off. Per
setting (dataset, training domain) the table gives delta with the full scanner pair, delta with the
ablated pair, and their per-seed paired difference (ablated - full) with a corrected-t interval; a
positive change means the difference caused part of the drop. The two runs must differ in their data
only; anything else (profile, epochs, model, options) refuses the comparison.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scanshift_ray import stats
from scanshift_ray.analysis import paired_deltas, test_train_ratio
from scanshift_ray.datasets import DATASETS
from scanshift_ray.errors import ScanshiftError
from scanshift_ray.results import fill_later_columns
from scanshift_ray.summary import as_text, check_pooling, config_columns

_DATA_COLUMNS = ("data_id", "config_id", "cell_id", "train_domain", "experiment", "dataset")


def check_comparable(full: pd.DataFrame, ablated: pd.DataFrame, dataset: str) -> None:
    """Refuse when the two runs of `dataset` differ in anything but their data."""
    a, b = (fill_later_columns(r[r["dataset"] == dataset]) for r in (full, ablated))  # older rows compare too
    cols = [c for c in config_columns(a) if c not in _DATA_COLUMNS and c in b.columns]
    differ = [c for c in cols if set(as_text(a[[c]])[c]) != set(as_text(b[[c]])[c])]
    if differ:
        raise ScanshiftError(f"{dataset}: the default and the ablated runs differ in {', '.join(differ)}, "
                             "not only in their data; run both with the same options")


def setting_change(full: pd.DataFrame, ablated: pd.DataFrame, dataset: str, train: str) -> dict:
    """Delta of both runs and the paired change (ablated - full) over the seeds both have."""
    d_full = paired_deltas(full, dataset, train, "auc")
    d_abl = paired_deltas(ablated, dataset, train, "auc")
    both = pd.DataFrame({"full": d_full, "ablated": d_abl}).dropna()
    ratio = test_train_ratio(full[(full["dataset"] == dataset) & (full["train_domain"] == train)])
    change = stats.corrected_t((both["ablated"] - both["full"]).to_numpy(), ratio)
    return {"dataset": dataset, "train_domain": train, "n_seeds": len(both),
            "delta_full": float(both["full"].mean()) if len(both) else np.nan,
            "delta_ablated": float(both["ablated"].mean()) if len(both) else np.nan,
            "change": change["mean"], "ci_low": change["ci_low"], "ci_high": change["ci_high"]}


def ablation_table(full: pd.DataFrame, ablated: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per (ablation, dataset, training domain) found in both the full and the ablated runs."""
    full = full[full["experiment"] == "main"]
    check_pooling(full)
    out = []
    for name, rows in ablated.items():
        rows = rows[rows["experiment"] == "main"]
        check_pooling(rows)
        for dataset in sorted(set(rows["dataset"]) & set(full["dataset"])):
            check_comparable(full, rows, dataset)
            for train in DATASETS.get(dataset).domains:
                out.append({"ablation": name, **setting_change(full, rows, dataset, train)})
    if not out:
        raise ScanshiftError("no dataset is in both the default and the ablated results")
    return pd.DataFrame(out)


def format_table(table: pd.DataFrame) -> str:
    """The ablation table as markdown."""
    lines = ["| ablation | dataset | trained on | seeds | delta, full | delta, ablated | change [95 % CI] |",
             "|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        lines.append(f"| {r.ablation} | {r.dataset} | {r.train_domain} | {r.n_seeds} | {r.delta_full:+.3f} | "
                     f"{r.delta_ablated:+.3f} | {r.change:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}] |")
    return "\n".join(lines)
