"""Ablations: turn one physical difference between a twin's two scanners off.

An ablation names a group of scanner fields; domain 2's scanner takes domain 1's values for them,
everything else stays as the protocol says. Comparing a study on ablated twins with the study on
the default twins shows how much of the cross-scanner drop that one difference causes
(`scanshift synth --ablate NAME`, `sweeps/ablation_study.py`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from scanshift_ray.errors import ScanshiftError
from scanshift_ray.registry import Registry
from scanshift_ray.synthetic.ct import CTScanner
from scanshift_ray.synthetic.mri import MRIScanner
from scanshift_ray.synthetic.xray import XrayScanner


@dataclass(frozen=True)
class Ablation:
    """Scanner `fields` of `scanner_type` that domain 2 takes from domain 1."""

    modality: str
    scanner_type: type
    fields: tuple[str, ...]
    what: str
    kind: str = "acquisition"  # or "post-processing" (vendor image processing after reconstruction)


ABLATIONS: Registry[Ablation] = Registry("ablation")
ABLATIONS.add("mri-field", Ablation("MRI", MRIScanner, ("field_t",), "field strength (T1 lengthening, r1)"))
ABLATIONS.add("mri-timing", Ablation("MRI", MRIScanner, ("tr", "te", "flip_deg"), "TR, TE and flip angle"))
ABLATIONS.add("mri-fat-sat", Ablation("MRI", MRIScanner, ("fat_sat",), "fat suppression"))
ABLATIONS.add("mri-coil", Ablation("MRI", MRIScanner, ("b1_var", "bias"), "B1+ and receive-coil bias fields"))
ABLATIONS.add("mri-noise", Ablation("MRI", MRIScanner, ("noise",), "noise level"))
ABLATIONS.add("mri-resolution", Ablation("MRI", MRIScanner, ("psf_mm", "thickness_mm"),
                                         "in-plane PSF and slice thickness"))
ABLATIONS.add("mri-denoising", Ablation("MRI", MRIScanner, ("smoothing_px",), "vendor denoising filter",
                                        "post-processing"))
ABLATIONS.add("ct-kernel", Ablation("CT", CTScanner, ("mtf_sigma_mm", "kernel_cutoff"),
                                    "reconstruction kernel (MTF and noise texture)"))
ABLATIONS.add("ct-dose", Ablation("CT", CTScanner, ("noise_hu",), "noise level (dose)"))
ABLATIONS.add("ct-thickness", Ablation("CT", CTScanner, ("thickness_mm",), "slice thickness"))
ABLATIONS.add("ct-calibration", Ablation("CT", CTScanner, ("hu_offset", "hu_gain"), "HU calibration"))
ABLATIONS.add("xray-beam", Ablation("X-ray", XrayScanner, ("kvp", "filter_mm_al"), "tube voltage and filtration"))
ABLATIONS.add("xray-scatter", Ablation("X-ray", XrayScanner, ("spr",), "scatter (grid, air gap)"))
ABLATIONS.add("xray-detector", Ablation("X-ray", XrayScanner, ("det_sigma_px", "photons"),
                                        "detector blur and quantum efficiency"))
ABLATIONS.add("xray-processing", Ablation("X-ray", XrayScanner, ("band_sigmas", "band_gains", "gamma"),
                                          "vendor processing (unsharp masking, LUT)", "post-processing"))


def check(names: tuple[str, ...]) -> tuple[str, ...]:
    """`names` sorted and validated (unknown names raise with the list of known ones)."""
    for name in names:
        ABLATIONS.get(name)
    if len(set(names)) != len(names):
        raise ScanshiftError(f"--ablate names an ablation twice: {', '.join(names)}")
    return tuple(sorted(names))


def apply(scanner_a: Any, scanner_b: Any, names: tuple[str, ...]) -> Any:
    """Domain 2's scanner `scanner_b` with the fields of the ablations `names` taken from `scanner_a`.

    Ablations of another modality leave the scanner unchanged.
    """
    fields: dict[str, Any] = {}
    for name in names:
        ablation = ABLATIONS.get(name)
        if isinstance(scanner_b, ablation.scanner_type):
            fields.update({f: getattr(scanner_a, f) for f in ablation.fields})
    return dataclasses.replace(scanner_b, **fields) if fields else scanner_b


def affected(names: tuple[str, ...], modality: str) -> bool:
    """True when one of the ablations `names` changes a twin of `modality`."""
    return any(ABLATIONS.get(n).modality == modality for n in names)
