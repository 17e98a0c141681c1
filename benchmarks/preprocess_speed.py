"""Preprocessing throughput: slices per second with a process pool against a single process.

    python benchmarks/preprocess_speed.py                  # 8 HNSCC-like patients x 40 slices of 512 x 512
    python benchmarks/preprocess_speed.py --patients 4 --slices 20 --side 256

Writes a miniature HNSCC tree (planning CT + RTSTRUCT per patient, real DICOM via pydicom) once, then
converts it in the same process with `--workers 1` (the baseline) and with one worker per core, and
prints slices/second of both and their ratio (> 1 means the pool is faster).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

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


def main(argv: list[str] | None = None) -> int:
    """Time both runs and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=8)
    parser.add_argument("--slices", type=int, default=40)
    parser.add_argument("--side", type=int, default=512)
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        n = make_tree(Path(tmp) / "raw", args.patients, args.slices, args.side)
        rates = {}
        for workers in (1, cores):
            start = time.perf_counter()
            convert("ct-hnscc", Path(tmp) / "raw", Path(tmp) / f"out{workers}", b"benchmark-key", (), workers)
            rates[workers] = n / (time.perf_counter() - start)
    print(f"{n} slices of {args.side} x {args.side}, {args.patients} patients, {cores} cores")
    print(f"single process: {rates[1]:.1f} slices/s; {cores} workers: {rates[cores]:.1f} slices/s; "
          f"ratio {rates[cores] / rates[1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
