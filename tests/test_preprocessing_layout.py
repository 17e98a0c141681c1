"""Patient folders found by the DICOM PatientID (`preprocessing.layout`), whatever the folder depth."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from preprocessing.layout import folder_ids, patient_cases
from preprocessing.testing import Patient, write_ct_series


def _series(folder: Path, pid: str, n: int = 2, names: list[str] | None = None) -> None:
    write_ct_series(folder, Patient(pid).with_uids(), "GE MEDICAL SYSTEMS", np.zeros((n, 4, 4), np.int16), names=names)


def _cases(raw: Path) -> dict[tuple[str, str], list[str]]:
    cases, _, _ = patient_cases(raw)
    return {(str(f.relative_to(raw)), pid): [str(p.relative_to(f)) for p in files] for (f, pid), files in cases.items()}


def test_patient_folder_at_any_depth_with_or_without_study_level(tmp_path):
    _series(tmp_path / "P1" / "s1", "P1")  # PatientID/Series/*.dcm at the top
    _series(tmp_path / "a" / "b" / "c" / "P2" / "study" / "s1", "P2")  # four wrappers, then the study level
    (tmp_path / "a" / "b" / "c" / "P2" / "notes.txt").write_text("x")  # no DICOM: joins the patient above
    assert _cases(tmp_path) == {
        ("P1", "P1"): ["s1/1-001.dcm", "s1/1-002.dcm"],
        ("a/b/c/P2", "P2"): ["notes.txt", "study/s1/1-001.dcm", "study/s1/1-002.dcm"],
    }


def test_folders_not_named_after_the_patient_go_to_the_highest_folder_of_that_patient_alone(tmp_path):
    _series(tmp_path / "coll" / "case-1" / "st" / "s1", "P1")
    _series(tmp_path / "coll" / "case-1" / "st" / "s2", "P1")
    _series(tmp_path / "coll" / "case-2" / "s1", "P2")
    (tmp_path / "coll" / "metadata.csv").write_text("x")
    cases, loose, _ = patient_cases(tmp_path)
    found = [(f.name, pid, len(files)) for (f, pid), files in cases.items()]
    assert found == [("case-1", "P1", 4), ("case-2", "P2", 2)]
    assert loose == [tmp_path / "coll" / "metadata.csv"]


def test_a_folder_of_two_patients_is_split_and_a_misfiled_series_finds_its_patient(tmp_path):
    _series(tmp_path / "P1" / "s1", "P1", names=["a1.dcm", "a2.dcm"])
    _series(tmp_path / "P1" / "s1", "P2", n=1, names=["b1.dcm"])  # one folder, two patients
    _series(tmp_path / "P1" / "s9", "P2")  # filed under P1, belongs to the folder named P2
    _series(tmp_path / "P2" / "s2", "P2")
    _series(tmp_path, "P3", n=1, names=["stray.dcm"])  # a file directly in the root: in no patient folder
    cases, loose, _ = patient_cases(tmp_path)
    assert {(f.name, pid): sorted(p.name for p in files) for (f, pid), files in cases.items()} == {
        ("P1", "P1"): ["a1.dcm", "a2.dcm"],
        ("P2", "P2"): ["1-001.dcm", "1-001.dcm", "1-002.dcm", "1-002.dcm", "b1.dcm"]}
    assert loose == [tmp_path / "stray.dcm"]


def test_folder_ids_reads_every_file_only_when_the_ends_disagree(tmp_path, monkeypatch):
    _series(tmp_path / "s", "P1", n=5)
    (tmp_path / "s" / "0.xml").write_text("<x/>")
    files = sorted((tmp_path / "s").iterdir())
    import preprocessing.layout as layout

    calls = []
    real = layout.patient_id
    monkeypatch.setattr(layout, "patient_id", lambda p: calls.append(p) or real(p))
    assert folder_ids(files) == {p: "P1" for p in files if p.suffix == ".dcm"}
    assert len(calls) == 2  # the .xml is no candidate; first and last agree
