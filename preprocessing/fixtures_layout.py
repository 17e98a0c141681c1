"""Other layouts of the TCIA fixture trees (`fixtures_ct`, `fixtures_mr_xr`), made by moving their folders.

Each reshape keeps every file and changes only where the patient folders sit, so a converter must give
the same shards as on the tree as written:

    drop_study_level     <patient>/<study>/<series>/f  ->  <patient>/<series>/f
    drop_wrappers        manifest-*/<Collection>/<patient>/...  ->  <patient>/...
    add_wrappers         <top folder>/...  ->  site-A/batch-1/<top folder>/... (sheets stay at the top)
    rename_patients      <patient>  ->  case-<n> (the folder no longer says the PatientID)
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from preprocessing.layout import patient_id


def series_folders(root: Path) -> list[Path]:
    """Folders holding DICOM files (`*.dcm`), deepest first."""
    return sorted({p.parent for p in root.rglob("*.dcm")}, key=lambda p: (-len(p.parts), str(p)))


def patient_folders(root: Path) -> list[Path]:
    """The fixture trees' patient folders (named after the PatientID of the files below), deepest first."""
    found = set()
    for series in series_folders(root):
        pid = patient_id(next(series.glob("*.dcm")))
        found |= {a for a in [series, *series.parents] if pid and a.name == pid and root in a.parents}
    return sorted(found, key=lambda p: (-len(p.parts), str(p)))


def drop_study_level(root: Path) -> None:
    """Move everything in each study folder into its patient folder and remove the emptied study folders."""
    homes = patient_folders(root)
    studies = {s.parent for s in series_folders(root)} - set(homes)
    for study in sorted(studies):
        patient = next(p for p in homes if p in study.parents)
        for path in sorted(study.iterdir()):
            target = patient / path.name
            shutil.move(str(path), str(target if not target.exists() else patient / f"{study.name}-{path.name}"))
        study.rmdir()


def drop_wrappers(root: Path) -> None:
    """Move every patient folder to the top of `root` and remove the emptied wrapper folders."""
    wrappers = set()
    for patient in patient_folders(root):
        if patient.parent != root:
            wrappers.add(patient.parent)
            shutil.move(str(patient), str(root / patient.name))
    for folder in sorted(wrappers, key=lambda p: -len(p.parts)):
        while folder != root and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent


def add_wrappers(root: Path) -> None:
    """Move every top-level folder two levels down (files at the top, the sheets, stay)."""
    new = root / "site-A" / "batch-1"
    tops = [p for p in root.iterdir() if p.is_dir()]
    new.mkdir(parents=True)
    for top in tops:
        shutil.move(str(top), str(new / top.name))


def rename_patients(root: Path) -> None:
    """Rename every patient folder to case-<n>, so no folder name is a PatientID."""
    for n, patient in enumerate(sorted(patient_folders(root))):
        patient.rename(patient.with_name(f"case-{n}"))


def both(*reshapes: Callable[[Path], None]) -> Callable[[Path], None]:
    """The reshapes one after another."""
    def reshape(root: Path) -> None:
        for one in reshapes:
            one(root)
    return reshape


RESHAPES: dict[str, Callable[[Path], None]] = {
    "no_study_level": drop_study_level,
    "no_wrappers": drop_wrappers,
    "extra_wrappers": add_wrappers,
    "renamed_patients": rename_patients,
    "no_study_no_wrappers": both(drop_study_level, drop_wrappers),
    "renamed_no_study_level": both(drop_study_level, rename_patients),
}
