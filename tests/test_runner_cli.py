"""The study runner (in-process backend) and the command line's handling of bad input."""

import subprocess
import sys
from pathlib import Path

import h5py

from scanshift_ray import results
from scanshift_ray.cli import main
from scanshift_ray.runner import run_study
from scanshift_ray.study import EXPERIMENTS, Study, restrict

ROOT = Path(__file__).resolve().parents[1]


def _study(seeds):
    return Study((restrict(EXPERIMENTS.get("main"), ("xray-chest",), seeds),), profile="smoke")


def test_rerun_trains_nothing_and_new_seeds_run_alone(toy_root, tmp_path):
    res = tmp_path / "res"
    first = run_study(_study((0,)), toy_root, res, backend="local", log=lambda s: None)
    assert (first.total, first.ran) == (2, 2)
    again = run_study(_study((0,)), toy_root, res, backend="local", log=lambda s: None)
    assert (again.already_done, again.ran) == (2, 0)
    more = run_study(_study((0, 1)), toy_root, res, backend="local", log=lambda s: None)
    assert (more.already_done, more.ran) == (2, 2)
    assert len(results.read_results(res)) == 8



def test_shards_option_runs_the_datasets_present(toy_root, tmp_path, capsys):
    args = ["run", "--shards", str(toy_root), "--results", str(tmp_path / "r"), "--experiments", "main",
            "--profile", "smoke", "--seeds", "1", "--local"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "shards found for ct-lidc, xray-chest; skipping ct-kidney" in out and "4 cells" in out
    assert main(["run", "--shards", str(tmp_path), "--results", str(tmp_path / "r"), "--local"]) == 2
    assert "no shards under" in capsys.readouterr().err


def test_missing_shard_root_is_one_line(tmp_path, capsys):
    code = main(["run", "--shards", str(tmp_path / "none"), "--results", str(tmp_path / "r"), "--local"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "shard root not found" in err and "Traceback" not in err


def test_missing_domain_and_invalid_shard_name_the_file(toy_root, tmp_path, capsys):
    (toy_root / "xray-chest" / "5.h5").unlink()
    args = ["run", "--shards", str(toy_root), "--datasets", "xray-chest", "--results", str(tmp_path), "--local"]
    assert main(args) == 2
    assert "xray-chest/5.h5" in capsys.readouterr().err
    with h5py.File(toy_root / "xray-chest" / "5.h5", "w") as f:
        f["images"] = [[[1.0]]]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("scanshift: error: invalid shard") and "5.h5" in err and err.count("\n") == 0


def test_unknown_dataset_is_one_line(tmp_path, capsys):
    assert main(["run", "--datasets", "ct-brain", "--results", str(tmp_path), "--local"]) == 2
    assert "unknown dataset 'ct-brain'" in capsys.readouterr().err


def test_failed_results_stay_intact(toy_root, tmp_path, capsys):
    res = tmp_path / "res"
    run_study(_study((0,)), toy_root, res, backend="local", log=lambda s: None)
    before = {p: p.read_bytes() for p in res.rglob("*.parquet")}
    (toy_root / "xray-chest" / "3.h5").write_text("corrupt")
    assert main(["run", "--shards", str(toy_root), "--datasets", "xray-chest", "--results", str(res),
                 "--profile", "smoke", "--seeds", "0,1", "--local"]) == 2
    assert {p: p.read_bytes() for p in res.rglob("*.parquet")} == before


def test_models_command_lists_paper_counts(capsys):
    assert main(["models"]) == 0
    assert "6,948,609" in capsys.readouterr().out


def test_full_study_script_help_runs():
    out = subprocess.run([sys.executable, str(ROOT / "sweeps" / "full_study.py"), "--help"], capture_output=True,
                         text=True)
    assert out.returncode == 0 and "--experiments" in out.stdout


def _share_a_patient(root, key="xray-chest", n=1):
    """Give the first `n` patients of domain 2 the pseudonyms of patients of domain 1 (PI-CAI has such cases)."""
    from scanshift_ray import shards
    from scanshift_ray.datasets import DATASETS

    spec = DATASETS.get(key)
    one = shards.read_shard(shards.shard_path(root, key, spec.domains[0]), mmap=False)
    path = shards.shard_path(root, key, spec.domains[1])
    two = shards.read_shard(path, mmap=False)
    ids = two.patient_ids.copy()
    for old, new in zip(sorted(set(ids))[:n], sorted(set(one.patient_ids))[:n], strict=True):
        ids[ids == old] = new
    attrs = {k: v for k, v in two.attrs.items() if k not in ("content_sha1", "format_version")}
    shards.write_shard(path, two.images, two.labels, ids, attrs)


def test_a_patient_in_both_domains_stops_the_run_unless_a_policy_is_chosen(toy_root, tmp_path, capsys):
    _share_a_patient(toy_root, n=2)
    base = ["run", "--shards", str(toy_root), "--datasets", "xray-chest", "--profile", "smoke", "--seeds", "1",
            "--local", "--experiments", "main"]
    assert main([*base, "--results", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "2 pseudonymous patient id(s) appear in both scanner domains" in err and err.count("\n") == 1
    assert main([*base, "--results", str(tmp_path / "r"), "--shared-patients", "drop"]) == 0
    rows = results.read_results(tmp_path / "r")
    assert set(rows["shared_patients"]) == {"drop"}
    assert main([*base, "--results", str(tmp_path / "r"), "--shared-patients", "assign"]) == 0
    rows = results.read_results(tmp_path / "r")
    assert len(rows) == 8 and set(rows["shared_patients"]) == {"drop", "assign"}  # other cells, not done twice
    assert rows.groupby("shared_patients")["config_id"].nunique().to_dict() == {"assign": 2, "drop": 2}
    assert rows["config_id"].nunique() == 4


def test_changed_shard_bytes_are_caught_before_cells_count_done(toy_root, tmp_path, capsys):
    h5 = toy_root / "xray-chest" / "3.h5"
    run_study(_study((0,)), toy_root, tmp_path / "res", backend="local", log=lambda s: None)
    with h5py.File(h5, "r+") as f:
        f["images"][3] = f["images"][3] * 0.5  # the stored hash attribute stays as it was
    args = ["run", "--shards", str(toy_root), "--datasets", "xray-chest", "--results", str(tmp_path / "res"),
            "--profile", "smoke", "--seeds", "1", "--local"]
    assert main(args) == 2
    assert "does not match its stored hash" in capsys.readouterr().err


def test_every_done_cell_has_predictions_and_any_metric_reports(toy_root, tmp_path, capsys):
    import pandas as pd

    res = tmp_path / "res"
    run_study(_study((0, 1)), toy_root, res, backend="local", log=lambda s: None)
    rows = results.read_results(res)
    preds = results.read_predictions(res, rows)
    assert set(preds["cell_id"]) == set(rows["cell_id"])
    assert len(pd.read_parquet(res / "_curves")) == 4 * 2  # 4 cells x 2 epochs (smoke)
    for metric in ("ap", "brier", "balanced_accuracy", "sens_at_90spec"):
        assert main(["report", str(res), "--out", str(tmp_path / metric), "--metric", metric]) == 0
        assert metric in (tmp_path / metric / "report.md").read_text()
    # a kill between the predictions and the rows: the cell is not done and simply runs again
    victim = next((res / "main").glob("*.parquet"))
    victim.unlink()
    again = run_study(_study((0, 1)), toy_root, res, backend="local", log=lambda s: None)
    assert (again.already_done, again.ran) == (3, 1)
    assert len(results.read_results(res)) == 8


def test_report_on_an_experiment_folder_finds_the_predictions_and_validate_needs_shards(toy_root, tmp_path,
                                                                                        capsys):
    res = tmp_path / "res"
    run_study(_study((0,)), toy_root, res, backend="local", log=lambda s: None)
    assert main(["report", str(res / "main"), "--out", str(tmp_path / "rep"), "--metric", "ap"]) == 0
    assert main(["validate", str(tmp_path)]) == 2
    assert "no shards under" in capsys.readouterr().err


def test_argparse_errors_are_one_line(capsys):
    import pytest

    with pytest.raises(SystemExit) as exc:
        main(["run", "--max-failures", "-1"])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and err.count("\n") == 0 and "must be a whole number >= 0" in err


def test_shards_of_another_size_than_the_profile_expects_are_refused(toy_root, tmp_path, capsys):
    base = ["run", "--shards", str(toy_root), "--datasets", "xray-chest", "--experiments", "main",
            "--results", str(tmp_path / "r"), "--seeds", "1", "--local", "--dry-run"]
    assert main([*base, "--profile", "paper"]) == 2  # 64x64 toy shards, the paper trains at 224x224
    err = capsys.readouterr().err
    assert "shards are 64x64 but profile paper needs the paper's input shape, 224x224" in err
    assert main([*base, "--profile", "smoke"]) == 0
