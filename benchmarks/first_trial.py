"""Quick start: seconds from the start of a sweep (`runner.run_study`) to its first trial's start.

    python benchmarks/first_trial.py --runs 8 --cells 4

Each run is a fresh process that starts its own Ray (as `python sweeps/full_study.py` does on a
workstation) and runs N cells of the `noop` profile (the scheduler path and the whole trial, no
training; see `benchmarks/scale.py`). Runs rotate through four modes of the same code, so all see
the same machine: "product" as it is (the local Ray's prestarted workers import torch and host Tune's
trials; `ray.init` polls for its node in 20 ms steps; Ray's processes retry local sockets every 20 ms),
"1s-sockets" with Ray's own 1 s socket retries, "cold" with warm workers switched off (no prestarted
workers), and "before" with all three switched off (the behaviour before any of them). Prints every
run, then per mode the median, min and max, and the ratios of the medians.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

MODES = ("product", "1s-sockets", "cold", "before")


def one(mode: str, cells: int) -> dict:
    """One sweep of `cells` noop cells in this process: seconds to its first trial, and whether its Ray
    was a warm one."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import scale

    from scanshift_ray import local_ray, tune_adapter

    if mode in ("cold", "before"):
        tune_adapter.fills_every_cpu = lambda *a, **k: False  # type: ignore[assignment]
    if mode in ("1s-sockets", "before"):
        local_ray.SOCKET_RETRY_ENV = {}
    if mode == "before":
        local_ray._node_wait_in_short_steps = lambda active: contextlib.nullcontext()  # type: ignore[assignment]
    with tempfile.TemporaryDirectory() as work:
        first = float(scale.measure(cells, Path(work))["first_trial_s"])
    return {"first_trial_s": first, "warm": bool(local_ray._inherited) and local_ray.started_here()}


def main(argv: list[str] | None = None) -> int:
    """Alternate fresh-process runs of the modes and print the figures."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=8,
                   help=f"runs per mode (a multiple of {len(MODES)}: each mode goes first as often)")
    p.add_argument("--cells", type=int, default=max(4, (os.cpu_count() or 1) + (os.cpu_count() or 1) % 2),
                   help="noop cells per sweep (even; at least one per CPU, or no Ray is warm)")
    p.add_argument("--one", choices=MODES, help=argparse.SUPPRESS)  # internal: measure one run here
    args = p.parse_args(argv)
    if args.one:
        print(json.dumps(one(args.one, args.cells)))
        return 0
    seen: dict[str, list[float]] = {m: [] for m in MODES}
    for i in range(args.runs):
        for mode in MODES[i % len(MODES):] + MODES[:i % len(MODES)]:
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
