"""Geometry shared by the synthetic scanners: a millimetre grid, shapes drawn on it, random fields.

Every twin draws its anatomy at twice the output resolution in-plane and finer than the slice
thickness along z, so the scanners' point-spread functions and slice profiles produce partial-volume
effects before the image is reduced to the output grid by area averaging.
Arrays are (z, y, x) throughout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

OVERSAMPLE = 2  # in-plane render resolution relative to the output grid


@dataclass(frozen=True)
class Grid:
    """A (z, y, x) voxel grid with spacing in mm, centred on (z0, 0, 0) of the patient's coordinates.

    `z0` places one slab of a taller patient: the slices of a patient are grids with the same shape
    at different z0, so an anatomy drawn in patient coordinates is one continuous body across them.
    """

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    z0: float = 0.0

    def coords(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Open-mesh z, y, x coordinates in mm (broadcastable)."""
        axes = [(np.arange(n) - (n - 1) / 2.0) * s for n, s in zip(self.shape, self.spacing, strict=True)]
        z, y, x = np.ix_(*axes)
        return z + self.z0, y, x

    def central_rows(self, half_mm: float) -> np.ndarray:
        """Indices of the z rows within `half_mm` of the grid's centre (the rows a slice label reads)."""
        z = (np.arange(self.shape[0]) - (self.shape[0] - 1) / 2.0) * self.spacing[0]
        return np.flatnonzero(np.abs(z) <= max(half_mm, self.spacing[0] / 2))

    def ellipsoid(self, center: tuple[float, float, float], radii: tuple[float, float, float],
                  angle: float = 0.0) -> np.ndarray:
        """Boolean mask of an ellipsoid, rotated by `angle` radians in the (y, x) plane."""
        return self.radius(center, radii, angle) <= 1.0

    def radius(self, center: tuple[float, float, float], radii: tuple[float, float, float],
               angle: float = 0.0) -> np.ndarray:
        """Normalised elliptical radius (1.0 on the surface) of every voxel."""
        z, y, x = self.coords()
        dz, dy, dx = z - center[0], y - center[1], x - center[2]
        c, s = np.cos(angle), np.sin(angle)
        u, v = c * dx + s * dy, -s * dx + c * dy
        r2: np.ndarray = (dz / radii[0]) ** 2 + (v / radii[1]) ** 2 + (u / radii[2]) ** 2
        return np.sqrt(r2)

    def blob(self, center: tuple[float, float, float], radius: float, lobulation: float,
             rng: np.random.Generator, n_lobes: int = 5) -> np.ndarray:
        """Mask of a sphere whose surface is modulated by `n_lobes` random smooth lobes.

        lobulation=0 gives a smooth sphere; 0.3 a clearly lobulated mass.
        """
        z, y, x = self.coords()
        dz, dy, dx = z - center[0], y - center[1], x - center[2]
        dist = np.sqrt(dz**2 + dy**2 + dx**2) + 1e-6
        bump = np.zeros(np.broadcast_shapes(dz.shape, dy.shape, dx.shape))
        for _ in range(n_lobes):
            v = rng.normal(size=3)
            v /= np.linalg.norm(v)
            cos_t = (dz * v[0] + dy * v[1] + dx * v[2]) / dist
            bump += np.exp(4.0 * (cos_t - 1.0))  # a smooth cap around direction v
        bump = bump / n_lobes * 2.0 - 0.5
        return dist <= radius * (1.0 + lobulation * bump)

    def spicules(self, center: tuple[float, float, float], radius: float, n: int, length: float,
                 width: float, rng: np.random.Generator) -> np.ndarray:
        """Mask of `n` thin straight spicules radiating from a sphere of `radius`."""
        z, y, x = self.coords()
        dz, dy, dx = z - center[0], y - center[1], x - center[2]
        out = np.zeros(np.broadcast_shapes(dz.shape, dy.shape, dx.shape), dtype=bool)
        for _ in range(n):
            v = rng.normal(size=3)
            v[0] *= 0.3  # mostly in-plane, as on axial CT
            v /= np.linalg.norm(v)
            t = dz * v[0] + dy * v[1] + dx * v[2]
            perp2 = dz**2 + dy**2 + dx**2 - t**2
            out |= (t > 0) & (t < radius + length) & (perp2 < width**2)
        return out


def random_field(shape: tuple[int, ...], sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian random field with correlation length `sigma` voxels."""
    factor = int(sigma // 3) if sigma >= 6 else 1
    if factor > 1:  # smooth fields are drawn coarse and interpolated: same statistics, far cheaper
        coarse = tuple(-(-n // factor) + 2 for n in shape)
        small = ndimage.gaussian_filter(rng.standard_normal(coarse), sigma / factor, mode="wrap")
        zoomed = ndimage.zoom(small, factor, order=1, mode="nearest")
        field = zoomed[tuple(slice(factor, factor + n) for n in shape)]
    else:
        field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return (field - field.mean()) / (field.std() + 1e-12)


def area_downsample(volume: np.ndarray, factor: int) -> np.ndarray:
    """Average `factor` x `factor` in-plane blocks of a (z, y, x) volume (detector pixel integration)."""
    z, h, w = volume.shape
    return volume.reshape(z, h // factor, factor, w // factor, factor).mean(axis=(2, 4))


def slice_profile(volume: np.ndarray, fine_dz: float, thickness: float, out_depth: int) -> np.ndarray:
    """Integrate a finely sampled (z, y, x) volume over Gaussian slice profiles of FWHM `thickness` mm.

    Output slices are taken at evenly spaced centres; the slice spacing is the volume's extent
    divided by `out_depth` (so thickness can exceed spacing, as in overlapping reconstructions).
    """
    sigma = thickness / 2.355 / fine_dz
    smooth = ndimage.gaussian_filter1d(volume, sigma, axis=0, mode="nearest") if sigma > 0.3 else volume
    step = volume.shape[0] / out_depth
    centres = (np.arange(out_depth) * step + step / 2 - 0.5).round().astype(int)
    return smooth[np.clip(centres, 0, volume.shape[0] - 1)]


def blur_xy(volume: np.ndarray, sigma_px: float) -> np.ndarray:
    """In-plane Gaussian blur of a (z, y, x) volume (the in-plane point-spread function)."""
    if sigma_px <= 0:
        return volume
    return ndimage.gaussian_filter(volume, (0.0, sigma_px, sigma_px), mode="nearest")
