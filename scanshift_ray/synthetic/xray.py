"""Synthetic chest radiographs: polyenergetic Beer-Lambert projection, scatter, detector, vendor processing.

Anatomy is a pair of path-length maps (cm of soft tissue and of cortical bone through the patient).
`render` forms the image as an energy-integrating detector would:
    Kramers spectrum (kVp, aluminium filtration) -> I = sum_E Phi(E) E exp(-mu_soft(E) t_soft -
    mu_bone(E) t_bone) -> scatter (scatter-to-primary ratio times a wide Gaussian of the primary;
    Boone 1986) -> detector PSF and pixel integration -> quantum noise -> -log
    -> vendor processing: percentile windowing, multi-band unsharp masking, look-up-table gamma.
Manufacturers differ most in scatter handling and proprietary processing; the label (cardiomegaly,
cardiothoracic ratio > ~0.5) lives in the heart's silhouette, which both processings keep.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from scanshift_ray.synthetic.phantom import OVERSAMPLE

# Mass attenuation coefficients (cm^2/g), NIST XCOM: water (soft tissue), ICRU cortical bone, aluminium.
_ENERGY = np.array([20.0, 30.0, 40.0, 50.0, 60.0, 80.0, 100.0, 150.0])
_MU_WATER = np.array([0.810, 0.376, 0.268, 0.227, 0.206, 0.184, 0.171, 0.151])
_MU_BONE = np.array([4.00, 1.33, 0.665, 0.424, 0.315, 0.223, 0.186, 0.148])
_MU_AL = np.array([3.44, 1.13, 0.568, 0.368, 0.278, 0.202, 0.170, 0.138])
BONE_DENSITY, AL_DENSITY = 1.92, 2.70


def _mu(table: np.ndarray, energy: np.ndarray) -> np.ndarray:
    return np.exp(np.interp(np.log(energy), np.log(_ENERGY), np.log(table)))


@dataclass(frozen=True)
class XrayScanner:
    """One radiography system: acquisition and the vendor's image processing."""

    name: str
    kvp: float
    filter_mm_al: float
    spr: float  # scatter-to-primary ratio behind the patient (grid, air gap)
    det_sigma_px: float  # detector point-spread (output pixels)
    photons: float  # quanta per output pixel in the unattenuated beam
    band_sigmas: tuple[float, ...]  # unsharp-masking band widths (output pixels)
    band_gains: tuple[float, ...]
    gamma: float  # look-up-table exponent


def spectrum(scanner: XrayScanner, n_bins: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Bin energies (keV) and normalised energy-weighted fluence of a filtered Kramers spectrum."""
    energy = np.linspace(18.0, scanner.kvp - 2.0, n_bins)
    fluence = (scanner.kvp - energy) / energy
    fluence *= np.exp(-_mu(_MU_AL, energy) * AL_DENSITY * scanner.filter_mm_al / 10.0)
    weight = fluence * energy
    return energy, weight / weight.sum()


def render(paths: dict[str, np.ndarray], scanner: XrayScanner, rng: np.random.Generator) -> np.ndarray:
    """Project path-length maps (2H, 2W) through `scanner`; returns uint16 (H, W) processed values."""
    energy, weight = spectrum(scanner)
    mu_s, mu_b = _mu(_MU_WATER, energy), _mu(_MU_BONE, energy) * BONE_DENSITY
    primary = np.tensordot(weight, np.exp(-mu_s[:, None, None] * paths["soft"][None]
                                          - mu_b[:, None, None] * paths["bone"][None]), axes=1)
    wide = ndimage.gaussian_filter(primary, 0.15 * primary.shape[0], mode="nearest")
    body = paths["soft"] > 1.0
    scale = scanner.spr * primary[body].mean() / (wide[body].mean() + 1e-12)
    image = primary + scale * wide
    image = ndimage.gaussian_filter(image, scanner.det_sigma_px * OVERSAMPLE)
    h, w = image.shape
    image = image.reshape(h // OVERSAMPLE, OVERSAMPLE, w // OVERSAMPLE, OVERSAMPLE).mean(axis=(1, 3))
    photons = scanner.photons * rng.uniform(0.7, 1.4)  # exposure control varies per patient
    image = image + np.sqrt(np.maximum(image, 1e-6) / photons) * rng.standard_normal(image.shape)
    return process(-np.log(np.clip(image, 1e-4, None)), scanner)


def process(log_image: np.ndarray, scanner: XrayScanner) -> np.ndarray:
    """Vendor processing of a -log image: window, multi-band unsharp masking, gamma LUT, 12 bit."""
    lo, hi = np.percentile(log_image, (1.0, 99.0))
    img = (log_image - lo) / (hi - lo + 1e-12)
    detail = img.copy()
    for sigma, gain in zip(scanner.band_sigmas, scanner.band_gains, strict=True):
        detail += gain * (img - ndimage.gaussian_filter(img, sigma, mode="nearest"))
    out = np.clip(detail, 0.0, 1.0) ** scanner.gamma
    return np.rint(out * 4095.0).astype(np.uint16)


def _ellipse_depth(y: np.ndarray, x: np.ndarray, cy: float, cx: float, ry: float, rx: float,
                   depth: float) -> np.ndarray:
    """Projected depth (cm) through an ellipsoid with in-plane radii (ry, rx) mm and AP extent `depth`."""
    r2 = ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2
    return depth * np.sqrt(np.clip(1.0 - r2, 0.0, None))


def chest(shape: tuple[int, int], fov_mm: float, label: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """PA chest path lengths on a (2H, 2W) grid; label 1 = cardiomegaly (cardiothoracic ratio ~0.54 vs 0.46)."""
    n_y, n_x = shape
    y = ((np.arange(n_y) - (n_y - 1) / 2) * fov_mm / n_y)[:, None]
    x = ((np.arange(n_x) - (n_x - 1) / 2) * fov_mm / n_x)[None, :]
    half_width = rng.uniform(150, 180)
    soft = rng.uniform(19, 25) * np.sqrt(np.clip(1 - (x / half_width) ** 2, 0, None)) * np.ones_like(y)
    lung_cx, lung_rx, lung_ry = rng.uniform(60, 72), rng.uniform(48, 60), rng.uniform(105, 135)
    lung_depth = rng.uniform(11, 15)
    lungs = sum(_ellipse_depth(y, x, -25.0, s * lung_cx, lung_ry, lung_rx, lung_depth) for s in (-1, 1))
    thorax_half = lung_cx + lung_rx
    ctr = rng.normal(0.54, 0.05) if label else rng.normal(0.46, 0.05)
    heart_rx = ctr * thorax_half
    heart_cx = rng.uniform(0.15, 0.3) * heart_rx  # shifted to the patient's left
    heart = _ellipse_depth(y, x, rng.uniform(40, 55), heart_cx, heart_rx * rng.uniform(0.8, 0.95), heart_rx,
                           rng.uniform(12, 16))
    if rng.random() < 0.3:  # pericardial fat pad: widens the silhouette at low density (mimic)
        heart = np.maximum(heart, 0.5 * _ellipse_depth(y, x, 85.0, heart_cx + heart_rx, 25.0, 25.0, 6.0))
    soft = soft - 0.74 * np.clip(lungs - heart, 0.0, None)  # lung is 26 % tissue by density
    bone = np.where(np.abs(x) < rng.uniform(14, 18), 3.0, 0.0) * np.ones_like(y)  # spine
    for side in (-1, 1):
        for k in range(9):  # posterior ribs: parabolic bands across each lung field
            y0 = -150.0 + k * rng.uniform(26, 30)
            curve = y0 + 0.004 * (x - side * lung_cx) ** 2
            band = (np.abs(y - curve) < 5.0) & (side * x > 10) & (np.abs(x) < thorax_half + 10)
            bone = bone + 0.9 * band
        clav = np.abs(y - (-150.0 + 0.15 * side * x)) < 6.0
        bone = bone + 1.2 * (clav & (side * x > 15) & (np.abs(x) < 120))
    return {"soft": np.clip(soft, 0.0, None), "bone": bone}


def reposition(paths: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One patient's path-length maps as seen in another exam: shifted on the detector and scaled by
    a different inspiration and magnification (a few per cent), so a patient's radiographs share
    their anatomy but not their pixels."""
    n_y, n_x = paths["soft"].shape
    scale = rng.uniform(0.97, 1.03, size=2)
    shift = rng.uniform(-0.03, 0.03, size=2) * (n_y, n_x)
    centre = np.array([(n_y - 1) / 2, (n_x - 1) / 2])
    offset = centre - scale * centre + shift  # output (i, j) reads input scale * (i, j) + offset
    return {k: ndimage.affine_transform(v, scale, offset=offset, order=1, mode="nearest")
            for k, v in paths.items()}
