"""OPC-Radiomics (TCIA) -> `ct-oropharyngeal`: one cube per patient centred on the GTV, label HPV/P16.

The GTV (ROI name matching `roi_pattern`, default exactly "GTV") of the RTSTRUCT is rasterised on the CT
it references; the cube of side `crop` (72 in the paper) is centred on the mask's voxel centroid and
padded with `pad` HU (air) at volume borders. A GTV ROI with a contour that does not fit the CT is
dropped whole (recorded), since a partial outline would move the centroid; other matching ROIs stay.
The label comes from the clinical sheet (`clinical`, else
the first .xlsx/.csv under the raw folder with an HPV/P16 column): positive 1, negative 0, unknown dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from preprocessing.clinical import find_sheet, hpv_label, label_map, read_table
from preprocessing.core import CONVERTERS, CaseOutput, Converter, Job
from preprocessing.rt import planning_rois
from preprocessing.tcia import DicomCase, crop, discover_tcia, mask_centroid, open_case, to_hu


@dataclass(frozen=True)
class OpcOptions:
    crop: int = 72
    roi_pattern: str = r"^gtv$"
    pad: float = -1024.0
    clinical: str = ""
    id_column: str = r"patient.?id|^id$|tcia"
    hpv_column: str = r"hpv|p16"


def discover(raw: Path, options: OpcOptions) -> tuple[list[DicomCase], list[tuple[Path, str]], dict[str, Any]]:
    """Patient folders plus {raw patient id: HPV label or None} from the clinical sheet."""
    cases, loose = discover_tcia(raw)
    sheet = find_sheet(raw, options.clinical, options.hpv_column)
    labels = label_map(read_table(sheet), options.id_column, options.hpv_column, hpv_label, sheet)
    return cases, loose, {"labels": labels}


def process(case: DicomCase, job: Job) -> CaseOutput:
    """The GTV-centred cube of one OPC patient."""
    opt: OpcOptions = job.options
    opened = open_case(case, job)
    labels = job.context["labels"]
    known = [labels[i.casefold()] for i in sorted(opened.raw_ids) if i.casefold() in labels]
    if not known or known[0] is None:
        return opened.drop("HPV/P16 status unknown or patient not in the clinical sheet")
    found = planning_rois(opened, opt.roi_pattern)
    if found is None:
        return opened.out
    vol, fits, _ = found
    good = [f for f in fits if not f.misfits and f.mask.any()]
    if not good:
        return opened.drop("no GTV whose contours all fit the planning CT (a partial GTV would move the crop)")
    mask = np.logical_or.reduce([f.mask for f in good])
    cube = crop(to_hu(vol.pixels), mask_centroid(mask), (opt.crop,) * 3, opt.pad)
    opened.out.images.append(cube)
    opened.out.labels.append(int(known[0]))
    return opened.out


CONVERTERS.add("ct-oropharyngeal", Converter("ct-oropharyngeal", OpcOptions, discover, process))
