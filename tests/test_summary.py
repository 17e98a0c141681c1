"""Table 2 means and the rule that nothing is pooled silently."""

import numpy as np
import pandas as pd
import pytest

from scanshift_ray.errors import ScanshiftError
from scanshift_ray.summary import check_pooling, format_table2, select, table2


def _frame():
    rows = []
    for seed, (same, other) in enumerate([(0.9, 0.7), (0.8, 0.6), (0.7, 0.8)]):
        for test, auc in (("a", same), ("b", other)):
            rows.append({"experiment": "main", "dataset": "mri-prostate", "modality": "MRI", "train_domain": "a",
                         "test_domain": test, "same_domain": test == "a", "seed": seed, "auc": auc,
                         "normalization": "image", "mix_fraction": 0.0, "data_id": "d1"})
    rows.append({**rows[0], "dataset": "ct-lidc", "modality": "CT", "auc": 0.9})
    rows.append({**rows[1], "dataset": "ct-lidc", "modality": "CT", "auc": np.nan})
    return pd.DataFrame(rows)


def test_table2_numbers():
    t = table2(_frame())
    assert list(t["dataset"]) == ["ct-lidc", "mri-prostate"]  # CT before MRI
    mri = t[t["dataset"] == "mri-prostate"].iloc[0]
    assert mri["same_mean"] == pytest.approx(0.8) and mri["diff_mean"] == pytest.approx(0.7)
    assert mri["same_std"] == pytest.approx(0.1)  # ddof=1
    assert mri["delta"] == pytest.approx(-0.1) and mri["n_seeds"] == 3
    ct = t[t["dataset"] == "ct-lidc"].iloc[0]
    assert ct["n_nan"] == 1 and np.isnan(ct["diff_mean"])
    assert "mri-prostate" in format_table2(t, "synthetic") and "1 NaN" in format_table2(t, "synthetic")


def test_one_configuration_passes():
    check_pooling(_frame())


def test_two_configurations_in_one_setting_are_refused_with_a_selector():
    other = _frame().assign(normalization="train", data_id="d1")
    with pytest.raises(ScanshiftError, match=r"differ in normalization \(image, train\); select one with "
                                             r"--where normalization=image"):
        check_pooling(pd.concat([_frame(), other]))
    both = pd.concat([_frame(), other])
    check_pooling(select(both, ["normalization=train"]))
    assert len(select(both, ["normalization=train"])) == len(_frame())


def test_other_data_is_another_configuration():
    with pytest.raises(ScanshiftError, match="differ in data_id"):
        check_pooling(pd.concat([_frame(), _frame().assign(data_id="d2")]))


def test_treatment_axes_may_vary_within_a_setting():
    mixing = pd.concat([_frame().assign(experiment="mixing", mix_fraction=f) for f in (0.1, 0.2)])
    check_pooling(mixing)


def test_a_seed_twice_in_one_configuration_is_an_error():
    with pytest.raises(ScanshiftError, match="seed 0 appears 2 times"):
        check_pooling(pd.concat([_frame(), _frame()]))


def test_where_errors_are_one_line():
    with pytest.raises(ScanshiftError, match="--where takes COLUMN=VALUE"):
        select(_frame(), ["nocolumn=1"])
    with pytest.raises(ScanshiftError, match="no rows; normalization has image"):
        select(_frame(), ["normalization=train"])
    assert len(select(_frame(), ["mix_fraction=0"])) == len(_frame())  # numbers match as numbers


def test_main_with_and_without_a_treatment_option_is_refused():
    both = pd.concat([_frame(), _frame().assign(mix_fraction=0.5)])
    with pytest.raises(ScanshiftError, match=r"differ in mix_fraction"):
        check_pooling(both)
    mixing = both.assign(experiment="mixing", grid_axes="mix_fraction")
    check_pooling(mixing)  # the mixing experiment varies it


def test_old_rows_beside_new_ones_are_refused_in_one_line():
    old = _frame()
    new = _frame().assign(protocol_version=2, lr=1e-3)
    with pytest.raises(ScanshiftError, match="differ in lr|differ in protocol_version"):
        check_pooling(pd.concat([old, new]))


def test_delta_is_the_paired_mean_when_a_value_is_missing():
    rows = _frame()
    rows.loc[(rows["dataset"] == "mri-prostate") & (rows["seed"] == 0) & rows["same_domain"], "auc"] = np.nan
    mri = table2(rows).set_index("dataset").loc["mri-prostate"]
    assert mri["delta"] == pytest.approx(((0.6 - 0.8) + (0.8 - 0.7)) / 2)  # seeds 1 and 2 only


def test_validation_interval_is_part_of_the_configuration():
    older = _frame().assign(seed=lambda f: f["seed"] + 10)  # rows written before val_every existed
    check_pooling(pd.concat([older, _frame().assign(val_every=1)]))  # every older row validated each epoch
    with pytest.raises(ScanshiftError, match=r"differ in val_every \(1, 3\)"):
        check_pooling(pd.concat([older, _frame().assign(val_every=3)]))
