"""Every converter's miniature fixture: its writer and the converter options that shrink the outputs to it.

Used by the tests and the fault corpus, so a converter's fixture is declared once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from preprocessing import fixtures_ct, fixtures_mr_xr

# dataset -> (fixture writer, converter options shrinking the outputs to fixture size)
FIXTURES: dict[str, tuple[Callable[[Path], dict[str, Any]], list[str]]] = {
    "ct-kidney": (fixtures_ct.make_kits, ["size=16"]),
    "ct-hnscc": (fixtures_ct.make_hnscc, ["size=16"]),
    "ct-oropharyngeal": (fixtures_ct.make_opc, ["crop=16"]),
    "ct-lidc": (fixtures_ct.make_lidc, []),
    "mri-prostate": (fixtures_mr_xr.make_picai, ["size=16"]),
    "mri-breast": (fixtures_mr_xr.make_duke, []),
    "xray-chest": (fixtures_mr_xr.make_brax, ["size=16"]),
}
