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
