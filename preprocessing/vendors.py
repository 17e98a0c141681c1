"""Scanner identity from real DICOM Manufacturer (0008,0070) strings.

Real strings vary in case, spelling and punctuation (`GE MEDICAL SYSTEMS`, `GE Medical Systems`, bare
`GE`, `SIEMENS`, `Siemens Healthineers`, `TOSHIBA_MEC`, `Canon Medical Systems`, even a corrupted
`GE MEDICAL S]STEMS`). A string is split into words at every character that is not a letter or digit
(so `_` and `]` separate words too) and vendors are matched on whole words: `Merge Healthcare` holds
no word `GE` and is not GE. Some strings name software that made an RTSTRUCT, SEG or plan (ADAC /
Pinnacle3, MIM, Varian / Eclipse, QIICR, MPTronic ...): those are flagged and never decide a domain.

The dataset specs (`scanshift_ray.datasets`) give each domain's Manufacturer substrings; each is read
as a vendor with the same word rule (`"ge medical"` -> GE), and an empty list means "any other
scanner vendor" (an unknown but non-software string counts as another scanner).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from scanshift_ray.datasets import DatasetSpec

# vendor -> words (any one names it); multi-word names are matched as consecutive words
SCANNER_VENDORS: dict[str, tuple[str, ...]] = {
    "ge": ("ge", "gems", "general electric"),
    "siemens": ("siemens",),
    "toshiba": ("toshiba",),
    "canon": ("canon",),
    "philips": ("philips",),
    "hitachi": ("hitachi",),
    "fujifilm": ("fujifilm", "fuji"),
    "samsung": ("samsung",),
    "neusoft": ("neusoft",),
    "united imaging": ("uih", "united imaging"),
    "imatron": ("imatron",),
    "picker": ("picker", "marconi"),
    "elscint": ("elscint",),
    "agfa": ("agfa",),
    "carestream": ("carestream", "kodak"),
    "konica": ("konica",),
    "hologic": ("hologic",),
}
SOFTWARE_VENDORS: dict[str, tuple[str, ...]] = {
    "adac": ("adac", "pinnacle", "pinnacle3"),
    "mim": ("mim", "mimvista"),
    "varian": ("varian", "eclipse"),
    "elekta": ("elekta", "monaco", "xio"),
    "raysearch": ("raysearch", "raystation"),
    "qiicr": ("qiicr", "3d slicer", "slicer", "dcmqi"),
    "merge": ("merge",),
    "mptronic": ("mptronic",),
    "brainlab": ("brainlab",),
    "accuray": ("accuray", "tomotherapy"),
    "highdicom": ("highdicom",),
}


def words(text: str) -> list[str]:
    """Lower-case words of `text`, split at every character that is not a letter or digit."""
    return [w for w in re.split(r"[^0-9a-z]+", str(text).lower()) if w]


def _has(tokens: list[str], phrase: str) -> bool:
    want = phrase.split()
    return any(tokens[i:i + len(want)] == want for i in range(len(tokens) - len(want) + 1))


@dataclass(frozen=True)
class Vendor:
    """What a Manufacturer string names: a scanner vendor, a software vendor, or nothing known."""

    name: str  # canonical vendor ("ge", "siemens", ...) or "" when unknown
    software: bool = False

    @property
    def known(self) -> bool:
        return bool(self.name)


@lru_cache(maxsize=1024)  # asked once per case, and a dataset has a handful of distinct strings
def vendor_of(manufacturer: str) -> Vendor:
    """The vendor a Manufacturer string names (software vendors are flagged; first match wins)."""
    tokens = words(manufacturer)
    for name, phrases in SOFTWARE_VENDORS.items():
        if any(_has(tokens, p) for p in phrases):
            return Vendor(name, software=True)
    for name, phrases in SCANNER_VENDORS.items():
        if any(_has(tokens, p) for p in phrases):
            return Vendor(name)
    return Vendor("")


def domain_vendors(spec: DatasetSpec) -> list[set[str]]:
    """Per domain of `spec`, the vendors its Manufacturer substrings name (empty set: any other scanner)."""
    return [{vendor_of(n).name for n in needles} - {""} for needles in spec.manufacturers]


def match_domain(spec: DatasetSpec, manufacturer: str) -> tuple[str | None, str]:
    """(domain, "") for a scanner's Manufacturer string, else (None, why it fits no domain)."""
    if not str(manufacturer).strip():
        return None, "no Manufacturer (0008,0070) on the image series"
    vendor = vendor_of(manufacturer)
    if vendor.software:
        return None, f"manufacturer {manufacturer!r} is software ({vendor.name}), not a scanner"
    claimed = domain_vendors(spec)
    for domain, vendors in zip(spec.domains, claimed, strict=True):
        if vendor.name in vendors:
            return domain, ""
    for domain, vendors in zip(spec.domains, claimed, strict=True):
        if not vendors:
            return domain, ""
    return None, f"manufacturer {manufacturer!r} fits no domain of {spec.key}"
