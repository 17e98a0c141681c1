"""Multi-node behaviour on one machine: `ray.cluster_utils.Cluster` with a CPU-only head and two
worker nodes with one fake GPU each. The sweep runs as its own driver process (`full_study.py` with
RAY_ADDRESS), as on a real cluster; the tests remove a node, SIGKILL the driver, corrupt a shard.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from scanshift_ray import results

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    from ray.cluster_utils import Cluster

    before = os.environ.get("RAY_TMPDIR")
    os.environ["RAY_TMPDIR"] = str(tmp_path_factory.mktemp("raytmp"))  # session files out of /tmp/ray
    c = Cluster(initialize_head=True, connect=False, head_node_args={"num_cpus": 0})
    workers = [c.add_node(num_cpus=4, num_gpus=1) for _ in range(2)]
    c.wait_for_nodes()
    yield c, workers
    c.shutdown()
    if before is None:
        os.environ.pop("RAY_TMPDIR", None)
    else:
        os.environ["RAY_TMPDIR"] = before


def _sweep(shards: Path, res: Path, address: str, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, str(ROOT / "sweeps" / "full_study.py"), "--shards", str(shards), "--results", str(res),
           "--profile", "smoke", "--experiments", "main", "--max-failures", "2", *extra]
    return subprocess.Popen(cmd, env={**os.environ, "RAY_ADDRESS": address}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_done(res: Path, n: int, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and len(results.done_cells(res)) < n and proc.poll() is None:
        time.sleep(0.1)


def _wait_trials_gone(address: str, timeout: float = 120) -> None:
    """Until every actor on the cluster is dead: after its driver's SIGKILL, Ray kills the job's trial
    actors, and a trial finishing meanwhile still writes its (whole, rightly kept) result."""
    from ray._private import services, state

    table = state.GlobalState()
    table._initialize_global_state(services._get_gcs_client_options(address))
    try:
        deadline = time.time() + timeout
        while time.time() < deadline and any(a["State"] != "DEAD" for a in table.actor_table(None).values()):
            time.sleep(0.2)
    finally:
        table.disconnect()


def _each_cell_once(res: Path, n_cells: int) -> pd.DataFrame:
    files = list(res.glob("main/*.parquet"))
    df = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)  # every file is complete
    assert len(files) == n_cells and df["cell_id"].nunique() == n_cells and len(df) == 2 * n_cells
    assert not list(res.rglob("*.tmp"))
    return df


def test_worker_node_removed_mid_sweep_completes_every_cell_once(cluster, toy_root, tmp_path):
    c, workers = cluster
    res = tmp_path / "res"
    proc = _sweep(toy_root, res, c.address, "--datasets", "ct-lidc", "--seeds", "5")
    _wait_done(res, 2, proc)
    if proc.poll() is not None:  # say why the sweep ended early (e.g. it ran every cell before the removal)
        pytest.fail(f"the node must be removed mid-sweep; the sweep ended: {proc.communicate()[1][-1500:]}")
    c.remove_node(workers.pop(), allow_graceful=False)
    out, err = proc.communicate(timeout=400)
    assert proc.returncode == 0, err[-2000:]
    _each_cell_once(res, 10)
    workers.append(c.add_node(num_cpus=4, num_gpus=1))  # restore the cluster for the next tests
    c.wait_for_nodes()


def test_driver_sigkill_then_same_command_runs_only_unfinished_cells(cluster, toy_root, tmp_path):
    c, _ = cluster
    res = tmp_path / "res"
    args = ("--datasets", "ct-lidc", "--seeds", "8")
    proc = _sweep(toy_root, res, c.address, *args)
    _wait_done(res, 3, proc)
    if proc.poll() is not None:
        pytest.fail(f"the kill must land mid-sweep; the sweep ended: {proc.communicate()[1][-1500:]}")
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    _wait_trials_gone(c.address)  # what is on disk after that is what the same command must find done
    before = {p: p.stat().st_mtime_ns for p in res.glob("main/*.parquet")}
    assert 3 <= len(before) < 16, "the kill should land mid-sweep"
    for p in before:
        pd.read_parquet(p)
    again = _sweep(toy_root, res, c.address, *args)
    out, err = again.communicate(timeout=400)
    assert again.returncode == 0, err[-2000:]
    assert f"{len(before)} already done, {16 - len(before)} to run" in out
    _each_cell_once(res, 16)
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())


def test_a_cell_that_keeps_failing_is_retried_then_recorded(cluster, toy_root, tmp_path):
    c, _ = cluster
    res = tmp_path / "res"
    proc = _sweep(toy_root, res, c.address, "--datasets", "ct-lidc,xray-chest", "--seeds", "1")
    assert proc.stdout is not None
    for line in proc.stdout:  # the driver has validated the shards and expanded the grid
        if "to run" in line:
            (toy_root / "ct-lidc" / "other.h5").write_bytes(b"corrupted after validation")
            break
    out, err = proc.communicate(timeout=400)
    assert proc.returncode == 1, err[-2000:]
    assert "(2 failed cells)" in out and err.count("FAILED") == 2
    failed = pd.DataFrame([pd.read_json(p, typ="series") for p in (res / "_failed").glob("*.json")])
    assert set(failed["dataset"]) == {"ct-lidc"} and (failed["attempts"] == 3).all()  # 1 try + 2 retries
    assert failed["error"].str.contains("other.h5").all()
    assert results.done_cells(res) and set(results.read_results(res)["dataset"]) == {"xray-chest"}


def test_small_trials_share_a_fake_gpu(cluster, toy_root, tmp_path):
    c, _ = cluster
    res = tmp_path / "res"
    proc = _sweep(toy_root, res, c.address, "--datasets", "ct-lidc", "--seeds", "4")
    out, err = proc.communicate(timeout=400)
    assert proc.returncode == 0, err[-2000:]
    df = _each_cell_once(res, 8).drop_duplicates("cell_id")
    assert (df["gpu_ids"].str.len() > 0).all()  # every trial was given a (fake) GPU
    overlapping_on_one_gpu = any(
        a.gpu_ids == b.gpu_ids and a.started_at < b.finished_at and b.started_at < a.finished_at
        for i, a in enumerate(df.itertuples()) for b in list(df.itertuples())[i + 1:])
    assert overlapping_on_one_gpu, "0.25-GPU trials should run side by side on one GPU"


def test_paths_some_node_cannot_see_stop_the_sweep_before_any_trial(cluster, tmp_path):
    import ray

    from scanshift_ray.errors import ScanshiftError
    from scanshift_ray.tune_adapter import check_shared

    c, _ = cluster
    ray.init(address=c.address)
    try:
        check_shared([str(tmp_path)])  # one machine: every node sees it
        head = ray.get_runtime_context().get_node_id()

        def only_on_head(path: str) -> bool:  # a folder on the head's local disk
            return ray.get_runtime_context().get_node_id() == head

        with pytest.raises(ScanshiftError, match="is not visible on node .*NFS"):
            check_shared([str(tmp_path)], probe=only_on_head)
    finally:
        ray.shutdown()
