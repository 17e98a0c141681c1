"""C4KC-KiTS (TCIA) -> `ct-kidney`: 2D axial slices of the arterial series, label 1 iff tumour on the slice.

The arterial series is the one the case's DICOM SEG references (ReferencedSeriesSequence), else the CT
series whose SeriesDescription matches `series_pattern`. The tumour segment is the first whose label or
description matches `tumour_pattern` [I: the real segment labels are unverified], else segment number
`tumour_segment` when set (default 0: no fallback, the case is dropped naming the segments it has, so a
kidney segment is never taken for the tumour). A SEG whose frames do not fit the series, or whose
tumour segment is empty, drops the case with why (labels would be all negative, not just incomplete).
Slices are resized to `size` x `size` (0 keeps the native size) and stored in HU.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pydicom

from preprocessing.contours import seg_mask, seg_segment, seg_series_uid
from preprocessing.core import CONVERTERS, CaseOutput, Converter, Job
from preprocessing.dicom import image_series, load_volume, series_by_reference
from preprocessing.tcia import DicomCase, discover_patients, open_case, slice_samples


@dataclass(frozen=True)
class KidneyOptions:
    size: int = 256
    tumour_pattern: str = r"tumou?r|neoplasm"
    tumour_segment: int = 0  # 0: no fallback; N: segment N when no label matches [I]
    series_pattern: str = "arterial"



def process(case: DicomCase, job: Job) -> CaseOutput:
    """The labelled arterial slices of one KiTS patient."""
    opt: KidneyOptions = job.options
    opened = open_case(case, job)
    segs = [s for s in opened.series.values() if s.modality == "SEG"]
    if not segs:
        return opened.drop("no DICOM SEG (tumour segmentation) in the case")
    seg = pydicom.dcmread(segs[0].paths[0])
    target = series_by_reference(opened.series, seg_series_uid(seg), str(seg.get("FrameOfReferenceUID", "")))
    if target is None:
        named = [s for s in image_series(opened.series) if re.search(opt.series_pattern, s.description, re.I)]
        if not named:
            return opened.drop("no CT series referenced by the SEG or named like the arterial phase")
        target = named[0]
    vol = load_volume(target)
    if not opened.set_domain(vol):
        return opened.out
    mask = seg_mask(seg, vol, seg_segment(seg, opt.tumour_pattern, opt.tumour_segment))
    return slice_samples(opened, vol, mask, opt.size)


CONVERTERS.add("ct-kidney", Converter("ct-kidney", KidneyOptions, discover_patients, process))
