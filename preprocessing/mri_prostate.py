"""PI-CAI public training set -> `mri-prostate`: axial T2W slices, label 1 iff a csPCa lesion is on the slice.

Raw layout (point --raw at a folder holding both, in any arrangement):
    <patient_id>/<patient_id>_<study_id>_t2w.mha        (picai_public_images_fold*, SimpleITK reads them)
    picai_labels/clinical_information/marksheet.csv
    picai_labels/csPCa_lesion_delineations/human_expert/resampled/<patient_id>_<study_id>.nii.gz
    picai_labels/csPCa_lesion_delineations/AI/Bosma22a/<patient_id>_<study_id>.nii.gz
The scanner is the .mha header key `0008|0070` (picai_prep copies the DICOM tags there). Slice k of
the T2W image (SimpleITK array order z, y, x) is positive iff the lesion mask (on the T2W grid: the
`resampled` masks) is > 0 on slice k. Masks: the human expert's; where none exists, a study the
marksheet calls negative (case_csPCa NO) gets all-zero labels, and with `ai_fallback=true` the AI
(Bosma22a) mask is used [I]; otherwise the study is dropped. A patient with two studies keeps one
pseudonym, so splits stay by patient. Slices are resized to `size` (0 keeps them) as float32.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import SimpleITK as sitk

from preprocessing.clinical import read_table
from preprocessing.core import CONVERTERS, CaseOutput, Converter, Drop, Job
from preprocessing.pixels import check_image_size
from preprocessing.tcia import resize2d
from preprocessing.vendors import match_domain
from scanshift_ray.errors import ScanshiftError

_T2W = re.compile(r"^(?P<patient>[^_/]+)_(?P<study>[^_/]+)_t2w\.mha$", re.IGNORECASE)


@dataclass(frozen=True)
class ProstateOptions:
    size: int = 256
    labels: str = ""  # the picai_labels folder; default: found under --raw
    ai_fallback: bool = False
    negatives_without_mask: bool = True


@dataclass(frozen=True)
class Study:
    raw_id: str  # patient_id
    study_id: str
    t2w: Path


def _labels_root(raw: Path, given: str) -> Path | None:
    if given:
        return Path(given) if Path(given).is_absolute() else raw / given
    found = sorted(raw.rglob("csPCa_lesion_delineations"))
    return found[0].parent if found else None


def discover(raw: Path, options: ProstateOptions) -> tuple[list[Study], list[tuple[Path, str]], dict[str, Any]]:
    """One case per T2W image; the label folders and the marksheet's negative studies as context."""
    studies, loose = [], []
    for path in sorted(raw.rglob("*.mha")):
        m = _T2W.match(path.name)
        if m:
            studies.append(Study(m["patient"], m["study"], path))
    labels = _labels_root(raw, options.labels)
    negatives: set[str] = set()
    marksheet = labels / "clinical_information" / "marksheet.csv" if labels is not None else None
    if marksheet is not None and marksheet.is_file():
        sheet = read_table(marksheet)
        if "case_csPCa" in sheet.columns:
            missing = [c for c in ("patient_id", "study_id") if c not in sheet.columns]
            if missing:
                raise ScanshiftError(f"{marksheet}: has case_csPCa but lacks column(s) {', '.join(missing)}")
            neg = sheet[sheet["case_csPCa"].fillna("").str.strip().str.upper() == "NO"]
            negatives = {f"{p}_{s}".strip() for p, s in zip(neg["patient_id"], neg["study_id"], strict=True)}
    elif labels is None:
        loose.append((raw, "no picai_labels folder (csPCa_lesion_delineations) found: every study lacks masks"))
    return studies, loose, {"labels": labels, "negatives": negatives}


def _read_mask(path: Path) -> np.ndarray:
    """A NIfTI lesion mask as (z, y, x); a mask that is not 3-D or absurdly large raises Drop."""
    img = nib.load(path)
    shape = tuple(int(v) for v in img.shape)  # type: ignore[attr-defined]
    if len(shape) != 3:
        raise Drop(f"lesion mask is {len(shape)}-D {shape}, not 3-D")
    check_image_size(shape[1], shape[0], shape[2], "lesion mask")
    return np.transpose(np.asarray(img.dataobj), (2, 1, 0))  # type: ignore[attr-defined]  # nibabel: (x, y, z)


def _mask(study: Study, job: Job) -> tuple[np.ndarray | None, str]:
    """The lesion mask (z, y, x) of a study, or None with the reason."""
    opt: ProstateOptions = job.options
    root: Path | None = job.context["labels"]
    name = f"{study.raw_id}_{study.study_id}.nii.gz"
    sources = [("human", "csPCa_lesion_delineations/human_expert/resampled")]
    if opt.ai_fallback:
        sources.append(("AI", "csPCa_lesion_delineations/AI/Bosma22a"))
    for _, sub in sources:
        if root is not None and (root / sub / name).is_file():
            return _read_mask(root / sub / name), ""
    if opt.negatives_without_mask and f"{study.raw_id}_{study.study_id}" in job.context["negatives"]:
        return None, "negative"
    return None, "no human expert lesion mask" + ("" if opt.ai_fallback else " (ai_fallback=true uses the AI mask)")


def process(study: Study, job: Job) -> CaseOutput:
    """The labelled T2W slices of one PI-CAI study."""
    out = CaseOutput(job.pseudonym(study.raw_id))
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(study.t2w))
    reader.ReadImageInformation()
    out.manufacturer, out.model = (reader.GetMetaData(k).strip() if reader.HasMetaDataKey(k) else ""
                                   for k in ("0008|0070", "0008|1090"))
    out.domain, why = match_domain(job.spec, out.manufacturer)
    if out.domain is None:
        return out.drop(f"{why} (header key 0008|0070)")
    size = reader.GetSize()  # (x, y, z) from the header: refuse absurd sizes before decoding
    check_image_size(int(size[1]), int(size[0]), int(np.prod(size[2:])) if len(size) > 2 else 1, "T2W .mha")
    image = sitk.GetArrayFromImage(reader.Execute()).astype(np.float32)  # (z, y, x)
    mask, why = _mask(study, job)
    if mask is None and why != "negative":
        out.dropped = f"a study without a lesion mask: {why}"
        return out
    if mask is not None and mask.shape != image.shape:
        out.dropped = f"lesion mask shape {mask.shape} differs from the T2W image {image.shape}"
        return out
    for k in range(image.shape[0]):
        out.images.append(resize2d(image[k], job.options.size))
        out.labels.append(int(mask is not None and bool((mask[k] > 0).any())))
    return out


CONVERTERS.add("mri-prostate", Converter("mri-prostate", ProstateOptions, discover, process))
