"""BRAX (PhysioNet) -> `xray-chest`: one radiograph per spreadsheet row, label Cardiomegaly, domains 3 vs 5.

Inputs under --raw: `master_spreadsheet_update.csv` (v1.1; v1.0's `master_spreadsheet.csv` also works)
and the 16-bit PNGs (`source=png`, default) or DICOMs (`source=dicom`). Rows are kept when the
`Manufacturer` code is a domain (3 or 5; others dropped and counted) and `ViewPosition` is in `views`
(default frontal, PA and AP; `unknown_view=keep` keeps blanks) [I]. Cardiomegaly 1 -> 1, 0 -> 0; the
uncertain -1 and blank are dropped unless `uncertain` / `blank` say `positive` or `negative` [I].
Image paths are resolved defensively: as given (relative to --raw), else without the 7-character
suffix other loaders strip, else without the first folder, else by file name anywhere under --raw.
Paths that are absolute or climb out of --raw refuse the run. Images are 16-bit (`png_bits`): a PNG of
another depth (8-bit among 16-bit would put its values on another scale), colour, or with an absurd
header size (decompression bomb) is dropped with why. Images are resized to `size` x `size` (224 in the
paper) with area averaging; stored as float32.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pydicom

from preprocessing.clinical import read_table
from preprocessing.core import CONVERTERS, CaseOutput, Converter, Drop, Job
from preprocessing.pixels import dicom_pixels, read_png
from preprocessing.tcia import resize2d
from scanshift_ray.errors import ScanshiftError

SHEETS = ("master_spreadsheet_update.csv", "master_spreadsheet.csv")
_MAP = {"drop": None, "positive": 1, "negative": 0}


@dataclass(frozen=True)
class ChestOptions:
    size: int = 224
    source: str = "png"
    views: str = "PA,AP"
    unknown_view: str = "drop"
    uncertain: str = "drop"
    blank: str = "drop"
    sheet: str = ""
    png_bits: int = 16  # BRAX PNGs are 16-bit; a PNG of another depth is dropped, not mixed in [I]


@dataclass(frozen=True)
class PatientRows:
    raw_id: str
    rows: tuple[tuple[str, int, str, Path | None], ...]  # (code, label, path as written, resolved file)
    spellings: tuple[str, ...] = ()  # every spelling of the id in the sheet (ids compared ignoring case)


def label_of(value: Any, opt: ChestOptions) -> int | None:
    """Cardiomegaly cell -> 0/1, or None (dropped) by the `uncertain` / `blank` options."""
    number = pd.to_numeric(value, errors="coerce")
    if pd.isna(number):
        return _MAP[opt.blank]
    if number == -1:
        return _MAP[opt.uncertain]
    return int(number == 1) if number in (0, 1) else None


def _check(opt: ChestOptions) -> None:
    for name in ("uncertain", "blank"):
        if getattr(opt, name) not in _MAP:
            raise ScanshiftError(f"option {name} must be one of {', '.join(_MAP)}")
    if opt.source not in ("png", "dicom") or opt.unknown_view not in ("drop", "keep"):
        raise ScanshiftError("option source must be png or dicom, unknown_view drop or keep")


def _outside_raw(written: str) -> bool:
    """True when a sheet path is absolute or climbs out of --raw with `..` (never followed)."""
    rel = written.replace("\\", "/")
    if rel.startswith("/") or re.match(r"^[A-Za-z]:", rel):
        return True
    depth = 0
    for part in rel.split("/"):
        depth += -1 if part == ".." else (0 if part in ("", ".") else 1)
        if depth < 0:
            return True
    return False


def _read_sheet(raw: Path, opt: ChestOptions) -> tuple[Path, pd.DataFrame, str]:
    """The master spreadsheet, its path column checked; paths leaving --raw refuse the run."""
    sheet = raw / opt.sheet if opt.sheet else next((raw / s for s in SHEETS if (raw / s).is_file()), raw / SHEETS[0])
    if not sheet.is_file():
        raise ScanshiftError(f"BRAX spreadsheet not found: {sheet}")
    df = read_table(sheet)
    path_col = "PngPath" if opt.source == "png" else "DicomPath"
    missing = [c for c in ["PatientID", "Cardiomegaly", "ViewPosition", "Manufacturer", path_col]
               if c not in df.columns]
    if missing:
        raise ScanshiftError(f"{sheet}: lacks column(s) {', '.join(missing)}")
    bad = [i for i, w in enumerate(df[path_col].fillna("").astype(str)) if _outside_raw(w)]
    if bad:
        raise ScanshiftError(f"{sheet}: {len(bad)} {path_col} value(s) point outside --raw (first: data row "
                             f"{bad[0] + 1}); refusing to read files outside the dataset")
    return sheet, df, path_col


def discover(raw: Path, opt: ChestOptions) -> tuple[list[PatientRows], list[tuple[Path, str]], dict[str, Any]]:
    """Rows grouped by patient after the view, code and label filters; drop counts as loose reasons.

    Ids differing only by case are one patient (one pseudonym, from the spelling that sorts first)."""
    _check(opt)
    sheet, df, path_col = _read_sheet(raw, opt)
    pid = df["PatientID"].fillna("").astype(str).str.strip()
    views = {v.strip().upper() for v in opt.views.split(",")}
    view = df["ViewPosition"].fillna("").str.strip().str.upper()
    keep_view = (view.isin(views) | ((view == "") & (opt.unknown_view == "keep"))) & (pid != "")
    code = df["Manufacturer"].fillna("").str.strip().str.split(".").str[0]
    labels = df["Cardiomegaly"].map(lambda v: label_of(v, opt))
    known = code.isin(["3", "5"])
    reasons = {"blank PatientID": pid == "", "view not in " + opt.views: (pid != "") & ~keep_view,
               "manufacturer code not 3 or 5": keep_view & ~known,
               "Cardiomegaly uncertain or blank": keep_view & known & labels.isna()}
    kept = df[keep_view & known & labels.notna()]
    names = {p.name: p for p in raw.rglob("*.png" if opt.source == "png" else "*.dcm")}
    groups: dict[str, list[tuple[str, str, int, str, Path | None]]] = {}
    for i, row in kept.iterrows():
        written = str(row[path_col])
        groups.setdefault(pid[i].casefold(), []).append((pid[i], code[i], int(labels[i]), written,
                                                         resolve(raw, written, names)))
    loose = [(sheet, f"{int(mask.sum())} rows dropped: {why}") for why, mask in reasons.items() if mask.any()]
    cases = [PatientRows(min(r[0] for r in rows), tuple(r[1:] for r in rows), tuple(sorted({r[0] for r in rows})))
             for rows in groups.values()]
    return cases, loose, {}


def resolve(raw: Path, written: str, by_name: dict[str, Path]) -> Path | None:
    """The file a spreadsheet path points to, tried in the documented order."""
    rel = written.replace("\\", "/").lstrip("/")
    for candidate in (rel, rel[:-7], rel.split("/", 1)[-1]):
        if candidate and (raw / candidate).is_file():
            return raw / candidate
    return by_name.get(Path(rel).name) or by_name.get(Path(rel[:-7]).name)


def read_image(path: Path, bits: int = 16) -> np.ndarray:
    """A greyscale PNG of `bits` bits (Pillow) or a DICOM radiograph (pydicom) as float32 (H, W).

    Raises Drop (sizes checked from the header first) when the image is too large, of another bit depth,
    colour, or undecodable."""
    if path.suffix.lower() == ".dcm":
        return dicom_pixels(pydicom.dcmread(path)).astype(np.float32)
    return read_png(path, bits)


def process(patient: PatientRows, job: Job) -> CaseOutput:
    """The images of one BRAX patient; rows are all one domain in practice, else the first row's wins."""
    opt: ChestOptions = job.options
    ids = {patient.raw_id, *patient.spellings}
    out = CaseOutput(job.pseudonym(patient.raw_id), domain=patient.rows[0][0], manufacturer=patient.rows[0][0],
                     raw_ids=ids)
    if len(ids) > 1:
        out.notes.append(f"{len(ids)} spellings of the PatientID differing only by case: taken as one patient")
    for code, label, written, path in patient.rows:
        if code != out.domain:
            out.skipped.append((job.relpath(job.raw / written, ids), "second scanner of one patient"))
        elif path is None:
            out.skipped.append((job.relpath(job.raw / written, ids), "image file not found"))
        else:
            try:
                image = read_image(path, opt.png_bits)
            except Drop as exc:
                out.skipped.append((job.relpath(path, ids), f"image dropped: {exc}"))
                continue
            except Exception as exc:
                out.skipped.append((job.relpath(path, ids), f"unreadable image: {type(exc).__name__}"))
                continue
            out.images.append(resize2d(image, opt.size))
            out.labels.append(label)
    if not out.labels:
        out.dropped = "no readable image"
    return out


CONVERTERS.add("xray-chest", Converter("xray-chest", ChestOptions, discover, process))
