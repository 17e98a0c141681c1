"""Result files: one Parquet file per finished cell, which is also the ledger of done cells.

Layout: `<results>/<experiment>/<cell_id>.parquet`, each holding that cell's rows (one per test
domain). A file appears by atomic rename only after it is complete, so a run killed at any moment
leaves no partial file; a cell is done exactly when its file exists. Failed cells are recorded in
`<results>/_failed/<cell_id>.json` (removed when the cell later succeeds). pandas reads the whole
folder with `read_results` (or `pandas.read_parquet(<results>)` on any one experiment folder).

`<results>` may also be an object-store URI (s3://bucket/prefix, gs://...; file:// for tests): files
are then written through pyarrow's file systems (an object appears only when its upload is complete)
and the ledger is the object listing. A local or NFS folder is best given as a plain path, which gets
the atomic rename.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd
import pyarrow.fs as pafs

from scanshift_ray.errors import ScanshiftError
from scanshift_ray.storage import filesystem, is_uri

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


def _remote_write(uri: str, rel: str, data: bytes) -> None:
    fs, base = filesystem(uri)
    fs.create_dir(f"{base}/{rel.rsplit('/', 1)[0]}", recursive=True)
    with fs.open_output_stream(f"{base}/{rel}") as out:
        out.write(data)


def _remote_list(uri: str, suffix: str) -> list[str]:
    """Paths relative to `uri` of the files ending in `suffix` (recursive)."""
    fs, base = filesystem(uri)
    infos = fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
    return [i.path[len(base):].lstrip("/") for i in infos if i.type == pafs.FileType.File and i.path.endswith(suffix)]


def write_cell(results: str | Path, rows: list[dict]) -> Path | str:
    """Write the rows of one finished cell atomically; clears any failure record of that cell."""
    if not rows:
        raise ValueError("a finished cell has at least one row")
    experiment, cell_id = rows[0]["experiment"], rows[0]["cell_id"]
    frame = pd.DataFrame(rows)
    if is_uri(results):
        _remote_write(str(results), f"{experiment}/{cell_id}.parquet", frame.to_parquet(index=False))
        fs, base = filesystem(str(results))
        if fs.get_file_info(f"{base}/{FAILED}/{cell_id}.json").type == pafs.FileType.File:
            fs.delete_file(f"{base}/{FAILED}/{cell_id}.json")
        return f"{str(results).rstrip('/')}/{experiment}/{cell_id}.parquet"
    path = cell_file(results, experiment, cell_id)
    _atomic_write_bytes(path, lambda tmp: frame.to_parquet(tmp, index=False))
    failure = Path(results) / FAILED / f"{cell_id}.json"
    if failure.exists():
        failure.unlink()
    return path


def record_failure(results: str | Path, cell: dict, error: str) -> Path | str:
    """Record that a cell failed (after its retries), with its config and the error message."""
    body = json.dumps({**cell, "error": error}, indent=2, default=str)
    if is_uri(results):
        _remote_write(str(results), f"{FAILED}/{cell['cell_id']}.json", body.encode())
        return f"{str(results).rstrip('/')}/{FAILED}/{cell['cell_id']}.json"
    path = Path(results) / FAILED / f"{cell['cell_id']}.json"
    _atomic_write_bytes(path, lambda tmp: Path(tmp).write_text(body))
    return path


def done_cells(results: str | Path) -> set[str]:
    """Ids of cells whose result file exists (the ledger); reads no file contents."""
    if is_uri(results):
        return {Path(r).stem for r in _remote_list(str(results), ".parquet") if r.count("/") == 1
                and not r.startswith(("_", "."))}
    root = Path(results)
    if not root.is_dir():
        return set()
    return {p.stem for p in root.glob("*/*.parquet") if not p.parent.name.startswith("_")}


def failed_cells(results: str | Path) -> dict[str, str]:
    """cell_id -> error message of recorded failures."""
    if is_uri(results):
        fs, base = filesystem(str(results))
        out = {}
        for rel in _remote_list(f"{str(results).rstrip('/')}/{FAILED}", ".json"):  # not the whole results tree
            with fs.open_input_stream(f"{base}/{FAILED}/{rel}") as src:
                out[Path(rel).stem] = json.loads(src.read()).get("error", "")
        return out
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
    """All result rows under `path` (a Parquet file or a folder of them, or a URI) as one DataFrame."""
    if is_uri(path):
        fs, base = filesystem(str(path))
        rels = [r for r in _remote_list(str(path), ".parquet") if not r.startswith(("_", "."))]
        if not rels:
            raise ScanshiftError(f"no Parquet files under {path}")
        return pd.concat([pd.read_parquet(f"{base}/{r}", filesystem=fs) for r in rels], ignore_index=True)
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
