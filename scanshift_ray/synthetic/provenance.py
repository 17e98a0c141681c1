"""Where every scanner parameter of the twins comes from.

Each field of each twin's two scanners has an entry: a status and the sources behind it.
    published       the value is what a cited protocol, vendor default or measurement gives;
    range           the value lies in a published range for that dataset or scanner class;
    assumption      no published value was found (the direction may be sourced; said in the note);
    post-processing vendor image processing after reconstruction, proprietary, modelled as such.
Where no source gives a difference between a dataset's two vendors, both scanners share the value.
`table()` renders the README table from the scanners themselves, so the values cannot drift.
"""

from __future__ import annotations

import dataclasses

from scanshift_ray.datasets import DATASETS
from scanshift_ray.synthetic.twins import TWINS

SOURCES = {
    "K1": "KiTS19 data page, kits19.grand-challenge.org/data: 'slice thicknesses range from 1mm to 5mm', the "
          "thinnest series kept",
    "K2": "neheller/kits23 issue 19: scans from 'a wide variety of community institutions'",
    "L1": "LUNA16 data page, luna16.grand-challenge.org/Data: 888 of 1018 LIDC scans have slices <= 2.5 mm",
    "L2": "Zhao et al., Transl Oncol 2014, doi:10.1593/tlo.13865: GE recon at 1.25/2.5/5 mm, 'lung and standard' "
          "kernels",
    "L3": "TCIA FDA phantom (LightSpeed VCT, GE): '120 kVp ... lung kernel using 1.25 mm slice thickness'",
    "C1": "Siemens SOMATOM Sensation operating instructions: 'standard kernels for body tissue studies B30s or B40s'",
    "C2": "PubMed 29076347 (GE Discovery CT750HD chest): noise index 14 HU at 5 mm, 120 kVp",
    "C3": "GE Discovery HD 750 head-and-neck contrast CT: '120 kVp ... reconstruction thickness, 2.5 mm'",
    "C6": "HNSCC metadata (datasets.md): planning CTs are Philips Medical Systems, GE series are PET/CT",
    "C7": "models-and-physics.md: soft kernels give less noise and lower resolution; QC holds water within a few "
          "HU; noise ~ 1/sqrt(dose)",
    "P1": "PI-CAI (FL4Health README): Siemens or Philips scanners; T2W spacing 3.0 x 0.5 x 0.5 (43 %), "
          "3.6 x 0.3 x 0.3 (25 %), 3.0 x 0.342 x 0.342 (15 %)",
    "P2": "PI-RADS v2.1 (doi:10.2478/raon-2019-0021): T2W 3 mm / 0 gap, in-plane <= 0.7 x 0.4 mm",
    "P4": "Siemens 3 T Verio prostate T2 TSE example: 'slice thickness, 3 mm ... TR/TE, 5800/100 ms'",
    "M1": "RadiologyKey, 1.5 T and 3 T breast DCE: '3-Tesla (T) has a higher signal-to-noise ratio'",
    "D1": "Duke-Breast-Cancer-MRI feature legend (mazurowski-lab/MRI-parameter-prediction): fields 1.494-3 T, flip "
          "7/8/10/12 deg, slice 0.9-2.5 mm, scan options with FS (fat saturation)",
    "D3": "Duke-Breast-Cancer-MRI description: 'fat-suppressed gradient echo T1-weighted', GE and Siemens, 1.5 or 3 T",
    "D4": "Radiology 2013, PubMed 23401582: breast B1 -8.9 % / +5.4 % at 1.5 T, -13.7 % / +2.7 % at 3 T",
    "D5": "Rahbar et al., JMRI 2012, doi:10.1002/jmri.23571: left-right B1 difference 9.2 % at 3 T",
    "X1": "chest PA positioning notes: 'kVp: 100 to 110', grid for upright bucky (teaching source)",
    "X2": "chest X-ray technique cards: '110 - 120 KVp' (teaching source)",
    "X3": "Niklason et al., Med Phys 1981, doi:10.1118/1.595027: ~90 % scatter in the mediastinum without a grid",
    "X4": "Samei, Med Phys 2003: CsI vs Gd2O2S detectors, MTF 'generally similar', DQE 78 % vs 20 %",
    "X5": "BRAX (Reis et al., Sci Data 2022, doi:10.1038/s41597-022-01608-8): manufacturers coded as integers",
    "X6": "Prokop 2003, J Thorac Imaging 18:148; Agfa MUSICA: vendor processing is proprietary (LUTs, multi-band "
          "unsharp masking, histogram normalisation)",
    "R": "design proposal in models-and-physics.md section 3 (no dataset source)",
}

_CT = {
    "mtf_sigma_mm": ("assumption", "C7 (softer kernel: lower resolution; direction only)"),
    "thickness_mm": ("assumption", ""),
    "noise_hu": ("assumption", "C7 (softer kernel: less noise; direction only)"),
    "kernel_cutoff": ("assumption", "C7 (direction only)"),
    "hu_offset": ("range", "C7 (water within a few HU)"),
    "hu_gain": ("range", "C7 (+1 % moves cortex ~1.7 HU)"),
}
_MRI = {
    "field_t": ("assumption", ""), "sequence": ("published", "P2"), "tr": ("assumption", ""),
    "te": ("assumption", ""), "flip_deg": ("published", "spin echo excitation; unused by the SE equation"),
    "fat_sat": ("published", "P2 (no fat suppression on T2W)"), "b1_var": ("published", "unused by spin echo"),
    "bias": ("assumption", "no vendor difference published: shared"), "noise": ("assumption", "M1 (direction)"),
    "psf_mm": ("range", "P2, P1 (in-plane <= 0.7 x 0.4 mm)"), "thickness_mm": ("published", "P1, P2"),
    "smoothing_px": ("post-processing", "vendor denoising; strength assumed"),
}
_XRAY = {
    "kvp": ("range", "X1, X2 (chest PA 100-120 kVp; no value per code, X5)"),
    "filter_mm_al": ("assumption", "shared"), "spr": ("assumption", "X3 (scatter large behind the chest); R"),
    "det_sigma_px": ("published", "X4 (MTF generally similar: shared)"),
    "photons": ("published", "X4 (DQE 78 % vs 20 %: B = A x 20/78; CsI for code 3 assumed, X5)"),
    "band_sigmas": ("post-processing", "X6; R"), "band_gains": ("post-processing", "X6; R"),
    "gamma": ("post-processing", "X6; R"),
}
_OVERRIDES: dict[str, dict[str, tuple[str, str]]] = {
    "ct-kidney": {"thickness_mm": ("range", "K1 (B at its maximum, 5 mm); kernel B30f: C1; vendors: K2")},
    "ct-lidc": {"thickness_mm": ("range", "L1, L2, L3 (GE LUNG 1.25 mm)"),
                "noise_hu": ("assumption", "A ~ C2 scaled to 1.25 mm; B sharper kernel assumed")},
    "ct-hnscc": {"thickness_mm": ("assumption", "C3 (GE 2.5 mm in another cohort); B is Philips, C6")},
    "ct-oropharyngeal": {"thickness_mm": ("assumption", "C3 (GE 2.5 mm in another cohort); FC08 unverified")},
    "mri-prostate": {"field_t": ("assumption", "P1 (vendors); field per vendor not published"),
                     "tr": ("assumption", "A near P4 (5800 ms); B assumed"), "te": ("published", "A: P4; B assumed")},
    "mri-breast": {"field_t": ("range", "D1, D3 (1.5 and 3 T; vendor-to-field pairing assumed)"),
                   "sequence": ("published", "D3"), "tr": ("assumption", "per-patient values in D1 not retrieved"),
                   "te": ("assumption", "per-patient values in D1 not retrieved"), "flip_deg": ("range", "D1"),
                   "fat_sat": ("published", "D1, D3 (fat-suppressed)"), "b1_var": ("published", "D4, D5"),
                   "noise": ("assumption", "M1 (3 T quieter)"), "psf_mm": ("assumption", "shared"),
                   "thickness_mm": ("range", "D1")},
}


def entry(key: str, field: str) -> tuple[str, str]:
    """(status, sources and note) of scanner `field` of twin `key`."""
    modality_defaults = {"CT": _CT, "MRI": _MRI, "X-ray": _XRAY}[DATASETS.get(key).modality]
    return _OVERRIDES.get(key, {}).get(field) or modality_defaults[field]


def _fmt(value: object) -> str:
    if isinstance(value, tuple):
        return "/".join(_fmt(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def table() -> str:
    """The provenance of every scanner parameter as a markdown table, followed by the source list."""
    lines = ["| twin | parameter | scanner A | scanner B | status | sources |", "|---|---|---|---|---|---|"]
    for key in TWINS.names():
        a, b = TWINS.get(key).scanners
        lines.append(f"| {key} | scanners | {a.name} | {b.name} | | |")
        for f in dataclasses.fields(a):
            if f.name == "name":
                continue
            status, note = entry(key, f.name)
            values = f"{_fmt(getattr(a, f.name))} | {_fmt(getattr(b, f.name))}"
            lines.append(f"| | {f.name} | {values} | {status} | {note} |")
    lines += ["", "Sources:", ""] + [f"- {k}: {v}" for k, v in SOURCES.items()]
    return "\n".join(lines)
