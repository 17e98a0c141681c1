"""Contours to masks: polygon rasterisation, RTSTRUCT ROIs and DICOM SEG segments (pydicom only).

Rasterisation uses the even-odd rule at pixel centres: pixel (r, c) is inside when a ray from its
centre crosses the polygon an odd number of times. Several contours of one ROI on a slice are
combined with OR (RTSTRUCT) or, for LIDC, inclusion=FALSE contours are subtracted by the caller.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset

from preprocessing.dicom import Volume


def fill_polygon(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Boolean mask (H, W) of the closed polygon with vertices (rows[i], cols[i]) in pixel units.

    A polygon too small to contain a pixel centre still marks the pixel nearest each vertex, so
    single-point or tiny contours are never silently lost.
    """
    mask = np.zeros(shape, dtype=bool)
    rows, cols = np.asarray(rows, dtype=float), np.asarray(cols, dtype=float)
    r0, r1 = max(int(np.floor(rows.min())), 0), min(int(np.ceil(rows.max())), shape[0] - 1)
    c0, c1 = max(int(np.floor(cols.min())), 0), min(int(np.ceil(cols.max())), shape[1] - 1)
    if r0 <= r1 and c0 <= c1 and len(rows) >= 3:
        rr, cc = np.mgrid[r0:r1 + 1, c0:c1 + 1].astype(float)
        inside = np.zeros(rr.shape, dtype=bool)
        for (ya, xa), (yb, xb) in zip(zip(rows, cols, strict=True),
                                      zip(np.roll(rows, -1), np.roll(cols, -1), strict=True), strict=True):
            if ya == yb:
                continue
            crosses = (ya > rr) != (yb > rr)
            x_at = xa + (rr - ya) * (xb - xa) / (yb - ya)
            inside ^= crosses & (cc < x_at)
        mask[r0:r1 + 1, c0:c1 + 1] = inside
    if not mask.any():
        rr_i, cc_i = np.rint(rows).astype(int), np.rint(cols).astype(int)
        ok = (rr_i >= 0) & (rr_i < shape[0]) & (cc_i >= 0) & (cc_i < shape[1])
        mask[rr_i[ok], cc_i[ok]] = True
    return mask


@dataclass
class Roi:
    """One RTSTRUCT ROI: its name and closed planar contours, each (SOP UID or "", points (N, 3) mm)."""

    number: int
    name: str
    contours: list[tuple[str, np.ndarray]]


def rtstruct_rois(ds: Dataset) -> list[Roi]:
    """The ROIs of an RTSTRUCT with their closed planar contours."""
    names = {int(r.ROINumber): str(r.get("ROIName", "")) for r in ds.get("StructureSetROISequence", [])}
    rois = []
    for item in ds.get("ROIContourSequence", []):
        number = int(item.ReferencedROINumber)
        contours = []
        for c in item.get("ContourSequence", []):
            if str(c.get("ContourGeometricType", "CLOSED_PLANAR")) not in ("CLOSED_PLANAR", "POINT"):
                continue
            points = np.asarray(c.ContourData, dtype=float).reshape(-1, 3)
            refs = c.get("ContourImageSequence", [])
            contours.append((str(refs[0].ReferencedSOPInstanceUID) if refs else "", points))
        rois.append(Roi(number, names.get(number, ""), contours))
    return rois


def rtstruct_series_uid(ds: Dataset) -> tuple[str | None, str | None]:
    """(SeriesInstanceUID of the referenced image series, FrameOfReferenceUID) of an RTSTRUCT."""
    for frame in ds.get("ReferencedFrameOfReferenceSequence", []):
        for study in frame.get("RTReferencedStudySequence", []):
            for series in study.get("RTReferencedSeriesSequence", []):
                return str(series.SeriesInstanceUID), str(frame.get("FrameOfReferenceUID", "")) or None
        return None, str(frame.get("FrameOfReferenceUID", "")) or None
    return None, None


def roi_mask(rois: list[Roi], pattern: str, vol: Volume) -> tuple[np.ndarray, list[str]]:
    """OR of every ROI whose name matches `pattern` (case-insensitive) on `vol`: (Z, H, W) bool, names used.

    Contours are placed on a slice by their referenced SOP instance, else by position along the normal.
    """
    regex = re.compile(pattern, re.IGNORECASE)
    mask = np.zeros(vol.pixels.shape, dtype=bool)
    used = []
    for roi in rois:
        if not regex.search(roi.name):
            continue
        used.append(roi.name)
        for sop, points in roi.contours:
            k = vol.slice_index(sop, points[0])
            if k is None:
                continue
            rc = vol.to_pixel(points, k)
            mask[k] |= fill_polygon(rc[:, 0], rc[:, 1], vol.pixels.shape[1:])
    return mask, used


def seg_mask(seg: Dataset, vol: Volume, segment: int) -> np.ndarray:
    """(Z, H, W) bool mask of segment number `segment` of a DICOM SEG, placed on `vol`'s slices.

    Frames are matched to slices by their source image (DerivationImageSequence), else by
    PlanePositionSequence. Empty frames are absent from a SEG, so unmatched slices stay empty.
    """
    frames = seg.pixel_array.reshape(-1, int(seg.Rows), int(seg.Columns))
    mask = np.zeros(vol.pixels.shape, dtype=bool)
    for i, fg in enumerate(seg.PerFrameFunctionalGroupsSequence):
        if int(fg.SegmentIdentificationSequence[0].ReferencedSegmentNumber) != segment:
            continue
        sop = None
        for der in fg.get("DerivationImageSequence", []):
            for src in der.get("SourceImageSequence", []):
                sop = str(src.ReferencedSOPInstanceUID)
        plane = fg.get("PlanePositionSequence")
        point = np.asarray(plane[0].ImagePositionPatient, dtype=float) if plane else None
        k = vol.slice_index(sop, point)
        if k is not None and frames[i].shape == mask.shape[1:]:
            mask[k] |= frames[i] > 0
    return mask


def seg_segment(seg: Dataset, pattern: str, fallback: int) -> int:
    """Number of the first segment whose label or description matches `pattern`, else `fallback`."""
    regex = re.compile(pattern, re.IGNORECASE)
    for item in seg.get("SegmentSequence", []):
        text = f"{item.get('SegmentLabel', '')} {item.get('SegmentDescription', '')}"
        if regex.search(text):
            return int(item.SegmentNumber)
    return fallback


def seg_series_uid(seg: Dataset) -> str | None:
    """SeriesInstanceUID of the image series a SEG was drawn on."""
    refs = seg.get("ReferencedSeriesSequence", [])
    return str(refs[0].SeriesInstanceUID) if refs else None
