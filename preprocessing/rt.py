"""The RTSTRUCT path shared by HNSCC and OPC-Radiomics: structure set -> planning CT -> ROI mask."""

from __future__ import annotations

import numpy as np
import pydicom

from preprocessing.contours import roi_mask, rtstruct_rois, rtstruct_series_uid
from preprocessing.dicom import Volume, load_volume, series_by_reference
from preprocessing.tcia import OpenCase


def planning_mask(opened: OpenCase, roi_pattern: str) -> tuple[Volume, np.ndarray] | None:
    """(planning CT, mask (Z, H, W) of the ROIs matching `roi_pattern`), or None with the case dropped.

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
        mask, used = roi_mask(rtstruct_rois(ds), roi_pattern, vol)
        if not used:
            opened.drop(f"no ROI name matches {roi_pattern!r}")
            return None
        return vol, mask
    opened.drop("no RTSTRUCT references a CT series of the case")
    return None
