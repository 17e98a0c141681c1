"""Scale benchmark: the real scheduler path (Ray Tune, waves, trial-written rows) on grids of N cells.

    python benchmarks/scale.py --cells 500,2000,10000

Each size runs in a fresh process: a sweep of N cells of the `noop` profile (the whole trial: shards,
splits, model build, evaluation, predictions and rows; no training) on tiny shards, through
`runner.run_study` with the Ray backend. Per size it prints wall seconds, the driver's CPU seconds
per cell (the driver process only: Ray's own daemons and the trial workers are other processes), the
driver's peak memory, the size of Tune's experiment state per cell, and the time from the start of
the sweep to the first trial's start; then the ratio of the largest to the smallest per-cell figure.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEY = "xray-chest"


def _toy_shards(root: Path) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import write_toy_dataset  # the tests' small real shards

    write_toy_dataset(root, KEY, n_patients=12, per_patient=2)


def measure(cells: int, work: Path) -> dict:
    """Run one sweep of `cells` noop cells in this process and return its figures."""
    import pandas as pd

    from scanshift_ray import results
    from scanshift_ray.runner import run_study
    from scanshift_ray.study import EXPERIMENTS, Study, restrict

    shards, res = work / "shards", work / "results"
    _toy_shards(shards)
    study = Study((restrict(EXPERIMENTS.get("main"), (KEY,), tuple(range(cells // 2))),), profile="noop")
    cpu0, start = time.process_time(), time.time()
    out = run_study(study, shards, res, backend="ray", log=lambda s: None, verbose=0)
    wall, cpu = time.time() - start, time.process_time() - cpu0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before this script reads the results
    rows = results.read_results(res)
    first = (pd.to_datetime(rows["started_at"]).min().timestamp() - start) if len(rows) else float("nan")
    state = sum(p.stat().st_size for p in (res / "_tune").rglob("experiment_state*.json"))
    return {"cells": cells, "ran": out.ran, "failed": len(out.failed), "wall_s": wall, "driver_cpu_s": cpu,
            "cpu_per_cell_ms": 1000 * cpu / cells, "peak_mb": peak,
            "state_kb_per_cell": state / 1024 / cells, "first_trial_s": first}


def main(argv: list[str] | None = None) -> int:
    """Run each size in its own process and print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", default="500,2000", help="comma list of grid sizes (even numbers)")
    p.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: measure one size here
    args = p.parse_args(argv)
    if args.one:
        with tempfile.TemporaryDirectory() as work:
            print(json.dumps(measure(args.one, Path(work))))
        return 0
    figures = []
    for n in (int(v) for v in args.cells.split(",")):
        out = subprocess.run([sys.executable, __file__, "--one", str(n)], capture_output=True, text=True,
                             env={**os.environ, "RAY_AIR_NEW_OUTPUT": "0"})
        if out.returncode:
            print(out.stderr[-3000:], file=sys.stderr)
            return 1
        figures.append(json.loads(out.stdout.strip().splitlines()[-1]))
        f = figures[-1]
        print(f"{f['cells']:>6} cells: {f['wall_s']:7.1f} s wall, driver {f['cpu_per_cell_ms']:6.2f} ms CPU/cell, "
              f"peak {f['peak_mb']:6.0f} MB, Tune state {f['state_kb_per_cell']:5.2f} KB/cell, first trial after "
              f"{f['first_trial_s']:4.1f} s, {f['ran']} ran, {f['failed']} failed", flush=True)
    if len(figures) > 1:
        lo, hi = figures[0], figures[-1]
        print(f"largest / smallest grid: driver CPU per cell x{hi['cpu_per_cell_ms'] / lo['cpu_per_cell_ms']:.2f}, "
              f"peak memory x{hi['peak_mb'] / lo['peak_mb']:.2f}, "
              f"state per cell x{hi['state_kb_per_cell'] / max(lo['state_kb_per_cell'], 1e-9):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
