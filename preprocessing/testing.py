"""Miniature TCIA datasets in their true formats, for tests, benchmarks and trying the command.

DICOM CT series with pydicom (descriptive TCIA folder names), DICOM SEG with highdicom (a dev
dependency), RTSTRUCT with pydicom, LIDC XML with its namespace and clinical sheets with openpyxl.
Every patient carries a PatientName, birth date and raw PatientID so tests can check none of them
reaches a shard or manifest. Geometry: axial slices, ImageOrientationPatient (1,0,0,0,1,0), pixel
spacing s mm (default 1), slice k at z = z0 + k * dz; pixel (row, col) sits at x = x0 + s * col,
y = y0 + s * row (mm).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
RTSTRUCT_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
Polygon = Sequence[tuple[float, float]]  # (row, col) pixel vertices


@dataclass(frozen=True)
class Patient:
    """Identity of a fixture patient (all of it must stay out of the shards)."""

    patient_id: str
    name: str = "Doe^Jane"
    birth_date: str = "19450704"
    study_uid: str = ""
    frame_uid: str = ""

    def with_uids(self) -> Patient:
        return Patient(self.patient_id, self.name, self.birth_date, generate_uid(), generate_uid())


def _base(p: Patient, sop_class: str, modality: str, series_uid: str, manufacturer: str) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    uid = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = UID(sop_class), uid
    ds.SOPInstanceUID = uid
    ds.SOPClassUID = sop_class
    ds.PatientID, ds.PatientName, ds.PatientBirthDate, ds.PatientSex = p.patient_id, p.name, p.birth_date, "F"
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = p.study_uid, series_uid, p.frame_uid
    ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20000101", "120000", "1", "A1"
    ds.ReferringPhysicianName, ds.Modality, ds.Manufacturer = "", modality, manufacturer
    return ds


def write_ct_series(folder: Path, p: Patient, manufacturer: str, hu: np.ndarray, description: str = "CT",
                    number: int = 2, z0: float = -100.0, dz: float = 2.5, spacing: float = 1.0,
                    origin: tuple[float, float] = (0.0, 0.0), modality: str = "CT",
                    names: Sequence[str] | None = None) -> list[Dataset]:
    """Write `hu` (Z, H, W) as files `1-001.dcm`... (stored value = HU + 1024); return the datasets.

    `modality` "MR" writes MR Image Storage instead of CT; `names` overrides the file names.
    """
    folder.mkdir(parents=True, exist_ok=True)
    series_uid, out = generate_uid(), []
    for k in range(hu.shape[0]):
        ds = _base(p, MR_STORAGE if modality == "MR" else CT_STORAGE, modality, series_uid, manufacturer)
        ds.SeriesDescription, ds.SeriesNumber, ds.InstanceNumber = description, number, k + 1
        ds.ImagePositionPatient = [origin[0], origin[1], z0 + k * dz]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing, ds.SliceThickness = [spacing, spacing], abs(dz)
        ds.Rows, ds.Columns = hu.shape[1:]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.PixelData = (hu[k].astype(np.int32) + 1024).astype(np.int16).tobytes()
        ds.save_as(folder / (names[k] if names else f"1-{k + 1:03d}.dcm"), enforce_file_format=True)
        out.append(ds)
    return out


def write_seg(path: Path, cts: list[Dataset], labelmap: np.ndarray, names: Sequence[str]) -> Dataset:
    """A DICOM SEG (highdicom, BINARY) of `labelmap` (Z, H, W; value i = segment `names[i-1]`) on `cts`."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    descriptions = [hd.seg.SegmentDescription(
        segment_number=i + 1, segment_label=name, segmented_property_category=codes.SCT.Tissue,
        segmented_property_type=codes.SCT.Tissue, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL)
        for i, name in enumerate(names)]
    seg = hd.seg.Segmentation(cts, labelmap.astype(np.uint8), hd.seg.SegmentationTypeValues.BINARY, descriptions,
                              generate_uid(), 300, generate_uid(), 1, "Annotator", "fixture", "1", "1")
    path.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(path)
    return seg


def _to_mm(ct: Dataset, polygon: Polygon) -> list[float]:
    x0, y0, z = (float(v) for v in ct.ImagePositionPatient)
    return [v for r, c in polygon for v in (x0 + c * float(ct.PixelSpacing[1]), y0 + r * float(ct.PixelSpacing[0]), z)]


def write_rtstruct(path: Path, p: Patient, cts: list[Dataset], rois: dict[str, dict[int, Polygon]],
                   manufacturer: str = "ADAC", link_sop: bool = True) -> Dataset:
    """An RTSTRUCT with closed planar contours `rois[name][slice index] = polygon` on the CT `cts`."""
    ds = _base(p, RTSTRUCT_STORAGE, "RTSTRUCT", generate_uid(), manufacturer)
    ds.SeriesNumber, ds.InstanceNumber, ds.StructureSetLabel = 1, 1, "RS"
    series = Dataset()
    series.SeriesInstanceUID = cts[0].SeriesInstanceUID
    series.ContourImageSequence = [_sop_ref(ct) for ct in cts]
    study = Dataset()
    study.ReferencedSOPClassUID, study.ReferencedSOPInstanceUID = "1.2.840.10008.3.1.2.3.1", p.study_uid
    study.RTReferencedSeriesSequence = [series]
    frame = Dataset()
    frame.FrameOfReferenceUID, frame.RTReferencedStudySequence = p.frame_uid, [study]
    ds.ReferencedFrameOfReferenceSequence = [frame]
    ds.StructureSetROISequence, ds.ROIContourSequence, ds.RTROIObservationsSequence = [], [], []
    for number, (name, contours) in enumerate(rois.items(), start=1):
        roi = Dataset()
        roi.ROINumber, roi.ROIName, roi.ReferencedFrameOfReferenceUID = number, name, p.frame_uid
        ds.StructureSetROISequence.append(roi)
        item = Dataset()
        item.ReferencedROINumber, item.ContourSequence = number, []
        for k, polygon in contours.items():
            c = Dataset()
            c.ContourGeometricType, c.NumberOfContourPoints = "CLOSED_PLANAR", len(polygon)
            c.ContourData = _to_mm(cts[k], polygon)
            if link_sop:
                c.ContourImageSequence = [_sop_ref(cts[k])]
            item.ContourSequence.append(c)
        ds.ROIContourSequence.append(item)
        obs = Dataset()
        obs.ObservationNumber, obs.ReferencedROINumber, obs.RTROIInterpretedType = number, number, "GTV"
        ds.RTROIObservationsSequence.append(obs)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return ds


def _sop_ref(ct: Dataset) -> Dataset:
    ref = Dataset()
    ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = ct.SOPClassUID, ct.SOPInstanceUID
    return ref


def write_xlsx(path: Path, rows: Sequence[Sequence[object]]) -> Path:
    """A one-sheet workbook with `rows` (header rows included) written by openpyxl."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    for row in rows:
        ws.append(list(row))
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


def square(center: tuple[float, float], half: float) -> list[tuple[float, float]]:
    """Square polygon (row, col) vertices around `center`."""
    r, c = center
    return [(r - half, c - half), (r - half, c + half), (r + half, c + half), (r + half, c - half)]


def blob_volume(shape: tuple[int, int, int], seed: int, lesion: Callable[[np.ndarray], np.ndarray] | None = None
                ) -> np.ndarray:
    """A soft-tissue-like HU volume (Z, H, W) with noise; `lesion` may edit it in place."""
    rng = np.random.default_rng(seed)
    vol = (40 + 20 * rng.standard_normal(shape)).astype(np.int16)
    return lesion(vol) if lesion else vol
