"""Result files: one Parquet file per finished cell, which is also the ledger of done cells.

Layout: `<results>/<experiment>/<cell_id>.parquet`, each holding that cell's rows (one per test
domain). A file appears by atomic rename only after it is complete, so a run killed at any moment
leaves no partial file; a cell is done exactly when its file exists. Failed cells are recorded in
`<results>/_failed/<cell_id>.json` (removed when the cell later succeeds). pandas reads the whole
folder with `read_results` (or `pandas.read_parquet(<results>)` on any one experiment folder).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

from scanshift_ray.errors import ScanshiftError

FAILED = "_failed"


def cell_file(results: str | Path, experiment: str, cell_id: str) -> Path:
    """Where the rows of one cell live."""
    return Path(results) / experiment / f"{cell_id}.parquet"


def _atomic_write_bytes(path: Path, write: Callable[[str], object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_cell(results: str | Path, rows: list[dict]) -> Path:
    """Write the rows of one finished cell atomically; clears any failure record of that cell."""
    if not rows:
        raise ValueError("a finished cell has at least one row")
    experiment, cell_id = rows[0]["experiment"], rows[0]["cell_id"]
    path = cell_file(results, experiment, cell_id)
    frame = pd.DataFrame(rows)
    _atomic_write_bytes(path, lambda tmp: frame.to_parquet(tmp, index=False))
    failure = Path(results) / FAILED / f"{cell_id}.json"
    if failure.exists():
        failure.unlink()
    return path


def record_failure(results: str | Path, cell: dict, error: str) -> Path:
    """Record that a cell failed (after its retries), with its config and the error message."""
    path = Path(results) / FAILED / f"{cell['cell_id']}.json"
    body = json.dumps({**cell, "error": error}, indent=2, default=str)
    _atomic_write_bytes(path, lambda tmp: Path(tmp).write_text(body))
    return path


def done_cells(results: str | Path) -> set[str]:
    """Ids of cells whose result file exists (the ledger); reads no file contents."""
    root = Path(results)
    if not root.is_dir():
        return set()
    return {p.stem for p in root.glob("*/*.parquet") if not p.parent.name.startswith("_")}


def failed_cells(results: str | Path) -> dict[str, str]:
    """cell_id -> error message of recorded failures."""
    folder = Path(results) / FAILED
    if not folder.is_dir():
        return {}
    return {p.stem: json.loads(p.read_text()).get("error", "") for p in folder.glob("*.json")}


def _parquet_files(path: Path) -> Iterable[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*.parquet") if not any(part.startswith(("_", ".")) for part in
                                                                  p.relative_to(path).parts))


def read_results(path: str | Path) -> pd.DataFrame:
    """All result rows under `path` (a Parquet file or a folder of them) as one DataFrame."""
    path = Path(path)
    if not path.exists():
        raise ScanshiftError(f"results not found: {path}")
    files = list(_parquet_files(path))
    if not files:
        raise ScanshiftError(f"no Parquet files under {path}")
    frames = []
    for f in files:
        try:
            frames.append(pd.read_parquet(f))
        except Exception as exc:  # pyarrow raises several types for damaged files
            raise ScanshiftError(f"unreadable result file {f}: {exc}") from None
    return pd.concat(frames, ignore_index=True)
