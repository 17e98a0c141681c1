"""HNSCC (TCIA) -> `ct-hnscc`: 2D slices of the planning CT an RTSTRUCT references, label 1 iff GTV on it.

Other CTs of the patient (PET/CT attenuation maps, diagnostic scans) are ignored: the planning CT is the
series in the RTSTRUCT's RTReferencedSeriesSequence, else the CT sharing its FrameOfReferenceUID. ROIs
whose name matches `roi_pattern` (default: names starting with GTV) [I: names vary] form the mask.
"""

from __future__ import annotations

from dataclasses import dataclass

from preprocessing.core import CONVERTERS, CaseOutput, Converter, Job
from preprocessing.rt import planning_mask
from preprocessing.tcia import DicomCase, discover_patients, open_case, slice_samples


@dataclass(frozen=True)
class HnsccOptions:
    size: int = 256
    roi_pattern: str = r"^gtv"



def process(case: DicomCase, job: Job) -> CaseOutput:
    """The labelled planning-CT slices of one HNSCC patient."""
    opt: HnsccOptions = job.options
    opened = open_case(case, job)
    found = planning_mask(opened, opt.roi_pattern)
    if found is None:
        return opened.out
    vol, mask = found
    return slice_samples(opened, vol, mask, opt.size)


CONVERTERS.add("ct-hnscc", Converter("ct-hnscc", HnsccOptions, discover_patients, process))
