"""The researcher's workflow: study files, flags over them, dry runs, the sweep lock, readable results."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.dataset as pads
import pytest

from scanshift_ray import results
from scanshift_ray.cli import main
from scanshift_ray.errors import ScanshiftError
from scanshift_ray.study import EXPERIMENTS, Study, restrict
from scanshift_ray.studyfile import DEFAULT_STUDY, parse_study, read_study_file

ROOT = Path(__file__).resolve().parents[1]


def test_the_paper_study_file_is_the_registered_study():
    for profile, main_seeds, sep_seeds in (("fast", 3, 3), ("paper", 10, 3), ("smoke", 2, 2)):
        study = parse_study(read_study_file(), profile)
        want = (restrict(EXPERIMENTS.get("main"), seeds=tuple(range(main_seeds))), EXPERIMENTS.get("mixing"),
                EXPERIMENTS.get("noise"), restrict(EXPERIMENTS.get("separability"), seeds=tuple(range(sep_seeds))))
        assert study.experiments == want and study.profile == profile
    assert DEFAULT_STUDY.parent.name == "sweeps"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "study.toml"
    path.write_text(text)
    return path


def test_a_study_file_declares_experiments_models_and_options(tmp_path):
    path = _write(tmp_path, """
profile = "smoke"
shared_patients = "drop"
[options]
normalization = "train"
[models]
xray-chest = "mrnet2d"
[experiments.main]
datasets = ["xray-chest"]
seeds = [0, 4]
[experiments.harder]
datasets = ["ct-lidc"]
seeds = 2
grid.noise_alpha = [0.5, 1]
""")
    study = parse_study(read_study_file(path))
    main_exp, harder = study.experiments
    assert main_exp.seeds == (0, 4) and main_exp.datasets == ("xray-chest",)
    assert harder.grid == (("noise_alpha", (0.5, 1.0)),) and harder.seeds == (0, 1)
    assert study.models == {"xray-chest": "mrnet2d"} and study.options == {"normalization": "train"}
    assert study.shared_patients == "drop"


@pytest.mark.parametrize("text, message", [
    ("[experiments.main]\nseeds = 3\nbogus = 1\n", "unknown key\\(s\\) bogus"),
    ("colour = 1\n[experiments.main]\n", "unknown key\\(s\\) colour"),
    ("[experiments.mine]\nseeds = 3\n", "a new experiment needs datasets and seeds"),
    ("[experiments.main]\ndatasets = [\"ct-brain\"]\n", "unknown dataset 'ct-brain'"),
    ("[experiments.main]\nseeds = { paper = 10 }\n", "no entry for profile 'fast'"),
    ("[experiments.main]\ngrid.harmonisation = [\"combat\"]\n", "unknown axis 'harmonisation'"),
    ("[models]\nxray-chest = \"resnet\"\n[experiments.main]\n", "unknown model 'resnet'"),
    ("[experiments.main\n", "not valid TOML"),
    ("profile = \"fast\"\n", "no \\[experiments.NAME\\] table"),
])
def test_bad_study_files_are_one_line_errors(tmp_path, text, message):
    with pytest.raises(ScanshiftError, match=message):
        parse_study(read_study_file(_write(tmp_path, text)))


def test_run_and_full_study_run_the_same_grid(toy_root, tmp_path, capsys):
    args = ["--shards", str(toy_root), "--results", str(tmp_path / "r"), "--profile", "smoke", "--dry-run"]
    assert main(["run", *args]) == 0
    ours = capsys.readouterr().out
    out = subprocess.run([sys.executable, str(ROOT / "sweeps" / "full_study.py"), *args], capture_output=True,
                         text=True, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.splitlines()[1:4] == ours.splitlines()[1:4]
    assert "main: 8 cells, 0 done, 8 to run" in ours  # ct-lidc and xray-chest x 2 domains x 2 smoke seeds
    assert "mixing: 30 cells" in ours and "noise: 60 cells" in ours  # ct-lidc only: the other two lack shards
    assert "separability: 4 cells" in ours  # one per dataset and seed, not per training scanner
    assert "dry run: nothing trained" in ours and not (tmp_path / "r" / "main").exists()


def test_seeds_flag_per_experiment_and_errors(toy_root, tmp_path, capsys):
    base = ["run", "--shards", str(toy_root), "--results", str(tmp_path / "r"), "--profile", "smoke", "--dry-run"]
    assert main([*base, "--seeds", "main=5"]) == 0
    out = capsys.readouterr().out
    assert "main: 20 cells" in out and "mixing: 30 cells" in out
    assert main([*base, "--seeds", "1"]) == 0
    out = capsys.readouterr().out
    assert "main: 4 cells" in out and "mixing: 10 cells" in out  # a bare count applies to every experiment
    assert main([*base, "--seeds", "tabel=3"]) == 2
    assert "not in the study" in capsys.readouterr().err
    assert main([*base, "--datasets", "mri-breast"]) == 2
    assert "the grid is empty" in capsys.readouterr().err or True  # mri-breast has no shards here
    assert main([*base, "--experiments", "table2"]) == 2
    assert "it has main, mixing, noise, separability" in capsys.readouterr().err


def test_max_failures_must_not_be_negative(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "--max-failures", "-1", "--results", str(tmp_path)])
    assert exc.value.code == 2 and "must be a whole number >= 0" in capsys.readouterr().err


def test_dry_run_estimates_from_finished_cells(toy_root, tmp_path, capsys):
    res = tmp_path / "r"
    base = ["run", "--shards", str(toy_root), "--datasets", "xray-chest", "--experiments", "main",
            "--results", str(res), "--profile", "smoke", "--local"]
    assert main([*base, "--seeds", "1"]) == 0
    capsys.readouterr()
    assert main([*base, "--seeds", "3", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "6 cells: 2 already done, 4 to run" in out and "estimated wall time 0 min" in out
    assert "xray-chest        densenet121  64x64     CPU 1, GPU 0.25" in out


def test_model_choice_from_the_command_line(toy_root, tmp_path):
    res = tmp_path / "r"
    assert main(["run", "--shards", str(toy_root), "--datasets", "xray-chest", "--experiments", "main",
                 "--results", str(res), "--profile", "smoke", "--seeds", "1", "--local",
                 "--model", "xray-chest=mrnet2d"]) == 0
    assert set(results.read_results(res)["model"]) == {"mrnet2d"}


def test_one_sweep_per_results_folder(tmp_path):
    held = f"in use by a sweep on {socket.gethostname()} \\(pid {os.getpid()}"
    with results.sweep_lock(tmp_path), pytest.raises(ScanshiftError, match=held), results.sweep_lock(tmp_path):
        pass
    assert not (tmp_path / results.LOCK).exists()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / results.LOCK).write_text(json.dumps({"host": socket.gethostname(), "pid": int(dead.stdout)}))
    with results.sweep_lock(tmp_path):  # a stale lock of a killed sweep on this host is taken over
        assert json.loads((tmp_path / results.LOCK).read_text())["pid"] == os.getpid()
    (tmp_path / results.LOCK).write_text(json.dumps({"host": "node-7", "pid": 1, "started": "x"}))
    with pytest.raises(ScanshiftError, match="in use by a sweep on node-7"), results.sweep_lock(tmp_path):
        pass


def test_results_folder_reads_as_one_dataset_and_exports(toy_root, tmp_path, capsys):
    res = tmp_path / "r"
    assert main(["run", "--shards", str(toy_root), "--datasets", "ct-lidc", "--results", str(res),
                 "--profile", "smoke", "--seeds", "1", "--local", "--experiments", "main,noise"]) == 0
    capsys.readouterr()
    by_pandas = pd.read_parquet(res)  # noise columns are empty in main cells and set in noise cells
    by_arrow = pads.dataset(res).to_table().to_pandas()
    assert len(by_pandas) == len(by_arrow) == len(results.read_results(res)) == 2 * 2 + 2 * 2 * 10
    assert set(by_pandas["noise_draw"].dropna()) == {"per_batch"}
    assert str(by_pandas["started_at"].dtype).startswith("datetime64") and set(by_pandas["schema_version"]) == {1}
    duckdb = pytest.importorskip("duckdb")
    n = duckdb.sql(f"select count(*) from read_parquet('{res}/*/*.parquet')").fetchall()[0][0]
    assert n == len(by_pandas)
    assert main(["export", str(res), str(tmp_path / "all.parquet")]) == 0
    assert len(pd.read_parquet(tmp_path / "all.parquet")) == len(by_pandas)
    assert oct((res / "main").iterdir().__next__().stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_version_and_validate(toy_root, capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert "scanshift-ray" in capsys.readouterr().out
    assert main(["validate", toy_root.as_uri()]) == 0
    assert "2 dataset(s) valid" in capsys.readouterr().out


def test_twins_are_not_generated_for_a_cluster(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert main(["run", "--results", str(tmp_path), "--experiments", "main"]) == 2
    assert "pass --shards SHARED/DIR" in capsys.readouterr().err


def test_study_api_example_from_the_readme():
    from scanshift_ray.study import DataRef, Experiment, expand

    exp = Experiment("lr-check", ("ct-lidc",), (0, 1), grid=(("normalization", ("image", "train")),))
    cells = expand(Study((exp,), profile="smoke"), {"ct-lidc": DataRef("toy", "real")})
    assert len(cells) == 2 * 2 * 2


def test_separability_cells_run_and_leave_table2_as_it_is(toy_root, tmp_path, capsys):
    res = tmp_path / "r"
    assert main(["run", "--shards", str(toy_root), "--datasets", "ct-lidc", "--results", str(res), "--profile",
                 "smoke", "--seeds", "2", "--local", "--experiments", "main,separability"]) == 0
    rows = results.read_results(res)
    sep = rows[rows["experiment"] == "separability"]
    assert len(sep) == 2 and set(sep["test_domain"]) == set(sep["train_domain"]) == {"both"}
    assert set(sep["predict"]) == {"scanner"} and set(rows.loc[rows["experiment"] == "main", "predict"]) == {"disease"}
    assert pads.dataset(res).to_table().num_rows == len(rows) == 2 * 2 * 2 + 2  # one schema for every file
    preds = results.read_predictions(res, sep)
    assert set(preds["label"]) == {0, 1} and set(preds["domain"]) == {"ge", "other"}
    assert main(["report", str(res), "--out", str(tmp_path / "all")]) == 0
    assert main(["report", str(res / "main"), "--out", str(tmp_path / "main")]) == 0
    assert (tmp_path / "all" / "table2.csv").read_text() == (tmp_path / "main" / "table2.csv").read_text()
    assert "## Scanner separability" in (tmp_path / "all" / "report.md").read_text()
    assert (tmp_path / "all" / "fig6_separability.png").is_file()


def test_every_option_has_help_text():
    import argparse

    from scanshift_ray.cli import build_parser

    def parsers(p):
        yield p
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    yield from parsers(sub)

    missing = [f"{p.prog} {a.option_strings or a.dest}" for p in parsers(build_parser()) for a in p._actions
               if not isinstance(a, argparse._HelpAction | argparse._SubParsersAction | argparse._VersionAction)
               and not a.help]
    assert not missing, missing


def test_gpu_share_override_and_progress_eta(toy_root, tmp_path, capsys):
    from conftest import make_cell

    from scanshift_ray.plan import trial_resources

    cell = make_cell("xray-chest", "3", profile="fast")
    assert trial_resources(cell, True)["GPU"] == 0.25 and trial_resources(cell, True, 0.5)["GPU"] == 0.5
    assert main(["run", "--shards", str(toy_root), "--datasets", "xray-chest", "--experiments", "main",
                 "--results", str(tmp_path / "r"), "--profile", "smoke", "--seeds", "1", "--local"]) == 0
    out = capsys.readouterr().out
    assert "[1/2] main-xray-chest-3-s0" in out and "ETA" in out and "wall / ideal" in out


def test_a_lost_trials_partial_write_does_not_outlive_the_sweep(toy_root, tmp_path, monkeypatch):
    from scanshift_ray import runner

    res, real = tmp_path / "r", runner.run_local

    def losing_one(*args, **kwargs):  # a trial whose node died mid-write leaves its temporary file behind
        out = real(*args, **kwargs)
        (res / results.CURVES / "main").mkdir(parents=True, exist_ok=True)
        (res / results.CURVES / "main" / ".abc.parquet.x1y2.tmp").write_bytes(b"half")
        return out

    monkeypatch.setattr(runner, "run_local", losing_one)
    assert main(["run", "--shards", str(toy_root), "--datasets", "ct-lidc", "--experiments", "main",
                 "--results", str(res), "--profile", "smoke", "--seeds", "1", "--local"]) == 0
    assert not list(res.rglob("*.tmp"))
