"""Per-setting statistics over seeds: paired test of same- vs other-scanner AUC, bootstrap CI of delta."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

N_BOOT = 10_000


def paired(rows: pd.DataFrame) -> pd.DataFrame:
    """Same- and other-scanner AUC side by side, one row per seed (seeds with a NaN AUC dropped)."""
    same = rows[rows["same_domain"]].set_index("seed")["auc"]
    other = rows[~rows["same_domain"]].set_index("seed")["auc"]
    both = pd.DataFrame({"same": same, "other": other}).dropna()
    return both.sort_index()


def paired_test(same: np.ndarray, other: np.ndarray) -> tuple[str, float]:
    """Two-sided paired t-test over seeds; NaN p-value with fewer than 2 pairs or identical pairs."""
    if len(same) < 2 or np.std(other - same) == 0:
        return "paired t-test", float("nan")
    return "paired t-test", float(sps.ttest_rel(other, same).pvalue)


def bootstrap_ci(delta: np.ndarray, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of per-seed deltas (resampling seeds), fixed generator."""
    if len(delta) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = rng.choice(delta, size=(N_BOOT, len(delta)), replace=True).mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def setting_stats(rows: pd.DataFrame) -> dict:
    """Test, p-value and 95% bootstrap CI of delta for one (dataset, train_domain) of the main experiment."""
    pairs = paired(rows)
    delta = (pairs["other"] - pairs["same"]).to_numpy()
    test, p = paired_test(pairs["same"].to_numpy(), pairs["other"].to_numpy())
    lo, hi = bootstrap_ci(delta)
    return {"test": test, "p_value": p, "ci_low": lo, "ci_high": hi, "n_pairs": len(pairs)}
