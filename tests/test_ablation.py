"""The ablation table: deltas of the full and the ablated scanner pair, and the paired change."""

import pandas as pd
import pytest

from scanshift_ray.ablation import ablation_table, format_table
from scanshift_ray.errors import ScanshiftError


def _rows(deltas: list[float], data_id: str, epochs: int = 3) -> pd.DataFrame:
    """mri-prostate rows, both training domains, same-domain AUC 0.9 and other-domain 0.9 + delta."""
    rows = []
    for seed, delta in enumerate(deltas):
        for train, other in (("siemens", "other"), ("other", "siemens")):
            for test, auc in ((train, 0.9), (other, 0.9 + delta)):
                rows.append({"experiment": "main", "dataset": "mri-prostate", "modality": "MRI",
                             "train_domain": train, "test_domain": test, "same_domain": test == train,
                             "seed": seed, "auc": auc, "normalization": "image", "data_id": data_id,
                             "epochs": epochs, "n_train": 600, "n_test": 150})
    return pd.DataFrame(rows)


def test_change_is_the_paired_difference_of_the_deltas():
    t = ablation_table(_rows([-0.20, -0.10, -0.15], "full"), {"mri-field": _rows([-0.05, -0.01, -0.03], "abl")})
    row = t[t["train_domain"] == "siemens"].iloc[0]
    assert row["delta_full"] == pytest.approx(-0.15) and row["delta_ablated"] == pytest.approx(-0.03)
    assert row["change"] == pytest.approx(0.12) and row["ci_low"] < 0.12 < row["ci_high"]
    assert row["n_seeds"] == 3 and "mri-field" in format_table(t)


def test_only_shared_seeds_are_paired():
    t = ablation_table(_rows([-0.2, -0.1, -0.3], "full"), {"x": _rows([-0.1, -0.1], "abl")})
    assert set(t["n_seeds"]) == {2}
    assert t.iloc[0]["delta_full"] == pytest.approx(-0.15)


def test_runs_that_differ_in_more_than_their_data_are_refused():
    with pytest.raises(ScanshiftError, match="differ in epochs"):
        ablation_table(_rows([-0.2, -0.1], "full"), {"x": _rows([-0.1, -0.1], "abl", epochs=5)})


def test_rows_from_before_val_every_count_as_validating_every_epoch():
    older = _rows([-0.2, -0.1], "full")  # no val_every column: written before it existed
    with pytest.raises(ScanshiftError, match="differ in val_every"):
        ablation_table(older, {"x": _rows([-0.1, -0.1], "abl").assign(val_every=3)})
    assert len(ablation_table(older, {"x": _rows([-0.1, -0.1], "abl").assign(val_every=1)})) == 2


def test_no_common_dataset_is_refused():
    other = _rows([-0.1, -0.1], "abl").assign(dataset="ct-lidc", modality="CT")
    with pytest.raises(ScanshiftError, match="no dataset"):
        ablation_table(_rows([-0.2, -0.1], "full"), {"x": other})


def test_the_ablation_study_runs_both_sides_and_writes_the_table(tmp_path, monkeypatch):
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "sweeps" / "ablation_study.py"
    spec = importlib.util.spec_from_file_location("ablation_study", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.chdir(tmp_path)
    argv = ["--ablate", "xray-processing", "--seeds", "2", "--profile", "smoke", "--local", "--results", "res",
            "--out", "abl"]
    assert module.main(argv) == 0
    table = pd.read_csv(tmp_path / "abl" / "ablation_table.csv")
    assert set(table["ablation"]) == {"xray-processing"} and len(table) == 2
    assert table["n_seeds"].between(1, 2).all()  # smoke test sets are tiny: a one-class seed has no AUC
    assert (tmp_path / "data" / "synthetic" / "smoke-no-xray-processing" / "xray-chest").is_dir()
    assert module.main(["--ablate", "xray-procesing"]) == 2  # a typo is a one-line error
