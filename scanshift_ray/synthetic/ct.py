"""Synthetic CT: calibrated Hounsfield units, scanners that differ in kernel, slice thickness and dose.

Acquisition chain (`render`), applied to a finely sampled HU volume (z, 2H, 2W):
    slice profile (Gaussian, FWHM = slice thickness)  -> in-plane MTF (Gaussian)
    -> detector area averaging to (D, H, W) -> correlated noise with NPS ~ |f| W(f)^2 (filtered
    back-projection with an apodising kernel W; Kijewski & Judy 1987) -> calibration gain/offset
    (QC keeps water within a few HU) -> integer HU.
CT protocols are standardised, so the two scanners of a twin differ by small, realistic amounts.

Anatomies draw HU volumes; which lesion shape or texture carries the label is twin-specific and
never depends on the scanner.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scanshift_ray.synthetic.phantom import (
    OVERSAMPLE,
    Grid,
    area_downsample,
    blur_xy,
    random_field,
    slice_profile,
)


@dataclass(frozen=True)
class CTScanner:
    """One CT protocol. Lengths in mm, noise as the standard deviation in water (HU)."""

    name: str
    mtf_sigma_mm: float
    thickness_mm: float
    noise_hu: float
    kernel_cutoff: float  # apodisation window cut-off as a fraction of Nyquist; lower = softer kernel
    hu_offset: float
    hu_gain: float = 1.0


def ct_noise(shape: tuple[int, int, int], cutoff: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance noise per slice with power spectrum |f| * W(f)^2, W Gaussian with `cutoff`."""
    _, h, w = shape
    fy = np.fft.fftfreq(h)[:, None] * 2.0  # in units of Nyquist
    fx = np.fft.rfftfreq(w)[None, :] * 2.0
    f = np.sqrt(fy**2 + fx**2)
    amplitude = np.sqrt(f) * np.exp(-((f / cutoff) ** 2))
    white = np.fft.rfft2(rng.standard_normal(shape), axes=(1, 2))
    noise = np.fft.irfft2(white * amplitude, s=(h, w), axes=(1, 2))
    return noise / (noise.std() + 1e-12)


def render(hu: np.ndarray, grid: Grid, scanner: CTScanner, out_depth: int,
           rng: np.random.Generator) -> np.ndarray:
    """Acquire a fine HU volume (z, 2H, 2W) with `scanner`; returns int16 HU of shape (out_depth, H, W)."""
    vol = slice_profile(hu, grid.spacing[0], scanner.thickness_mm, out_depth)
    vol = blur_xy(vol, scanner.mtf_sigma_mm / grid.spacing[1])
    vol = area_downsample(vol, OVERSAMPLE)
    dose_factor = rng.uniform(0.8, 1.25)  # tube-current modulation and patient size
    vol = vol + scanner.noise_hu * dose_factor * ct_noise(vol.shape, scanner.kernel_cutoff, rng)
    vol = vol * scanner.hu_gain + scanner.hu_offset
    return np.clip(np.rint(vol), -1024, 3071).astype(np.int16)


def _soft_background(grid: Grid, rng: np.random.Generator, fat_fraction: float) -> np.ndarray:
    """Soft tissue (~45 HU) interleaved with fat (~-100 HU) from a thresholded random field."""
    field = random_field(grid.shape, 12.0, rng)
    fat = field > np.quantile(field, 1.0 - fat_fraction)
    hu = np.where(fat, -100.0, 45.0)
    return hu + 8.0 * random_field(grid.shape, 1.5, rng)


def _textured(mask: np.ndarray, hu: np.ndarray, mean: float, texture: float, rng: np.random.Generator,
              corr: float = 1.5) -> None:
    """Fill `mask` in place with `mean` HU plus Gaussian-random-field texture of std `texture`."""
    hu[mask] = mean + texture * random_field(hu.shape, corr, rng)[mask]


def _offset(rng: np.random.Generator, max_mm: float) -> tuple[float, float, float]:
    return (0.0, float(rng.uniform(-max_mm, max_mm)), float(rng.uniform(-max_mm, max_mm)))


def kidney(grid: Grid, label: int, patient: np.random.Generator,
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One axial slab of an arterial-phase kidney; label 1 = the patient has a renal tumour.

    Geometry (kidney, cysts, tumour) comes from `patient`, textures from `rng`, so the slabs of one
    patient are slices through one body. Returns (HU, tumour mask); a slice's label reads the mask.
    """
    hu = _soft_background(grid, rng, patient.uniform(0.0, 0.1))
    c = _offset(patient, 8.0)
    radii = (patient.uniform(50, 60), patient.uniform(24, 32), patient.uniform(34, 44))  # pole to pole ~110 mm
    angle = patient.uniform(-0.6, 0.6)
    fat = (radii[0] + 10, radii[1] + patient.uniform(6, 14), radii[2] + patient.uniform(6, 14))
    _textured(grid.ellipsoid(c, fat, angle), hu, -90.0, 10.0, rng)  # perirenal fat
    outer = grid.ellipsoid(c, radii, angle)
    inner = grid.ellipsoid(c, (radii[0] - 6, radii[1] - 6, radii[2] - 6), angle)
    _textured(outer, hu, patient.uniform(160, 200), 12.0, rng)  # enhancing cortex
    _textured(inner, hu, patient.uniform(80, 100), 10.0, rng)  # medulla, corticomedullary phase
    hu[grid.ellipsoid(c, (radii[0] * 0.7, radii[1] * 0.35, radii[2] * 0.5), angle)] = -60.0  # sinus fat
    for _ in range(patient.integers(0, 4)):  # simple cysts: water density, smooth, in both classes
        pos = (patient.uniform(-40, 40), c[1] + patient.uniform(-20, 20), c[2] + patient.uniform(-30, 30))
        hu[grid.ellipsoid(pos, (patient.uniform(3, 9),) * 3)] = patient.uniform(0, 20)
    ang, rr = patient.uniform(0, 2 * np.pi), patient.uniform(0.7, 1.1)
    pos = (patient.uniform(-0.8, 0.8) * radii[0], c[1] + rr * radii[1] * np.sin(ang),
           c[2] + rr * radii[2] * np.cos(ang))
    mass = grid.blob(pos, patient.uniform(12, 22), patient.uniform(0.1, 0.3), patient)  # KiTS: median ~4 cm
    mass_hu = patient.uniform(110, 140)
    if not label:
        return hu, np.zeros(grid.shape, dtype=bool)
    _textured(mass, hu, mass_hu, 15.0, rng)  # renal cell carcinoma: heterogeneous, often exophytic
    return hu, mass


def neck(grid: Grid, label: int, patient: np.random.Generator,
         rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One axial slab of a head-and-neck planning CT; label 1 = the patient has a gross tumour (GTV).

    Geometry from `patient`, textures from `rng` (see `kidney`). Lymph nodes are mimics.
    Returns (HU, GTV mask).
    """
    hu = _soft_background(grid, rng, patient.uniform(0.05, 0.2))
    body = grid.ellipsoid((0, patient.uniform(-4, 4), 0), (160, patient.uniform(62, 72), patient.uniform(70, 78)))
    hu[~body] = -1000.0
    airway = (0.0, patient.uniform(-35, -25), patient.uniform(-5, 5))
    hu[grid.ellipsoid(airway, (160, patient.uniform(6, 10), patient.uniform(8, 13)))] = -1000.0
    spine = (0.0, patient.uniform(20, 28), 0.0)
    _textured(grid.ellipsoid(spine, (160, 14, 14)), hu, 700.0, 60.0, rng)
    _textured(grid.ellipsoid(spine, (160, 10, 10)), hu, 250.0, 40.0, rng)
    for side in (-1, 1):  # carotid artery and jugular vein, contrast enhanced
        hu[grid.ellipsoid((0, -8, side * patient.uniform(25, 32)), (160, 4, 4))] = patient.uniform(160, 220)
        hu[grid.ellipsoid((0, -4, side * patient.uniform(36, 44)), (160, 6, 5))] = patient.uniform(120, 170)
    for _ in range(patient.integers(0, 6)):  # lymph nodes: round, muscle-like
        pos = (patient.uniform(-50, 50), patient.uniform(-30, 20), patient.choice([-1, 1]) * patient.uniform(20, 55))
        _textured(grid.ellipsoid(pos, (patient.uniform(3, 6),) * 3), hu, patient.uniform(35, 55), 6.0, rng)
    pos = (patient.uniform(-40, 40), patient.uniform(-25, 5), patient.uniform(-35, 35))
    mass = grid.blob(pos, patient.uniform(12, 22), patient.uniform(0.1, 0.35), patient) & body
    mass_hu = patient.uniform(100, 130)
    if not label:
        return hu, np.zeros(grid.shape, dtype=bool)
    _textured(mass, hu, mass_hu, 14.0, rng)  # enhancing vs muscle (~45 HU)
    return hu, mass


def lung_nodule(grid: Grid, label: int, patient: np.random.Generator, rng: np.random.Generator) -> np.ndarray:
    """Crop centred on one of a patient's lung nodules; label 1 = malignancy 5 (vs 1). Sizes overlap.

    The patient sets the lung parenchyma (density, texture, vessel calibre); the nodule and the
    crop's vessels are the sample's.
    """
    lung_hu, texture, vessel = patient.uniform(-880, -820), patient.uniform(18, 32), patient.uniform(0.8, 1.2)
    hu = lung_hu + texture * random_field(grid.shape, 2.0, rng)
    for _ in range(rng.integers(2, 5)):  # vessels: long thin ellipsoids through the crop
        pos = _offset(rng, 12.0)
        r = vessel * rng.uniform(0.6, 1.6)
        hu[grid.ellipsoid(pos, (40.0, r, 40.0), rng.uniform(0, np.pi))] = rng.uniform(20, 60)
    if label:
        radius = rng.uniform(3.5, 10.0)
        mask = grid.blob((0, 0, 0), radius, rng.uniform(0.1, 0.35), rng)
        if rng.random() < 0.6:
            mask |= grid.spicules((0, 0, 0), radius, int(rng.integers(3, 9)), rng.uniform(3, 8), 0.5, rng)
        if rng.random() < 0.3:  # part-solid: ground-glass halo
            hu[grid.blob((0, 0, 0), radius * 1.5, 0.2, rng)] = rng.uniform(-600, -350)
        _textured(mask, hu, rng.uniform(10, 45), 15.0, rng)
    else:
        radius = rng.uniform(2.0, 7.0)
        _textured(grid.blob((0, 0, 0), radius, rng.uniform(0.0, 0.15), rng), hu, rng.uniform(10, 45), 10.0, rng)
        if rng.random() < 0.35:  # calcification: benign pattern
            hu[grid.ellipsoid((0, 0, 0), (radius * 0.6,) * 3)] = rng.uniform(200, 600)
    return hu


def oropharynx(grid: Grid, label: int, patient: np.random.Generator, rng: np.random.Generator) -> np.ndarray:
    """GTV-centred cube, one per patient; label 1 = HPV/p16 positive. A weak, texture-level signal."""
    del patient  # one crop per patient: nothing is shared between samples
    hu = _soft_background(grid, rng, rng.uniform(0.1, 0.3))
    if rng.random() < 0.6:
        pos = (rng.uniform(-20, 20), rng.uniform(-30, -15), rng.uniform(-10, 10))
        hu[grid.ellipsoid(pos, (40.0, 7.0, 10.0))] = -1000.0  # airway
    radius = rng.uniform(9, 18) if label else rng.uniform(11, 22)
    mass = grid.blob((0, 0, 0), radius, rng.uniform(0.1, 0.35), rng)
    _textured(mass, hu, rng.uniform(55, 80), 9.0 if label else 17.0, rng)
    if rng.random() < (0.2 if label else 0.5):  # necrotic core, more often HPV-negative
        hu[grid.blob((0, 0, 0), radius * 0.45, 0.2, rng)] = rng.uniform(10, 30)
    if rng.random() < (0.6 if label else 0.25):  # cystic nodal metastasis, typical of HPV-positive
        pos = (rng.uniform(-10, 10), rng.uniform(8, 20), rng.choice([-1, 1]) * rng.uniform(18, 28))
        hu[grid.ellipsoid(pos, (rng.uniform(5, 9),) * 3)] = rng.uniform(10, 30)
    return hu
