"""The scanner-separability diagnostic on toy shards: balanced training, one row, a scanner AUC that means it."""

from pathlib import Path

import numpy as np
import pytest
from conftest import cell_on, write_toy_dataset

from scanshift_ray import metrics, shards
from scanshift_ray.datasets import DATASETS
from scanshift_ray.separability import balance, build_scanner_sets
from scanshift_ray.trial import build_sets, run_trial

SPEC = DATASETS.get("ct-lidc")  # a small 3D model: a trial takes about a second


def _scanner_cell(root: Path, seed: int = 0):
    return cell_on(root, "ct-lidc", "ge", seed=seed, experiment="separability", predict="scanner")


def _mark_other_scanner(root: Path, amplitude: float) -> None:
    """Give domain 2 a fine checkerboard texture: a scanner signature that per-image z-scoring keeps."""
    path = shards.shard_path(root, "ct-lidc", "other")
    s = shards.read_shard(path, mmap=False)
    images = np.array(s.images, dtype=np.float32)
    images += amplitude * (2.0 * (np.indices(images.shape[-2:]).sum(0) % 2) - 1.0)
    shards.write_shard(path, images, s.labels, s.patient_ids, s.attrs)


def _keep_patients(root: Path, domain: str, n: int) -> None:
    """Keep only the first `n` patients of one domain (an unequal pair of domains)."""
    path = shards.shard_path(root, "ct-lidc", domain)
    s = shards.read_shard(path, mmap=False)
    ids = np.asarray(s.patient_ids).astype(str)
    keep = np.isin(ids, np.unique(ids)[:n])
    shards.write_shard(path, np.asarray(s.images)[keep], s.labels[keep], ids[keep], s.attrs)


def test_clearly_different_scanners_are_separable(tmp_path):
    write_toy_dataset(tmp_path, "ct-lidc")
    _mark_other_scanner(tmp_path, 30.0)
    loaded = shards.load_domains(tmp_path, SPEC)
    out = run_trial(_scanner_cell(tmp_path), loaded)
    (row,) = out.rows
    assert (row["experiment"], row["train_domain"], row["test_domain"], row["same_domain"]) == \
        ("separability", "both", "both", False)
    assert row["predict"] == "scanner" and row["auc"] > 0.95
    assert row["n_test"] == 20 and row["n_test_pos"] == 10  # 5 test patients x 2 crops per domain; label 1 = other
    test = out.predictions[(out.predictions["split"] == "test") & (out.predictions["epoch"] == "best")]
    assert test.groupby("domain")["label"].unique().map(list).to_dict() == {"ge": [0], "other": [1]}
    assert metrics.compute("auc", test["label"].to_numpy(), test["logit"].to_numpy(), [], []) == row["auc"]
    val = out.predictions[out.predictions["split"] == "val"]
    assert set(val["domain"]) == {"ge", "other"} and len(val) == 2 * row["n_val"]  # both validation splits


def test_identical_scanners_are_not_separable(tmp_path):
    write_toy_dataset(tmp_path, "ct-lidc", n_patients=90)  # both domains: draws of one distribution
    (row,) = run_trial(_scanner_cell(tmp_path), shards.load_domains(tmp_path, SPEC)).rows
    assert abs(row["auc"] - 0.5) < 0.15  # 30 vs 30 test crops: the AUC's sd under the null is about 0.08


def test_the_training_set_is_balanced_and_uses_the_main_splits(tmp_path):
    write_toy_dataset(tmp_path, "ct-lidc")
    _keep_patients(tmp_path, "other", 18)  # 12 training patients (24 crops) against ge's 20 (40 crops)
    loaded = shards.load_domains(tmp_path, SPEC)
    cell = _scanner_cell(tmp_path)
    sets, meta = build_scanner_sets(cell, SPEC, loaded, (5, 32, 32))
    labels = sets["train"][1]
    assert (labels == 0).sum() == (labels == 1).sum() == 24
    main_sets, main_meta = build_sets(cell_on(tmp_path, "ct-lidc", "ge"), SPEC, loaded, (5, 32, 32))
    assert meta["split_id"] == main_meta["split_id"]  # the same patient splits as the main experiment
    for d in SPEC.domains:  # the test sets are the main experiment's, with scanner labels
        assert np.array_equal(sets[f"test_{d}"][0].numpy(), main_sets[f"test_{d}"][0].numpy())
        assert set(sets[f"test_{d}"][1]) == {SPEC.domains.index(d)}
    again, _ = build_scanner_sets(cell, SPEC, loaded, (5, 32, 32))
    assert np.array_equal(again["train"][0].numpy(), sets["train"][0].numpy())  # deterministic


def test_balance_subsamples_the_larger_domain_by_sample_stratified_by_disease():
    train = {"a": np.arange(100, 130), "b": np.arange(10)}
    disease = {"a": np.r_[np.ones(12, int), np.zeros(18, int)], "b": np.r_[np.ones(5, int), np.zeros(5, int)]}
    kept = balance(train, disease, np.random.default_rng(0))
    assert np.array_equal(kept["b"], train["b"]) and len(kept["a"]) == 10
    assert set(kept["a"]) <= set(train["a"]) and len(set(kept["a"])) == 10 and list(kept["a"]) == sorted(kept["a"])
    assert int(np.isin(kept["a"], np.arange(100, 112)).sum()) == 4  # 40 % positives, as in a: round(10 * 12 / 30)
    same = balance(train, disease, np.random.default_rng(0))
    assert np.array_equal(same["a"], kept["a"])


@pytest.mark.parametrize("option", [{"mix_fraction": 0.2}, {"noise_alpha": 1.0}])
def test_scanner_cells_refuse_mixing_and_noise(tmp_path, option):
    from scanshift_ray.errors import ScanshiftError

    write_toy_dataset(tmp_path, "ct-lidc")
    with pytest.raises(ScanshiftError, match="predict 'scanner' trains on both scanners"):
        cell_on(tmp_path, "ct-lidc", "ge", predict="scanner", **option)
