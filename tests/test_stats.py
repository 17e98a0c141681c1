import math

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import roc_auc_score

from scanshift_ray.stats import EvalSet, cluster_bootstrap_delta, combine_means, corrected_t, weighted_auc

KEYS = {"mean", "se", "ci_low", "ci_high", "p_value", "df", "n"}


def same_result(a: dict, b: dict) -> bool:
    """Equal dicts, NaN equal to NaN."""
    return a.keys() == b.keys() and all(a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in a)


# --- corrected_t: coverage of the true mean in a simulated re-split study -------------------------------

N_STUDIES, N_PATIENTS, N_SEEDS, MU_TRUE, SD_PATIENT, SD_SEED = 4000, 120, 10, 0.03, 0.15, 0.01


def simulate_deltas(rng: np.random.Generator, train_weight: float) -> tuple[np.ndarray, float]:
    """(studies, seeds) deltas: each study a fresh cohort, each seed a fresh 2/3 : 1/6 : 1/6 split of it.

    delta_s = mean over the seed's test patients + train_weight * (train patients' mean - MU_TRUE) + noise.
    train_weight 0: what a seed sees of the cohort is its test split, plus independent training noise
    (the overlap Nadeau & Bengio's correction is built for). 0.5: the model also inherits half of its
    training cohort's deviation, a stronger dependence than the correction assumes.
    """
    d = rng.normal(MU_TRUE, SD_PATIENT, (N_STUDIES, N_PATIENTS))  # per-patient contribution
    n_test = n_val = N_PATIENTS // 6
    order = np.argsort(rng.random((N_STUDIES, N_SEEDS, N_PATIENTS)), axis=2)  # a random permutation per seed
    shuffled = np.take_along_axis(d[:, None, :], order, axis=2)  # (studies, seeds, patients)
    test = shuffled[..., :n_test].mean(axis=2)
    train = shuffled[..., n_test + n_val:].mean(axis=2)
    deltas = test + train_weight * (train - MU_TRUE) + rng.normal(0, SD_SEED, (N_STUDIES, N_SEEDS))
    return deltas, n_test / (N_PATIENTS - n_test - n_val)


def coverage(deltas: np.ndarray, ratio: float) -> float:
    """Fraction of studies whose 95 % corrected_t interval (with this test/train ratio) contains MU_TRUE."""
    hits = [(r := corrected_t(row, ratio))["ci_low"] <= MU_TRUE <= r["ci_high"] for row in deltas]
    return float(np.mean(hits))


@pytest.fixture(scope="module", params=[0.0, 0.5], ids=["test-split", "strong-train-dependence"])
def coverages(request) -> dict:
    deltas, ratio = simulate_deltas(np.random.default_rng(20240601), request.param)
    out = {"train_weight": request.param, "corrected": coverage(deltas, ratio), "plain": coverage(deltas, 0.0)}
    print(f"\ncoverage of mu_true over {N_STUDIES} studies (train_weight {request.param}): corrected t "
          f"{out['corrected']:.4f}, plain t {out['plain']:.4f}")
    return out


def test_corrected_t_covers_the_true_mean_about_95_percent(coverages):
    if coverages["train_weight"] == 0.0:
        assert 0.90 <= coverages["corrected"] <= 0.99
    else:  # the correction is an approximation: it undercovers here (about 0.88; see README), but far less
        assert 0.80 <= coverages["corrected"] < 0.95  # than the plain t-test (about 0.62)


def test_plain_t_covers_less_than_corrected(coverages):
    assert coverages["plain"] < coverages["corrected"] - 0.1


# --- corrected_t: known answers and edge cases -----------------------------------------------------------

def test_corrected_t_known_answer():
    r = corrected_t(np.array([-0.02, -0.01, 0.0]), 0.25)
    # mean -0.01, s^2 = (1e-4 + 0 + 1e-4) / 2 = 1e-4, Var(mean) = (1/3 + 1/4) * 1e-4, df 2.
    se = math.sqrt((1 / 3 + 1 / 4) * 1e-4)
    lo, hi = sps.t.interval(0.95, 2, loc=-0.01, scale=se)
    assert set(r) == KEYS and r["n"] == 3 and r["df"] == 2
    assert r["mean"] == pytest.approx(-0.01) and r["se"] == pytest.approx(se)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((lo, hi))
    assert r["p_value"] == pytest.approx(2 * sps.t.cdf(-0.01 / se, 2))


def test_corrected_t_with_zero_ratio_is_the_one_sample_t_test_and_drops_nans():
    d = np.array([0.03, -0.01, 0.05, 0.02, np.nan, 0.04])
    r = corrected_t(d, 0.0, level=0.9)
    ref = sps.ttest_1samp(d[~np.isnan(d)], 0.0)
    assert r["n"] == 5 and r["p_value"] == pytest.approx(ref.pvalue)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx(tuple(ref.confidence_interval(0.9)))


def test_corrected_ci_excludes_zero_exactly_when_p_below_005():
    rng = np.random.default_rng(7)
    outcomes = []
    for _ in range(1000):
        n = int(rng.integers(2, 16))
        d = rng.normal(rng.normal(0, 0.02), rng.uniform(0.001, 0.05), n)
        r = corrected_t(d, float(rng.uniform(0, 0.5)))
        excludes = r["ci_low"] > 0 or r["ci_high"] < 0
        assert excludes == (r["p_value"] < 0.05)
        outcomes.append(excludes)
    assert 50 < sum(outcomes) < 950  # both outcomes occur, so the equivalence was really exercised


@pytest.mark.parametrize("deltas, n, mean", [([], 0, math.nan), ([0.1], 1, 0.1), ([np.nan, 0.1, np.nan], 1, 0.1)])
def test_corrected_t_with_fewer_than_two_seeds_gives_only_the_mean(deltas, n, mean):
    r = corrected_t(np.array(deltas, dtype=float), 0.25)
    assert r["n"] == n and (r["mean"] == mean or math.isnan(mean) and math.isnan(r["mean"]))
    assert all(math.isnan(r[k]) for k in ("se", "ci_low", "ci_high", "p_value", "df"))


def test_corrected_t_zero_variance_claims_no_certainty():
    r = corrected_t(np.full(5, 0.02), 0.25)
    assert r["mean"] == pytest.approx(0.02) and r["se"] == 0 and r["df"] == 4 and r["n"] == 5
    assert all(math.isnan(r[k]) for k in ("ci_low", "ci_high", "p_value"))


def test_corrected_t_rejects_a_negative_ratio():
    with pytest.raises(ValueError):
        corrected_t(np.array([0.1, 0.2]), -0.1)


# --- combine_means -------------------------------------------------------------------------------------

def test_combine_one_setting_is_that_setting():
    r = corrected_t(np.array([0.01, 0.03, -0.02, 0.04]), 0.25)
    assert same_result(combine_means([r["mean"]], [r["se"]], [r["df"]]), r | {"n": 1})


def test_combine_two_settings_by_hand():
    r = combine_means([0.1, -0.02], [0.03, 0.04], [9, 4])
    # mean 0.04; se = sqrt(0.0009 + 0.0016) / 2 = 0.025; df = 0.0025^2 / (0.0009^2/9 + 0.0016^2/4)
    # = 6.25e-6 / (9e-8 + 6.4e-7) = 625 / 73.
    df = 625 / 73
    assert r["mean"] == pytest.approx(0.04) and r["se"] == pytest.approx(0.025) and r["df"] == pytest.approx(df)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx(sps.t.interval(0.95, df, loc=0.04, scale=0.025))
    assert r["p_value"] == pytest.approx(2 * sps.t.sf(0.04 / 0.025, df)) and r["n"] == 2


def test_combine_with_a_setting_without_se_has_no_interval():
    r = combine_means([0.1, 0.2], [0.03, math.nan], [9, math.nan])
    assert r["mean"] == pytest.approx(0.15) and r["se"] == pytest.approx(0.015) and r["n"] == 2
    assert all(math.isnan(r[k]) for k in ("ci_low", "ci_high", "p_value"))


# --- weighted_auc --------------------------------------------------------------------------------------

def tied_data(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, 2, n)
    return y, np.round(rng.normal(y * 0.7, 1.0), 1)  # rounding creates ties


def test_weighted_auc_with_unit_weights_is_sklearn():
    rng = np.random.default_rng(11)
    for n in (5, 40, 300):
        y, s = tied_data(rng, n)
        assert len(np.unique(s)) < n or n == 5
        np.testing.assert_allclose(weighted_auc(y, s, np.ones((3, n))), roc_auc_score(y, s), atol=1e-12, rtol=0)


def test_weighted_auc_with_integer_weights_is_sklearn_on_repeated_rows():
    rng = np.random.default_rng(12)
    y, s = tied_data(rng, 60)
    w = rng.integers(0, 4, (5, 60))
    expected = [roc_auc_score(np.repeat(y, row), np.repeat(s, row)) for row in w]
    np.testing.assert_allclose(weighted_auc(y, s, w), expected, atol=1e-12, rtol=0)


def test_weighted_auc_is_nan_without_both_classes_weighted():
    y, s = np.array([0, 1, 0, 1]), np.array([0.1, 0.9, 0.4, 0.3])
    out = weighted_auc(y, s, np.array([[1, 0, 2, 0], [0, 1, 0, 1], [1, 1, 1, 1]]))
    assert np.isnan(out[:2]).all() and out[2] == pytest.approx(0.75)


# --- cluster_bootstrap_delta ---------------------------------------------------------------------------

def eval_pair(rng: np.random.Generator, n_patients: int, noise: float, names: tuple[str, str],
              per_patient: int = 2) -> tuple[EvalSet, EvalSet]:
    """Two models on one set of samples: shared signal plus model-specific noise of size `noise`."""
    patients = np.repeat(np.arange(n_patients), per_patient)
    y = np.repeat(rng.integers(0, 2, n_patients), per_patient)
    base = rng.normal(y * 1.0, 1.0)
    a = EvalSet(y, base + rng.normal(0, noise, len(y)), patients, names[0])
    b = EvalSet(y, base + rng.normal(0, noise, len(y)), patients, names[1])
    return a, b


def width(ci: tuple[float, float]) -> float:
    return ci[1] - ci[0]


def test_shared_test_set_gives_a_narrower_interval_for_correlated_models():
    rng = np.random.default_rng(21)
    pairs = [eval_pair(rng, 150, 0.1, ("test", "test")) for _ in range(3)]
    apart = [(a, EvalSet(b.labels, b.scores, b.patients, "other")) for a, b in pairs]
    shared_ci, apart_ci = cluster_bootstrap_delta(pairs, n_boot=1000), cluster_bootstrap_delta(apart, n_boot=1000)
    observed = np.mean([roc_auc_score(a.labels, a.scores) - roc_auc_score(b.labels, b.scores) for a, b in pairs])
    assert shared_ci[0] <= observed <= shared_ci[1] and apart_ci[0] <= observed <= apart_ci[1]
    assert width(shared_ci) < 0.5 * width(apart_ci)


def test_larger_test_set_gives_a_narrower_interval():
    rng = np.random.default_rng(22)
    small = [eval_pair(rng, 80, 0.5, ("same", "other")) for _ in range(2)]
    large = [eval_pair(rng, 800, 0.5, ("same", "other")) for _ in range(2)]
    assert width(cluster_bootstrap_delta(large, n_boot=500)) < 0.6 * width(cluster_bootstrap_delta(small, n_boot=500))


def test_bootstrap_resamples_patients_not_samples():
    # Repeating every sample 4 times within its patient adds no information: the interval must not change.
    rng = np.random.default_rng(23)
    a, b = eval_pair(rng, 100, 0.5, ("same", "other"), per_patient=1)
    rep = [EvalSet(np.repeat(e.labels, 4), np.repeat(e.scores, 4), np.repeat(e.patients, 4), e.test_set)
           for e in (a, b)]
    ci_one, ci_rep = cluster_bootstrap_delta([(a, b)], n_boot=300), cluster_bootstrap_delta([tuple(rep)], n_boot=300)
    np.testing.assert_allclose(ci_rep, ci_one, atol=1e-12)


def test_bootstrap_is_deterministic_for_a_seed():
    rng = np.random.default_rng(24)
    pairs = [eval_pair(rng, 60, 0.5, ("same", "other")) for _ in range(2)]
    first = cluster_bootstrap_delta(pairs, n_boot=300, seed=5)
    assert cluster_bootstrap_delta(pairs, n_boot=300, seed=5) == first
    assert cluster_bootstrap_delta(pairs, n_boot=300, seed=6) != first


def test_same_test_set_with_different_patients_is_an_error():
    rng = np.random.default_rng(25)
    a, b = eval_pair(rng, 30, 0.5, ("test", "test"))
    shuffled = EvalSet(b.labels[::-1], b.scores[::-1], b.patients[::-1], "test")
    with pytest.raises(ValueError, match="identical patients"):
        cluster_bootstrap_delta([(a, shuffled)], n_boot=10)


def test_bootstrap_with_a_one_class_test_set_has_no_interval():
    rng = np.random.default_rng(26)
    a, b = eval_pair(rng, 30, 0.5, ("same", "other"))
    one_class = EvalSet(np.zeros_like(b.labels), b.scores, b.patients, "other")
    assert all(math.isnan(x) for x in cluster_bootstrap_delta([(a, one_class)], n_boot=50))
