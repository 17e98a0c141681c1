"""A sweep killed with SIGKILL mid-run loses nothing written and redoes nothing finished."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from scanshift_ray import results

ROOT = Path(__file__).resolve().parents[1]


def _cmd(shards: Path, res: Path) -> list[str]:
    return [sys.executable, str(ROOT / "sweeps" / "full_study.py"), "--shards", str(shards), "--results", str(res),
            "--datasets", "xray-chest", "--profile", "smoke", "--seeds", "4", "--local", "--experiments", "main"]


def test_sigkill_then_rerun_completes_each_cell_once(toy_root, tmp_path):
    res = tmp_path / "res"
    proc = subprocess.Popen(_cmd(toy_root, res), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and len(results.done_cells(res)) < 2:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = results.done_cells(res)
    assert 2 <= len(done_before) < 8, "the kill should land mid-sweep"
    mtimes = {p: p.stat().st_mtime_ns for p in res.rglob("*.parquet")}
    for p in mtimes:
        pd.read_parquet(p)  # every file that exists is complete
    rerun = subprocess.run(_cmd(toy_root, res), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(done_before)} already done" in rerun.stdout
    df = results.read_results(res)
    assert df["cell_id"].nunique() == 8 and len(df) == 16  # 2 domains x 4 seeds, 2 rows each
    assert all(p.stat().st_mtime_ns == t for p, t in mtimes.items())  # finished cells were not redone
    assert not list(res.rglob("*.tmp"))
