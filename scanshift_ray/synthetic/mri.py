"""Synthetic MRI: tissues with PD/T1/T2, signal equations, vendor protocols, bias field, Rician noise.

Anatomies return parameter maps on a fine grid (PD, T1 at 1.5 T in ms, T2 in ms, fat fraction,
gadolinium concentration in mM). `render` turns them into magnitude images:
    T1 at the scanner's field (x1.25 for water-based tissue, x1.1 for fat at 3 T)
    -> contrast agent: 1/T1 = 1/T1_0 + r1 C (gadobutrol r1 ~ 4.8-5.0 /mM/s)
    -> spin echo S = PD (1 - e^{-TR/T1}) e^{-TE/T2}, or spoiled gradient echo
       S = PD sin(a) (1 - E1) / (1 - cos(a) E1) e^{-TE/T2*} with a B1+ flip-angle map
    -> fat suppression -> slice profile and PSF -> receive bias field -> Rician noise
    -> vendor smoothing -> scanner units (uint16).
Changing TR, TE, flip angle or fat suppression re-orders tissue contrast: a non-affine shift that
z-scoring cannot undo; how much a model loses from it is whatever the sourced protocols give.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from scanshift_ray.synthetic.phantom import (
    OVERSAMPLE,
    Grid,
    area_downsample,
    blur_xy,
    random_field,
    slice_profile,
)

Maps = dict[str, np.ndarray]


@dataclass(frozen=True)
class MRIScanner:
    """One MRI protocol. Times in ms, angles in degrees, lengths in mm."""

    name: str
    field_t: float
    sequence: str  # "se" (T2-weighted turbo spin echo) or "gre" (spoiled gradient echo, DCE)
    tr: float
    te: float
    flip_deg: float
    fat_sat: float  # fraction of fat signal removed
    b1_var: float  # amplitude of the smooth B1+ (flip angle) variation
    bias: float  # amplitude of the log receive-bias field
    noise: float  # noise std relative to the mean foreground signal
    psf_mm: float
    thickness_mm: float
    smoothing_px: float  # vendor denoising filter applied before export


def _smooth_field(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A smooth in-plane field in [-1, 1]: random quadratic polynomial, as in TorchIO's bias field."""
    y = np.linspace(-1, 1, shape[0])[:, None]
    x = np.linspace(-1, 1, shape[1])[None, :]
    c = rng.uniform(-1, 1, size=5)
    field = c[0] * x + c[1] * y + c[2] * x * y + c[3] * x**2 + c[4] * y**2
    return field / (np.abs(field).max() + 1e-12)


def signal(maps: Maps, scanner: MRIScanner, flip_scale: np.ndarray) -> np.ndarray:
    """Noise-free magnitude signal of every voxel under `scanner` (before partial volume)."""
    fat = maps["fat"]
    t1_scale = 1.0 if scanner.field_t < 2.0 else 1.25 - 0.15 * fat
    r1 = 4.8 if scanner.field_t < 2.0 else 5.0  # /mM/s
    t1 = 1.0 / (1.0 / (maps["t1"] * t1_scale) + r1 * maps["conc"] / 1000.0)
    e1 = np.exp(-scanner.tr / t1)
    if scanner.sequence == "se":
        s = maps["pd"] * (1.0 - e1) * np.exp(-scanner.te / maps["t2"])
    else:
        a = np.deg2rad(scanner.flip_deg) * flip_scale
        t2s = 0.5 * maps["t2"]
        s = maps["pd"] * np.sin(a) * (1.0 - e1) / (1.0 - np.cos(a) * e1) * np.exp(-scanner.te / t2s)
    return s * (1.0 - scanner.fat_sat * fat)


def render(maps: Maps, grid: Grid, scanner: MRIScanner, out_depth: int,
           rng: np.random.Generator) -> np.ndarray:
    """Acquire parameter maps on `grid` with `scanner`; returns uint16 (out_depth, H, W) scanner units."""
    flip_scale = 1.0 + scanner.b1_var * _smooth_field(grid.shape[1:], rng)[None]
    vol = signal(maps, scanner, flip_scale)
    vol = slice_profile(vol, grid.spacing[0], scanner.thickness_mm, out_depth)
    vol = area_downsample(blur_xy(vol, scanner.psf_mm / grid.spacing[1]), OVERSAMPLE)
    vol = vol * np.exp(scanner.bias * _smooth_field(vol.shape[1:], rng))[None]
    foreground = vol[vol > 0.1 * vol.max()]
    ref = float(foreground.mean()) if foreground.size else 1.0
    sigma = scanner.noise * ref
    vol = np.hypot(vol + sigma * rng.standard_normal(vol.shape), sigma * rng.standard_normal(vol.shape))
    if scanner.smoothing_px > 0:
        vol = ndimage.gaussian_filter(vol, (0.0, scanner.smoothing_px, scanner.smoothing_px))
    gain = 1000.0 / ref * rng.uniform(0.8, 1.25)  # receiver gain and scaling differ per exam
    return np.clip(np.rint(vol * gain), 0, 65535).astype(np.uint16)


TISSUES = {  # PD, T1 at 1.5 T (ms), T2 (ms), fat fraction
    "fat": (1.0, 260.0, 130.0, 1.0),
    "muscle": (0.75, 870.0, 45.0, 0.0),
    "pz": (0.9, 1500.0, 149.0, 0.0),
    "tz": (0.85, 1400.0, 120.0, 0.0),
    "tumour": (0.85, 1300.0, 97.0, 0.0),
    "urine": (1.0, 3000.0, 1200.0, 0.0),
    "air": (0.02, 1000.0, 50.0, 0.0),
    "fgt": (0.9, 1100.0, 50.0, 0.0),
}


def _blank(grid: Grid, tissue: str) -> Maps:
    pd, t1, t2, fat = TISSUES[tissue]
    maps = {k: np.full(grid.shape, v, dtype=np.float64) for k, v in
            (("pd", pd), ("t1", t1), ("t2", t2), ("fat", fat))}
    maps["conc"] = np.zeros(grid.shape)
    return maps


def _paint(maps: Maps, mask: np.ndarray, tissue: str, t2: float | np.ndarray | None = None,
           conc: float | np.ndarray = 0.0) -> None:
    pd, t1, t2_default, fat = TISSUES[tissue]
    for key, value in (("pd", pd), ("t1", t1), ("fat", fat)):
        maps[key][mask] = value
    maps["t2"][mask] = _at(t2_default if t2 is None else t2, mask)
    maps["conc"][mask] = _at(conc, mask)


def _at(value: float | np.ndarray, mask: np.ndarray) -> float | np.ndarray:
    """A scalar as is, a per-voxel map restricted to `mask`."""
    return value[mask] if isinstance(value, np.ndarray) else value


def prostate(grid: Grid, label: int, patient: np.random.Generator,
             rng: np.random.Generator) -> tuple[Maps, np.ndarray]:
    """One axial T2W slab of a prostate; label 1 = the patient has a csPCa lesion (T2 ~97 vs 149 ms PZ).

    Geometry from `patient` (gland, zones, BPH nodules, prostatitis, lesion), texture from `rng`, so
    the slabs of one patient are slices through one gland (base to apex ~40 mm). BPH and prostatitis
    mimic the lesion. Returns (parameter maps, lesion mask).
    """
    maps = _blank(grid, "fat")
    tex = random_field(grid.shape, 2.0, rng)
    for side in (-1, 1):
        _paint(maps, grid.ellipsoid((0, 0, side * patient.uniform(38, 44)), (160, 22, 7)), "muscle")
    rect = (0.0, patient.uniform(26, 32), patient.uniform(-4, 4))
    _paint(maps, grid.ellipsoid(rect, (160, 10, 14)), "muscle")
    _paint(maps, grid.ellipsoid(rect, (160, 5, 8)), "air")
    c = (0.0, patient.uniform(-3, 3), patient.uniform(-3, 3))
    rz, ry, rx = patient.uniform(20, 26), patient.uniform(16, 22), patient.uniform(21, 28)
    _paint(maps, grid.ellipsoid(c, (rz, ry, rx)), "pz", t2=149.0 * (1 + 0.08 * tex))
    tz_c = (0.0, c[1] - ry * 0.25, c[2])
    tz = grid.ellipsoid(tz_c, (rz * 0.8, ry * 0.6, rx * 0.65))
    _paint(maps, tz, "tz", t2=120.0 * (1 + 0.1 * tex))
    for _ in range(patient.integers(0, 6)):  # BPH stromal nodules: low T2, round, in the TZ
        pos = (patient.uniform(-15, 15), tz_c[1] + patient.uniform(-6, 6), tz_c[2] + patient.uniform(-10, 10))
        _paint(maps, grid.ellipsoid(pos, (patient.uniform(2, 6),) * 3) & tz, "tz", t2=patient.uniform(95, 115))
    if patient.random() < 0.5:  # prostatitis: band of mildly low T2 in the PZ
        band = grid.ellipsoid((0, c[1] + ry * 0.6, c[2] + patient.uniform(-8, 8)), (rz * 0.7, 3, 9),
                              patient.uniform(-1, 1))
        _paint(maps, band & ~tz, "pz", t2=patient.uniform(110, 125))
    in_pz = patient.random() < 0.7
    ang = patient.uniform(0.3, np.pi - 0.3) if in_pz else patient.uniform(0, 2 * np.pi)
    rr = 0.75 if in_pz else 0.2
    pos = (patient.uniform(-0.7, 0.7) * rz, c[1] + ry * rr * np.sin(ang), c[2] + rx * rr * np.cos(ang))
    lesion = grid.blob(pos, patient.uniform(5, 10), patient.uniform(0.1, 0.3), patient)
    lesion_t2 = patient.uniform(80, 100)
    if not label:
        return maps, np.zeros(grid.shape, dtype=bool)
    _paint(maps, lesion, "tumour", t2=lesion_t2)
    return maps, lesion


def breast(grid: Grid, label: int, patient: np.random.Generator, rng: np.random.Generator) -> Maps:
    """First post-contrast DCE crop at the tumour, one per patient; label 1 = T stage > 2 (larger, often
    rim-enhancing)."""
    del patient  # one crop per patient: nothing is shared between samples
    maps = _blank(grid, "fat")
    field = random_field(grid.shape, 4.0, rng)
    fgt = field > np.quantile(field, 1.0 - rng.uniform(0.15, 0.6))
    _paint(maps, fgt, "fgt", conc=rng.uniform(0.0, 0.08))  # background parenchymal enhancement
    radius = rng.uniform(9, 22) if label else rng.uniform(4, 15)
    mass = grid.blob((0, 0, 0), radius, rng.uniform(0.1, 0.4), rng)
    conc = rng.uniform(0.15, 0.4) * (1 + 0.2 * random_field(grid.shape, 1.5, rng))
    _paint(maps, mass, "fgt", t2=60.0, conc=conc)
    if rng.random() < (0.6 if label else 0.25):  # rim enhancement around a necrotic core
        _paint(maps, grid.blob((0, 0, 0), radius * 0.55, 0.2, rng), "fgt", t2=90.0, conc=0.03)
    return maps
