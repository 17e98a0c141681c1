"""Table 2 with honest intervals, the same-test-set control, modality means and the paper beside them.

Pure pandas/numpy over result rows (and, when given, the stored predictions); `report` writes files.

Per setting (dataset, training domain) of the main experiment:
- delta = mean over seeds of value(other-scanner test) - value(same-scanner test), the paper's delta.
  Its 95 % CI and p-value both come from the corrected resampled t-test (Nadeau & Bengio 2003): seeds
  re-split one cohort, so their training sets overlap and a plain t-test is anticonservative.
- delta_st, the same-test-set control (beyond the paper): on the other domain's test set, the model
  trained on this domain minus the model trained on that one, paired by seed (a seed gives both models
  the same test split). It removes how hard each domain's test set is from the comparison.
- boot_*: a patient-level (cluster) bootstrap of the same means from the stored predictions, i.e. the
  uncertainty of the test sets alone with the trained models held fixed (AUC only).

Beside Table 2, the separability diagnostic (rows with `predict` "scanner"): per dataset the scanner
AUC with its corrected interval, and over the settings the Spearman r of delta against it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

from scanshift_ray import metrics, paper, stats
from scanshift_ray.datasets import DATASETS
from scanshift_ray.errors import ScanshiftError
from scanshift_ray.summary import MODALITY_ORDER, as_text, config_columns, table2

MIN_SEEDS = 5  # settings with fewer seeds are flagged
DEFAULT_RATIO = 0.25  # n_test / n_train of the protocol (1/6 : 2/3) when rows do not record the sizes
NAN = float("nan")


def test_train_ratio(rows: pd.DataFrame) -> float:
    """n_test / n_train of the same-scanner evaluations in `rows` (for the Nadeau-Bengio correction)."""
    if {"n_test", "n_train"} <= set(rows.columns):
        same = rows[rows["same_domain"]]
        if len(same) and (same["n_train"] > 0).all():
            return float((same["n_test"] / same["n_train"]).mean())
    return DEFAULT_RATIO


def _by_seed(rows: pd.DataFrame, train: str, test: str, value: str) -> pd.Series:
    sel = rows[(rows["train_domain"] == train) & (rows["test_domain"] == test)]
    return sel.set_index("seed")[value]


def paired_deltas(main: pd.DataFrame, dataset: str, train: str, value: str, same_test: bool = False) -> pd.Series:
    """Per seed: value(train -> other) - value(train -> train), or with `same_test`
    value(train -> other) - value(other -> other). Seeds missing either side or with NaN are dropped."""
    other = DATASETS.get(dataset).other_domain(train) if dataset in DATASETS else _other(main, train)
    rows = main[main["dataset"] == dataset]
    minuend = _by_seed(rows, train, other, value)
    subtrahend = _by_seed(rows, other, other, value) if same_test else _by_seed(rows, train, train, value)
    both = pd.DataFrame({"a": minuend, "b": subtrahend}).dropna()
    return (both["a"] - both["b"]).sort_index()


def _other(rows: pd.DataFrame, train: str) -> str:
    doms = sorted(set(rows["test_domain"].astype(str)) - {train})
    return doms[0] if doms else train


def same_test_comparable(main: pd.DataFrame, dataset: str, train: str) -> str:
    """'' when the models of both training domains share a configuration (but the domain), else what differs."""
    rows = main[main["dataset"] == dataset]
    cols = [c for c in config_columns(rows) if c not in ("train_domain", "experiment", "dataset")]
    differ = [c for c in cols if as_text(rows[[c]])[c].nunique() > 1]
    return ", ".join(differ)


def setting_stats(main: pd.DataFrame, dataset: str, train: str, value: str,
                  predictions: pd.DataFrame | None) -> dict:
    """Intervals of delta and of the same-test-set delta for one setting (see the module docstring)."""
    rows = main[main["dataset"] == dataset]
    ratio = test_train_ratio(rows[rows["train_domain"] == train])
    d = stats.corrected_t(paired_deltas(main, dataset, train, value).to_numpy(), ratio)
    out = {"ci_low": d["ci_low"], "ci_high": d["ci_high"], "p_value": d["p_value"], "n_pairs": d["n"]}
    differ = same_test_comparable(main, dataset, train)
    st = stats.corrected_t(paired_deltas(main, dataset, train, value, same_test=True).to_numpy(), ratio)
    if differ:
        st = {k: float("nan") for k in st}
    out.update({"delta_st": st["mean"], "st_ci_low": st["ci_low"], "st_ci_high": st["ci_high"],
                "st_p_value": st["p_value"], "se": d["se"], "df": d["df"], "st_differs": differ})
    if predictions is not None and value == "auc":
        out.update(bootstrap_setting(rows, predictions, train))
    return out


def _evalset(preds: pd.DataFrame, test_set: str) -> stats.EvalSet:
    p = preds.sort_values("index")
    return stats.EvalSet(p["label"].to_numpy(), p["logit"].to_numpy(), p["patient_id"].to_numpy(), test_set)


def bootstrap_setting(rows: pd.DataFrame, predictions: pd.DataFrame, train: str) -> dict:
    """Patient-level bootstrap CIs of delta and delta_st from the best-epoch test predictions."""
    other = _other(rows, train)
    test = predictions[(predictions["split"] == "test") & (predictions["epoch"] == "best")]
    by_cell = dict(tuple(test.groupby(["cell_id", "domain"])))
    cell = {(r.train_domain, r.seed): r.cell_id for r in rows.drop_duplicates("cell_id").itertuples()}
    pairs, pairs_st = [], []
    for (dom, seed), cid in sorted(cell.items()):
        if dom != train or (cid, other) not in by_cell:
            continue
        a = _evalset(by_cell[(cid, other)], other)
        if (cid, train) in by_cell:
            pairs.append((a, _evalset(by_cell[(cid, train)], train)))
        native = cell.get((other, seed))
        if native is not None and (native, other) in by_cell:
            pairs_st.append((a, _evalset(by_cell[(native, other)], other)))
    lo, hi = stats.cluster_bootstrap_delta(pairs) if pairs else (float("nan"), float("nan"))
    slo, shi = stats.cluster_bootstrap_delta(pairs_st) if pairs_st else (float("nan"), float("nan"))
    return {"boot_ci_low": lo, "boot_ci_high": hi, "st_boot_ci_low": slo, "st_boot_ci_high": shi}


def full_table(rows: pd.DataFrame, predictions: pd.DataFrame | None = None, value: str = "auc") -> pd.DataFrame:
    """Table 2 plus intervals, the same-test-set control, warnings and the paper's values for every setting.

    `rows` must already be checked with `summary.check_pooling` (one configuration per setting).
    """
    table = table2(rows, value=value)
    main = rows[rows["experiment"] == "main"]
    extra = []
    for r in table.itertuples():
        s = setting_stats(main, r.dataset, r.train_domain, value, predictions)
        warn = [w for w, bad in ((f"fewer than {MIN_SEEDS} seeds", r.n_seeds < MIN_SEEDS),
                                 (f"{r.n_nan} NaN values", r.n_nan > 0),
                                 (f"same-test control not computed: the two training domains differ in "
                                  f"{s['st_differs']}", bool(s["st_differs"]))) if bad]
        same, diff, delta = paper.TABLE2.get((r.dataset, r.train_domain), (np.nan, np.nan, np.nan))
        s.pop("st_differs")
        extra.append({**s, "warning": "; ".join(warn), "paper_same": same, "paper_diff": diff,
                      "paper_delta": delta, "sign_agrees": _sign_agrees(r.delta, delta)})
    return pd.concat([table, pd.DataFrame(extra, index=table.index)], axis=1)


def _sign_agrees(ours: float, theirs: float) -> object:
    if not (np.isfinite(ours) and np.isfinite(theirs)):
        return None
    return bool(np.sign(ours) == np.sign(theirs))


def modality_table(table: pd.DataFrame) -> pd.DataFrame:
    """Mean delta per modality over its settings, with a CI combining the settings' corrected intervals.

    The interval is conditional on these datasets (it does not generalise to other datasets of the modality).
    No same-test-set mean here: over both training domains of a dataset, the mean of delta_st equals the
    mean of delta exactly (the same four AUCs, regrouped), so it would add no information.
    """
    out = []
    for modality, g in table.groupby("modality", sort=False):
        c = stats.combine_means(g["delta"].to_numpy(), g["se"].to_numpy(), g["df"].to_numpy())
        out.append({"modality": modality, "mean_delta": c["mean"], "ci_low": c["ci_low"], "ci_high": c["ci_high"],
                    "p_value": c["p_value"], "n_settings": len(g),
                    "paper_mean_delta": paper.MODALITY_DELTA.get(str(modality), np.nan)})
    frame = pd.DataFrame(out)
    if frame.empty:
        return frame
    return frame.sort_values("modality", key=lambda s: s.map(MODALITY_ORDER)).reset_index(drop=True)


def paper_comparison(table: pd.DataFrame) -> dict:
    """Our deltas against the paper's over the settings both have: sign agreement, Spearman r, mean |diff|."""
    both = table.dropna(subset=["delta", "paper_delta"])
    n = len(both)
    out: dict = {"n_settings": n, "sign_agree": int((np.sign(both["delta"]) == np.sign(both["paper_delta"])).sum())}
    out["mean_abs_diff"] = float((both["delta"] - both["paper_delta"]).abs().mean()) if n else float("nan")
    out["spearman_r"] = float(sps.spearmanr(both["delta"], both["paper_delta"]).statistic) if n >= 3 else float("nan")
    return out


def metric_values(rows: pd.DataFrame, predictions: pd.DataFrame, metric: str) -> pd.Series:
    """`metric` of every row (cell x test domain) at the selected epoch, computed from stored predictions."""
    fn = metrics.METRICS.get(metric)
    best = predictions[predictions["epoch"] == "best"]
    groups = dict(tuple(best.groupby(["cell_id", "split", "domain"])))
    values = []
    for r in rows[["cell_id", "train_domain", "test_domain"]].itertuples(index=False):
        test, val = groups.get((r.cell_id, "test", r.test_domain)), groups.get((r.cell_id, "val", r.train_domain))
        if test is None or val is None:
            values.append(float("nan"))
            continue
        values.append(metrics.compute(fn.name, test["label"].to_numpy(), test["logit"].to_numpy(),
                                      val["label"].to_numpy(), val["logit"].to_numpy()))
    return pd.Series(values, index=rows.index, dtype=float)


def data_statement(rows: pd.DataFrame) -> str:
    """One plain sentence on whether any number was computed on real data."""
    by = rows.groupby("data_source")["dataset"].unique()
    sources = set(by.index.astype(str))
    if sources == {"real"}:
        return "Every number in this report was computed on real data."
    others = ", ".join(sorted(sources - {"real"}))
    if "real" not in sources:
        what = ("the built-in SYNTHETIC scanner twins, which illustrate the mechanism and are not evidence for the "
                "paper's numbers" if sources == {"synthetic"} else f"of source {others}")
        return f"No number in this report was computed on real data: the data are {what}."
    return f"Only the rows of {', '.join(sorted(by['real']))} were computed on real data; the others are {others}."


def scanner_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of scanner-prediction cells (the separability diagnostic), of one experiment only.

    Raises:
        ScanshiftError: scanner rows of two experiments, which would pool two diagnostics silently.
    """
    if "predict" not in rows.columns:
        return rows.iloc[0:0]
    sep = rows[rows["predict"].astype(str) == "scanner"]
    names = sorted(sep["experiment"].astype(str).unique())
    if len(names) > 1:
        raise ScanshiftError(f"scanner-prediction rows of {len(names)} experiments ({', '.join(names)}); select one "
                             f"with --where experiment={names[0]}")
    return sep


def separability_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per dataset: the mean scanner AUC over seeds, its std and a 95 % CI (empty without scanner rows).

    The CI is the corrected resampled t interval of Table 2 (`stats.corrected_t` on the seeds' AUCs
    themselves, i.e. on their deviations from 0): the seeds re-split one cohort, so their AUCs are
    positively correlated and a plain t interval would be too narrow. The ratio n_test / n_train is the
    rows' own. With 3 seeds the interval has 2 degrees of freedom and is wide; it is clipped to [0, 1].
    """
    sep = scanner_rows(rows)
    out = []
    for dataset, g in sep.groupby("dataset", sort=False):
        ratio = float((g["n_test"] / g["n_train"]).mean()) if {"n_test", "n_train"} <= set(g.columns) \
            else DEFAULT_RATIO
        t = stats.corrected_t(g["auc"].to_numpy(dtype=float), ratio)
        out.append({"modality": g["modality"].iloc[0], "dataset": dataset, "scanner_auc": t["mean"],
                    "scanner_auc_std": g["auc"].std(ddof=1), "ci_low": max(t["ci_low"], 0.0),
                    "ci_high": min(t["ci_high"], 1.0), "n_seeds": g["seed"].nunique(),
                    "n_nan": int(g["auc"].isna().sum())})
    frame = pd.DataFrame(out, columns=["modality", "dataset", "scanner_auc", "scanner_auc_std", "ci_low", "ci_high",
                                       "n_seeds", "n_nan"])
    order = {k: i for i, k in enumerate(DATASETS.names())}
    return frame.sort_values("dataset", key=lambda s: s.map(order)).reset_index(drop=True)


def shift_vs_separability(table: pd.DataFrame, separability: pd.DataFrame) -> pd.DataFrame:
    """Every Table-2 setting with its dataset's scanner AUC: dataset, train_domain, scanner_auc, delta, delta_st.

    Settings whose dataset has no scanner AUC are left out.
    """
    cols = ["dataset", "train_domain", "delta", *(["delta_st"] if "delta_st" in table.columns else [])]
    merged = table[cols].merge(separability[["dataset", "scanner_auc"]], on="dataset", how="inner")
    return merged.dropna(subset=["scanner_auc"]).reset_index(drop=True)


def spearman_ci(x: np.ndarray, y: np.ndarray, groups: np.ndarray, n_boot: int = 2000, level: float = 0.95,
                seed: int = 0) -> dict:
    """Spearman r of (x, y) with a percentile bootstrap CI that resamples whole `groups` (datasets).

    The points are not independent (the two settings of a dataset share its x), so the unit resampled
    is the group, not the point; a Fisher-z interval would treat 14 points as 14 independent ones. With
    7 groups the bootstrap distribution is coarse and a percentile interval tends to be too narrow: read
    it as rough. Resamples with constant x or y (r undefined) are left out. Keys: r, ci_low, ci_high,
    n_points, n_groups, n_boot (resamples used). NaN pairs are dropped first; r and CI are NaN with
    fewer than 3 points or 3 groups.
    """
    x, y, g = (np.asarray(v) for v in (x, y, groups))
    ok = np.isfinite(x.astype(float)) & np.isfinite(y.astype(float))
    x, y, g = x[ok].astype(float), y[ok].astype(float), g[ok]
    labels = np.unique(g)
    out = {"r": NAN, "ci_low": NAN, "ci_high": NAN, "n_points": len(x), "n_groups": len(labels), "n_boot": 0}
    if len(x) < 3 or len(labels) < 3:
        return out
    out["r"] = _spearman(x, y)
    members = [np.flatnonzero(g == lab) for lab in labels]
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        idx = np.concatenate([members[i] for i in rng.integers(0, len(labels), len(labels))])
        draws.append(_spearman(x[idx], y[idx]))
    rs = np.asarray(draws)
    rs = rs[np.isfinite(rs)]
    if len(rs):
        alpha = (1 - level) / 2
        out.update(ci_low=float(np.quantile(rs, alpha)), ci_high=float(np.quantile(rs, 1 - alpha)), n_boot=len(rs))
    return out


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return NAN
    return float(sps.spearmanr(x, y).statistic)
