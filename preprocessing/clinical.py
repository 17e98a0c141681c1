"""Clinical sheets (.xlsx via openpyxl, .csv): find a table's id and label columns by pattern."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from scanshift_ray.errors import ScanshiftError


def read_table(path: Path, header: int = 0) -> pd.DataFrame:
    """A sheet as text columns, blank rows removed and column names stripped; a one-line error when it
    cannot be read. CSV is read as UTF-8 (a byte-order mark is ignored); other encodings are refused
    with where the first bad byte is, since guessing one could silently change ids."""
    try:
        if path.suffix.lower() in (".xlsx", ".xlsm"):
            df = pd.read_excel(path, header=header, dtype=str, engine="openpyxl")
        else:
            df = pd.read_csv(path, header=header, dtype=str, encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ScanshiftError(f"sheet {path} is not UTF-8 (byte 0x{exc.object[exc.start]:02x} at offset "
                             f"{exc.start}); re-save it as UTF-8") from None
    except Exception as exc:
        raise ScanshiftError(f"cannot read sheet {path}: {type(exc).__name__}: {str(exc)[:200]}") from None
    df.columns = [str(c).strip() for c in df.columns]
    return df.dropna(how="all").reset_index(drop=True)


def find_column(df: pd.DataFrame, pattern: str) -> str | None:
    """The first column whose name matches `pattern` (case-insensitive)."""
    regex = re.compile(pattern, re.IGNORECASE)
    return next((str(c) for c in df.columns if regex.search(str(c))), None)


def find_sheet(raw: Path, given: str, needs: str) -> Path:
    """The sheet `given` (absolute or relative to `raw`), else the first .xlsx/.csv under `raw` with a
    column matching `needs`; TCIA's metadata.csv is never taken."""
    if given:
        path = Path(given) if Path(given).is_absolute() else raw / given
        if not path.is_file():
            raise ScanshiftError(f"clinical sheet not found: {path}")
        return path
    unreadable = []
    for path in sorted(p for ext in ("*.xlsx", "*.csv") for p in raw.rglob(ext)):
        if path.name == "metadata.csv":
            continue
        try:
            if find_column(read_table(path), needs):
                return path
        except ScanshiftError as exc:
            unreadable.append(str(exc))  # said in the error below: it may be the sheet the user meant
    raise ScanshiftError(f"no clinical sheet (.xlsx/.csv) with a column matching {needs!r} under {raw}"
                         + (f" (unreadable: {unreadable[0]})" if unreadable else "")
                         + "; pass --option clinical=<path>")


def label_map(df: pd.DataFrame, id_pattern: str, label_pattern: str,
              to_label: Callable[[str], int | None], where: Path) -> dict[str, int | None]:
    """{patient id (case-folded): label or None (unknown)} from the columns matching the two patterns.

    Ids differing only by case are one patient (folder names and sheets disagree on case in practice);
    a patient listed twice with different labels is refused."""
    id_col, label_col = find_column(df, id_pattern), find_column(df, label_pattern)
    if id_col is None or label_col is None:
        raise ScanshiftError(f"{where}: needs columns matching {id_pattern!r} and {label_pattern!r}; "
                             f"has {', '.join(map(str, df.columns))}")
    out: dict[str, int | None] = {}
    for i, v in zip(df[id_col], df[label_col], strict=True):
        if not isinstance(i, str) or not i.strip():
            continue
        key, label = i.strip().casefold(), to_label(str(v))
        if key in out and out[key] != label:
            raise ScanshiftError(f"{where}: patient {i.strip()!r} appears twice (ids compared ignoring case) "
                                 "with different labels; fix the sheet")
        out[key] = label
    return out


def hpv_label(value: str) -> int | None:
    """HPV/P16 status text -> 1 positive, 0 negative, None unknown [I: the sheet's exact strings]."""
    text = value.strip().lower()
    if text.startswith("pos") or text in ("+", "1", "yes", "p16+", "hpv+"):
        return 1
    if text.startswith("neg") or text in ("-", "0", "no", "p16-", "hpv-"):
        return 0
    return None
