import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from scanshift_ray.errors import ScanshiftError
from scanshift_ray.metrics import METRICS, average_precision, compute, rank_auc, youden_threshold

# Metrics that are defined with a single class present; every other registered metric must return NaN then.
ONE_CLASS_DEFINED = {"brier"}

EMPTY = np.zeros(0)
VAL_Y, VAL_S = np.array([0, 1, 0, 1, 1, 0]), np.array([-1.0, 0.2, 0.1, 1.5, 0.3, -0.4])  # both classes


def test_auc_and_ap_by_hand():
    y, s = np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])
    # AUC: positive 0.35 beats 0.1 but not 0.4, 0.8 beats both -> 3 of 4 pairs.
    assert compute("auc", y, s, EMPTY, EMPTY) == pytest.approx(0.75, abs=1e-12)
    # AP, thresholds descending: 0.8 (P=1, R=1/2), 0.4 (P=1/2, R=1/2), 0.35 (P=2/3, R=1), 0.1 (P=1/2, R=1)
    # -> 1/2 * 1 + 0 + 1/2 * 2/3 + 0 = 5/6.
    assert compute("ap", y, s, EMPTY, EMPTY) == pytest.approx(5 / 6, abs=1e-12)


def test_auc_counts_ties_as_half():
    # Pairs (pos, neg): (1 vs 1) tie 1/2, (1 vs 0) win, (2 vs 1) win, (2 vs 0) win -> 3.5 / 4.
    assert rank_auc(np.array([0, 1, 0, 1]), np.array([1.0, 1.0, 0.0, 2.0])) == pytest.approx(0.875, abs=1e-12)


def test_auc_and_ap_equal_sklearn_on_random_data_with_ties():
    rng = np.random.default_rng(1)
    checked = 0
    for _ in range(300):
        n = int(rng.integers(2, 80))
        y = rng.integers(0, 2, n)
        s = np.round(rng.normal(size=n) * rng.choice([1.0, 3.0]), 0) + rng.choice([0.0, 1e-3], n)  # many ties
        if y.min() == y.max():
            continue
        assert abs(rank_auc(y, s) - roc_auc_score(y, s)) < 1e-12
        assert abs(average_precision(y, s) - average_precision_score(y, s)) < 1e-12
        checked += 1
    assert checked > 200


def test_balanced_accuracy_uses_youden_threshold_of_validation_set():
    # Validation, P = 2, N = 3; J = TPR - FPR for "logit >= t": t=-1: 1-1=0, t=0.5: 1-2/3=1/3,
    # t=2: 1/2-1/3=1/6, t=3: 0-1/3 -> t = 0.5.
    val_y, val_s = np.array([0, 0, 1, 1, 0]), np.array([-1.0, 0.5, 0.5, 2.0, 3.0])
    assert youden_threshold(val_y, val_s) == 0.5
    # Test predictions >= 0.5: [F, T, T, T] -> sensitivity 1, specificity 1/2 -> 0.75 (0.5 itself is positive).
    y, s = np.array([0, 1, 1, 0]), np.array([0.4, 0.5, 1.0, 0.7])
    assert compute("balanced_accuracy", y, s, val_y, val_s) == pytest.approx(0.75, abs=1e-12)


def test_youden_ties_pick_the_smallest_threshold():
    # P = N = 2: t=0: 1-1=0, t=1: 1-1/2=1/2, t=2: 1/2-1/2=0, t=3: 1/2-0=1/2 -> tie of 1 and 3 -> 1.
    val_y, val_s = np.array([0, 1, 0, 1]), np.array([0.0, 1.0, 2.0, 3.0])
    assert youden_threshold(val_y, val_s) == 1.0
    # Test with t=1: [T, F, T, F] -> balanced accuracy 1 (t=3 would give (1/2 + 1) / 2 = 0.75).
    y, s = np.array([1, 0, 1, 0]), np.array([2.0, 0.0, 3.5, 0.5])
    assert compute("balanced_accuracy", y, s, val_y, val_s) == pytest.approx(1.0, abs=1e-12)


def test_sensitivity_at_90_specificity_by_hand():
    # 10 negatives at 0..9, positives at 3, 8.5, 9.5, 10. Thresholds with at most 1 negative >= t (TNR >= 0.9)
    # go down to t = 8.5 (only negative 9 above), where positives 8.5, 9.5, 10 are found -> 3/4.
    y = np.array([0] * 10 + [1] * 4)
    s = np.array([*range(10), 3.0, 8.5, 9.5, 10.0], dtype=float)
    assert compute("sens_at_90spec", y, s, EMPTY, EMPTY) == pytest.approx(0.75, abs=1e-12)
    # Two negatives, one on top: every finite threshold has TNR <= 1/2, so only the (0, 0) corner qualifies.
    assert compute("sens_at_90spec", np.array([1, 0, 1, 0]), np.array([1.0, 5.0, 3.0, 0.0]), EMPTY, EMPTY) == 0.0


def test_brier_by_hand():
    # sigmoid(0) = 1/2 vs label 1 -> 1/4; sigmoid(ln 3) = 3/4 vs label 0 -> 9/16; mean 13/32.
    assert compute("brier", np.array([1, 0]), np.array([0.0, math.log(3)]), EMPTY, EMPTY) == pytest.approx(13 / 32)
    assert compute("brier", np.array([1]), np.array([0.0]), EMPTY, EMPTY) == pytest.approx(0.25)


@pytest.mark.parametrize("name", METRICS.names())
def test_every_metric_is_nan_when_undefined(name):
    y, s = np.array([0, 1, 1, 0, 1]), np.array([0.3, 2.0, -0.5, -1.0, 0.9])
    assert np.isfinite(compute(name, y, s, VAL_Y, VAL_S))  # the valid case is defined
    assert math.isnan(compute(name, EMPTY, EMPTY, VAL_Y, VAL_S))
    assert math.isnan(compute(name, y, np.where(y == 1, np.nan, s), VAL_Y, VAL_S))
    assert math.isnan(compute(name, y, np.where(y == 1, np.inf, s), VAL_Y, VAL_S))
    one_class = compute(name, np.ones(4, dtype=int), np.array([0.1, 0.2, 0.3, 0.4]), VAL_Y, VAL_S)
    assert math.isnan(one_class) != (name in ONE_CLASS_DEFINED)
    if METRICS.get(name).uses_validation:
        assert math.isnan(compute(name, y, s, np.zeros(3, dtype=int), np.array([0.0, 1.0, 2.0])))
        assert math.isnan(compute(name, y, s, EMPTY, EMPTY))
        assert math.isnan(compute(name, y, s, VAL_Y, np.where(VAL_Y == 1, np.nan, VAL_S)))


@pytest.mark.parametrize("name", METRICS.names())
def test_every_metric_returns_a_float_and_is_named_by_its_key(name):
    rng = np.random.default_rng(3)
    y, s = rng.integers(0, 2, 50), rng.normal(size=50)
    value = compute(name, y, s, *(rng.integers(0, 2, 30), rng.normal(size=30)))
    assert type(value) is float and 0.0 <= value <= 1.0
    assert METRICS.get(name).name == name and METRICS.get(name).title


def test_expected_metrics_are_registered_and_unknown_is_a_user_error():
    expected = {"auc": False, "ap": False, "balanced_accuracy": True, "sens_at_90spec": False, "brier": False}
    assert {n: METRICS.get(n).uses_validation for n in expected} == expected
    with pytest.raises(ScanshiftError, match="unknown metric"):
        compute("nope", np.array([0, 1]), np.array([0.0, 1.0]), EMPTY, EMPTY)


def test_numpy_ranks_and_sigmoid_equal_scipys():
    from scipy.special import expit
    from scipy.stats import rankdata

    from scanshift_ray.metrics import average_ranks, sigmoid

    rng = np.random.default_rng(3)
    s = np.round(rng.normal(size=500), 1)  # many ties
    assert np.array_equal(average_ranks(s), rankdata(s))
    x = np.array([-800.0, -30.0, -1.0, 0.0, 2.5, 40.0, 800.0])
    assert np.allclose(sigmoid(x), expit(x), rtol=1e-15, atol=0)
