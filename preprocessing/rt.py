"""The RTSTRUCT path shared by HNSCC and OPC-Radiomics: structure set -> planning CT -> ROI fits.

Annotations that do not fit their images (contours on no slice of the planning CT, reaching outside
the image, malformed) are never drawn clipped. Each is recorded against the RTSTRUCT file; what that
means for the samples is the converter's rule: a slice task leaves out the slice a misfit contour
would have marked (`slice_task_mask`), a crop task drops the whole ROI (its centroid would be off).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom

from preprocessing.contours import RoiFit, fit_rois, rtstruct_rois, rtstruct_series_uid
from preprocessing.dicom import Volume, load_volume, series_by_reference
from preprocessing.tcia import OpenCase


def planning_rois(opened: OpenCase, roi_pattern: str) -> tuple[Volume, list[RoiFit], Path] | None:
    """(planning CT, fits of the ROIs matching `roi_pattern`, RTSTRUCT path), or None with the case dropped.

    Takes the first RTSTRUCT whose referenced CT is present; the domain comes from that CT.
    """
    structs = [s for s in opened.series.values() if s.modality == "RTSTRUCT"]
    if not structs:
        opened.drop("no RTSTRUCT in the case")
        return None
    for s in structs:
        ds = pydicom.dcmread(s.paths[0])
        ct = series_by_reference(opened.series, *rtstruct_series_uid(ds))
        if ct is None:
            opened.skip(s.paths[0], "RTSTRUCT whose CT series is not in the case")
            continue
        vol = load_volume(ct)
        if not opened.set_domain(vol):
            return None
        fits = fit_rois(rtstruct_rois(ds), roi_pattern, vol)
        if not fits:
            opened.drop(f"no ROI name matches {roi_pattern!r}")
            return None
        for fit in fits:
            for _, why in fit.misfits:
                opened.skip(s.paths[0], f"ROI {fit.name}: {why}; contour dropped")
        return vol, fits, s.paths[0]
    opened.drop("no RTSTRUCT references a CT series of the case")
    return None


def slice_task_mask(fits: list[RoiFit], shape: tuple[int, ...]) -> tuple[np.ndarray, set[int]]:
    """(OR of the fitting contours, slices to leave out): a slice a misfit contour would have marked has
    an unknown label, so it is neither a positive nor a negative sample."""
    mask = np.zeros(shape, dtype=bool)
    unknown: set[int] = set()
    for fit in fits:
        mask |= fit.mask
        unknown |= {k for k, _ in fit.misfits if k is not None}
    return mask, unknown


def planning_mask(opened: OpenCase, roi_pattern: str) -> tuple[Volume, np.ndarray] | None:
    """(planning CT, OR of the fitting contours of the matching ROIs), or None with the case dropped."""
    found = planning_rois(opened, roi_pattern)
    if found is None:
        return None
    vol, fits, _ = found
    return vol, slice_task_mask(fits, vol.pixels.shape)[0]
