import numpy as np
import pandas as pd
import pytest

from scanshift_ray.summary import format_table2, modality_summary, table2


def _frame():
    rows = []
    for seed, (same, other) in enumerate([(0.9, 0.7), (0.8, 0.6), (0.7, 0.8)]):
        for test, auc in (("a", same), ("b", other)):
            rows.append({"experiment": "main", "dataset": "mri-prostate", "modality": "MRI", "train_domain": "a",
                         "test_domain": test, "same_domain": test == "a", "seed": seed, "auc": auc})
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
    summary = modality_summary(t)
    assert summary.set_index("modality").loc["MRI", "mean_delta"] == pytest.approx(-0.1)
    assert "mri-prostate" in format_table2(t, "synthetic") and "1 NaN AUC" in format_table2(t, "synthetic")
