"""HNSCC (TCIA) -> `ct-hnscc`: 2D slices of the planning CT an RTSTRUCT references, label 1 iff GTV on it.

Other CTs of the patient (PET/CT attenuation maps, diagnostic scans) are ignored: the planning CT is the
series in the RTSTRUCT's RTReferencedSeriesSequence, else the CT sharing its FrameOfReferenceUID. ROIs
whose name matches `roi_pattern` (default: names starting with GTV) [I: names vary] form the mask.
A contour that does not fit the CT (on no slice, outside the image) is dropped and recorded, and the
slice it would have marked is left out; a case whose GTV has no fitting contour is dropped, never
turned into all-negative slices.
"""

from __future__ import annotations

from dataclasses import dataclass

from preprocessing.contours import UNKNOWN_SLICE
from preprocessing.core import CONVERTERS, CaseOutput, Converter, Job
from preprocessing.rt import planning_rois, slice_task_mask
from preprocessing.tcia import DicomCase, discover_patients, open_case, slice_samples


@dataclass(frozen=True)
class HnsccOptions:
    size: int = 256
    roi_pattern: str = r"^gtv"



def process(case: DicomCase, job: Job) -> CaseOutput:
    """The labelled planning-CT slices of one HNSCC patient."""
    opt: HnsccOptions = job.options
    opened = open_case(case, job)
    found = planning_rois(opened, opt.roi_pattern)
    if found is None:
        return opened.out
    vol, fits, _ = found
    mask, unknown = slice_task_mask(fits, vol.pixels.shape)
    if UNKNOWN_SLICE in unknown:
        return opened.drop("a GTV contour is malformed: the slice it marks is unknown, so no slice label is sure")
    if not mask.any():
        return opened.drop(f"no contour of the ROIs matching {opt.roi_pattern!r} fits the planning CT")
    if unknown:
        opened.out.notes.append(f"{len(unknown)} slice(s) left out: a GTV contour on them does not fit the image")
    return slice_samples(opened, vol, mask, opt.size, skip=unknown)


CONVERTERS.add("ct-hnscc", Converter("ct-hnscc", HnsccOptions, discover_patients, process))
