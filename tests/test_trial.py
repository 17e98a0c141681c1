import math

import numpy as np
import pytest
from conftest import cell_on, make_cell

from scanshift_ray import metrics, shards
from scanshift_ray.datasets import DATASETS
from scanshift_ray.errors import ScanshiftError
from scanshift_ray.trial import build_sets, mix_indices, run_trial

REQUIRED = {"experiment", "dataset", "modality", "data_source", "train_domain", "test_domain", "same_domain",
            "seed", "mix_fraction", "noise_alpha", "model", "profile", "epochs", "best_epoch", "auc", "auc_last",
            "val_auc", "n_train", "n_test", "n_test_pos", "cell_id", "code_version", "wall_seconds", "hostname",
            "config_id", "protocol_version", "batch_size", "lr", "width", "val_every", "input_shape", "window",
            "normalization", "noise_space", "noise_draw", "shared_patients"}


def test_trial_rows_and_learning(toy_root):
    loaded = shards.load_domains(toy_root, DATASETS.get("ct-lidc"))
    rows = run_trial(cell_on(toy_root, "ct-lidc", "ge"), loaded).rows
    assert [r["test_domain"] for r in rows] == ["ge", "other"]
    assert set(rows[0]) >= REQUIRED
    assert rows[0]["same_domain"] and not rows[1]["same_domain"]
    assert rows[0]["n_train"] == 40 and rows[0]["n_test"] == 10  # 20 train, 5 test patients x 2 crops
    assert rows[0]["auc"] > 0.8  # the toy signal is easy


def test_same_cell_twice_gives_identical_aucs(toy_root):
    loaded = shards.load_domains(toy_root, DATASETS.get("xray-chest"))
    a, b = (run_trial(cell_on(toy_root, "xray-chest", "5"), loaded).rows for _ in range(2))
    assert [r["auc"] for r in a] == [r["auc"] for r in b]
    assert [r["auc_last"] for r in a] == [r["auc_last"] for r in b]


def test_one_class_test_set_gives_nan_and_a_reason(tmp_path):
    from conftest import write_toy_dataset

    write_toy_dataset(tmp_path, "xray-chest", per_patient=2)
    path = shards.shard_path(tmp_path, "xray-chest", "5")
    s = shards.read_shard(path, mmap=False)
    shards.write_shard(path, s.images, np.zeros_like(s.labels), s.patient_ids, s.attrs)  # domain 5: all negative
    loaded = shards.load_domains(tmp_path, DATASETS.get("xray-chest"))
    rows = run_trial(cell_on(tmp_path, "xray-chest", "3"), loaded).rows
    other = rows[1]
    assert math.isnan(other["auc"]) and other["auc_note"] == "test set has only class 0"
    assert not math.isnan(rows[0]["auc"])


def test_mix_indices_fraction_and_duplication():
    rng = np.random.default_rng(0)
    src, tgt = np.arange(80), np.arange(100, 110)
    idx = mix_indices(src, tgt, 0.5, rng)  # 80 target images needed, only 10 exist
    assert len(idx) == 80 and set(idx) == set(tgt)
    assert len(idx) / (len(idx) + len(src)) == pytest.approx(0.5)
    assert len(mix_indices(src, np.arange(100, 300), 0.2, rng)) == 20  # 20 / 100 = 0.2
    assert len(set(mix_indices(src, np.arange(100, 300), 0.2, rng))) == 20  # no duplicates when enough


def test_mixed_training_set_contains_target_images(toy_root):
    spec = DATASETS.get("xray-chest")
    loaded = shards.load_domains(toy_root, spec)
    sets, meta = build_sets(make_cell("xray-chest", "3", experiment="mixing", mix_fraction=0.2), spec, loaded,
                            (64, 64))
    assert meta["n_mixed"] == 10 and len(sets["train"][1]) == 50


@pytest.mark.parametrize("space, draw", [("normalized", "once"), ("native", "once")])
def test_noise_once_changes_only_training_images(toy_root, space, draw):
    spec = DATASETS.get("xray-chest")
    loaded = shards.load_domains(toy_root, spec)
    clean, _ = build_sets(make_cell("xray-chest", "3"), spec, loaded, (64, 64))
    noisy, _ = build_sets(make_cell("xray-chest", "3", experiment="noise", noise_alpha=3.0, noise_space=space,
                                    noise_draw=draw), spec, loaded, (64, 64))
    assert float((noisy["train"][0] - clean["train"][0]).std()) > 0.05
    assert np.array_equal(noisy["test_5"][0].numpy(), clean["test_5"][0].numpy())


def test_deterministic_option_runs_and_matches_the_default_on_cpu(toy_root, monkeypatch):
    from scanshift_ray.profiles import DETERMINISTIC_ENV

    loaded = shards.load_domains(toy_root, DATASETS.get("xray-chest"))
    plain = run_trial(cell_on(toy_root, "xray-chest", "3"), loaded).rows
    monkeypatch.setenv(DETERMINISTIC_ENV, "1")
    strict = run_trial(cell_on(toy_root, "xray-chest", "3"), loaded).rows
    assert [r["auc"] for r in plain] == [r["auc"] for r in strict]


def test_predictions_and_curve_reproduce_the_rows(toy_root):
    loaded = shards.load_domains(toy_root, DATASETS.get("xray-chest"))
    cell = cell_on(toy_root, "xray-chest", "3")
    out = run_trial(cell, loaded)
    p = out.predictions
    assert set(p["epoch"]) == {"best", "last"} and set(p["split"]) == {"val", "test"}
    for row in out.rows:
        for epoch, col in (("best", "auc"), ("last", "auc_last")):
            sel = p[(p["split"] == "test") & (p["domain"] == row["test_domain"]) & (p["epoch"] == epoch)]
            assert len(sel) == row["n_test"]
            assert metrics.compute("auc", sel["label"].to_numpy(), sel["logit"].to_numpy(), [], []) == row[col]
    test = p[(p["split"] == "test") & (p["domain"] == "3") & (p["epoch"] == "best")]
    ids = np.asarray(loaded["3"].patient_ids)[test["index"]]
    assert (ids == test["patient_id"]).all() and (loaded["3"].labels[test["index"]] == test["label"]).all()
    assert list(out.curve["epoch"]) == [1, 2] and out.curve["val_auc"].iloc[out.rows[0]["best_epoch"] - 1] == \
        out.rows[0]["val_auc"]


def test_trial_refuses_shards_that_are_not_its_data(toy_root):
    loaded = shards.load_domains(toy_root, DATASETS.get("xray-chest"))
    with pytest.raises(ScanshiftError, match="shards changed since the sweep started"):
        run_trial(make_cell("xray-chest", "3", data_id="stale"), loaded)


def test_a_resumed_trial_ends_exactly_as_an_uninterrupted_one(toy_root):
    from dataclasses import replace

    loaded = shards.load_domains(toy_root, DATASETS.get("ct-lidc"))
    cell = cell_on(toy_root, "ct-lidc", "ge")
    cell = replace(cell, training=replace(cell.training, epochs=4))
    saved = {}

    def keep(rec, state):
        if state is not None:
            saved[rec["epoch"]] = state

    whole = run_trial(cell, loaded, on_epoch=keep, checkpoint_every=2)
    assert sorted(saved) == [2]  # every 2 epochs, never at the last one
    resumed = run_trial(cell, loaded, resume=saved[2])
    for a, b in zip(whole.rows, resumed.rows, strict=True):
        assert (a["auc"], a["auc_last"], a["best_epoch"]) == (b["auc"], b["auc_last"], b["best_epoch"])
    assert resumed.rows[0]["resumed_from_epoch"] == 2 and whole.rows[0]["resumed_from_epoch"] == 0
    assert whole.predictions["logit"].tolist() == resumed.predictions["logit"].tolist()
    assert whole.curve["loss"].tolist() == resumed.curve["loss"].tolist()
