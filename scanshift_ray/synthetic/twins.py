"""The seven synthetic twins: one per paper dataset, two scanners each, written as ordinary shards.

A twin pairs an anatomy sampler with the two scanners of its dataset. Domain 1 is acquired with
scanner A. Domain 2 uses scanner B moved from A toward its full setting B* by a per-modality
severity s: theta_B = theta_A + s (theta_B* - theta_A) (s = 0: no shift, s = 1: the B* protocol).
Anatomy is drawn with the same sampler for both domains, so p(label | anatomy) is identical and the
shift is pure covariate shift. Everything is deterministic given (seed, key, domain).
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from scanshift_ray.registry import Registry
from scanshift_ray.synthetic import ct, mri, xray
from scanshift_ray.synthetic.phantom import OVERSAMPLE, Grid

# Calibrated so that the fast study reproduces the paper's ordering of the mean AUC drop
# (MRI > X-ray > CT) with same-scanner AUCs of 0.70-0.95; see README "Synthetic scanners".
DEFAULT_SEVERITY = {"CT": 1.0, "MRI": 1.0, "X-ray": 1.0}


@dataclass(frozen=True)
class Twin:
    """A synthetic stand-in for one paper dataset.

    Attributes:
        key: the dataset key it twins.
        fov_mm: in-plane field of view.
        depth_mm: z extent drawn (the slab around a 2D slice, or the crop depth).
        anatomy: (grid, label, rng) -> HU volume (CT) or parameter maps (MRI); unused for X-ray.
        scanners: (A, B*) acquisition settings of domain 1 and of domain 2 at severity 1.
        samples_per_patient: images per synthetic patient; None takes the profile's slices_per_patient.
        prevalence: P(label = 1).
    """

    key: str
    fov_mm: float
    depth_mm: float
    anatomy: Callable[[Grid, int, np.random.Generator], Any] | None
    scanners: tuple[Any, Any]
    samples_per_patient: int | None = None
    prevalence: float = 0.5


TWINS: Registry[Twin] = Registry("synthetic twin")

_KIDNEY = (ct.CTScanner("Siemens B30f 3 mm", 0.6, 3.0, 14.0, 0.8, 0.0),
           ct.CTScanner("other vendors, 5 mm", 0.9, 5.0, 20.0, 0.55, 4.0, 1.01))
_LUNG = (ct.CTScanner("GE LUNG 1.25 mm", 0.7, 1.25, 30.0, 0.8, 0.0),
         ct.CTScanner("other vendors 2 mm", 0.55, 2.0, 45.0, 0.95, -3.0))
_NECK = (ct.CTScanner("GE STANDARD 2.5 mm", 0.7, 2.5, 12.0, 0.75, 0.0),
         ct.CTScanner("other vendors 3 mm", 0.8, 3.0, 16.0, 0.65, 3.0))
_OPC = (ct.CTScanner("GE STANDARD 2.5 mm", 0.7, 2.5, 12.0, 0.75, 0.0),
        ct.CTScanner("Toshiba FC08 3 mm", 0.75, 3.0, 14.0, 0.7, 2.0))
# MRI: each vendor's images carry something the other vendor's model never saw (A: sharp and noisy,
# B: denoised and smooth, with other TR/TE/field or fat suppression), so the shift hurts both ways.
_PROSTATE = (mri.MRIScanner("Siemens 3 T T2 TSE", 3.0, "se", 4500.0, 101.0, 90.0, 0.0, 0.0, 0.5, 0.05, 0.4,
                            3.0, 0.0),
             mri.MRIScanner("Philips 1.5 T T2 TSE", 1.5, "se", 2000.0, 150.0, 90.0, 0.0, 0.0, 0.2, 0.02, 1.0,
                            5.0, 1.0))
_BREAST = (mri.MRIScanner("GE 1.5 T VIBRANT", 1.5, "gre", 5.5, 2.6, 10.0, 0.9, 0.05, 0.5, 0.05, 0.5, 2.0, 0.0),
           mri.MRIScanner("Siemens 3 T FLASH", 3.0, "gre", 4.5, 1.8, 12.0, 0.2, 0.5, 0.2, 0.015, 0.7, 2.0, 0.9))
_CHEST = (xray.XrayScanner("manufacturer 3", 120.0, 2.5, 0.3, 0.5, 4000.0, (1.0, 4.0, 16.0), (0.0, 0.5, 0.3), 1.0),
          xray.XrayScanner("manufacturer 5", 100.0, 2.5, 0.65, 0.8, 2500.0, (1.0, 4.0, 16.0), (0.25, 0.9, 0.45), 0.75))

TWINS.add("ct-kidney", Twin("ct-kidney", 120.0, 8.0, ct.kidney, _KIDNEY, samples_per_patient=4))
TWINS.add("ct-lidc", Twin("ct-lidc", 40.0, 10.0, ct.lung_nodule, _LUNG, samples_per_patient=4))
TWINS.add("ct-hnscc", Twin("ct-hnscc", 180.0, 8.0, ct.neck, _NECK))
TWINS.add("ct-oropharyngeal", Twin("ct-oropharyngeal", 72.0, 72.0, ct.oropharynx, _OPC, samples_per_patient=4))
TWINS.add("mri-prostate", Twin("mri-prostate", 110.0, 8.0, mri.prostate, _PROSTATE))
TWINS.add("mri-breast", Twin("mri-breast", 40.0, 10.0, mri.breast, _BREAST, samples_per_patient=2))
TWINS.add("xray-chest", Twin("xray-chest", 400.0, 0.0, None, _CHEST, samples_per_patient=3))


def _lerp(a: Any, b: Any, s: float) -> Any:
    if isinstance(a, tuple):
        return tuple(_lerp(x, y, s) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and not isinstance(a, bool):
        return type(a)(a + s * (b - a)) if isinstance(a, float) else a + s * (b - a)
    return b


def scanner_at(twin: Twin, domain_index: int, severity: float) -> Any:
    """The acquisition settings of domain 0 (scanner A) or domain 1 (B at `severity`)."""
    a, b = twin.scanners
    if domain_index == 0:
        return a
    fields = {f.name: _lerp(getattr(a, f.name), getattr(b, f.name), severity) for f in dataclasses.fields(a)}
    return dataclasses.replace(a, **fields)


def render_sample(twin: Twin, modality: str, shape: tuple[int, ...], scanner: Any, label: int,
                  rng: np.random.Generator) -> np.ndarray:
    """Draw one anatomy with `label` and acquire it with `scanner`; returns an image of `shape`."""
    height, width = shape[-2:]
    if modality == "X-ray":
        paths = xray.chest((height * OVERSAMPLE, width * OVERSAMPLE), twin.fov_mm, label, rng)
        return xray.render(paths, scanner, rng)
    depth = shape[0] if len(shape) == 3 else 1
    fine = max(8, 2 * depth) if len(shape) == 3 else 8
    spacing = twin.fov_mm / (height * OVERSAMPLE)
    grid = Grid((fine, height * OVERSAMPLE, width * OVERSAMPLE), (twin.depth_mm / fine, spacing, spacing))
    assert twin.anatomy is not None
    volume = twin.anatomy(grid, label, rng)
    module: Any = ct if modality == "CT" else mri
    image = module.render(volume, grid, scanner, depth, rng)
    return image if len(shape) == 3 else image[0]


def sample_rng(seed: int, key: str, domain_index: int, patient: int, sample: int) -> np.random.Generator:
    """The generator of one sample: independent streams per (seed, dataset, domain, patient, sample)."""
    return np.random.default_rng([seed, zlib.crc32(key.encode()), domain_index, patient, sample])
