"""Duke-Breast-Cancer-MRI (TCIA) -> `mri-breast`: one 5 x 47 x 47 crop per patient, label T stage > 2.

Inputs under --raw: the DICOM tree (`Duke-Breast-Cancer-MRI/Breast_MRI_NNN/<study>/<series>/1-NNN.dcm`,
classic or descriptive names) and three sheets (found by name, or given as options):
    Breast-Cancer-MRI-filepath_filename-mapping.xlsx  original_path_and_filename -> classic_path
    Annotation_Boxes.xlsx                             Patient ID, Start/End Row, Start/End Column, Start/End Slice
    Clinical_and_Other_Features.xlsx                  three header rows; row 2 holds the column names
The first post-contrast series (`post_1` in the original paths) is found through the mapping's
classic path, whose 4th part is its SeriesInstanceUID (file names are never trusted beyond their
trailing number). Box slices use the original numbering (`_NNN` of the original file), mapped to files
through the sheet. The crop is centred on the box centre: rows and columns 1-based and ends
inclusive [I, options `one_based`, `end_inclusive`]. Label 1 iff `label_column` > `threshold`
(default `Staging(Tumor Size)# [T]` > 2 [I]). Scanner: the clinical sheet's Manufacturer code
(0 GE, 1 MPTronic software, 2 Siemens: MPTronic is software and fits no domain), else the DICOM tag
of the chosen series; `scanner_source=dicom` makes the DICOM tag the source of truth [I]. When the two
name different vendors the case's manifest record says so. A box that does not fit the series (rows,
columns or slices outside it, reversed) drops the case with why, never a crop beside the lesion.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from preprocessing.clinical import find_column, read_table
from preprocessing.core import CONVERTERS, CaseOutput, Converter, Job
from preprocessing.dicom import Series, domain_of, load_volume
from preprocessing.tcia import DicomCase, OpenCase, crop, discover_tcia, open_case
from preprocessing.vendors import match_domain, vendor_of
from scanshift_ray.errors import ScanshiftError

MANUFACTURER_CODES = {"0": "GE MEDICAL SYSTEMS", "1": "MPTronic software", "2": "SIEMENS"}


@dataclass(frozen=True)
class BreastOptions:
    crop_side: int = 47
    crop_depth: int = 5
    sequence: str = "post_1"
    label_column: str = r"Staging\(Tumor Size\)"
    threshold: float = 2.0
    one_based: bool = True
    end_inclusive: bool = True
    mapping: str = ""
    boxes: str = ""
    clinical: str = ""
    scanner_source: str = "sheet"  # sheet | dicom: which names the scanner when they disagree [I]


def patient_number(text: str) -> int | None:
    """Breast_MRI_001, BreastMRI001 and Breast_MRI_001/... all give 1."""
    m = re.search(r"breast_?mri_?(\d+)", str(text), re.IGNORECASE)
    return int(m.group(1)) if m else None


def _sheet(raw: Path, given: str, pattern: str) -> Path:
    if given:
        path = Path(given) if Path(given).is_absolute() else raw / given
    else:
        found = sorted(p for p in raw.rglob("*.xlsx") if re.search(pattern, p.name, re.IGNORECASE))
        path = found[0] if found else raw / f"<{pattern}>.xlsx"
    if not path.is_file():
        raise ScanshiftError(f"Duke sheet not found: {path} (name it or pass it as an option)")
    return path


def _series_map(path: Path, sequence: str) -> dict[int, dict[str, Any]]:
    """{patient number: {"series": SeriesInstanceUID, "files": {original NNN: classic file number}}}."""
    df = read_table(path)
    orig, classic = find_column(df, r"original_path"), find_column(df, r"classic_path")
    if orig is None or classic is None:
        raise ScanshiftError(f"{path}: needs columns original_path_and_filename and classic_path")
    out: dict[int, dict[str, Any]] = {}
    for o, c in zip(df[orig].astype(str), df[classic].astype(str), strict=True):
        parts, cparts = o.replace("\\", "/").split("/"), c.replace("\\", "/").split("/")
        n, num, cnum = patient_number(o), re.search(r"_(\d+)\.dcm$", o), re.search(r"(\d+)\.dcm$", c)
        if len(parts) < 2 or parts[-2] != sequence or n is None or not num or not cnum or len(cparts) < 2:
            continue
        entry = out.setdefault(n, {"series": cparts[-2], "files": {}})
        entry["files"][int(num.group(1))] = int(cnum.group(1))
    return out


def _boxes(path: Path) -> dict[int, list[float]]:
    """{patient number: [start row, end row, start col, end col, start slice, end slice]}; rows with a
    blank or non-numeric cell are left out (the patient is then dropped as having no box)."""
    boxes = read_table(path)
    box_cols = ["Start Row", "End Row", "Start Column", "End Column", "Start Slice", "End Slice"]
    missing = [c for c in ["Patient ID", *box_cols] if c not in boxes.columns]
    if missing:
        raise ScanshiftError(f"{path}: lacks column(s) {', '.join(missing)}")
    numbers = boxes[box_cols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    out = {}
    for pid, row in zip(boxes["Patient ID"], numbers, strict=True):
        n = patient_number(pid)
        if n is not None and np.isfinite(row).all():
            out[n] = [float(v) for v in row]
    return out


def discover(raw: Path, opt: BreastOptions) -> tuple[list[DicomCase], list[tuple[Path, str]], dict[str, Any]]:
    """Patient folders, plus the post-contrast series map, the boxes and labels per patient number."""
    if opt.scanner_source not in ("sheet", "dicom"):
        raise ScanshiftError(f"option scanner_source must be sheet or dicom, not {opt.scanner_source!r}")
    cases, loose = discover_tcia(raw)
    series = _series_map(_sheet(raw, opt.mapping, r"mapping"), opt.sequence)
    box = _boxes(_sheet(raw, opt.boxes, r"annotation_boxes"))
    clinical_path = _sheet(raw, opt.clinical, r"clinical")
    clinical = read_table(clinical_path, header=1)  # row 0: groups, row 1: names, row 2: code legend
    label_col, maker_col = find_column(clinical, opt.label_column), find_column(clinical, r"^manufacturer$")
    if label_col is None:
        raise ScanshiftError(f"{clinical_path}: no column matching {opt.label_column!r}")
    info = {}
    for _, row in clinical.iterrows():
        n = patient_number(row.get("Patient ID", ""))
        if n is not None:
            code = str(row[maker_col]).strip().split(".")[0] if maker_col else ""
            info[n] = (pd.to_numeric(row[label_col], errors="coerce"), MANUFACTURER_CODES.get(code, ""))
    return cases, loose, {"series": series, "boxes": box, "clinical": info}


def _slice_index(series: Series, sop_uids: list[str], target_file: int) -> int | None:
    """Volume index of the file of `series` whose name ends in number `target_file` (e.g. 1-005.dcm)."""
    for path, ds in zip(series.paths, series.headers, strict=True):
        m = re.search(r"(\d+)\.dcm$", path.name)
        if m and int(m.group(1)) == target_file:
            return sop_uids.index(str(ds.SOPInstanceUID)) if str(ds.SOPInstanceUID) in sop_uids else None
    return None


def _scanner(opened: OpenCase, series: Series, sheet_maker: str, opt: BreastOptions) -> bool:
    """Set the case's domain from the source of truth `scanner_source`; note a sheet/DICOM disagreement."""
    dicom_maker = series.manufacturer
    sheet_domain, dicom_domain = domain_of(opened.job.spec, sheet_maker), domain_of(opened.job.spec, dicom_maker)
    if sheet_maker and dicom_maker and vendor_of(sheet_maker).name != vendor_of(dicom_maker).name:
        opened.out.notes.append(f"scanner disagreement: clinical sheet says {sheet_maker!r} ({sheet_domain}), "
                                f"DICOM Manufacturer of the {opt.sequence} series says {dicom_maker!r} "
                                f"({dicom_domain}); scanner_source={opt.scanner_source} decides")
    use_sheet = (opt.scanner_source == "sheet" and bool(sheet_maker)) or not dicom_maker
    opened.out.manufacturer = sheet_maker if use_sheet else dicom_maker
    opened.out.model = series.model
    opened.out.domain, why = match_domain(opened.job.spec, opened.out.manufacturer)
    if opened.out.domain is None:
        opened.drop(why)
    return opened.out.domain is not None


def _box_centre(box: list[float], files: dict[int, int], shape: tuple[int, ...], opt: BreastOptions
                ) -> tuple[int, int, int] | str:
    """(original slice number, row, col) of the box centre (0-based pixels), or why the box does not fit."""
    r0, r1, c0, c1, s0, s1 = box
    shift, end = (1.0 if opt.one_based else 0.0), (0.0 if opt.end_inclusive else 1.0)
    rows, cols = shape[1:]
    if not (r0 <= r1 - end and c0 <= c1 - end and s0 <= s1 - end):
        return f"box is empty or reversed (rows {r0}-{r1}, columns {c0}-{c1}, slices {s0}-{s1})"
    if r0 - shift < 0 or c0 - shift < 0 or r1 - end - shift > rows - 1 or c1 - end - shift > cols - 1:
        return f"box rows {r0:g}-{r1:g} / columns {c0:g}-{c1:g} lie outside the {rows} x {cols} image"
    if s0 < min(files) or s1 - end > max(files):
        return f"box slices {s0:g}-{s1:g} lie outside the series' slices {min(files)}-{max(files)}"
    centre = min(files, key=lambda nnn: abs(nnn - (s0 + s1 - end) / 2))
    return centre, int(np.floor((r0 + r1 - end) / 2 - shift + 0.5)), int(np.floor((c0 + c1 - end) / 2 - shift + 0.5))


def process(case: DicomCase, job: Job) -> CaseOutput:
    """The box-centred post-contrast crop of one Duke patient."""
    opt: BreastOptions = job.options
    opened = open_case(case, job)
    n = patient_number(case.patient_id) or patient_number(case.raw_id)  # the DICOM id first: folders get renamed
    ctx = job.context
    if n is None or n not in ctx["series"] or n not in ctx["boxes"] or n not in ctx["clinical"]:
        return opened.drop(f"patient missing from the mapping ({opt.sequence}), box or clinical sheet")
    stage, maker = ctx["clinical"][n]
    if not np.isfinite(stage):
        return opened.drop("no numeric value in the label column")
    series = opened.series.get(ctx["series"][n]["series"])
    if series is None:
        return opened.drop(f"the {opt.sequence} series of the mapping sheet is not on disk")
    if not _scanner(opened, series, maker, opt):
        return opened.out
    vol = load_volume(series)
    files: dict[int, int] = ctx["series"][n]["files"]
    centre = _box_centre(ctx["boxes"][n], files, vol.pixels.shape, opt)
    if isinstance(centre, str):
        return opened.drop(f"annotation box does not fit the {opt.sequence} series: {centre}")
    k = _slice_index(series, vol.sop_uids, files[centre[0]])
    if k is None:
        return opened.drop("the box's centre slice is not in the series on disk")
    opened.out.images.append(crop(vol.pixels.astype(np.float32), (k, centre[1], centre[2]),
                                  (opt.crop_depth, opt.crop_side, opt.crop_side), 0.0))
    opened.out.labels.append(int(stage > opt.threshold))
    return opened.out


CONVERTERS.add("mri-breast", Converter("mri-breast", BreastOptions, discover, process))
