"""Registered test-set metrics of one trained model, computed from logits.

Every metric takes (labels, logits, val_labels, val_logits): 0/1 labels and real-valued logits of the
test set, and the same for the validation set (only metrics with `uses_validation` read those, e.g. to
choose a decision threshold). A metric that is undefined on its input (empty, one class where it needs
both, non-finite logits) returns NaN instead of raising, so one degenerate cell never stops a sweep.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from scanshift_ray.registry import Registry

MetricFn = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], float]
NAN = float("nan")


@dataclass(frozen=True)
class Metric:
    """A named metric; `fn(labels, logits, val_labels, val_logits) -> value`."""

    name: str  # registry key, e.g. "ap"
    title: str  # human-readable, e.g. "average precision"
    fn: MetricFn
    uses_validation: bool  # True when the value depends on the validation predictions (a threshold)


METRICS: Registry[Metric] = Registry("metric")


def _as_arrays(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels as bool (N,), scores as float64 (N,)); wrong shapes or non-0/1 labels are programming errors."""
    y = np.asarray(labels).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels {y.shape} and scores {s.shape} differ in length")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    return y.astype(bool), s


def _usable(y: np.ndarray, s: np.ndarray, both_classes: bool = True) -> bool:
    """Whether a metric is defined: non-empty, finite scores and (if needed) both classes present."""
    if len(y) == 0 or not np.isfinite(s).all():
        return False
    return not both_classes or (bool(y.any()) and not bool(y.all()))


def _counts_at_or_above(y: np.ndarray, s: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(true positives, false positives) when predicting positive for score >= t, for every t (T,)."""
    pos, neg = np.sort(s[y]), np.sort(s[~y])
    tp = len(pos) - np.searchsorted(pos, thresholds, side="left")
    fp = len(neg) - np.searchsorted(neg, thresholds, side="left")
    return tp, fp


def average_ranks(scores: np.ndarray) -> np.ndarray:
    """1-based ranks of `scores`, ties sharing their average rank (scipy's rankdata "average"), in numpy
    alone: scipy.stats costs a Ray worker about 0.35 s to import, once per trial process."""
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    return (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) without overflow for large |x|."""
    x = np.asarray(logits, dtype=np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def rank_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC by the Mann-Whitney rank sum (average ranks, so ties count 1/2); NaN when undefined."""
    y, s = _as_arrays(labels, scores)
    if not _usable(y, s):
        return NAN
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    rank_sum = float(average_ranks(s)[y].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """sklearn's AP: sum over distinct thresholds (descending) of (R_k - R_{k-1}) * P_k; NaN when undefined."""
    y, s = _as_arrays(labels, scores)
    if not _usable(y, s):
        return NAN
    thresholds = np.unique(s)[::-1]  # every distinct score is an operating point, highest first
    tp, fp = _counts_at_or_above(y, s, thresholds)
    precision = tp / (tp + fp)
    recall = tp / int(y.sum())
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def youden_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The distinct score t maximising TPR - FPR of "positive iff score >= t" (smallest t on ties); NaN if undefined."""
    y, s = _as_arrays(labels, scores)
    if not _usable(y, s):
        return NAN
    thresholds = np.unique(s)  # ascending, so argmax's first maximum is the smallest threshold
    tp, fp = _counts_at_or_above(y, s, thresholds)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    j_scaled = tp * n_neg - fp * n_pos  # = J * n_pos * n_neg, in integers so ties are exact
    return float(thresholds[int(np.argmax(j_scaled))])


def balanced_accuracy(labels: np.ndarray, logits: np.ndarray, val_labels: np.ndarray,
                      val_logits: np.ndarray) -> float:
    """Mean of test sensitivity and specificity at the validation set's Youden threshold; NaN when undefined."""
    y, s = _as_arrays(labels, logits)
    threshold = youden_threshold(val_labels, val_logits)
    if not _usable(y, s) or np.isnan(threshold):
        return NAN
    predicted = s >= threshold
    return float((predicted[y].mean() + (~predicted[~y]).mean()) / 2)


def sensitivity_at_specificity(labels: np.ndarray, scores: np.ndarray, min_specificity: float = 0.90) -> float:
    """Highest TPR over the ROC curve's points (thresholds at distinct scores, plus +inf) with TNR >= min."""
    y, s = _as_arrays(labels, scores)
    if not _usable(y, s):
        return NAN
    thresholds = np.append(np.unique(s), np.inf)  # +inf: the (0, 0) corner, always specific enough
    tp, fp = _counts_at_or_above(y, s, thresholds)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    # TNR >= min_specificity with a relative tolerance, so e.g. 9 of 10 negatives counts as 0.90.
    specific = (n_neg - fp) >= min_specificity * n_neg * (1 - 1e-12)
    return float(tp[specific].max() / n_pos)


def brier(labels: np.ndarray, logits: np.ndarray) -> float:
    """Mean squared difference of sigmoid(logit) and the 0/1 label; NaN when empty or non-finite."""
    y, s = _as_arrays(labels, logits)
    if not _usable(y, s, both_classes=False):
        return NAN
    return float(np.mean((sigmoid(s) - y) ** 2))


def _test_only(fn: Callable[[np.ndarray, np.ndarray], float]) -> MetricFn:
    """Adapt a (labels, scores) metric to the registry's 4-argument signature (validation ignored)."""
    return lambda labels, logits, _val_labels, _val_logits: fn(labels, logits)


METRICS.add("auc", Metric("auc", "ROC AUC", _test_only(rank_auc), False))
METRICS.add("ap", Metric("ap", "average precision", _test_only(average_precision), False))
METRICS.add("balanced_accuracy", Metric("balanced_accuracy", "balanced accuracy at the validation Youden threshold",
                                        balanced_accuracy, True))
METRICS.add("sens_at_90spec", Metric("sens_at_90spec", "sensitivity at >= 90 % specificity",
                                     _test_only(sensitivity_at_specificity), False))
METRICS.add("brier", Metric("brier", "Brier score", _test_only(brier), False))


def compute(name: str, labels: np.ndarray, logits: np.ndarray, val_labels: np.ndarray,
            val_logits: np.ndarray) -> float:
    """Value of the registered metric `name` (ScanshiftError for an unknown name; NaN when undefined)."""
    return float(METRICS.get(name).fn(labels, logits, val_labels, val_logits))
