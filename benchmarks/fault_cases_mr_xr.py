"""Fault-corpus cases of PI-CAI, Duke and BRAX, and of the output folder (see fault_corpus.py)."""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from fault_cases_ct import edit, files, in_domain, labels_are, setattr_
from fault_corpus import FIXTURES, KEY, Fault
from openpyxl import load_workbook
from PIL import Image

from preprocessing.core import convert


def _mha_header(pattern: str, old: bytes, new: bytes) -> Callable[[Path], None]:
    def damage(root: Path) -> None:
        for path in files(root, pattern):
            data = path.read_bytes()
            assert old in data, old
            path.write_bytes(data.replace(old, new, 1))
    return damage


def _marksheet(change: Callable[[str], bytes]) -> Callable[[Path], None]:
    def damage(root: Path) -> None:
        path = root / "picai_labels/clinical_information/marksheet.csv"
        path.write_bytes(change(path.read_text()))
    return damage


def _mask_shape(root: Path) -> None:
    import nibabel as nib
    path = files(root, r"human_expert/resampled/10000_1000000")[0]
    nib.save(nib.Nifti1Image(np.zeros((16, 16, 6), dtype=np.uint8), np.eye(4)), path)


def _mask_4d(root: Path) -> None:
    import nibabel as nib
    path = files(root, r"human_expert/resampled/10001_1000001")[0]
    nib.save(nib.Nifti1Image(np.zeros((32, 32, 6, 2), dtype=np.uint8), np.eye(4)), path)


T2W_10000 = r"10000_1000000_t2w\.mha$"
PICAI_FAULTS = [
    Fault("picai_vendor_healthcare_gmbh", "mri-prostate", _mha_header(T2W_10000, b"= SIEMENS", b"= Siemens HealthCare "
          b"GmbH"), "converted", check=labels_are("siemens", [0, 0, 1, 1, 0, 0] + [0] * 6), fast=True),
    Fault("picai_vendor_software", "mri-prostate", _mha_header(T2W_10000, b"= SIEMENS", b"= MIM Software"),
          "dropped", "is software", check=in_domain("siemens", 6)),
    Fault("picai_bomb_header", "mri-prostate", _mha_header(T2W_10000, b"DimSize = 32 32 6", b"DimSize = 60000 60000 6"),
          "dropped", "above the limit", fast=True),
    Fault("picai_mask_other_shape", "mri-prostate", _mask_shape, "dropped", "differs from the T2W"),
    Fault("picai_mask_4d", "mri-prostate", _mask_4d, "dropped", "not 3-D"),
    Fault("picai_marksheet_bom", "mri-prostate", _marksheet(lambda t: b"\xef\xbb\xbf" + t.encode()), "converted",
          check=in_domain("siemens", 12)),
    Fault("picai_marksheet_no_study_id", "mri-prostate", _marksheet(lambda t: t.replace("study_id", "sid").encode()),
          "refused", "lacks column"),
    Fault("picai_marksheet_not_utf8", "mri-prostate", _marksheet(lambda t: (t + "10009,1,x,66,7,NO,Nürnberg\n")
          .encode("latin-1")), "refused", "not UTF-8"),
]


def _xlsx_cell(name: str, row: int, col: int, value: object) -> Callable[[Path], None]:
    def damage(root: Path) -> None:
        wb = load_workbook(root / name)
        wb.active.cell(row=row, column=col, value=value)
        wb.save(root / name)
    return damage


BOXES, CLINICAL = "Annotation_Boxes.xlsx", "Clinical_and_Other_Features.xlsx"
DUKE_FAULTS = [
    Fault("duke_box_rows_outside", "mri-breast", _xlsx_cell(BOXES, 2, 3, 140), "dropped", "outside the 32 x 32",
          check=in_domain("ge", 0), fast=True),
    Fault("duke_box_slices_outside", "mri-breast", _xlsx_cell(BOXES, 2, 7, 60), "dropped", "outside the series'"),
    Fault("duke_box_reversed", "mri-breast", _xlsx_cell(BOXES, 3, 3, 2), "dropped", "empty or reversed"),
    Fault("duke_box_not_a_number", "mri-breast", _xlsx_cell(BOXES, 3, 2, "ten"), "dropped", "missing from the mapping"),
    Fault("duke_sheet_vs_dicom", "mri-breast", _xlsx_cell(CLINICAL, 4, 2, 2), "converted", "scanner disagreement",
          check=in_domain("siemens", 2), fast=True),
    Fault("duke_sheet_vs_dicom_trust_dicom", "mri-breast", _xlsx_cell(CLINICAL, 4, 2, 2), "converted",
          "scanner disagreement", options=("scanner_source=dicom",), check=in_domain("ge", 1)),
    Fault("duke_bad_scanner_source", "mri-breast", lambda r: None, "refused", "scanner_source",
          options=("scanner_source=sheet2",)),
    Fault("duke_boxes_no_slice_column", "mri-breast", _xlsx_cell(BOXES, 1, 6, "First Slice"), "refused",
          "lacks column"),
    Fault("duke_post1_not_on_disk", "mri-breast", lambda r: [os.remove(p) for p in files(r, r"MRI_002/.*1st pass")],
          "dropped", "not on disk"),
    Fault("duke_dicom_vendor_variant", "mri-breast", edit(r"Breast_MRI_002/.*1st pass", setattr_(
        "Manufacturer", "Siemens Healthineers")), "converted", check=in_domain("siemens", 1)),
]


def _sheet(change: Callable[[list[str]], list[str]], encoding: str = "utf-8", bom: bool = False
           ) -> Callable[[Path], None]:
    def damage(root: Path) -> None:
        path = root / "master_spreadsheet_update.csv"
        lines = change(path.read_text().splitlines())
        path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + ("\n".join(lines) + "\n").encode(encoding))
    return damage


def _png(mode: str) -> Callable[[Path], None]:
    def damage(root: Path) -> None:
        path = files(root, r"image-0-1\.png$")[0]
        Image.fromarray(np.zeros((60, 50), dtype=np.uint8)).convert(mode).save(path)
    return damage


def _bomb_png(root: Path) -> None:
    """A valid PNG header claiming 100000 x 100000 pixels (a few hundred bytes on disk)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 16, 0, 0, 0, 0)
    idat = chunk(b"IDAT", zlib.compress(b"\0" * 1000))
    body = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + idat + chunk(b"IEND", b"")
    files(root, r"image-0-1\.png$")[0].write_bytes(body)


def _row(i: int, column: int, value: str) -> Callable[[list[str]], list[str]]:
    def change(lines: list[str]) -> list[str]:
        cells = lines[i].split(",")
        cells[column] = value
        return [*lines[:i], ",".join(cells), *lines[i + 1:]]
    return change


BRAX_FAULTS = [
    Fault("brax_8bit_png", "xray-chest", _png("L"), "dropped", "8-bit greyscale image among 16-bit",
          check=labels_are("3", [0]), fast=True),
    Fault("brax_rgb_png", "xray-chest", _png("RGB"), "dropped", "mode RGB"),
    Fault("brax_bomb_png", "xray-chest", _bomb_png, "dropped", "above the limit", fast=True),
    Fault("brax_truncated_png", "xray-chest", lambda r: files(r, r"image-0-1\.png$")[0].write_bytes(b"\x89PNG\r\n"),
          "dropped", "unreadable image"),
    Fault("brax_path_climbs_out", "xray-chest", _sheet(_row(1, 11, "../../../etc/passwd")), "refused",
          "outside --raw", fast=True),
    Fault("brax_path_absolute", "xray-chest", _sheet(_row(3, 11, "/etc/hostname")), "refused", "outside --raw"),
    Fault("brax_sheet_bom", "xray-chest", _sheet(lambda x: x, bom=True), "converted", check=labels_are("3", [1, 0])),
    Fault("brax_sheet_not_utf8", "xray-chest", _sheet(lambda x: [*x, "id_x,F,45,ACC,2018,1,PA,1,1,3,x,ç.png"],
          encoding="latin-1"), "refused", "not UTF-8"),
    Fault("brax_blank_rows", "xray-chest", _sheet(lambda x: [x[0], ",,,,,,,,,,,", *x[1:], ""]), "converted",
          check=labels_are("3", [1, 0])),
    Fault("brax_blank_patient_id", "xray-chest", _sheet(_row(1, 0, "")), "dropped", "blank PatientID",
          check=labels_are("3", [0])),
    Fault("brax_ids_differ_by_case", "xray-chest", _sheet(lambda x: [*x, x[1].replace("id_aaaa", "ID_AAAA")]),
          "converted", "differing only by case", check=labels_are("3", [1, 1, 0])),
    Fault("brax_missing_column", "xray-chest", _sheet(lambda x: [x[0].replace("ViewPosition", "View"), *x[1:]]),
          "refused", "lacks column"),
]


def _out_file(_raw: Path, out: Path) -> None:
    out.write_text("not a folder")


def _key_file(_raw: Path, out: Path) -> None:
    out.mkdir()
    (out / "ct-hnscc").write_text("a file where the dataset folder goes")


def _earlier(options: list[str], key: bytes = KEY) -> Callable[[Path, Path], None]:
    def setup(raw: Path, out: Path) -> None:
        convert("ct-hnscc", raw, out, key, options, workers=1)
    return setup


def _no_manifest(raw: Path, out: Path) -> None:
    _earlier(FIXTURES["ct-hnscc"][1])(raw, out)
    (out / "ct-hnscc" / "manifest.json").unlink()


OUTPUT_FAULTS = [
    Fault("out_is_a_file", "ct-hnscc", lambda r: None, "refused", "is a file", out_setup=_out_file, fast=True),
    Fault("out_cannot_be_written", "ct-hnscc", lambda r: None, "refused", "cannot be written", out_setup=_key_file),
    Fault("out_has_other_options", "ct-hnscc", lambda r: None, "refused", "--overwrite", options=("size=8",),
          out_setup=_earlier(["size=16"]), fast=True),
    Fault("out_has_unknown_shards", "ct-hnscc", lambda r: None, "refused", "no manifest", out_setup=_no_manifest),
    Fault("out_other_pseudonym_key", "ct-hnscc", lambda r: None, "converted",
          out_setup=_earlier(["size=16"], b"another-key!"), check=in_domain("ge", 6)),
]

FAULTS = PICAI_FAULTS + DUKE_FAULTS + BRAX_FAULTS + OUTPUT_FAULTS
