"""Preprocessing throughput: images per second with a process pool against a single process.

    python benchmarks/preprocess_speed.py                  # HNSCC: 8 patients x 40 CT slices of 512 x 512
    python benchmarks/preprocess_speed.py --dataset xray-chest --patients 60 --side 1024   # BRAX PNGs
    python benchmarks/preprocess_speed.py --patients 4 --slices 20 --side 256

Writes a tree in the dataset's real format once (ct-hnscc: planning CT + RTSTRUCT per patient as DICOM;
xray-chest: master spreadsheet + one 16-bit PNG per patient), then converts it in the same process with
`--workers 1` (the baseline) and with one worker per core, and prints images/second of both and their
ratio (> 1 means the pool is faster). Around the runs it checks how much of the machine is free: busy
loops in one and in one-per-core processes; on a machine other jobs share, that "machine check" (the
core count when idle) bounds the ratio, so a low ratio beside a low check says the cores were taken.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from preprocessing import converters  # noqa: F401  (registers the converters)
from preprocessing.core import convert
from preprocessing.testing import Patient, square, write_ct_series, write_rtstruct


def make_tree(root: Path, patients: int, slices: int, side: int) -> int:
    """An HNSCC-like tree; returns the number of CT slices written."""
    rng = np.random.default_rng(0)
    for i in range(patients):
        p = Patient(f"HNSCC-01-{i:04d}").with_uids()
        study = root / p.patient_id / "01-01-2000-NA-RT SIMULATION-1"
        hu = rng.normal(40, 30, (slices, side, side)).astype(np.int16)
        cts = write_ct_series(study / "2.000000-CT-2", p, "GE MEDICAL SYSTEMS" if i % 2 else "Philips", hu)
        gtv = {k: square((side / 2, side / 2), side / 10) for k in range(slices // 3, slices // 2)}
        write_rtstruct(study / "1.000000-RTSTRUCT-1" / "1-1.dcm", p, cts, {"GTVp": gtv})
    return patients * slices


def make_brax(root: Path, patients: int, side: int) -> int:
    """A BRAX-like spreadsheet with one frontal 16-bit PNG per patient; returns the number of images."""
    rng = np.random.default_rng(0)
    lines = ["PatientID,Cardiomegaly,ViewPosition,Manufacturer,PngPath"]
    for i in range(patients):
        rel = f"images/id_{i:08d}/Study_1/Series_1/image-{i}.png"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 4096, (side, side + side // 4)).astype(np.uint16)).save(root / rel)
        lines.append(f"id_{i:08d},{i % 2},PA,{3 if i % 3 else 5},{rel}")
    (root / "master_spreadsheet_update.csv").write_text("\n".join(lines) + "\n")
    return patients


def _spin(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:  # CPU time, not wall time: a shared core stretches the loop
        pass


def machine_check(processes: int, seconds: float = 0.5) -> float:
    """How many one-process loops of `seconds` CPU `processes` concurrent ones finish in the same wall time
    (`processes` on an idle machine, less when other jobs hold cores)."""
    start = time.perf_counter()
    _spin(seconds)
    alone = time.perf_counter() - start
    procs = [mp.get_context("fork").Process(target=_spin, args=(seconds,)) for _ in range(processes)]
    start = time.perf_counter()
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    return processes * alone / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    """Time both runs and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ct-hnscc", choices=("ct-hnscc", "xray-chest"))
    parser.add_argument("--patients", type=int, default=8)
    parser.add_argument("--slices", type=int, default=40)
    parser.add_argument("--side", type=int, default=512)
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw"
        n = (make_tree(raw, args.patients, args.slices, args.side) if args.dataset == "ct-hnscc"
             else make_brax(raw, args.patients, args.side))
        rates, checks = {}, [machine_check(cores)]
        for workers in (1, cores):
            start = time.perf_counter()
            convert(args.dataset, raw, Path(tmp) / f"out{workers}", b"benchmark-key", (), workers)
            rates[workers] = n / (time.perf_counter() - start)
        checks.append(machine_check(cores))
    print(f"{args.dataset}: {n} images of {args.side} px, {args.patients} patients, {cores} cores")
    print(f"single process: {rates[1]:.1f} images/s; {cores} workers: {rates[cores]:.1f} images/s; "
          f"ratio {rates[cores] / rates[1]:.2f}")
    print(f"machine check before / after: {cores} busy loops ran {checks[0]:.2f} / {checks[1]:.2f} times one "
          f"({cores:.2f} when the machine is idle)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
