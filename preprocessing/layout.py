"""Where the patients of a TCIA tree are: patient folders found by the DICOM PatientID, not by depth.

TCIA names every patient folder after the PatientID (0010,0020), whatever lies above it
(`manifest-*/<Collection>/`, or nothing) and below it (`<study>/<series>/` in full downloads, only
`<series>/` in some exports). So a folder of DICOM files belongs to its nearest ancestor (or itself)
named after the files' PatientID, else to the one folder of the tree so named (a series filed under
another patient); when no folder is so named (a renamed or re-exported tree), to the highest folder
below the root that holds no other patient's DICOM files. Folders without DICOM files
(LIDC's reader XML of a radiograph, README files) join the patient folder above them; files under no
patient folder, and files directly in the root, come back apart. A folder whose files name different
patients is split by PatientID, so one case never mixes two patients.
"""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache
from pathlib import Path

import pydicom

from preprocessing.dicom import walk_files

NOT_DICOM = frozenset({".xml", ".csv", ".txt", ".json", ".xlsx", ".xls", ".png", ".jpg", ".nii", ".gz", ".zip",
                       ".md", ".pdf", ".mha", ".h5"})
Case = tuple[Path, str]  # (patient folder, PatientID)


def patient_id(path: Path) -> str | None:
    """The PatientID of a DICOM file; None for a non-DICOM file, an unreadable one or an empty id."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["PatientID"])
    except Exception:  # not DICOM, truncated, damaged: the case reader reports it with its reason
        return None
    pid = str(ds.get("PatientID", "")).strip()
    return pid or None


def folder_ids(files: list[Path]) -> dict[Path, str]:
    """file -> PatientID for the DICOM files of one folder.

    Reads the first and last candidate file; only when they disagree (or one is unreadable) every file.
    """
    candidates = [p for p in files if p.suffix.lower() not in NOT_DICOM]
    if not candidates:
        return {}
    first, last = patient_id(candidates[0]), patient_id(candidates[-1])
    if first is not None and first == last:
        return dict.fromkeys(candidates, first)
    return {p: pid for p in candidates if (pid := patient_id(p))}


@lru_cache(maxsize=4096)  # asked once per file, and a folder holds hundreds of slices (pathlib is slow)
def _chain(raw: Path, folder: Path) -> tuple[Path, ...]:
    """`folder` and its ancestors below `raw`, nearest first (empty for `raw` itself)."""
    chain, at = [], folder
    while at != raw:
        if at == at.parent:  # not under `raw` after all: only the folder itself
            return (folder,)
        chain.append(at)
        at = at.parent
    return tuple(chain)


def _home(raw: Path, folder: Path, pid: str, owners: dict[Path, set[str]], named: dict[str, Path]) -> Path:
    """The patient folder of the files of `pid` in `folder`: the nearest ancestor named `pid`, else the one
    folder of the tree so named (a series filed under another patient), else the highest that is `pid`'s alone."""
    chain = _chain(raw, folder)
    near = next((a for a in chain if a.name.casefold() == pid.casefold()), None)
    if near is not None or (near := named.get(pid.casefold())) is not None:
        return near
    alone = [a for a in chain if owners[a] == {pid}]
    return alone[-1] if alone else folder


def _named(owners: dict[Path, set[str]]) -> dict[str, Path]:
    """casefolded PatientID -> the folder named after it, for ids that name exactly one folder."""
    ids = {pid.casefold() for pids in owners.values() for pid in pids}
    found: dict[str, list[Path]] = defaultdict(list)
    for folder in owners:
        if folder.name.casefold() in ids:
            found[folder.name.casefold()].append(folder)
    return {pid: folders[0] for pid, folders in found.items() if len(folders) == 1}


def patient_cases(raw: Path) -> tuple[dict[Case, list[Path]], list[Path], list[tuple[Path, str]]]:
    """(patient folder, PatientID) -> its files; files under no patient folder; files the walk skipped."""
    files, skipped = walk_files(raw)
    by_folder: dict[Path, list[Path]] = defaultdict(list)
    for path in files:
        by_folder[path.parent].append(path)
    ids = {p: pid for folder, fs in by_folder.items() if folder != raw for p, pid in folder_ids(fs).items()}
    owners: dict[Path, set[str]] = defaultdict(set)
    for path, pid in ids.items():
        for folder in _chain(raw, path.parent):
            owners[folder].add(pid)
    cases: dict[Case, list[Path]] = defaultdict(list)
    named = _named(owners)
    for path, pid in ids.items():
        cases[(_home(raw, path.parent, pid, owners, named), pid)].append(path)
    homes: dict[Path, Case] = {}
    for case in sorted(cases, reverse=True):  # a folder shared by several ids goes with the first
        homes[case[0]] = case
    loose = []
    for path in files:
        if path in ids:
            continue
        home = next((homes[a] for a in _chain(raw, path.parent) if a in homes), None)
        (cases[home].append(path) if home is not None else loose.append(path))
    return {c: sorted(cases[c]) for c in sorted(cases)}, loose, skipped
