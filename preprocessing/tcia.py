"""Helpers shared by the TCIA converters: case discovery, opening a case, 2D slices and 3D crops."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from preprocessing.core import CaseOutput, Job
from preprocessing.dicom import Series, Volume, group_series, read_headers
from preprocessing.layout import patient_cases
from preprocessing.vendors import match_domain


@dataclass(frozen=True)
class DicomCase:
    """One patient folder of a TCIA tree and the files under it."""

    raw_id: str  # the patient folder's name (TCIA names it after the PatientID)
    files: tuple[Path, ...]
    patient_id: str = ""  # the PatientID (0010,0020) that placed the files in this case


@dataclass
class OpenCase:
    """A case after reading its headers: series by UID, the output being built, the raw ids seen."""

    series: dict[str, Series]
    out: CaseOutput
    raw_ids: set[str]
    job: Job

    def skip(self, path: Path, reason: str) -> None:
        reason = self.job.scrub(reason.replace(str(self.job.raw), "<raw>"), self.raw_ids)
        self.out.skipped.append((self.job.relpath(path, self.raw_ids), reason))

    def drop(self, reason: str) -> CaseOutput:
        return self.out.drop(reason)

    def set_domain(self, vol_or_series: Volume | Series) -> bool:
        """Domain from the image series' Manufacturer (model recorded too); False (case dropped) when none fits."""
        self.out.manufacturer, self.out.model = vol_or_series.manufacturer, vol_or_series.model
        self.out.domain, why = match_domain(self.job.spec, vol_or_series.manufacturer)
        if self.out.domain is None:
            self.drop(why)
        return self.out.domain is not None


def discover_tcia(raw: Path, _options: object = None) -> tuple[list[DicomCase], list[tuple[Path, str]]]:
    """Patient folders of a TCIA tree, found by the files' PatientID (`preprocessing.layout`), and the
    files outside any."""
    groups, loose, walk_skipped = patient_cases(raw)
    cases = [DicomCase(folder.name, tuple(files), pid) for (folder, pid), files in groups.items()]
    sheets = (".csv", ".xlsx", ".xls", ".json")  # metadata.csv, clinical sheets: read by converters that need them
    skipped = [(p, "outside any patient folder, not read") for p in loose if p.suffix.lower() not in sheets]
    return cases, skipped + walk_skipped


def discover_patients(raw: Path, _options: object) -> tuple[list[DicomCase], list[tuple[Path, str]], dict[str, Any]]:
    """`discover` for converters that need nothing beyond the DICOM tree: patient folders, no context."""
    cases, loose = discover_tcia(raw)
    return cases, loose, {}


def open_case(case: DicomCase, job: Job, keep: tuple[str, ...] = ()) -> OpenCase:
    """Read every header of `case`; non-DICOM files are skipped and reported unless their suffix is in `keep`."""
    kept = [p for p in case.files if p.suffix.lower() in keep]
    good, bad = read_headers(p for p in case.files if p not in kept)
    pids = {str(ds.get("PatientID", "")) for _, ds in good} - {""}
    raw_ids = {case.raw_id, *pids}
    patient = sorted(pids)[0] if len(pids) == 1 else case.raw_id
    opened = OpenCase(group_series(good), CaseOutput(job.pseudonym(patient), raw_ids=set(raw_ids)), raw_ids, job)
    for path, reason in bad:
        opened.skip(path, reason)
    return opened


def resize2d(image: np.ndarray, side: int) -> np.ndarray:
    """(H, W) -> (side, side) float32; side 0 keeps the size.

    Shrinking averages over each output pixel's footprint (block means for integer factors, else
    Pillow's box filter), so a 2500-pixel radiograph does not alias; enlarging is bilinear.
    """
    h, w = image.shape
    if side <= 0 or (h, w) == (side, side):
        return image.astype(np.float32)
    if h % side == 0 and w % side == 0:
        return image.reshape(side, h // side, side, w // side).mean(axis=(1, 3), dtype=np.float32)
    resample = Image.Resampling.BOX if side < min(h, w) else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(image.astype(np.float32), mode="F").resize((side, side), resample))


def crop(volume: np.ndarray, center: tuple[int, ...], shape: tuple[int, ...], pad: float) -> np.ndarray:
    """The `shape` box of `volume` centred on `center` (index of the box's middle = shape // 2), padded with `pad`."""
    box = np.full(shape, pad, dtype=volume.dtype)
    src, dst = [], []
    for c, n, size in zip(center, volume.shape, shape, strict=True):
        lo = c - size // 2
        a, b = max(lo, 0), min(lo + size, n)
        if a >= b:
            return box
        src.append(slice(a, b))
        dst.append(slice(a - lo, b - lo))
    box[tuple(dst)] = volume[tuple(src)]
    return box


def mask_centroid(mask: np.ndarray) -> tuple[int, ...]:
    """Rounded voxel centroid of a boolean mask."""
    return tuple(int(np.floor(v + 0.5)) for v in np.argwhere(mask).mean(axis=0))  # halves round up


def to_hu(pixels: np.ndarray) -> np.ndarray:
    """Rescaled CT values -> int16 HU, clipped to the 12-bit CT range."""
    return np.clip(np.rint(pixels), -1024, 3071).astype(np.int16)


def slice_samples(opened: OpenCase, vol: Volume, mask: np.ndarray, side: int,
                  skip: set[int] | frozenset[int] = frozenset()) -> CaseOutput:
    """Every slice of `vol` but those in `skip`, resized to `side`, labelled 1 iff `mask` (Z, H, W) is set on it."""
    out = opened.out
    for k in range(vol.pixels.shape[0]):
        if k in skip:
            continue
        out.images.append(to_hu(resize2d(vol.pixels[k], side)))
        out.labels.append(int(mask[k].any()))
    return out
