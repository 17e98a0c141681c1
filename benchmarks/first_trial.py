"""Quick start: seconds from the start of a sweep (`runner.run_study`) to its first trial's start.

    python benchmarks/first_trial.py --runs 8 --cells 4
    python benchmarks/first_trial.py --runs 8 --study       # the default study instead


Each run is a fresh process that starts its own Ray (as `python sweeps/full_study.py` does on a
workstation) and runs N cells of the `noop` profile (the scheduler path and the whole trial, no
training; see `benchmarks/scale.py`). Runs rotate through four modes of the same code, so all see
the same machine: "product" as it is (the local Ray's prestarted workers import torch and host Tune's
trials; `ray.init` polls for its node in 20 ms steps; Ray's processes retry local sockets every 20 ms),
"1s-sockets" with Ray's own 1 s socket retries, "cold" with warm workers switched off (no prestarted
workers), and "before" with all three switched off (the behaviour before any of them). Prints every
run, then per mode the median, min and max, and the ratios of the medians.

With `--study`, each run is `python sweeps/full_study.py` itself (the default study on its twins,
made first if missing), timed from its plan line ("N cells: ...") to its first trial's `started_at`,
then stopped with Ctrl-C once that trial has written its result.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd

MODES = ("product", "1s-sockets", "cold", "before")


ROOT = Path(__file__).resolve().parent.parent


def set_mode(mode: str) -> None:
    """Switch off, in this process, what `mode` runs without."""
    from scanshift_ray import local_ray, tune_adapter

    if mode in ("cold", "before"):
        tune_adapter.fills_every_cpu = lambda *a, **k: False  # type: ignore[assignment]
    if mode in ("1s-sockets", "before"):
        local_ray.SOCKET_RETRY_ENV = {}
    if mode == "before":
        local_ray._node_wait_in_short_steps = lambda active: contextlib.nullcontext()  # type: ignore[assignment]


def one(mode: str, cells: int) -> dict:
    """One sweep of `cells` noop cells in this process: seconds to its first trial, and whether its Ray
    was a warm one."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import scale

    from scanshift_ray import local_ray

    set_mode(mode)
    with tempfile.TemporaryDirectory() as work:
        first = float(scale.measure(cells, Path(work))["first_trial_s"])
    return {"first_trial_s": first, "warm": bool(local_ray._inherited) and local_ray.started_here()}


def one_study(mode: str, results: str) -> None:
    """`python sweeps/full_study.py --results RESULTS` in this process, in `mode`."""
    set_mode(mode)
    sys.path.insert(0, str(ROOT / "sweeps"))
    import full_study

    full_study.main(["--results", results])


def study_run(mode: str) -> dict:
    """The default study in a fresh process: seconds from its plan line to its first trial's start."""
    with tempfile.TemporaryDirectory() as results:
        proc = subprocess.Popen([sys.executable, "-u", __file__, "--one-study", mode, results], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                start_new_session=True)
        plan: list[float] = []

        def read() -> None:
            for line in proc.stdout:  # type: ignore[union-attr]
                if not plan and " cells: " in line:
                    plan.append(time.time())

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + 600  # the first run may make the twins
        while not glob.glob(f"{results}/*/*.parquet") and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.5)  # let the file be whole
        os.killpg(proc.pid, signal.SIGINT)  # a user's Ctrl-C
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        rows = pd.concat([pd.read_parquet(f) for f in glob.glob(f"{results}/*/*.parquet")])
    first = pd.to_datetime(rows["started_at"]).min().timestamp()
    return {"first_trial_s": first - plan[0], "warm": None}


def main(argv: list[str] | None = None) -> int:
    """Alternate fresh-process runs of the modes and print the figures."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=8,
                   help=f"runs per mode (a multiple of {len(MODES)}: each mode goes first as often)")
    p.add_argument("--cells", type=int, default=max(4, (os.cpu_count() or 1) + (os.cpu_count() or 1) % 2),
                   help="noop cells per sweep (even; at least one per CPU, or no Ray is warm)")
    p.add_argument("--study", action="store_true", help="time the default study instead of noop cells")
    p.add_argument("--one", choices=MODES, help=argparse.SUPPRESS)  # internal: measure one run here
    p.add_argument("--one-study", nargs=2, help=argparse.SUPPRESS)  # internal: MODE RESULTS
    args = p.parse_args(argv)
    if args.one:
        print(json.dumps(one(args.one, args.cells)))
        return 0
    if args.one_study:
        one_study(*args.one_study)
        return 0
    seen: dict[str, list[float]] = {m: [] for m in MODES}
    for i in range(args.runs):
        for mode in MODES[i % len(MODES):] + MODES[:i % len(MODES)]:
            if args.study:
                got = study_run(mode)
                seen[mode].append(got["first_trial_s"])
                print(f"run {i + 1} {mode}: first trial {seen[mode][-1]:.2f} s after the plan", flush=True)
                continue
            out = subprocess.run([sys.executable, __file__, "--one", mode, "--cells", str(args.cells)],
                                 capture_output=True, text=True, env={**os.environ, "RAY_AIR_NEW_OUTPUT": "0"})
            if out.returncode:
                print(out.stderr[-3000:], file=sys.stderr)
                return 1
            got = json.loads(out.stdout.strip().splitlines()[-1])
            seen[mode].append(got["first_trial_s"])
            print(f"run {i + 1} {mode}: first trial after {seen[mode][-1]:.2f} s "
                  f"({'warm' if got['warm'] else 'cold'} Ray)", flush=True)
    for mode, xs in seen.items():
        print(f"{mode}: median {statistics.median(xs):.2f} s, min {min(xs):.2f}, max {max(xs):.2f}, "
              f"{sum(x <= 5.0 for x in xs)}/{len(xs)} within 5 s")
    med = {m: statistics.median(xs) for m, xs in seen.items()}
    print("medians / before: " + ", ".join(f"{m} x{med[m] / med['before']:.2f}" for m in MODES[:-1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
