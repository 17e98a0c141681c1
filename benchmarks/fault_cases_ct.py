"""Fault-corpus cases of the four TCIA CT converters (see fault_corpus.py for the classes)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from fault_corpus import Fault, labels_of
from pydicom.dataset import Dataset
from pydicom.uid import JPEG2000Lossless, RLELossless, generate_uid

from preprocessing import fixtures_ct
from preprocessing.testing import Patient, write_ct_series

KITS = "manifest-1600000000/C4KC-KiTS"


def files(root: Path, pattern: str) -> list[Path]:
    """Files under `root` whose relative path matches the regular expression `pattern`, sorted."""
    return sorted(p for p in root.rglob("*") if p.is_file() and re.search(pattern, str(p.relative_to(root))))


def edit(pattern: str, change: Callable[[Dataset], None]) -> Callable[[Path], None]:
    """A damage: apply `change` to every DICOM file matching `pattern` and save it."""
    def damage(root: Path) -> None:
        targets = files(root, pattern)
        assert targets, pattern
        for path in targets:
            ds = pydicom.dcmread(path)
            change(ds)
            ds.save_as(path)
    return damage


def setattr_(name: str, value: Any) -> Callable[[Dataset], None]:
    return lambda ds: setattr(ds, name, value)


def compress(syntax: str) -> Callable[[Dataset], None]:
    return lambda ds: ds.compress(syntax)


def delete(pattern: str) -> Callable[[Path], None]:
    def damage(root: Path) -> None:
        for path in files(root, pattern):
            path.unlink()
    return damage


def labels_are(domain: str, want: list[int]) -> Callable[[dict[str, Any], Path], str | None]:
    def check(_body: dict[str, Any], folder: Path) -> str | None:
        got = labels_of(folder, domain)
        return None if got == want else f"{domain} labels {got}, want {want}"
    return check


def in_domain(domain: str, n: int) -> Callable[[dict[str, Any], Path], str | None]:
    def check(body: dict[str, Any], _folder: Path) -> str | None:
        got = body["counts"].get(domain, {}).get("n", 0)
        return None if got == n else f"{domain} has {got} samples, want {n}"
    return check


def _seg_change(change: Callable[[Dataset], None]) -> Callable[[Path], None]:
    return edit(r"KiTS-00000/.*Segmentation.*\.dcm$", change)


def _relabel(ds: Dataset) -> None:
    for item in ds.SegmentSequence:
        item.SegmentLabel = f"Region {item.SegmentNumber}"


def _cut_frames(ds: Dataset) -> None:
    ds.PerFrameFunctionalGroupsSequence = ds.PerFrameFunctionalGroupsSequence[:-1]


def _move_frames(ds: Dataset) -> None:
    for fg in ds.PerFrameFunctionalGroupsSequence:
        fg.PlanePositionSequence[0].ImagePositionPatient[2] += 1000.0
        for der in fg.get("DerivationImageSequence", []):
            for src in der.SourceImageSequence:
                src.ReferencedSOPInstanceUID = generate_uid()


def _tumour_to_kidney(ds: Dataset) -> None:
    for fg in ds.PerFrameFunctionalGroupsSequence:
        fg.SegmentIdentificationSequence[0].ReferencedSegmentNumber = 1


def _truncate(pattern: str) -> Callable[[Path], None]:
    def damage(root: Path) -> None:
        path = files(root, pattern)[0]
        path.write_bytes(path.read_bytes()[:-300])
    return damage


def _bomb(ds: Dataset) -> None:
    ds.Rows, ds.Columns = 60000, 60000


def _stray_with_id(root: Path) -> None:
    (root / "KiTS-00001_consent.txt").write_text("x")
    (root / KITS / "KiTS-00000" / "README-KiTS-00000.txt").write_text("x")


def _symlinked_patient(root: Path) -> None:
    """Move one patient elsewhere and link it back into the tree; add a loop beside it."""
    base = root / KITS
    os.replace(base / "KiTS-00001", root.parent / "KiTS-00001")
    (base / "KiTS-00001").symlink_to(root.parent / "KiTS-00001", target_is_directory=True)
    (base / "KiTS-00000" / "loop").symlink_to(base, target_is_directory=True)


KITS_FAULTS = [
    Fault("kits_seg_no_tumour_label", "ct-kidney", _seg_change(_relabel), "dropped", "no SEG segment labelled",
          fast=True, check=in_domain("siemens", 0)),
    Fault("kits_seg_frames_cut", "ct-kidney", _seg_change(_cut_frames), "dropped", "per-frame descriptions"),
    Fault("kits_seg_other_series", "ct-kidney", _seg_change(_move_frames), "dropped", "fit no slice"),
    Fault("kits_seg_tumour_empty", "ct-kidney", _seg_change(_tumour_to_kidney), "dropped", "has no voxel"),
    Fault("kits_seg_fallback_number", "ct-kidney", _seg_change(_relabel), "converted", options=("tumour_segment=2",),
          check=labels_are("siemens", [0, 0, 1, 0])),
    Fault("kits_no_seg", "ct-kidney", delete(r"KiTS-00000/.*Segmentation"), "dropped", "no DICOM SEG"),
    Fault("kits_truncated_slice", "ct-kidney", _truncate(r"KiTS-00001/.*arterial.*1-002\.dcm"), "dropped",
          "cannot decode"),
    Fault("kits_vendor_healthineers", "ct-kidney", edit(r"KiTS-00000/.*arterial.*1-00\d", setattr_(
        "Manufacturer", "Siemens Healthineers")), "converted", check=labels_are("siemens", [0, 0, 1, 0]), fast=True),
    Fault("kits_vendor_healthcare_gmbh", "ct-kidney", edit(r"KiTS-00000/.*arterial.*1-00\d", setattr_(
        "Manufacturer", "Siemens HealthCare GmbH")), "converted", check=in_domain("siemens", 4)),
    Fault("kits_vendor_merge", "ct-kidney", edit(r"KiTS-00001/.*arterial.*1-00\d", setattr_(
        "Manufacturer", "Merge Healthcare")), "dropped", "is software", fast=True),
    Fault("kits_vendor_empty", "ct-kidney", edit(r"KiTS-00001/.*arterial.*1-00\d", setattr_("Manufacturer", "")),
          "dropped", "no Manufacturer"),
    Fault("kits_vendor_seg_says_qiicr", "ct-kidney", _seg_change(setattr_("Manufacturer", "QIICR")), "converted",
          check=labels_are("siemens", [0, 0, 1, 0])),
    Fault("kits_jpeg2000", "ct-kidney", edit(r"KiTS-00000/.*arterial.*1-00\d", compress(JPEG2000Lossless)),
          "converted", check=labels_are("siemens", [0, 0, 1, 0]), fast=True),
    Fault("kits_rle", "ct-kidney", edit(r"KiTS-00001/.*arterial.*1-00\d", compress(RLELossless)), "converted",
          check=labels_are("other", [0, 1, 0, 0])),
    Fault("kits_bomb_header", "ct-kidney", edit(r"KiTS-00001/.*arterial.*1-003", _bomb), "dropped",
          "above the limit", fast=True),
    Fault("kits_12_bit_slice", "ct-kidney", edit(r"KiTS-00001/.*arterial.*1-001", setattr_("BitsStored", 12)),
          "converted", check=labels_are("other", [0, 1, 0, 0])),
    Fault("kits_stray_files_with_ids", "ct-kidney", _stray_with_id, "dropped", "outside any patient folder",
          fast=True),
    Fault("kits_symlinked_patient_and_loop", "ct-kidney", _symlinked_patient, "dropped", "reached again",
          check=labels_are("other", [0, 1, 0, 0]), fast=True),
]

HNSCC_P1 = r"HNSCC-01-0001/12-05-1998-NA-RT SIMULATION-43582/1\.000000-NA-78710/1-1\.dcm"
HNSCC_P2 = r"HNSCC-01-0002/.*/1\.000000-NA-78710/1-1\.dcm"


def _gtv_contours(ds: Dataset) -> list[Dataset]:
    number = next(int(r.ROINumber) for r in ds.StructureSetROISequence if r.ROIName == "GTVp")
    return list(next(c for c in ds.ROIContourSequence if int(c.ReferencedROINumber) == number).ContourSequence)


def _shift_gtv(index: int, dx: float = 0.0, dz: float = 0.0, unlink: bool = False) -> Callable[[Dataset], None]:
    def change(ds: Dataset) -> None:
        c = _gtv_contours(ds)[index]
        data = np.asarray(c.ContourData, dtype=float).reshape(-1, 3) + [dx, 0.0, dz]
        c.ContourData = [float(v) for v in data.ravel()]
        if unlink:
            c.ContourImageSequence[0].ReferencedSOPInstanceUID = generate_uid()
    return change


def _malformed(ds: Dataset) -> None:
    _gtv_contours(ds)[0].ContourData = list(_gtv_contours(ds)[0].ContourData)[:-2]


def _unreference(ds: Dataset) -> None:
    frame = ds.ReferencedFrameOfReferenceSequence[0]
    frame.FrameOfReferenceUID = generate_uid()
    frame.RTReferencedStudySequence[0].RTReferencedSeriesSequence[0].SeriesInstanceUID = generate_uid()


def _rename_gtv(ds: Dataset) -> None:
    for r in ds.StructureSetROISequence:
        r.ROIName = "GTV_old" if r.ROIName == "GTV" else r.ROIName


HNSCC_FAULTS = [
    Fault("hnscc_contour_outside_image", "ct-hnscc", edit(HNSCC_P1, _shift_gtv(0, dx=500.0)), "dropped",
          "reaches outside", check=labels_are("other", [0, 0, 1, 0, 0]), fast=True),
    Fault("hnscc_contour_on_no_slice", "ct-hnscc", edit(HNSCC_P1, _shift_gtv(0, dz=1000.0, unlink=True)),
          "dropped", "on no slice", check=labels_are("other", [0, 0, 0, 1, 0, 0])),
    Fault("hnscc_only_gtv_outside", "ct-hnscc", edit(HNSCC_P2, _shift_gtv(0, dx=-500.0)), "dropped",
          "no contour of the ROIs", check=in_domain("ge", 0)),
    Fault("hnscc_malformed_contour", "ct-hnscc", edit(HNSCC_P1, _malformed), "dropped", "malformed"),
    Fault("hnscc_no_rtstruct", "ct-hnscc", delete(HNSCC_P2), "dropped", "no RTSTRUCT in the case"),
    Fault("hnscc_rtstruct_refs_missing_ct", "ct-hnscc", edit(HNSCC_P2, _unreference), "dropped",
          "no RTSTRUCT references"),
    Fault("hnscc_vendor_mixed_case", "ct-hnscc", edit(r"HNSCC-01-0002/.*NA-28768/", setattr_(
        "Manufacturer", "GE Medical Systems")), "converted", check=labels_are("ge", [0, 1, 0, 0, 0, 0])),
    Fault("hnscc_vendor_corrupted", "ct-hnscc", edit(r"HNSCC-01-0002/.*NA-28768/", setattr_(
        "Manufacturer", "GE MEDICAL S]STEMS")), "converted", check=in_domain("ge", 6)),
    Fault("hnscc_vendor_pinnacle_ct", "ct-hnscc", edit(r"HNSCC-01-0001/.*NA-28768/", setattr_(
        "Manufacturer", "ADAC")), "dropped", "is software"),
    Fault("hnscc_jpeg2000_planning_ct", "ct-hnscc", edit(r"HNSCC-01-0002/.*NA-28768/", compress(JPEG2000Lossless)),
          "converted", check=labels_are("ge", [0, 1, 0, 0, 0, 0])),
    Fault("hnscc_stray_id_file", "ct-hnscc", lambda r: (r / "HNSCC-01-0002.zip").write_bytes(b"PK"), "dropped",
          "outside any patient folder"),
]

OPC_P1 = r"OPC-00001/.*RTSTRUCT.*1-1\.dcm"


def _opc_sheet(rows: list[str], name: str = "OPC-Radiomics-Clinical-Data.csv", encoding: str = "utf-8",
               bom: bool = False) -> Callable[[Path], None]:
    def damage(root: Path) -> None:
        (root / "OPC-Radiomics-Clinical-Data.xlsx").unlink()
        text = "\n".join(rows) + "\n"
        (root / name).write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding))
    return damage


OPC_ROWS = ["Trial PatientID,Sex,HPV/P16 status", "OPC-00001,M,positive", "OPC-00002,M,Negative",
            "OPC-00003,M,Unknown"]

OPC_FAULTS = [
    Fault("opc_gtv_contour_outside", "ct-oropharyngeal", edit(OPC_P1, lambda ds: _shift_any(ds, "GTV", 300.0)),
          "dropped", "no GTV whose contours all fit", check=in_domain("ge", 0), fast=True),
    Fault("opc_sheet_csv_bom", "ct-oropharyngeal", _opc_sheet(OPC_ROWS, bom=True), "converted",
          check=labels_are("ge", [1])),
    Fault("opc_sheet_not_utf8", "ct-oropharyngeal", _opc_sheet([*OPC_ROWS, "OPC-00004,M,n\xe9gatif"],
          encoding="latin-1"), "refused", "not UTF-8", fast=True),
    Fault("opc_sheet_no_hpv_column", "ct-oropharyngeal", _opc_sheet(["Trial PatientID,Sex", "OPC-00001,M"]),
          "refused", "no clinical sheet"),
    Fault("opc_sheet_ids_lower_case", "ct-oropharyngeal", _opc_sheet([r.replace("OPC-", "opc-") for r in OPC_ROWS]),
          "converted", check=labels_are("toshiba", [0])),
    Fault("opc_sheet_blank_rows", "ct-oropharyngeal", _opc_sheet([OPC_ROWS[0], ",,", OPC_ROWS[1], "", ",,",
          *OPC_ROWS[2:]]), "converted", check=labels_are("ge", [1])),
    Fault("opc_sheet_case_conflict", "ct-oropharyngeal", _opc_sheet([*OPC_ROWS, "opc-00001,M,negative"]),
          "refused", "appears twice"),
    Fault("opc_vendor_toshiba_mec", "ct-oropharyngeal", edit(r"OPC-00002/.*CT-22222/", setattr_(
        "Manufacturer", "TOSHIBA_MEC")), "converted", check=in_domain("toshiba", 1)),
    Fault("opc_vendor_canon", "ct-oropharyngeal", edit(r"OPC-00002/.*CT-22222/", setattr_(
        "Manufacturer", "Canon Medical Systems")), "converted", check=in_domain("toshiba", 1)),
    Fault("opc_no_gtv_name", "ct-oropharyngeal", edit(OPC_P1, _rename_gtv), "dropped", "no ROI name matches"),
]


def _shift_any(ds: Dataset, name: str, dx: float) -> None:
    number = next(int(r.ROINumber) for r in ds.StructureSetROISequence if r.ROIName == name)
    c = next(c for c in ds.ROIContourSequence if int(c.ReferencedROINumber) == number).ContourSequence[0]
    data = np.asarray(c.ContourData, dtype=float).reshape(-1, 3) + [dx, 0.0, 0.0]
    c.ContourData = [float(v) for v in data.ravel()]


LIDC1 = "LIDC-IDRI/LIDC-IDRI-0001/01-01-2000-NA-NA-42125/3000548.000000-NA-86225"


def _xml(pattern: str, old: str, new: str, count: int = 1) -> Callable[[Path], None]:
    def damage(root: Path) -> None:
        path = files(root, pattern)[0]
        text = path.read_text()
        assert re.search(old, text), old
        path.write_text(re.sub(old, new, text, count=count))
    return damage


def _second_series(maker: str, rating: str) -> Callable[[Path], None]:
    """A second annotated CT series of patient 1 from `maker` with one nodule of `rating`."""
    def damage(root: Path) -> None:
        p = Patient("LIDC-IDRI-0001", name="Patient^LIDC-IDRI-0001").with_uids()
        folder = root / "LIDC-IDRI/LIDC-IDRI-0001/01-01-2001-NA-NA-1/2.000000-NA-2"
        hu = np.full((5, 64, 64), -800, dtype=np.int16)
        cts = write_ct_series(folder, p, maker, hu, "NA", 2, z0=-50.0)
        rois = [(str(cts[k].SOPInstanceUID), -50.0 + 2.5 * k, fixtures_ct._ring(30, 30, 3)) for k in (1, 2, 3)]
        fixtures_ct._lidc_xml(folder / "100.xml", str(cts[0].SeriesInstanceUID), [(rating, rois)])
    return damage


LIDC_FAULTS = [
    Fault("lidc_outline_outside_image", "ct-lidc", _xml(LIDC1 + "/069.xml", r"<xCoord>\d+</xCoord>",
          "<xCoord>900</xCoord>"), "dropped", "outline outside", check=labels_are("ge", [0]), fast=True),
    Fault("lidc_outline_on_no_slice", "ct-lidc", _xml(LIDC1 + "/069.xml", r"<imageZposition>[-0-9.]+</"
          r"imageZposition>\s*<imageSOP_UID>[^<]+<", "<imageZposition>500.0</imageZposition><imageSOP_UID>1.2.3<"),
          "dropped", "on no slice", check=labels_are("ge", [0])),
    Fault("lidc_rating_unreadable", "ct-lidc", _xml(LIDC1 + "/069.xml", r"<malignancy>5</", "<malignancy>high</"),
          "dropped", "unreadable malignancy", check=labels_are("ge", [0])),
    Fault("lidc_coordinate_unreadable", "ct-lidc", _xml(LIDC1 + "/069.xml", r"<yCoord>\d+</", "<yCoord>n/a</"),
          "dropped", "unreadable edgeMap", check=labels_are("ge", [0])),
    Fault("lidc_xml_truncated", "ct-lidc", lambda r: files(r, LIDC1 + "/069.xml")[0].write_text("<Lidc"), "dropped",
          "unreadable XML"),
    Fault("lidc_xml_no_series_uid", "ct-lidc", _xml(LIDC1 + "/069.xml", r"<SeriesInstanceUid>[^<]+<",
          "<SeriesInstanceUid><"), "dropped", "not in the case"),
    Fault("lidc_second_series_same_domain", "ct-lidc", _second_series("GE Healthcare", "5"), "converted",
          "several manufacturers", check=labels_are("ge", [1, 0, 1]), fast=True),
    Fault("lidc_second_series_other_domain", "ct-lidc", _second_series("SIEMENS", "1"), "converted", "left out",
          check=labels_are("ge", [1, 0])),
    Fault("lidc_vendor_bare_ge", "ct-lidc", edit(LIDC1 + r"/1-00\d", setattr_("Manufacturer", "GE")), "converted",
          check=in_domain("ge", 2)),
    Fault("lidc_vendor_merge", "ct-lidc", edit(LIDC1 + r"/1-00\d", setattr_("Manufacturer", "Merge Healthcare")),
          "dropped", "is software", check=in_domain("ge", 0)),
    Fault("lidc_duplicate_slice_file", "ct-lidc", lambda r: (r / LIDC1 / "1-099.dcm").write_bytes(
        (r / LIDC1 / "1-003.dcm").read_bytes()), "converted", check=labels_are("ge", [1, 0])),
]

FAULTS = KITS_FAULTS + HNSCC_FAULTS + OPC_FAULTS + LIDC_FAULTS
