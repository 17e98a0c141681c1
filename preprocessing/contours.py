"""Contours to masks: polygon rasterisation, RTSTRUCT ROIs and DICOM SEG segments (pydicom only).

Rasterisation uses the even-odd rule at pixel centres: pixel (r, c) is inside when a ray from its
centre crosses the polygon an odd number of times. Several contours of one ROI on a slice are
combined with OR (RTSTRUCT) or, for LIDC, inclusion=FALSE contours are subtracted by the caller.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
from pydicom.dataset import Dataset

from preprocessing.core import Drop
from preprocessing.dicom import Volume
from preprocessing.pixels import dicom_pixels


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
    bad: list[str] = field(default_factory=list)  # contours that could not even be read, with why


UNKNOWN_SLICE = -1  # a misfit contour whose slice cannot even be told (malformed data)


@dataclass
class RoiFit:
    """One ROI placed on a volume: the mask of its contours that fit, and those that did not."""

    name: str
    mask: np.ndarray
    misfits: list[tuple[int | None, str]]  # (slice it would have marked or None, why it does not fit)


def rtstruct_rois(ds: Dataset) -> list[Roi]:
    """The ROIs of an RTSTRUCT with their closed planar contours (malformed ones listed in `bad`)."""
    names = {int(r.ROINumber): str(r.get("ROIName", "")) for r in ds.get("StructureSetROISequence", [])}
    rois = []
    for item in ds.get("ROIContourSequence", []):
        number = int(item.ReferencedROINumber)
        roi = Roi(number, names.get(number, ""), [])
        for c in item.get("ContourSequence", []):
            if str(c.get("ContourGeometricType", "CLOSED_PLANAR")) not in ("CLOSED_PLANAR", "POINT"):
                continue
            data = np.asarray(c.get("ContourData", []), dtype=float)
            if data.size == 0 or data.size % 3 or not np.isfinite(data).all():
                roi.bad.append(f"malformed ContourData ({data.size} values)")
                continue
            refs = c.get("ContourImageSequence", [])
            roi.contours.append((str(refs[0].ReferencedSOPInstanceUID) if refs else "", data.reshape(-1, 3)))
        rois.append(roi)
    return rois


def rtstruct_series_uid(ds: Dataset) -> tuple[str | None, str | None]:
    """(SeriesInstanceUID of the referenced image series, FrameOfReferenceUID) of an RTSTRUCT."""
    for frame in ds.get("ReferencedFrameOfReferenceSequence", []):
        for study in frame.get("RTReferencedStudySequence", []):
            for series in study.get("RTReferencedSeriesSequence", []):
                return str(series.SeriesInstanceUID), str(frame.get("FrameOfReferenceUID", "")) or None
        return None, str(frame.get("FrameOfReferenceUID", "")) or None
    return None, None


def outside(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, ...], tol: float = 0.5) -> bool:
    """True when a pixel-unit outline leaves the image by more than `tol` pixels (it would be clipped)."""
    return bool(rows.min() < -tol or cols.min() < -tol or rows.max() > shape[0] - 1 + tol
                or cols.max() > shape[1] - 1 + tol)


def fit_roi(roi: Roi, vol: Volume) -> RoiFit:
    """Place every contour of `roi` on `vol`: by its referenced SOP instance, else by position along the
    normal. A contour on no slice, or reaching outside the image, is a misfit: it is not drawn (never clipped)."""
    fit = RoiFit(roi.name, np.zeros(vol.pixels.shape, dtype=bool), [(UNKNOWN_SLICE, why) for why in roi.bad])
    for sop, points in roi.contours:
        k = vol.slice_index(sop, points[0])
        if k is None:
            fit.misfits.append((None, f"contour at z={points[0][2]:g} mm lies on no slice of the CT"
                                + (" (its SOP instance is not in the series)" if sop else "")))
            continue
        rc = vol.to_pixel(points, k)
        if outside(rc[:, 0], rc[:, 1], vol.pixels.shape[1:]):
            fit.misfits.append((k, f"contour on slice {k} reaches outside the {vol.pixels.shape[1]} x "
                                   f"{vol.pixels.shape[2]} image"))
            continue
        fit.mask[k] |= fill_polygon(rc[:, 0], rc[:, 1], vol.pixels.shape[1:])
    if not roi.contours and not roi.bad:
        fit.misfits.append((None, "ROI has no contour"))
    return fit


def fit_rois(rois: list[Roi], pattern: str, vol: Volume) -> list[RoiFit]:
    """`fit_roi` of every ROI whose name matches `pattern` (case-insensitive)."""
    regex = re.compile(pattern, re.IGNORECASE)
    return [fit_roi(roi, vol) for roi in rois if regex.search(roi.name)]


def roi_mask(rois: list[Roi], pattern: str, vol: Volume) -> tuple[np.ndarray, list[str]]:
    """OR of the fitting contours of every ROI whose name matches `pattern`: (Z, H, W) bool, names used."""
    fits = fit_rois(rois, pattern, vol)
    mask = np.zeros(vol.pixels.shape, dtype=bool)
    for fit in fits:
        mask |= fit.mask
    return mask, [f.name for f in fits]


def seg_mask(seg: Dataset, vol: Volume, segment: int) -> np.ndarray:
    """(Z, H, W) bool mask of segment number `segment` of a DICOM SEG, placed on `vol`'s slices.

    Frames are matched to slices by their source image (DerivationImageSequence), else by
    PlanePositionSequence. Empty frames are absent from a SEG, so unmatched slices stay empty. A SEG
    whose frames and per-frame descriptions disagree, or whose segment has a frame that fits no slice
    of `vol` (or no frame at all), raises Drop: its labels would be wrong, not just incomplete.
    """
    frames = dicom_pixels(seg).reshape(-1, int(seg.Rows), int(seg.Columns))
    groups = seg.get("PerFrameFunctionalGroupsSequence", [])
    if len(groups) != frames.shape[0]:
        raise Drop(f"SEG has {frames.shape[0]} frames but {len(groups)} per-frame descriptions")
    mask = np.zeros(vol.pixels.shape, dtype=bool)
    used = misfit = 0
    for i, fg in enumerate(groups):
        ident = fg.get("SegmentIdentificationSequence", [])
        if not ident or int(ident[0].ReferencedSegmentNumber) != segment:
            continue
        sop = None
        for der in fg.get("DerivationImageSequence", []):
            for src in der.get("SourceImageSequence", []):
                sop = str(src.ReferencedSOPInstanceUID)
        plane = fg.get("PlanePositionSequence")
        point = np.asarray(plane[0].ImagePositionPatient, dtype=float) if plane else None
        k = vol.slice_index(sop, point)
        if k is None or frames[i].shape != mask.shape[1:]:
            misfit += 1
            continue
        mask[k] |= frames[i] > 0
        used += 1
    if misfit:
        raise Drop(f"{misfit} frame(s) of SEG segment {segment} fit no slice of the series (other series or size)")
    if not used or not mask.any():
        raise Drop(f"SEG segment {segment} has no voxel on the series")
    return mask


def seg_segment(seg: Dataset, pattern: str, fallback: int) -> int:
    """Number of the first segment whose label or description matches `pattern`, else `fallback` if the SEG
    has that segment; raises Drop (naming the segments) when neither applies."""
    regex = re.compile(pattern, re.IGNORECASE)
    items = list(seg.get("SegmentSequence", []))
    for item in items:
        text = f"{item.get('SegmentLabel', '')} {item.get('SegmentDescription', '')}"
        if regex.search(text):
            return int(item.SegmentNumber)
    if fallback and any(int(item.SegmentNumber) == fallback for item in items):
        return fallback
    names = ", ".join(f"{int(i.SegmentNumber)} {i.get('SegmentLabel', '')!s}" for i in items) or "none"
    raise Drop(f"no SEG segment labelled like {pattern!r} (segments: {names})"
               + ("" if fallback else "; option tumour_segment=N picks one by number"))


def seg_series_uid(seg: Dataset) -> str | None:
    """SeriesInstanceUID of the image series a SEG was drawn on."""
    refs = seg.get("ReferencedSeriesSequence", [])
    return str(refs[0].SeriesInstanceUID) if refs else None
