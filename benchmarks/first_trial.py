"""Quick start: seconds from the start of a sweep (`runner.run_study`) to its first trial's start.

    python benchmarks/first_trial.py --runs 8 --cells 4
    python benchmarks/first_trial.py --runs 8 --study       # the default study instead

Each run is a fresh process that starts its own Ray (as `python sweeps/full_study.py` does on a
workstation) and runs N cells of the `noop` profile (the scheduler path and the whole trial, no
training; see `benchmarks/scale.py`). Runs go through four modes of the same code in a Williams-square
order (after one uncounted warm-up run), so all see the same machine: "product" as it is (the local
Ray's prestarted workers import torch and host Tune's trials; `ray.init` polls for its node in 20 ms
steps; Ray's processes retry local sockets every 20 ms), "1s-sockets" with Ray's own 1 s socket
retries, "cold" with warm workers switched off (no prestarted workers), and "before" with all three
switched off (the behaviour before any of them). Prints every run (with, from Ray's logs, how long
its raylet took from starting its object store to connecting to it, ~1 s when its first socket try
came too early, and how many workers the raylet stopped as idle), then per mode the median, min and
max, and the ratios of the medians.

With `--study`, each run is `python sweeps/full_study.py` itself (the default study on its twins,
made first if missing), timed from its plan line ("N cells: ...") to the earliest `started_at` of its
first wave of trials, then stopped with Ctrl-C once that wave has written its results.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import glob
import importlib.abc
import importlib.util
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

MODES = ("product", "1s-sockets", "cold", "before")
ROOT = Path(__file__).resolve().parent.parent


def set_mode(mode: str) -> None:
    """Switch off, in this process, what `mode` runs without; print the session folder of the Ray it starts
    and the order of the cells it hands Ray Tune."""
    from scanshift_ray import local_ray, tune_adapter

    start_ray = tune_adapter.start_ray

    def noting_session(*args, **kwargs):  # type: ignore[no-untyped-def]
        out = start_ray(*args, **kwargs)
        import ray

        print("SESSION " + ray._private.worker._global_node.get_session_dir_path(), flush=True)
        return out

    tune_adapter.start_ray = noting_session  # type: ignore[assignment]
    run_cells = tune_adapter.run_cells

    def noting_order(cells, *args, **kwargs):  # type: ignore[no-untyped-def]
        # Tune starts a grid's trials in its order: the first wave is the first "N at a time" of these
        print("ORDER " + " ".join(f"{c.experiment}/{c.cell_id}" for c in cells[:64]), flush=True)
        return run_cells(cells, *args, **kwargs)

    tune_adapter.run_cells = noting_order  # type: ignore[assignment]

    if mode in ("cold", "before"):
        tune_adapter.fills_every_cpu = lambda *a, **k: False  # type: ignore[assignment]
    if mode in ("1s-sockets", "before"):
        local_ray.SOCKET_RETRY_ENV = {}
    if mode == "before":
        local_ray._node_wait_in_short_steps = lambda active: contextlib.nullcontext()  # type: ignore[assignment]


def raylet_notes(session: str | None) -> str:
    """What the logs of Ray 2.60 say about a run's start: seconds from the raylet starting its object store
    to its object manager (connected to that store) coming up, and how many workers were stopped as idle
    ('?' where the logs say otherwise)."""
    if not session or not os.path.isdir(f"{session}/logs"):
        return "no Ray log found"
    stamps: dict[str, float] = {}
    try:
        with open(f"{session}/logs/raylet.out", errors="replace") as log:
            for line in log:
                m = re.match(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+)", line)
                for key in ("Starting object store", "ObjectManager server started"):
                    if key in line and m and key not in stamps:
                        stamps[key] = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        pause = f"{stamps['ObjectManager server started'] - stamps['Starting object store']:.2f}"
    except (OSError, KeyError):
        pause = "?"
    idle = 0
    for path in glob.glob(f"{session}/logs/python-core-worker-*.log"):
        with open(path, errors="replace") as log:
            idle += "idle for a long time" in log.read()
    return f"raylet store pause {pause} s, {idle} workers stopped as idle"


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


def after_import(name: str, then: Callable[[], None]) -> None:
    """Call `then` right after module `name` is first imported: the CLI imports Ray Tune only after its
    plan line, so a mode switched on before then would move those imports out of the timed span."""

    class Hook(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path, target=None):  # type: ignore[no-untyped-def]
            if fullname != name:
                return None
            sys.meta_path.remove(self)
            spec = importlib.util.find_spec(name)
            if spec is None or not hasattr(spec.loader, "exec_module"):
                raise ImportError(f"first_trial: cannot hook the import of {name}")
            run = spec.loader.exec_module  # type: ignore[union-attr]

            def exec_module(module):  # type: ignore[no-untyped-def]
                run(module)
                then()

            spec.loader.exec_module = exec_module  # type: ignore[union-attr, method-assign]
            return spec

    if name in sys.modules:  # the hook would never fire and every mode would run as the product
        raise SystemExit(f"first_trial: {name} is imported before the sweep starts")
    sys.meta_path.insert(0, Hook())


def one_study(mode: str, results: str) -> None:
    """`python sweeps/full_study.py --results RESULTS` in this process, in `mode`."""
    switched: list[str] = []
    after_import("scanshift_ray.tune_adapter", lambda: switched.append(mode) or set_mode(mode))
    sys.path.insert(0, str(ROOT / "sweeps"))
    import full_study

    try:
        full_study.main(["--results", results])
    finally:
        if not switched:
            print(f"first_trial: the {mode} run never imported the Tune adapter", file=sys.stderr)


def ray_processes() -> set[int]:
    """Pids of processes titled ray:: (Ray's workers, each in a process group of its own)."""
    pids = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/cmdline", "rb") as f:
            if f.read().startswith(b"ray::"):
                pids.add(int(pid))
    return pids


def study_run(mode: str) -> dict:
    """The default study in a fresh process: seconds from its plan line to the earliest start among its
    first wave of trials (stopped once that wave has written its results)."""
    before = ray_processes()
    with tempfile.TemporaryDirectory() as results, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, "-u", __file__, "--one-study", mode, results], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True)
        plan: list[float] = []
        wave: list[int] = []
        session: list[str] = []
        grid: list[str] = []

        def read() -> None:
            for line in proc.stdout:  # type: ignore[union-attr]
                if not plan and " cells: " in line:
                    plan.append(time.time())
                    wave.append(int(m.group(1)) if (m := re.search(r"(\d+) at a time", line)) else 1)
                if line.startswith("SESSION "):
                    session.append(line.split(" ", 1)[1].strip())
                if line.startswith("ORDER "):
                    grid.extend(line.split()[1:])

        def first_wave() -> list[str]:  # result files of the first wave's cells, once plan and order are in
            return [f"{results}/{c}.parquet" for c in grid[:wave[0]]] if wave and grid else []

        def first_wave_done() -> bool:
            return bool(first_wave()) and all(map(os.path.exists, first_wave()))

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + 900  # the first run may make the twins
        while proc.poll() is None and time.monotonic() < deadline and not first_wave_done():
            time.sleep(0.2)
        time.sleep(0.5)  # let the last file be whole
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)  # a user's Ctrl-C
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        files = first_wave()
        if not plan or not first_wave_done():
            err.seek(0)
            raise SystemExit(f"first_trial: the {mode} study run ended without a plan line or its first wave "
                             f"(rc {proc.returncode}): {err.read()[-2000:]}")
        rows = pd.concat([pd.read_parquet(f) for f in files])
    deadline = time.monotonic() + 30  # its workers outlive the driver a moment: not into the next run
    while ray_processes() - before and time.monotonic() < deadline:
        time.sleep(0.2)
    first = pd.to_datetime(rows["started_at"]).min().timestamp()
    return {"first_trial_s": first - plan[0], "notes": raylet_notes(session[0] if session else None)}


def order(i: int) -> tuple[str, ...]:
    """Round i's order of the modes: a Williams square (for an even number of modes), so over each
    len(MODES) rounds every mode comes first once and, within rounds, right after every other mode once."""
    n = len(MODES)
    row = [(i + (k + 1) // 2) % n if k % 2 else (i - k // 2) % n for k in range(n)]
    return tuple(MODES[j] for j in row)


def measure(mode: str, args: argparse.Namespace) -> tuple[float, str]:
    """One fresh-process run in `mode`: seconds to the first trial, and what Ray's logs say about it."""
    if args.study:
        got = study_run(mode)
        return got["first_trial_s"], f"from the plan line; {got['notes']}"
    out = subprocess.run([sys.executable, __file__, "--one", mode, "--cells", str(args.cells)],
                         capture_output=True, text=True, env={**os.environ, "RAY_AIR_NEW_OUTPUT": "0"})
    if out.returncode:
        raise SystemExit(f"first_trial: the {mode} run failed: {out.stderr[-3000:]}")
    lines = out.stdout.strip().splitlines()
    got = json.loads(lines[-1])
    session = next((ln.split(" ", 1)[1] for ln in lines if ln.startswith("SESSION ")), None)
    return got["first_trial_s"], f"{'warm' if got['warm'] else 'cold'} Ray, {raylet_notes(session)}"


def main(argv: list[str] | None = None) -> int:
    """Alternate fresh-process runs of the modes and print the figures."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=8,
                   help=f"runs per mode (a multiple of {len(MODES)}: each mode goes first as often)")
    p.add_argument("--cells", type=int, default=max(4, (os.cpu_count() or 1) + (os.cpu_count() or 1) % 2),
                   help="noop cells per sweep (even; at least one per CPU, or no Ray is warm)")
    p.add_argument("--study", action="store_true", help="time the default study instead of noop cells")
    p.add_argument("--warmup", type=int, default=1, choices=(0, 1), help="one uncounted product run first")
    p.add_argument("--one", choices=MODES, help=argparse.SUPPRESS)  # internal: measure one run here
    p.add_argument("--one-study", nargs=2, help=argparse.SUPPRESS)  # internal: MODE RESULTS
    args = p.parse_args(argv)
    if args.runs < 1 or args.runs % len(MODES):
        p.error(f"--runs must be a positive multiple of {len(MODES)}, got {args.runs}")
    if args.one:
        print(json.dumps(one(args.one, args.cells)))
        return 0
    if args.one_study:
        one_study(*args.one_study)
        return 0
    if args.warmup:  # the first run after a while finds colder caches: not counted
        print(f"warm-up (not counted): first trial after {measure('product', args)[0]:.2f} s", flush=True)
    seen: dict[str, list[float]] = {m: [] for m in MODES}
    for i in range(args.runs):
        for mode in order(i):
            took, notes = measure(mode, args)
            seen[mode].append(took)
            print(f"run {i + 1} {mode}: first trial after {took:.2f} s ({notes})", flush=True)
    for mode, xs in seen.items():
        print(f"{mode}: median {statistics.median(xs):.2f} s, min {min(xs):.2f}, max {max(xs):.2f}, "
              f"{sum(x <= 5.0 for x in xs)}/{len(xs)} within 5 s")
    med = {m: statistics.median(xs) for m, xs in seen.items()}
    print("medians / before: " + ", ".join(f"{m} x{med[m] / med['before']:.2f}" for m in MODES[:-1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
