"""DICOM reading for the TCIA datasets: headers, series, volumes and their geometry (pydicom only).

Rules (../shared/reference/datasets.md section 0): folder names are never trusted; files are grouped by
SeriesInstanceUID and slices ordered by ImagePositionPatient projected on the slice normal. The
scanner of a case is the Manufacturer (0008,0070) of its *image* series, never of an RTSTRUCT or SEG
(those carry the planning or annotation system).

Geometry: ImageOrientationPatient holds two unit vectors, `row_dir` (direction in which the column
index grows) and `col_dir` (direction in which the row index grows); PixelSpacing is (spacing between
rows, spacing between columns) in mm. A patient point p lies at row = (p - IPP) . col_dir / PixelSpacing[0],
col = (p - IPP) . row_dir / PixelSpacing[1] of a slice.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from preprocessing.pixels import check_dicom_size, read_dicom_pixels
from preprocessing.vendors import match_domain
from scanshift_ray.datasets import DatasetSpec


@dataclass
class Series:
    """The files of one DICOM series (headers only, pixels not read)."""

    uid: str
    modality: str
    headers: list[Dataset]
    paths: list[Path]

    @property
    def first(self) -> Dataset:
        return self.headers[0]

    @property
    def manufacturer(self) -> str:
        return str(self.first.get("Manufacturer", "") or "")

    @property
    def model(self) -> str:
        return str(self.first.get("ManufacturerModelName", "") or "")

    @property
    def description(self) -> str:
        return str(self.first.get("SeriesDescription", "") or "")


@dataclass
class Volume:
    """A sorted image series: `pixels` (Z, H, W) in rescaled units (HU for CT) and per-slice geometry."""

    pixels: np.ndarray
    positions: np.ndarray  # (Z, 3) ImagePositionPatient, mm, in slice order
    row_dir: np.ndarray  # (3,)
    col_dir: np.ndarray  # (3,)
    spacing: tuple[float, float]  # PixelSpacing (between rows, between columns), mm
    sop_uids: list[str]
    manufacturer: str
    model: str = ""  # ManufacturerModelName

    @property
    def normal(self) -> np.ndarray:
        return np.cross(self.row_dir, self.col_dir)

    def slice_index(self, sop_uid: str | None, point: np.ndarray | None) -> int | None:
        """Index of the slice with `sop_uid`, else the slice nearest `point` within half a slice spacing."""
        if sop_uid and sop_uid in self.sop_uids:
            return self.sop_uids.index(sop_uid)
        if point is None:
            return None
        heights = self.positions @ self.normal
        dist = np.abs(heights - float(np.asarray(point) @ self.normal))
        k = int(np.argmin(dist))
        gap = float(np.median(np.diff(heights))) if len(heights) > 1 else 1.0
        return k if dist[k] <= abs(gap) / 2 + 1e-3 else None

    def to_pixel(self, points: np.ndarray, k: int) -> np.ndarray:
        """Patient points (N, 3) mm -> (N, 2) fractional (row, col) on slice `k`."""
        d = np.asarray(points, dtype=float) - self.positions[k]
        return np.stack([d @ self.col_dir / self.spacing[0], d @ self.row_dir / self.spacing[1]], axis=1)


def read_headers(paths: Iterable[Path]) -> tuple[list[tuple[Path, Dataset]], list[tuple[Path, str]]]:
    """Headers of the DICOM files among `paths`; every other file comes back with the reason it was skipped."""
    good: list[tuple[Path, Dataset]] = []
    bad: list[tuple[Path, str]] = []
    for path in paths:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except InvalidDicomError:
            bad.append((path, "not a DICOM file"))
            continue
        except Exception as exc:  # a truncated or damaged file must not stop the run
            bad.append((path, f"unreadable DICOM: {type(exc).__name__}: {exc}"[:200]))
            continue
        if "SeriesInstanceUID" not in ds:
            bad.append((path, "DICOM file without SeriesInstanceUID"))
            continue
        good.append((path, ds))
    return good, bad


def group_series(headers: Iterable[tuple[Path, Dataset]]) -> dict[str, Series]:
    """Group headers by SeriesInstanceUID."""
    groups: dict[str, Series] = {}
    for path, ds in headers:
        uid = str(ds.SeriesInstanceUID)
        if uid not in groups:
            groups[uid] = Series(uid, str(ds.get("Modality", "")), [], [])
        groups[uid].headers.append(ds)
        groups[uid].paths.append(path)
    return groups


def image_series(series: dict[str, Series], modality: str = "CT") -> list[Series]:
    """The image series of one modality (files with pixel geometry), largest first."""
    found = [s for s in series.values() if s.modality == modality and "ImagePositionPatient" in s.first]
    return sorted(found, key=lambda s: -len(s.paths))


def load_volume(s: Series) -> Volume:
    """Read the pixels of an image series, sorted along the slice normal; duplicate positions keep one slice.

    Raises ValueError when the slices differ in size or orientation.
    """
    iop = np.asarray(s.first.ImageOrientationPatient, dtype=float)
    row_dir, col_dir = iop[:3], iop[3:]
    normal = np.cross(row_dir, col_dir)
    by_height: dict[float, Path] = {}
    for path, ds in zip(s.paths, s.headers, strict=True):
        if not np.allclose(np.asarray(ds.ImageOrientationPatient, dtype=float), iop, atol=1e-4):
            raise ValueError("slices of the series differ in orientation")
        by_height.setdefault(round(float(np.asarray(ds.ImagePositionPatient, dtype=float) @ normal), 3), path)
    check_dicom_size(s.first, len(by_height))
    slices, positions, uids = [], [], []
    for height in sorted(by_height):
        ds, raw_pixels = read_dicom_pixels(by_height[height])
        pixels = raw_pixels.astype(np.float32) * float(ds.get("RescaleSlope", 1) or 1)
        slices.append(pixels + float(ds.get("RescaleIntercept", 0) or 0))
        positions.append(np.asarray(ds.ImagePositionPatient, dtype=float))
        uids.append(str(ds.SOPInstanceUID))
    if len({p.shape for p in slices}) != 1:
        raise ValueError("slices of the series differ in size")
    spacing = tuple(float(v) for v in s.first.PixelSpacing)
    return Volume(np.stack(slices), np.stack(positions), row_dir, col_dir, (spacing[0], spacing[1]), uids,
                  s.manufacturer, s.model)


def domain_of(spec: DatasetSpec, manufacturer: str) -> str | None:
    """The domain a scanner's Manufacturer string selects (whole-word vendor match, `preprocessing.vendors`).

    Returns None when no domain fits or the string names software (the case is then dropped, with why).
    """
    return match_domain(spec, manufacturer)[0]


def series_by_reference(series: dict[str, Series], uid: str | None, frame_uid: str | None,
                        modality: str = "CT") -> Series | None:
    """The image series with SeriesInstanceUID `uid`, else the one sharing FrameOfReferenceUID `frame_uid`."""
    if uid and uid in series and series[uid].modality == modality:
        return series[uid]
    same_frame = [s for s in image_series(series, modality)
                  if frame_uid and str(s.first.get("FrameOfReferenceUID", "")) == frame_uid]
    return same_frame[0] if same_frame else None


def walk_files(raw: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Every file under `raw` (sorted), following symlinked folders; (files, [(path, why not read)]).

    A folder whose real path was already visited (a symlink loop, or a second link to one folder) is not
    entered again, so the walk always ends and no file is counted twice; broken links are reported.
    """
    seen: set[str] = set()
    files: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    for dirpath, dirnames, filenames in os.walk(raw, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            skipped.append((Path(dirpath), "folder reached again through a symlink (loop or duplicate link)"))
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames.sort()
        for name in filenames:
            path = Path(dirpath) / name
            (files.append(path) if path.is_file() else skipped.append((path, "broken symlink or not a file")))
    return sorted(files), skipped
