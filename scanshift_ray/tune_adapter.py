"""The only module that runs Ray Tune: runs a list of cells as Tune grids (waves of at most WAVE_SIZE).

Each Tune trial is one cell. It reads its dataset's shards (memory-mapped, so trials on one node
share the page cache instead of each holding a copy), calls the plain `trial.run_trial`, reports
per-epoch progress (and checkpoints of long trials) with `tune.report`, and writes its predictions,
validation curve and finally its rows to the results folder itself (`results.write_output`: the rows
commit the cell), reporting only a few numbers, so Tune's experiment state does not grow with what a
cell stores. A callback in the driver checks each committed cell is visible from the driver, records
cells that failed for good, and deletes spent checkpoints. A killed driver loses at most the cells that
were still training.
Ray 2.60 API: `tune.report(dict)`, configs imported from `ray.tune`.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import ray
from ray import tune

from scanshift_ray import results
from scanshift_ray.datasets import DATASETS
from scanshift_ray.errors import ScanshiftError
from scanshift_ray.local_ray import (
    env_defaults,
    fills_every_cpu,
    pending_trials_env,
    start_ray,
    tune_actors_inherit_env,
)
from scanshift_ray.plan import progress_line, trial_resources
from scanshift_ray.profiles import PROFILES
from scanshift_ray.shards import load_domains
from scanshift_ray.storage import is_uri
from scanshift_ray.study import Cell


@dataclass(frozen=True)
class RunReport:
    """What one call of `run_cells` did."""

    finished: int
    failed: dict[str, str]  # cell_id -> error
    wall_seconds: float
    train_seconds: float  # sum over finished trials of their training loops
    cpus: float
    trial_seconds: float = 0.0  # sum over finished trials of their whole wall time


def _trainable(config: dict[str, Any], cells: dict[str, dict], shard_root: str, results_dir: str, storage: str,
               checkpoint_every: int | None) -> None:
    """One Tune trial = one cell: train, write its predictions and rows (the rows commit the cell), and
    report only small numbers, so Tune's experiment state does not grow with what a cell stores."""
    import torch

    from scanshift_ray.trial import run_trial

    cell = Cell.from_dict(cells[config["cell"]["cell_id"]])
    if results.is_done(results_dir, cell.experiment, cell.cell_id):  # a retry after its rows were written
        tune.report({"cell_done": 1, "already_written": 1})
        return
    torch.set_num_threads(max(1, int(tune.get_context().get_trial_resources().required_resources
                                      .get("CPU", 1))))
    shards = load_domains(shard_root, DATASETS.get(cell.dataset))
    every = checkpoint_every
    if every is None:
        every = PROFILES.get(cell.profile).checkpoint_every if cell.profile in PROFILES else 0
    out = run_trial(cell, shards, on_epoch=_progress(cell), resume=_resume_state(cell, storage),
                    checkpoint_every=every)
    placement = {"node_ip": ray.util.get_node_ip_address(), "gpu_ids": ",".join(map(str, ray.get_gpu_ids()))}
    rows = [{**r, **placement} for r in out.rows]
    results.write_output(results_dir, rows, out.predictions, out.curve)
    # AUC per test domain, named by the domain's role ("same"/"other"; "both" for a scanner cell)
    aucs = {("same" if r["same_domain"] else "other" if r["test_domain"] != "both" else "both"): r["auc"]
            for r in rows}
    tune.report({"epoch": rows[0]["epochs"], **{f"auc_{k}": v for k, v in aucs.items()}, "cell_done": 1,
                 "trial_wall_seconds": rows[0]["wall_seconds"], "train_seconds": rows[0]["train_seconds"]})


def _resume_state(cell: Cell, storage: str) -> dict | None:
    """The training state to resume: Tune's checkpoint of this trial (a retry, e.g. after a lost node),
    else the newest one an earlier sweep left for this cell (a killed driver), else None."""
    from scanshift_ray import checkpoints

    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as folder:
            state = checkpoints.load(folder, cell.cell_id)
            if state is not None:
                return state
    return None if is_uri(storage) else checkpoints.find_latest(storage, cell.cell_id)


def _progress(cell: Cell) -> Callable[[dict, dict | None], None]:
    """Per-epoch progress to Tune; with a training state, also a Tune checkpoint of it."""
    import tempfile

    from scanshift_ray import checkpoints

    def report(rec: dict, state: dict | None) -> None:
        metrics = {"epoch": rec["epoch"], "loss": rec["loss"]}
        if rec["note_val"] != "not validated":  # the table and trackers keep the last validated AUC
            metrics["val_auc"] = rec["auc_val"]
        if state is None:
            tune.report(metrics)
            return
        with tempfile.TemporaryDirectory() as folder:
            checkpoints.save(folder, cell.cell_id, state)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
    return report


class _ResultWriter(tune.Callback):
    """Driver-side bookkeeping: checks each finished cell is visible here, records cells that failed for
    good, deletes spent checkpoints, prints progress with an ETA."""

    def __init__(self, results_dir: str, cells: Mapping[str, Cell], storage: str,
                 log: Callable[[str], None] = print) -> None:
        self.results_dir, self.cells, self.storage, self.log = results_dir, dict(cells), storage, log
        self.total = len(self.cells)
        self.train_seconds = self.trial_seconds = 0.0
        self.finished = 0
        self.start = time.time()

    def __getstate__(self) -> dict:  # Tune pickles callbacks into its experiment state; a log function may not
        return {**self.__dict__, "log": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update({**state, "log": state.get("log") or print})

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if "cell_done" not in result:
            return
        cell = self.cells[trial.config["cell"]["cell_id"]]
        if not results.is_done(self.results_dir, cell.experiment, cell.cell_id):
            results.record_failure(self.results_dir, {**cell.to_dict(), "cell_id": cell.cell_id}, (
                f"the rows written on node {result.get('node_ip', '?')} are not visible to the driver at "
                f"{self.results_dir}: use a results folder all nodes share (NFS) or an s3:// / gs:// URI"))
            return
        self.finished += 1
        self.train_seconds += float(result.get("train_seconds", 0.0))
        self.trial_seconds += float(result.get("trial_wall_seconds", 0.0))
        aucs = [{"test_domain": k[4:], "auc": v} for k, v in result.items() if k.startswith("auc_")]
        self.log(progress_line(self.finished, self.total, time.time() - self.start, cell.label(), aucs))

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        from scanshift_ray import checkpoints

        cell_id = trial.config["cell"]["cell_id"]
        if not is_uri(self.storage) and results.is_done(self.results_dir, self.cells[cell_id].experiment, cell_id):
            checkpoints.delete_for(self.storage, cell_id)  # the result is written: the checkpoints are spent

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        error_file = str(getattr(trial, "error_file", "") or "")
        error = ""
        if error_file and os.path.exists(error_file):
            lines = [ln for ln in Path(error_file).read_text().splitlines() if ln.strip()]
            error = lines[-1] if lines else ""
        cell = self.cells[trial.config["cell"]["cell_id"]]
        if results.is_done(self.results_dir, cell.experiment, cell.cell_id):
            return  # its rows were committed before the error (e.g. in the final report): the cell is done
        record = {"cell_id": cell.cell_id, "attempts": int(getattr(trial, "num_failures", 0) or 0),
                  "traceback_file": error_file, **cell.to_dict()}
        results.record_failure(self.results_dir, record, error or "trial failed")


class _Namer:
    """Trial names (`label-xxxxx`) or folder names (`<cell_id>-xxxxx`, so a later sweep finds a cell's
    checkpoints). Tune's grid holds only each cell's id and label: a grid of whole configs costs Tune a
    deep copy per trial (about 2x the driver CPU and 10 s more before the first trial of a 1,000-cell
    wave), and a namer holding the wave's labels would be pickled into every trial's state."""

    def __init__(self, key: str) -> None:
        self.key = key  # "label" or "cell_id"

    def __call__(self, trial: Any) -> str:
        return f"{trial.config['cell'][self.key]}-{trial.trial_id[-5:]}"


class _WaveResources:
    """A wave's trial resources by cell id, for `tune.with_resources`. Ray caches each wave's trainable
    class for the driver's lifetime (and with it this object), so the wave clears it when it is done:
    holding the wave's cells here would keep every wave's cells alive."""

    def __init__(self, wave: Mapping[str, Cell], gpus: bool, gpus_per_trial: float | None) -> None:
        self.by_cell = {k: trial_resources(c, gpus, gpus_per_trial) for k, c in wave.items()}

    def __call__(self, config: dict) -> tune.PlacementGroupFactory:
        return tune.PlacementGroupFactory([self.by_cell[config["cell"]["cell_id"]]])

    def clear(self) -> None:
        self.by_cell = {}


def _probe(path: str) -> bool:
    return os.path.exists(path)


def check_shared(paths: Sequence[str], probe: Callable[[str], bool] = _probe) -> None:
    """On a cluster of several nodes, refuse local paths that some node cannot see, before any trial.

    Each path must exist on the driver; a task pinned to every other alive node checks it there.
    """
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    if len(nodes) < 2:
        return
    check = ray.remote(num_cpus=0)(probe)
    for path in paths:
        for node in nodes:
            strategy = NodeAffinitySchedulingStrategy(node_id=node["NodeID"], soft=False)
            if not ray.get(check.options(scheduling_strategy=strategy).remote(path)):
                raise ScanshiftError(f"{path} is not visible on node {node['NodeManagerAddress']}: on a cluster pass "
                                     "a folder every node mounts (NFS) or an s3:// / gs:// URI")


TRACKERS = ("mlflow", "wandb", "tensorboard")
WAVE_SIZE = 1000  # trials per Tune run (see run_cells)


def tracker_callbacks(tracker: str | None, results_dir: str) -> list:
    """Ray Tune's own logger callback for `tracker`, in a mode that needs no server.

    mlflow: a file store under `<results>/_mlflow` unless MLFLOW_TRACKING_URI is set; wandb: offline
    unless WANDB_MODE says otherwise (sync later with `wandb sync`); tensorboard: event files in each
    trial's folder under the Tune storage (`tensorboard --logdir <results>/_tune`).
    """
    if tracker is None:
        return []
    needs = {"mlflow": "mlflow-skinny", "wandb": "wandb", "tensorboard": "tensorboardX"}
    try:
        if tracker == "mlflow":
            from ray.air.integrations.mlflow import MLflowLoggerCallback

            uri = os.environ.get("MLFLOW_TRACKING_URI")
            if uri is None:  # the file store: no server; MLflow 3 asks for an explicit opt-in to it
                uri = Path(results_dir, "_mlflow").resolve().as_uri()
                os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            return [MLflowLoggerCallback(tracking_uri=uri, experiment_name="scanshift", save_artifact=False)]
        if tracker == "wandb":
            import wandb  # noqa: F401
            from ray.air.integrations.wandb import WandbLoggerCallback

            os.environ.setdefault("WANDB_MODE", "offline")
            return [WandbLoggerCallback(project="scanshift")]
        if tracker == "tensorboard":
            import tensorboardX  # noqa: F401
            from ray.tune.logger import TBXLoggerCallback

            return [TBXLoggerCallback()]
    except ImportError:
        raise ScanshiftError(f"--tracker {tracker} needs the {needs[tracker]} package: pip install "
                             f"{needs[tracker]}") from None
    raise ScanshiftError(f"--tracker must be one of {', '.join(TRACKERS)}, got {tracker!r}")


def _check_cluster_paths(cells: Sequence[Cell], shard_root: str, results_dir: str, storage: str) -> None:
    """`check_shared` on a marker file in each local results / Tune folder (a path that merely exists on
    every node, e.g. a local /data on each, is not shared) and on one shard file of the sweep."""
    markers = []
    for folder in {p for p in (results_dir, storage) if not is_uri(p)}:
        Path(folder).mkdir(parents=True, exist_ok=True)
        marker = Path(folder) / f".probe-{uuid.uuid4().hex}"
        marker.write_text("scanshift-ray: is this folder shared by every node?")
        markers.append(marker)
    try:
        shard = [] if is_uri(shard_root) or not cells else [
            str(Path(shard_root) / cells[0].dataset / f"{cells[0].train_domain}.h5")]
        check_shared([*map(str, markers), *shard])
    finally:
        for marker in markers:
            marker.unlink(missing_ok=True)


def _stop_if_interrupted(results_dir: str, wave: Mapping[str, Cell]) -> None:
    """Tune returns normally when Ctrl-C (or SIGUSR1) stops it; a wave with cells neither done nor failed
    was interrupted, so the sweep stops here instead of starting the next wave."""
    open_cells = set(wave) - results.done_cells(results_dir) - set(results.failed_cells(results_dir))
    if open_cells:
        raise KeyboardInterrupt(f"{len(open_cells)} cells of the sweep were interrupted")


class _WaveOptions(NamedTuple):
    """The sweep's options every wave's Tune run is built with."""

    max_failures: int
    verbose: int
    gpus_per_trial: float | None
    max_concurrent: int | None
    checkpoint_every: int | None
    tracker: str | None


def _run_wave(wave: Mapping[str, Cell], name: str, writer: _ResultWriter, shard_root: str, results_dir: str,
              storage: str, gpus: bool, opt: _WaveOptions) -> None:
    """One Tune run over the cells of `wave` (cell id -> cell), named `name`."""
    resources = _WaveResources(wave, gpus, opt.gpus_per_trial)
    trainable = tune.with_resources(
        tune.with_parameters(_trainable, cells={k: c.to_dict() for k, c in wave.items()}, shard_root=shard_root,
                             results_dir=results_dir, storage=storage, checkpoint_every=opt.checkpoint_every),
        resources)
    # A new callback list per wave: Tune appends its own callbacks (progress, CSV/JSON/TensorBoard
    # loggers) to the list it is given, and callbacks reused by the next wave keep every earlier
    # wave's trials (their results, open files) alive, so the driver's memory grew with each wave.
    callbacks = [writer, *tracker_callbacks(opt.tracker, results_dir)]
    _fit(trainable, wave, name, storage, callbacks, opt)
    resources.clear()


def _fit(trainable: Any, wave: Mapping[str, Cell], name: str, storage: str, callbacks: list,
         opt: _WaveOptions) -> None:
    tune.Tuner(
        trainable,
        param_space={"cell": tune.grid_search([{"cell_id": k, "label": c.label()} for k, c in wave.items()])},
        tune_config=tune.TuneConfig(reuse_actors=True, max_concurrent_trials=opt.max_concurrent,
                                    trial_name_creator=_Namer("label"), trial_dirname_creator=_Namer("cell_id")),
        run_config=tune.RunConfig(
            name=name, storage_path=storage, failure_config=tune.FailureConfig(max_failures=opt.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            callbacks=callbacks, verbose=min(opt.verbose, 1), progress_reporter=_reporter()),
    ).fit()


def run_cells(cells: Sequence[Cell], shard_root: str | Path, results_dir: str | Path,
              max_failures: int = 2, verbose: int = 1, tune_storage: str | None = None,
              gpus_per_trial: float | None = None, max_concurrent: int | None = None,
              log: Callable[[str], None] = print, checkpoint_every: int | None = None,
              tracker: str | None = None, wave_size: int = WAVE_SIZE) -> RunReport:
    """Run `cells` with Ray Tune (starting a local Ray unless one is reachable); each trial writes its rows.

    Args:
        cells: the cells still to run.
        shard_root: folder or URI holding `<key>/<domain>.h5`; must be reachable from every node.
        results_dir: folder or URI where the trials write predictions and rows; on several nodes it
            must be shared (checked before any trial).
        max_failures: Tune retries per trial before it is recorded as failed (>= 0).
        verbose: 0 quiet, 1 the progress table, 2 also the workers' logs.
        tune_storage: Tune's storage_path (default `<results>/_tune`); on several nodes it must be
            shared (NFS or s3://), as Ray 2.60 no longer syncs trial folders to the head.
        gpus_per_trial, max_concurrent: override the models' GPU shares; cap the trials running at once.
        checkpoint_every: epochs between checkpoints (default: the profile's; 0 none).
        tracker: also log every trial to mlflow, wandb or tensorboard (`tracker_callbacks`).
        wave_size: at most this many trials per Tune run; a larger grid runs as consecutive waves, so the
            driver's cost per cell and Tune's state stay flat however large the grid is.
    """
    start = time.time()
    results_dir = str(results_dir) if is_uri(results_dir) else str(Path(results_dir).resolve())
    shard_root = str(shard_root) if is_uri(shard_root) else str(Path(shard_root).resolve())
    wave_size = max(1, wave_size)
    local = start_ray(verbose, warm_workers=fills_every_cpu(cells[:wave_size], gpus_per_trial, max_concurrent))
    storage = tune_storage or f"{results_dir.rstrip('/')}/_tune"
    _check_cluster_paths(cells, shard_root, results_dir, storage)
    cpus = float(ray.cluster_resources().get("CPU", 1.0))
    gpus = ray.cluster_resources().get("GPU", 0.0) > 0
    writer = _ResultWriter(results_dir, {c.cell_id: c for c in cells}, storage, log)
    name = f"sweep-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{uuid.uuid4().hex[:6]}"  # one per sweep
    opt = _WaveOptions(max_failures, verbose, gpus_per_trial, max_concurrent, checkpoint_every, tracker)
    with env_defaults(pending_trials_env(local, cpus)), tune_actors_inherit_env():  # read as each wave starts
        for i in range(0, len(cells), wave_size):
            wave = {c.cell_id: c for c in cells[i:i + wave_size]}
            _run_wave(wave, f"{name}-w{i // wave_size}", writer, shard_root, results_dir, storage, gpus, opt)
            _stop_if_interrupted(results_dir, wave)
    done = results.done_cells(results_dir)
    ids = {c.cell_id for c in cells}
    failed = {k: v for k, v in results.failed_cells(results_dir).items() if k in ids and k not in done}
    return RunReport(writer.finished, failed, time.time() - start, writer.train_seconds, cpus, writer.trial_seconds)


def _reporter() -> tune.ProgressReporter:
    """The classic reporter: one compact status table every 30 s with the columns that matter here."""
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    return tune.CLIReporter(
        metric_columns={"epoch": "epoch", "loss": "loss", "val_auc": "val AUC", "auc_same": "AUC same",
                        "auc_other": "AUC other", "auc_both": "AUC scanner"},
        parameter_columns={"cell/cell_id": "cell id"},
        max_report_frequency=30, max_progress_rows=12, print_intermediate_tables=True)
