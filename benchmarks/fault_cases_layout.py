"""Fault-corpus cases of other TCIA tree layouts (`preprocessing.fixtures_layout`): every file kept, the patient
folders moved (no study level, no or extra wrapper folders, folders not named after the PatientID). A correct
converter finds the patients by their DICOM PatientID and writes the very shards of the tree as written."""

from __future__ import annotations

import functools
import hashlib
import tempfile
from pathlib import Path
from typing import Any

import h5py
from fault_corpus import FIXTURES, KEY, Check, Fault

from preprocessing import fixtures_layout
from preprocessing.core import convert

TCIA = ("ct-kidney", "ct-hnscc", "ct-oropharyngeal", "ct-lidc", "mri-breast")


def shard_digest(folder: Path) -> dict[str, str]:
    """domain -> SHA-1 over its images, labels and patient ids (empty when no shard)."""
    out = {}
    for h5 in sorted(folder.glob("*.h5")):
        with h5py.File(h5) as f:
            h = hashlib.sha1(f["images"][()].tobytes())
            h.update(f["labels"][()].tobytes())
            h.update("|".join(f["patient_ids"].asstr()[()]).encode())
        out[h5.stem] = h.hexdigest()
    return out


@functools.cache
def pristine(key: str) -> tuple[dict[str, str], int]:
    """(shard digests, cases seen) of the fixture of `key` converted as written."""
    make, options = FIXTURES[key]
    with tempfile.TemporaryDirectory(prefix="pristine-") as tmp:
        make(Path(tmp) / "raw")
        manifest = convert(key, Path(tmp) / "raw", Path(tmp) / "out", KEY, list(options), workers=1)
        import json

        seen = int(json.loads(manifest.read_text())["cases"]["seen"])
        return shard_digest(manifest.parent), seen


def same_as_pristine(key: str) -> Check:
    def check(body: dict[str, Any], folder: Path) -> str | None:
        digests, seen = pristine(key)
        if body["cases"]["seen"] != seen:
            return f"{body['cases']['seen']} cases seen, {seen} in the tree as written"
        got = shard_digest(folder)
        return None if got == digests else f"shards differ from the tree as written ({sorted(got)}, {sorted(digests)})"
    return check


FAST = {("ct-kidney", "no_study_level"), ("ct-lidc", "renamed_no_study_level"), ("mri-breast", "renamed_patients")}
FAULTS = [Fault(f"{key.split('-', 1)[1]}_layout_{name}", key, reshape, "converted", check=same_as_pristine(key),
                fast=(key, name) in FAST)
          for key in TCIA for name, reshape in fixtures_layout.RESHAPES.items()]

KITS = "manifest-1600000000/C4KC-KiTS"


def _arterial(root: Path, patient: str) -> Path:
    return next((root / KITS / patient).glob("*/*arterial*"))


def _misfiled_series(root: Path) -> None:
    """KiTS-00001's arterial series filed in KiTS-00000's study folder."""
    src = _arterial(root, "KiTS-00001")
    src.rename(_arterial(root, "KiTS-00000").parent / "9.000000-arterial-99999")


def _two_patients_one_folder(root: Path) -> None:
    """KiTS-00001's arterial slices moved into KiTS-00000's arterial folder (one folder, two PatientIDs)."""
    src, dst = _arterial(root, "KiTS-00001"), _arterial(root, "KiTS-00000")
    for path in sorted(src.iterdir()):
        path.rename(dst / f"x{path.name}")
    src.rmdir()


FAULTS += [
    Fault("kidney_layout_series_under_other_patient", "ct-kidney", _misfiled_series, "converted",
          check=same_as_pristine("ct-kidney"), fast=True),
    Fault("kidney_layout_two_patients_one_folder", "ct-kidney", _two_patients_one_folder, "converted",
          check=same_as_pristine("ct-kidney")),
]
