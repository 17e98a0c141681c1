"""Miniature PI-CAI, Duke-Breast-Cancer-MRI and BRAX trees in their true formats, with known answers.

PI-CAI: SimpleITK .mha with the `0008|0070` header key, nibabel .nii.gz masks, marksheet.csv.
Duke: pydicom MR series, the three .xlsx sheets (openpyxl; clinical sheet with three header rows).
BRAX: master_spreadsheet_update.csv and 16-bit PNGs (Pillow).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import SimpleITK as sitk
from PIL import Image

from preprocessing.testing import Patient, write_ct_series, write_xlsx


def _mha(path: Path, array: np.ndarray, manufacturer: str | None) -> None:
    img = sitk.GetImageFromArray(array.astype(np.uint16))  # array (z, y, x)
    img.SetSpacing((0.5, 0.5, 3.0))
    if manufacturer is not None:
        img.SetMetaData("0008|0070", manufacturer)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = sitk.ImageFileWriter()
    writer.SetFileName(str(path))
    writer.SetKeepOriginalImageUID(True)
    writer.Execute(img)


def _nii(path: Path, mask_zyx: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    affine = np.diag([0.5, 0.5, 3.0, 1.0])
    nib.save(nib.Nifti1Image(np.transpose(mask_zyx, (2, 1, 0)).astype(np.uint8), affine), path)


def make_picai(root: Path, n_slices: int = 6, side: int = 32) -> dict[str, Any]:
    """Two SIEMENS studies of one patient (lesion; marksheet negative without mask), a Philips empty-mask
    study, a positive study with only an AI mask (dropped) and one without manufacturer (dropped)."""
    rng = np.random.default_rng(0)
    studies = [("10000", "1000000", "SIEMENS", "human", "YES"), ("10000", "1000002", "SIEMENS", None, "NO"),
               ("10001", "1000001", "Philips Medical Systems", "empty", "NO"),
               ("10003", "1000003", "SIEMENS", "ai", "YES"), ("10004", "1000004", None, "empty", "NO")]
    labels = root / "picai_labels"
    for pid, sid, maker, mask_kind, _ in studies:
        shape = (n_slices, side, side)
        for kind in ("t2w", "adc", "hbv"):
            _mha(root / "images" / pid / f"{pid}_{sid}_{kind}.mha", rng.integers(0, 900, shape), maker)
        mask = np.zeros(shape, dtype=np.uint8)
        if mask_kind in ("human", "ai"):
            mask[2:4, 10:14, 10:14] = 2
        sub = {"human": "human_expert/resampled", "empty": "human_expert/resampled", "ai": "AI/Bosma22a"}
        if mask_kind:
            _nii(labels / "csPCa_lesion_delineations" / sub[mask_kind] / f"{pid}_{sid}.nii.gz", mask)
    lines = ["patient_id,study_id,mri_date,patient_age,psa,case_csPCa,center"]
    lines += [f"{p},{s},2020-01-01,66,7.1,{c},PCNN" for p, s, _, _, c in studies]
    (labels / "clinical_information").mkdir(parents=True)
    (labels / "clinical_information" / "marksheet.csv").write_text("\n".join(lines) + "\n")
    lesion = [0, 0, 1, 1, 0, 0][:n_slices]
    return {"labels": {"siemens": lesion + [0] * n_slices, "other": [0] * n_slices},
            "secrets": ["10000", "10001", "10003", "10004"], "dropped": 2}


def make_duke(root: Path, side: int = 32, n_slices: int = 8) -> dict[str, Any]:
    """GE (T 3) and SIEMENS (T 1) patients with pre and post_1 series; an MPTronic patient (dropped).

    The post_1 files run opposite to the original numbering (original NNN = 9 - file number), and a
    marker voxel sits where the box centre must land: file 1-005 (original 4), row 11, column 21.
    """
    base, mapping = root / "manifest-1654812109500" / "Duke-Breast-Cancer-MRI", []
    clinical: list[list[object]] = [["Patient Information", "MRI Technical Information", "Tumor Characteristics"],
                ["Patient ID", "Manufacturer", "Staging(Tumor Size)# [T]"],
                ["", "0 = GE, 1 = MPTronic, 2 = Siemens", "T stage"]]
    boxes: list[list[object]] = [["Patient ID", "Start Row", "End Row", "Start Column", "End Column", "Start Slice",
                                  "End Slice"]]
    for i, (code, maker, stage) in enumerate([(0, "GE MEDICAL SYSTEMS", 3), (2, "SIEMENS", 1),
                                              (1, "MPTronic software", 2)], start=1):
        pid = f"Breast_MRI_{i:03d}"
        p = Patient(pid, name=f"Patient^{pid}").with_uids()
        study = base / pid / "01-01-1990-NA-MRI BREAST BILATERAL WWO-97538"
        write_ct_series(study / "3.000000-ax dyn pre-11111", p, maker, np.zeros((n_slices, side, side)), "ax dyn pre",
                        3, modality="MR")
        vol = np.full((n_slices, side, side), 100, dtype=np.int16)
        vol[4, 11, 21] = 999  # file 1-005
        post = write_ct_series(study / "4.000000-ax dyn 1st pass-22222", p, maker, vol, "ax dyn 1st pass", 4,
                               modality="MR")
        for k, ds in enumerate(post):
            original = f"DICOM_Images/{pid}/post_1/{pid}_post_1_{n_slices + 1 - (k + 1):03d}.dcm"
            classic = f"Duke-Breast-Cancer-MRI/{pid}/{ds.StudyInstanceUID}/{ds.SeriesInstanceUID}/1-{k + 1:03d}.dcm"
            mapping.append([original, f"Duke-Breast-Cancer-MRI/{pid}/descriptive/1-{k + 1:03d}.dcm", classic])
        mapping.append([f"DICOM_Images/{pid}/pre/{pid}_pre_001.dcm", "x", "Duke-Breast-Cancer-MRI/x/y/z/1-001.dcm"])
        clinical.append([pid, code, stage])
        boxes.append([pid, 10, 14, 20, 24, 3, 5])
    write_xlsx(root / "Breast-Cancer-MRI-filepath_filename-mapping.xlsx",
               [["original_path_and_filename", "descriptive_path", "classic_path"], *mapping])
    write_xlsx(root / "Annotation_Boxes.xlsx", boxes)
    write_xlsx(root / "Clinical_and_Other_Features.xlsx", clinical)
    return {"labels": {"ge": [1], "siemens": [0]}, "secrets": ["Breast_MRI_001", "Breast_MRI_002", "Patient^"],
            "dropped": 1}


def make_brax(root: Path) -> dict[str, Any]:
    """Rows covering every rule: views, codes, -1 and blank labels, a suffixed path, a moved file, a missing one."""
    header = ("PatientID,PatientSex,PatientAge,AccessionNumber,StudyDate,Cardiomegaly,ViewPosition,Rows,Columns,"
              "Manufacturer,DicomPath,PngPath")
    rows = [("id_aaaa1111-0000-0000-0000-000000000001", "1", "PA", 3, "as_is"),   # kept, 3, label 1
            ("id_aaaa1111-0000-0000-0000-000000000001", "0", "LL", 3, "as_is"),   # lateral: dropped
            ("id_bbbb2222-0000-0000-0000-000000000002", "0", "AP", 5, "suffix"),  # kept, 5, label 0
            ("id_bbbb2222-0000-0000-0000-000000000002", "-1", "PA", 5, "as_is"),  # uncertain: dropped
            ("id_cccc3333-0000-0000-0000-000000000003", "1", "PA", 4, "as_is"),   # code 4: dropped
            ("id_dddd4444-0000-0000-0000-000000000004", "", "PA", 5, "as_is"),    # blank: dropped
            ("id_eeee5555-0000-0000-0000-000000000005", "0", "PA", 3, "moved"),   # found by name, 3, 0
            ("id_ffff6666-0000-0000-0000-000000000006", "1", "PA", 5, "missing")]  # file missing: skipped
    lines = [header]
    rng = np.random.default_rng(0)
    for i, (pid, label, view, code, where) in enumerate(rows):
        rel = f"images/{pid}/Study_1.2.{i}/Series_1.3.{i}/image-{i}-1.png"
        target = {"moved": root / "elsewhere" / Path(rel).name}.get(where, root / rel)
        if where != "missing":
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 60000, (60, 50)).astype(np.uint16)).save(target)
        written = rel + ".backup" if where == "suffix" else rel
        lines.append(f"{pid},M,45 - 49,ACC{i},20180101,{label},{view},60,50,{code},x.dcm,{written}")
    (root / "master_spreadsheet_update.csv").write_text("\n".join(lines) + "\n")
    return {"labels": {"3": [1, 0], "5": [0]}, "secrets": [r[0] for r in rows], "dropped": 1}
