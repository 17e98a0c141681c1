"""Ray Tune adapter: a real (local) Ray run of a small grid; re-running it trains nothing."""

import pytest
from conftest import cell_on, make_cell

from scanshift_ray import results
from scanshift_ray.runner import run_study
from scanshift_ray.study import EXPERIMENTS, Study, restrict
from scanshift_ray.tune_adapter import trial_resources

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_session(tmp_path_factory):
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False,
             _temp_dir=str(tmp_path_factory.mktemp("ray")))
    yield
    ray.shutdown()


@pytest.mark.slow
def test_sweep_through_tune_writes_each_cell_once(toy_root, tmp_path, ray_session):
    study = Study((restrict(EXPERIMENTS.get("main"), ("ct-lidc",), (0,)),), profile="smoke")
    res = tmp_path / "res"
    out = run_study(study, toy_root, res, backend="ray", log=lambda s: None)
    assert (out.total, out.ran, out.failed) == (2, 2, {})
    df = results.read_results(res)
    assert len(df) == 4 and df["cell_id"].nunique() == 2
    preds = results.read_predictions(res, df)  # written by the trials, visible to the driver
    assert set(preds["cell_id"]) == set(df["cell_id"])
    state = "".join(p.read_text() for p in (res / "_tune").rglob("experiment_state*.json"))
    assert state and "rows_json" not in state and "auc_note" not in state  # Tune's state holds no rows
    again = run_study(study, toy_root, res, backend="ray", log=lambda s: None)
    assert (again.already_done, again.ran) == (2, 0)


@pytest.mark.slow
def test_failing_cell_is_recorded_and_the_rest_completes(toy_root, tmp_path, ray_session):
    from scanshift_ray.tune_adapter import run_cells

    (toy_root / "ct-lidc" / "other.h5").write_bytes(b"corrupt")  # the trial itself reads the shard

    good = cell_on(toy_root, "xray-chest", "3")
    bad = make_cell("ct-lidc", "ge")
    rep = run_cells([good, bad], toy_root, tmp_path, max_failures=1, verbose=0)
    assert rep.finished == 1 and set(rep.failed) == {bad.cell_id}
    assert "other.h5" in rep.failed[bad.cell_id]
    assert results.done_cells(tmp_path) == {good.cell_id}


def test_gpu_share_depends_on_model_and_size():
    small = make_cell("ct-lidc", "ge", profile="fast")
    big = make_cell("xray-chest", "3", profile="paper")
    cube = make_cell("ct-oropharyngeal", "ge", profile="paper")
    assert trial_resources(small, gpus_available=True)["GPU"] == 0.25
    assert trial_resources(big, gpus_available=True)["GPU"] == 1.0
    assert trial_resources(cube, gpus_available=True)["GPU"] == 1.0
    assert trial_resources(big, gpus_available=False) == {"CPU": 1.0, "GPU": 0.0}


@pytest.mark.slow
def test_a_new_sweep_resumes_from_a_killed_sweeps_checkpoint(toy_root, tmp_path, ray_session):
    from scanshift_ray import checkpoints, shards
    from scanshift_ray.datasets import DATASETS
    from scanshift_ray.runner import pending_cells
    from scanshift_ray.trial import run_trial

    study = Study((restrict(EXPERIMENTS.get("main"), ("xray-chest",), (0,)),), profile="smoke")
    res = tmp_path / "res"
    cell = pending_cells(study, toy_root, res)[0][0]
    loaded = shards.load_domains(toy_root, DATASETS.get("xray-chest"))
    saved = {}
    plain = run_trial(cell, loaded, on_epoch=lambda rec, st: saved.update({rec["epoch"]: st}) if st else None,
                      checkpoint_every=1)
    folder = res / "_tune" / "sweep-killed" / f"{cell.cell_id}-00000" / "checkpoint_000000"
    folder.mkdir(parents=True)
    checkpoints.save(folder, cell.cell_id, saved[1])  # what a sweep killed after epoch 1 leaves behind
    run_study(study, toy_root, res, backend="ray", log=lambda s: None, checkpoint_every=1)
    rows = results.read_results(res)
    mine = rows[rows["cell_id"] == cell.cell_id].sort_values("test_domain")
    assert set(mine["resumed_from_epoch"]) == {1}
    assert mine["auc"].tolist() == [r["auc"] for r in sorted(plain.rows, key=lambda r: r["test_domain"])]
    assert not folder.exists() and not list((res / "_tune").glob("*/*/checkpoint_*"))  # spent, deleted


@pytest.mark.slow
def test_mlflow_tracker_logs_every_trial_to_a_file_store(toy_root, tmp_path, ray_session):
    mlflow = pytest.importorskip("mlflow")
    study = Study((restrict(EXPERIMENTS.get("main"), ("xray-chest",), (0,)),), profile="smoke")
    res = tmp_path / "res"
    run_study(study, toy_root, res, backend="ray", log=lambda s: None, tracker="mlflow")
    mlflow.set_tracking_uri((res / "_mlflow").resolve().as_uri())
    runs = mlflow.search_runs(experiment_names=["scanshift"])
    assert len(runs) == 2 and "metrics.val_auc" in runs.columns and "metrics.auc_same" in runs.columns
    assert set(runs["params.cell/cell_id"]) == set(results.read_results(res)["cell_id"])  # joins the ledger
    assert len(results.read_results(res)) == 4  # the tracker is beside the ledger, not instead of it


def test_a_missing_tracker_package_is_one_line(monkeypatch):
    import builtins

    from scanshift_ray.errors import ScanshiftError
    from scanshift_ray.tune_adapter import tracker_callbacks

    real = builtins.__import__

    def no_wandb(name, *args, **kw):
        if name == "wandb":
            raise ImportError(name)
        return real(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_wandb)
    with pytest.raises(ScanshiftError, match="needs the wandb package"):
        tracker_callbacks("wandb", "/tmp")


@pytest.mark.slow
def test_separability_cells_under_ray_finish_once_without_failure_records(toy_root, tmp_path, ray_session):
    study = Study((restrict(EXPERIMENTS.get("separability"), ("xray-chest",), (0,)),), profile="smoke")
    res = tmp_path / "res"
    lines = []
    out = run_study(study, toy_root, res, backend="ray", log=lines.append, max_failures=0)
    assert (out.total, out.ran, out.failed) == (1, 1, {}) and out.trial_seconds > 0
    assert not (res / "_failed").exists() and any("both" in line for line in lines)
    assert set(results.read_results(res)["test_domain"]) == {"both"}


def test_an_interrupted_wave_stops_the_sweep(tmp_path):
    from conftest import make_cell

    from scanshift_ray.tune_adapter import _stop_if_interrupted

    done, failed, open_ = (make_cell("xray-chest", "3", seed=s) for s in range(3))
    results.write_cell(tmp_path, [{"experiment": "main", "cell_id": done.cell_id, "auc": 0.5}])
    results.record_failure(tmp_path, {"cell_id": failed.cell_id}, "boom")
    _stop_if_interrupted(str(tmp_path), {c.cell_id: c for c in (done, failed)})  # all accounted for
    with pytest.raises(KeyboardInterrupt):
        _stop_if_interrupted(str(tmp_path), {c.cell_id: c for c in (done, failed, open_)})


def test_each_wave_gets_fresh_callbacks_and_releases_its_cells(tmp_path, monkeypatch):
    """Tune appends its own callbacks (progress, loggers holding every trial) to the list it is given:
    a list shared by the waves kept every earlier wave's trials alive, so the driver's memory grew per
    wave. Each wave's resource table is emptied once the wave is done (Ray caches the trainable)."""
    from conftest import make_cell

    from scanshift_ray import tune_adapter

    cells = [make_cell("xray-chest", "3", seed=s) for s in range(3)]
    seen_callbacks, seen_resources = [], []

    class FakeTuner:
        def __init__(self, trainable, param_space, tune_config, run_config):
            self.ids = [v["cell_id"] for v in param_space["cell"]["grid_search"]]
            self.callbacks = run_config.callbacks
            seen_callbacks.append(list(self.callbacks))

        def fit(self):
            self.callbacks.append(object())  # what Tune does with the list
            for cell in (c for c in cells if c.cell_id in self.ids):
                results.write_cell(tmp_path, [{"experiment": cell.experiment, "cell_id": cell.cell_id}])

    monkeypatch.setattr(tune_adapter.ray, "is_initialized", lambda: True)
    monkeypatch.setattr(tune_adapter.ray, "nodes", lambda: [])
    monkeypatch.setattr(tune_adapter.ray, "cluster_resources", lambda: {"CPU": 2.0})
    monkeypatch.setattr(tune_adapter.tune, "with_parameters", lambda fn, **kw: fn)
    monkeypatch.setattr(tune_adapter.tune, "with_resources", lambda fn, res: seen_resources.append(res) or fn)
    monkeypatch.setattr(tune_adapter.tune, "Tuner", FakeTuner)
    tune_adapter.run_cells(cells, tmp_path / "shards", tmp_path, verbose=0, log=lambda s: None, wave_size=2)
    assert [len(c) for c in seen_callbacks] == [1, 1]  # the writer only: nothing left from the wave before
    assert len(seen_resources) == 2 and all(r.by_cell == {} for r in seen_resources)
