"""Per-setting statistics over seeds: honest intervals of delta and a patient-level bootstrap.

`corrected_t` and `combine_means` give intervals that account for the overlap of the seeds' re-splits of one
cohort (Nadeau & Bengio 2003); `cluster_bootstrap_delta` resamples test patients, the unit of sampling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

NAN = float("nan")


def _t_result(mean: float, se: float, df: float, n: int, level: float) -> dict:
    """Two-sided p and CI of `mean` from one t(df) statistic, so the CI excludes 0 exactly when p < 1 - level.

    se == 0 or a non-finite se/df gives NaN CI and p: a degenerate spread must not claim certainty.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    out = {"mean": float(mean), "se": float(se), "ci_low": NAN, "ci_high": NAN, "p_value": NAN,
           "df": float(df), "n": int(n)}
    if not (np.isfinite(mean) and np.isfinite(se) and np.isfinite(df) and se > 0 and df > 0):
        return out
    half = float(sps.t.ppf((1 + level) / 2, df)) * se
    out.update(ci_low=float(mean - half), ci_high=float(mean + half),
               p_value=float(2 * sps.t.sf(abs(mean / se), df)))
    return out


def corrected_t(deltas: np.ndarray, test_train_ratio: float, level: float = 0.95) -> dict:
    """Corrected resampled t-test (Nadeau & Bengio 2003) of the mean of J re-split estimates.

    Var(mean) = (1/J + n_test/n_train) * s^2 (s^2 with ddof 1), df = J - 1; `test_train_ratio` = n_test/n_train
    (0 gives the plain one-sample t-test). NaN deltas are dropped first and `n` counts the rest. Keys: mean, se,
    ci_low, ci_high, p_value, df, n. With n < 2 only the mean is given (NaN if n == 0); with s^2 == 0, se is 0
    and the CI and p are NaN.
    """
    if not (np.isfinite(test_train_ratio) and test_train_ratio >= 0):
        raise ValueError(f"test_train_ratio must be finite and >= 0, got {test_train_ratio}")
    d = np.asarray(deltas, dtype=np.float64).ravel()
    d = d[~np.isnan(d)]
    n = len(d)
    mean = float(d.mean()) if n else NAN
    if n < 2:
        return _t_result(mean, NAN, NAN, n, level)
    se = float(np.sqrt((1 / n + test_train_ratio) * d.var(ddof=1)))
    return _t_result(mean, se, n - 1, n, level)


def combine_means(means: Sequence[float], ses: Sequence[float], dfs: Sequence[float], level: float = 0.95) -> dict:
    """Mean of k independent setting means (e.g. a modality's datasets) with a Welch-Satterthwaite t interval.

    mean = average of `means` (NaN if any is NaN), se = sqrt(sum se_i^2) / k, df = (sum se_i^2)^2 /
    sum(se_i^4 / df_i), CI and p from t(df); same keys as `corrected_t`, n = k. Settings with a NaN se are
    left out of se and df (so se is then only the part that is known), and the CI and p are NaN: one setting
    without an interval means the combination has none. k == 1 returns that setting's own interval.
    """
    m, s, f = (np.asarray(x, dtype=np.float64).ravel() for x in (means, ses, dfs))
    if not len(m) == len(s) == len(f):
        raise ValueError(f"means, ses and dfs differ in length: {len(m)}, {len(s)}, {len(f)}")
    k = len(m)
    if k == 0:
        return _t_result(NAN, NAN, NAN, 0, level)
    if k == 1:
        return _t_result(m[0], s[0], f[0], 1, level)
    known = ~np.isnan(s)
    var_sum = float(np.sum(s[known] ** 2))
    # A zero-se setting adds nothing to the df denominator, whatever its df.
    df_terms = np.where(s[known] > 0, s[known] ** 4 / f[known], 0.0)
    df = var_sum**2 / float(df_terms.sum()) if var_sum > 0 else NAN
    out = _t_result(float(m.mean()), np.sqrt(var_sum) / k, df, k, level)
    if not known.all():
        out.update(ci_low=NAN, ci_high=NAN, p_value=NAN)
    return out


def weighted_auc(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC AUC of B weighted replicates: sample i counts weights[b, i] times, ties count 1/2.

    labels, scores (N,), weights (B, N) nonnegative -> (B,). One sort, then O(B * N): per tie group the
    positive and negative weight, and the cumulative negative weight below it. NaN where a replicate has
    no positive or no negative weight, and everywhere when a score is non-finite.
    """
    y = np.asarray(labels).ravel().astype(bool)
    s = np.asarray(scores, dtype=np.float64).ravel()
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or w.shape[1] != len(s) or len(y) != len(s):
        raise ValueError(f"need labels, scores (N,) and weights (B, N); got {y.shape}, {s.shape}, {w.shape}")
    if (w < 0).any():
        raise ValueError("weights must be nonnegative")
    if len(s) == 0 or not np.isfinite(s).all():
        return np.full(len(w), np.nan)
    order = np.argsort(s, kind="stable")
    _, starts = np.unique(s[order], return_index=True)  # first position of each tie group, ascending scores
    w_sorted, y_sorted = w[:, order], y[order]
    pos = np.add.reduceat(w_sorted * y_sorted, starts, axis=1)  # (B, G) positive weight per tie group
    neg = np.add.reduceat(w_sorted * ~y_sorted, starts, axis=1)  # (B, G)
    neg_below = np.cumsum(neg, axis=1) - neg  # negative weight strictly below each group
    wins = np.sum(pos * (neg_below + 0.5 * neg), axis=1)
    total = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, wins / np.where(total > 0, total, 1.0), np.nan)


@dataclass(frozen=True, eq=False)
class EvalSet:
    """One model's predictions on one test set: labels, scores, patients (N,) and the test set's name.

    Two EvalSets with the same `test_set` name (within a seed) are the same samples and get the same
    bootstrap draw of patients.
    """

    labels: np.ndarray
    scores: np.ndarray
    patients: np.ndarray
    test_set: str

    def __post_init__(self) -> None:
        lengths = {len(np.asarray(x).ravel()) for x in (self.labels, self.scores, self.patients)}
        if len(lengths) != 1:
            raise ValueError(f"EvalSet {self.test_set!r}: labels, scores and patients differ in length")


def _check_same_test_set(a: EvalSet, b: EvalSet) -> None:
    """a and b claim the same test set: they must list the same samples (patients and labels) in the same order."""
    if a.test_set == b.test_set and not (np.array_equal(np.asarray(a.patients), np.asarray(b.patients))
                                         and np.array_equal(np.asarray(a.labels), np.asarray(b.labels))):
        raise ValueError(f"test set {a.test_set!r}: a and b must have identical patients and labels arrays")


def _replicate_aucs(evals: list[EvalSet], n_boot: int, rng: np.random.Generator) -> list[np.ndarray]:
    """(B,) bootstrap AUCs of each EvalSet in `evals` (all on one test set) under one shared patient draw."""
    _, inverse = np.unique(np.asarray(evals[0].patients).ravel(), return_inverse=True)
    if len(inverse) == 0:
        return [np.full(n_boot, np.nan) for _ in evals]
    n_patients = int(inverse.max()) + 1
    counts = rng.multinomial(n_patients, np.full(n_patients, 1 / n_patients), size=n_boot)  # (B, P) draws
    chunk = max(1, 2**22 // len(inverse))  # bound the (chunk, N) weight matrix to ~32 MB
    out: list[np.ndarray] = []
    for ev in evals:
        parts = [weighted_auc(ev.labels, ev.scores, counts[i:i + chunk][:, inverse]) for i in range(0, n_boot, chunk)]
        out.append(np.concatenate(parts) if parts else np.zeros(0))
    return out


def cluster_bootstrap_delta(pairs: Sequence[tuple[EvalSet, EvalSet]], n_boot: int = 2000, level: float = 0.95,
                            seed: int = 0) -> tuple[float, float]:
    """Patient-level percentile bootstrap CI of the mean over seeds of AUC(a_s) - AUC(b_s).

    `pairs` has one (a, b) per seed. Per replicate and seed, each distinct test set's patients are drawn with
    replacement once (a sample weighs as often as its patient was drawn): a and b on the same test set share
    the draw (they must then have identical patients arrays, else ValueError), different test sets and
    different seeds are drawn independently. Models are held fixed. Replicates with a NaN are dropped;
    (nan, nan) if more than 5 % are NaN.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    if n_boot < 1 or not pairs:
        return NAN, NAN
    for a, b in pairs:
        _check_same_test_set(a, b)
    rng = np.random.default_rng(seed)
    total = np.zeros(n_boot)
    for a, b in pairs:
        groups = [[a, b]] if a.test_set == b.test_set else [[a], [b]]
        aucs = [auc for group in groups for auc in _replicate_aucs(group, n_boot, rng)]
        total += aucs[0] - aucs[1]
    means = total / len(pairs)
    kept = means[~np.isnan(means)]
    if 20 * (n_boot - len(kept)) > n_boot:  # more than 5 % NaN, in integers
        return NAN, NAN
    lo, hi = np.quantile(kept, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)
