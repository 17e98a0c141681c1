"""The seven synthetic twins: one per paper dataset, two scanners each, written as ordinary shards.

A twin pairs an anatomy sampler with the two scanners of its dataset. Domain 1 is acquired with
scanner A. Domain 2 uses scanner B moved from A toward its full setting B* by a per-modality
severity s: theta_B = theta_A + s (theta_B* - theta_A) (s = 0: no shift, s = 1: the B* protocol).
Anatomy is drawn with the same sampler for both domains, so p(label | anatomy) is identical and the
shift is pure covariate shift. Everything is deterministic given (seed, key, domain).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scanshift_ray.registry import Registry
from scanshift_ray.synthetic import ablations, ct, mri, xray

# 1 = domain 2 acquired exactly with its protocol. Not tuned on the cross-scanner drop: only in-domain
# difficulty (lesion contrast and size, same-scanner AUC in 0.70-0.95) is calibrated; see README
# "Synthetic scanners".
DEFAULT_SEVERITY = {"CT": 1.0, "MRI": 1.0, "X-ray": 1.0}


@dataclass(frozen=True)
class Twin:
    """A synthetic stand-in for one paper dataset.

    Attributes:
        key: the dataset key it twins.
        fov_mm: in-plane field of view.
        depth_mm: z extent drawn per sample (the slab around a 2D slice, or the crop depth).
        anatomy: (grid, label, patient rng, sample rng) -> HU volume (CT) or parameter maps (MRI),
            paired with the lesion mask for "slices" twins; unused for X-ray.
        scanners: (A, B*) acquisition settings of domain 1 and of domain 2 at severity 1.
        layout: how a patient's samples relate, as in the real dataset (see `patients.py`):
            "slices" (axial slices through one body, labelled by the lesion on each slice),
            "crops" (several lesions of one patient, labels correlated within the patient),
            "views" (several radiographs of one patient, one label).
        samples_per_patient: images per synthetic patient; None takes the profile's slices_per_patient.
        patients_factor: patients per domain relative to the profile's `synthetic_patients` (datasets
            with one sample per patient have more patients, as the real ones do).
        extent_mm: for "slices", the z range the patient's slices are spread over.
        prevalence: P(label = 1) of a patient ("slices", "views") or of a lesion ("crops").
    """

    key: str
    fov_mm: float
    depth_mm: float
    anatomy: Callable[..., Any] | None
    scanners: tuple[Any, Any]
    layout: str = "crops"
    samples_per_patient: int | None = None
    patients_factor: float = 1.0
    extent_mm: float = 0.0
    prevalence: float = 0.5

    def patients(self, profile_patients: int) -> int:
        """Patients per domain under a profile with `profile_patients`."""
        return max(1, round(profile_patients * self.patients_factor))


TWINS: Registry[Twin] = Registry("synthetic twin")

# Every value is sourced or marked as an assumption in `provenance.py` (printed by
# `scanshift synth --provenance`, copied into the README). Where no source gives a difference between
# a dataset's two vendors, both scanners share the value.
_KIDNEY = (ct.CTScanner("Siemens B30f 3 mm", mtf_sigma_mm=0.6, thickness_mm=3.0, noise_hu=14.0, kernel_cutoff=0.8,
                        hu_offset=0.0),
           ct.CTScanner("other vendors, 5 mm", mtf_sigma_mm=0.9, thickness_mm=5.0, noise_hu=20.0, kernel_cutoff=0.55,
                        hu_offset=4.0, hu_gain=1.01))
_LUNG = (ct.CTScanner("GE LUNG 1.25 mm", mtf_sigma_mm=0.7, thickness_mm=1.25, noise_hu=30.0, kernel_cutoff=0.8,
                      hu_offset=0.0),
         ct.CTScanner("other vendors 2 mm", mtf_sigma_mm=0.55, thickness_mm=2.0, noise_hu=35.0, kernel_cutoff=0.95,
                      hu_offset=-3.0))
_NECK = (ct.CTScanner("GE STANDARD 2.5 mm", mtf_sigma_mm=0.7, thickness_mm=2.5, noise_hu=12.0, kernel_cutoff=0.75,
                      hu_offset=0.0),
         ct.CTScanner("Philips planning CT 3 mm", mtf_sigma_mm=0.8, thickness_mm=3.0, noise_hu=16.0,
                      kernel_cutoff=0.65, hu_offset=3.0))
_OPC = (ct.CTScanner("GE STANDARD 2.5 mm", mtf_sigma_mm=0.7, thickness_mm=2.5, noise_hu=12.0, kernel_cutoff=0.75,
                     hu_offset=0.0),
        ct.CTScanner("Toshiba FC08 3 mm", mtf_sigma_mm=0.75, thickness_mm=3.0, noise_hu=14.0, kernel_cutoff=0.7,
                     hu_offset=2.0))
_PROSTATE = (mri.MRIScanner("Siemens 3 T T2 TSE", field_t=3.0, sequence="se", tr=4500.0, te=101.0, flip_deg=90.0,
                            fat_sat=0.0, b1_var=0.0, bias=0.3, noise=0.03, psf_mm=0.4, thickness_mm=3.0,
                            smoothing_px=0.0),
             mri.MRIScanner("Philips 1.5 T T2 TSE", field_t=1.5, sequence="se", tr=3500.0, te=120.0, flip_deg=90.0,
                            fat_sat=0.0, b1_var=0.0, bias=0.3, noise=0.05, psf_mm=0.4, thickness_mm=3.6,
                            smoothing_px=1.0))
_BREAST = (mri.MRIScanner("GE 1.5 T VIBRANT", field_t=1.5, sequence="gre", tr=5.5, te=2.6, flip_deg=10.0, fat_sat=0.9,
                          b1_var=0.1, bias=0.3, noise=0.04, psf_mm=0.5, thickness_mm=2.0, smoothing_px=0.0),
           mri.MRIScanner("Siemens 3 T FLASH", field_t=3.0, sequence="gre", tr=4.5, te=1.8, flip_deg=12.0, fat_sat=0.8,
                          b1_var=0.2, bias=0.3, noise=0.02, psf_mm=0.5, thickness_mm=2.0, smoothing_px=0.9))
_CHEST = (xray.XrayScanner("manufacturer 3", kvp=120.0, filter_mm_al=2.5, spr=0.3, det_sigma_px=0.5, photons=4000.0,
                           band_sigmas=(1.0, 4.0, 16.0), band_gains=(0.0, 0.5, 0.3), gamma=1.0),
          xray.XrayScanner("manufacturer 5", kvp=100.0, filter_mm_al=2.5, spr=0.6, det_sigma_px=0.5, photons=1000.0,
                           band_sigmas=(1.0, 4.0, 16.0), band_gains=(0.2, 0.8, 0.4), gamma=0.8))

# Samples per patient follow the real datasets: KiTS, HNSCC and PI-CAI give many axial slices of
# every patient (every KiTS and HNSCC patient has a tumour, about a third of PI-CAI patients csPCa);
# LIDC patients have a few nodules each; OPC-Radiomics and Duke one GTV or box per patient; BRAX
# about 2.2 radiographs per patient (40,967 images of 18,442 patients).
TWINS.add("ct-kidney", Twin("ct-kidney", 120.0, 8.0, ct.kidney, _KIDNEY, layout="slices", samples_per_patient=4,
                            extent_mm=100.0, prevalence=1.0))
TWINS.add("ct-lidc", Twin("ct-lidc", 40.0, 10.0, ct.lung_nodule, _LUNG, samples_per_patient=2, patients_factor=2.0))
TWINS.add("ct-hnscc", Twin("ct-hnscc", 180.0, 8.0, ct.neck, _NECK, layout="slices", extent_mm=100.0,
                           prevalence=1.0))
TWINS.add("ct-oropharyngeal", Twin("ct-oropharyngeal", 72.0, 72.0, ct.oropharynx, _OPC, samples_per_patient=1,
                                   patients_factor=4.0))
TWINS.add("mri-prostate", Twin("mri-prostate", 110.0, 8.0, mri.prostate, _PROSTATE, layout="slices",
                               extent_mm=32.0, prevalence=0.6))
TWINS.add("mri-breast", Twin("mri-breast", 40.0, 10.0, mri.breast, _BREAST, samples_per_patient=1,
                             patients_factor=2.0))
TWINS.add("xray-chest", Twin("xray-chest", 400.0, 0.0, None, _CHEST, layout="views", samples_per_patient=2,
                             patients_factor=1.5))


def _lerp(a: Any, b: Any, s: float) -> Any:
    if isinstance(a, tuple):
        return tuple(_lerp(x, y, s) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and not isinstance(a, bool):
        return type(a)(a + s * (b - a)) if isinstance(a, float) else a + s * (b - a)
    return b


def scanner_at(twin: Twin, domain_index: int, severity: float, ablate: tuple[str, ...] = ()) -> Any:
    """The acquisition settings of domain 0 (scanner A) or domain 1 (B at `severity`, with the
    differences named by the ablations `ablate` turned off)."""
    a, b = twin.scanners
    if domain_index == 0:
        return a
    fields = {f.name: _lerp(getattr(a, f.name), getattr(b, f.name), severity) for f in dataclasses.fields(a)}
    return ablations.apply(a, dataclasses.replace(a, **fields), ablate)
