"""Result files: one Parquet file per finished cell, which is also the ledger of done cells.

Layout: `<results>/<experiment>/<cell_id>.parquet`, each holding that cell's rows (one per test
domain). A file appears by atomic rename only after it is complete, so a run killed at any moment
leaves no partial file; a cell is done exactly when its file exists. Failed cells are recorded in
`<results>/_failed/<cell_id>.json` (removed when the cell later succeeds). Each done cell also has
`<results>/_predictions/<experiment>/<cell_id>.parquet` (every validation and test logit at the
selected and the last epoch, with labels and pseudonymous patient ids) and
`<results>/_curves/<experiment>/<cell_id>.parquet` (the per-epoch validation curve), written before
the rows so that every counted cell has them. pandas reads the whole
folder with `read_results` (or `pandas.read_parquet(<results>)` on any one experiment folder).

`<results>` may also be an object-store URI (s3://bucket/prefix, gs://...; file:// for tests): files
are then written through pyarrow's file systems (an object appears only when its upload is complete)
and the ledger is the object listing. A local or NFS folder is best given as a plain path, which gets
the atomic rename.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs

from scanshift_ray.errors import ScanshiftError
from scanshift_ray.storage import filesystem, is_uri, normal_permissions

SCHEMA_VERSION = 1  # bump when a result column changes meaning or type
FAILED = "_failed"
PREDICTIONS = "_predictions"
CURVES = "_curves"
# Row columns added after rows were first written, with the value every older row had (rows from before
# `val_every` existed validated every epoch). `read_results` fills them in; summaries compare on them.
LATER_COLUMNS = {"val_every": 1}


def cell_file(results: str | Path, experiment: str, cell_id: str) -> Path:
    """Where the rows of one cell live."""
    return Path(results) / experiment / f"{cell_id}.parquet"


def _atomic_write_bytes(path: Path, write: Callable[[str], object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        normal_permissions(tmp)
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


# Explicit Arrow types of the row columns, so every file of a folder has one schema (a column that is
# empty in one cell, e.g. noise_draw at alpha = 0, is still a string) and pyarrow, pandas and DuckDB
# read the folder as one dataset. Axis columns take their type from the axis registry.
_INT = ("seed", "protocol_version", "epochs", "batch_size", "best_epoch", "epochs_run", "n_train", "n_val",
        "n_test", "n_test_pos", "n_mixed", "schema_version", "attempts", "val_every")
_FLOAT = ("lr", "width", "auc", "auc_last", "val_auc", "train_seconds", "wall_seconds", "prep_seconds", "val_seconds",
          "eval_seconds")
_TIME = ("started_at", "finished_at")


def _arrow_type(column: str) -> pa.DataType | None:
    from scanshift_ray.study import AXES

    if column in AXES:
        return pa.float64() if AXES.get(column).kind is float else pa.string()
    if column in _INT:
        return pa.int64()
    if column in _FLOAT:
        return pa.float64()
    if column in _TIME:
        return pa.timestamp("us", tz="UTC")
    return None


def rows_table(rows: list[dict]) -> pa.Table:
    """The rows of a cell as an Arrow table with the explicit result schema (and its version)."""
    frame = pd.DataFrame(rows).assign(schema_version=SCHEMA_VERSION)
    for col in _TIME:
        if col in frame.columns and not pd.api.types.is_datetime64_any_dtype(frame[col]):
            frame[col] = pd.to_datetime(frame[col], unit="s", utc=True)
        if col in frame.columns:
            frame[col] = frame[col].dt.round("us")  # the schema stores microseconds
    table = pa.Table.from_pandas(frame, preserve_index=False)
    fields = [pa.field(f.name, _arrow_type(f.name) or (pa.string() if pa.types.is_null(f.type) else f.type))
              for f in table.schema]
    schema = pa.schema(fields, metadata={b"scanshift_schema_version": str(SCHEMA_VERSION).encode()})
    return table.cast(schema)


def _write_frame(results: str | Path, rel: str, frame: pd.DataFrame | pa.Table) -> Path | str:
    """Write `frame` as Parquet at `<results>/<rel>`: atomically on a file system, whole-object on a store."""
    import pyarrow.parquet as pq

    table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
    if is_uri(results):
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        _remote_write(str(results), rel, sink.getvalue().to_pybytes())
        return f"{str(results).rstrip('/')}/{rel}"
    path = Path(results) / rel
    _atomic_write_bytes(path, lambda tmp: pq.write_table(table, tmp))
    return path


def _exists(results: str | Path, rel: str) -> bool:
    if is_uri(results):
        fs, base = filesystem(str(results))
        return bool(fs.get_file_info(f"{base}/{rel}").type == pafs.FileType.File)
    return (Path(results) / rel).is_file()


def detail_rel(kind: str, experiment: str, cell_id: str) -> str:
    """Relative path of a cell's predictions (`kind` PREDICTIONS) or validation curve (CURVES)."""
    return f"{kind}/{experiment}/{cell_id}.parquet"


def write_details(results: str | Path, experiment: str, cell_id: str, predictions: pd.DataFrame,
                  curve: pd.DataFrame) -> None:
    """Write a cell's predictions and validation curve. They are written before the cell's rows, which
    commit the cell: a cell counted done always has both, and a kill in between only re-runs it."""
    _write_frame(results, detail_rel(PREDICTIONS, experiment, cell_id), predictions)
    _write_frame(results, detail_rel(CURVES, experiment, cell_id), curve)


def write_cell(results: str | Path, rows: list[dict]) -> Path | str:
    """Write the rows of one finished cell atomically (this commits the cell); clears its failure record."""
    if not rows:
        raise ValueError("a finished cell has at least one row")
    experiment, cell_id = rows[0]["experiment"], rows[0]["cell_id"]
    out = _write_frame(results, f"{experiment}/{cell_id}.parquet", rows_table(rows))
    failure = f"{FAILED}/{cell_id}.json"
    if _exists(results, failure):
        if is_uri(results):
            fs, base = filesystem(str(results))
            fs.delete_file(f"{base}/{failure}")
        else:
            (Path(results) / failure).unlink(missing_ok=True)
    return out


def is_done(results: str | Path, experiment: str, cell_id: str) -> bool:
    """True when the cell's rows file (its ledger entry) is visible at `results` from this machine."""
    return _exists(results, f"{experiment}/{cell_id}.parquet")


def write_output(results: str | Path, rows: list[dict], predictions: pd.DataFrame, curve: pd.DataFrame
                 ) -> Path | str:
    """Persist a finished trial: details first, then the rows (the ledger entry)."""
    write_details(results, rows[0]["experiment"], rows[0]["cell_id"], predictions, curve)
    return write_cell(results, rows)


def read_predictions(results: str | Path, cells: pd.DataFrame) -> pd.DataFrame:
    """The stored predictions of the cells in `cells` (columns experiment, cell_id), as one frame.

    Raises:
        ScanshiftError: a cell has no predictions file (results written before predictions were stored).
    """
    frames, missing = [], 0
    for experiment, cell_id in cells[["experiment", "cell_id"]].drop_duplicates().itertuples(index=False):
        rel = detail_rel(PREDICTIONS, experiment, cell_id)
        if not _exists(results, rel):
            missing += 1
            continue
        if is_uri(results):
            fs, base = filesystem(str(results))
            frames.append(pd.read_parquet(f"{base}/{rel}", filesystem=fs))
        else:
            frames.append(pd.read_parquet(Path(results) / rel))
    if missing:
        raise ScanshiftError(f"{missing} cell(s) under {results} have no stored predictions (written by an older "
                             "version); re-run them or use --metric auc")
    return pd.concat(frames, ignore_index=True)


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
        return fill_later_columns(pd.concat([pd.read_parquet(f"{base}/{r}", filesystem=fs) for r in rels],
                                            ignore_index=True))
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
    return fill_later_columns(pd.concat(frames, ignore_index=True))


def later_column(col: str, values: pd.Series) -> pd.Series:
    """`values` of the `LATER_COLUMNS` column `col` as integers, older rows' missing values filled (a folder
    mixing older rows reads the column as floats with NaN)."""
    return pd.to_numeric(values).fillna(LATER_COLUMNS[col]).astype("int64")


def fill_later_columns(rows: pd.DataFrame) -> pd.DataFrame:
    """`rows` with every `LATER_COLUMNS` column present and filled where older rows lack it (`rows` itself
    when nothing is missing)."""
    fill = {col: later_column(col, rows[col]) if col in rows.columns else value
            for col, value in LATER_COLUMNS.items()
            if col not in rows.columns or rows[col].dtype != "int64"}
    return rows.assign(**fill) if fill else rows


LOCK = "_lock.json"


def remove_partial_writes(results: str | Path) -> int:
    """Delete the temporary files of writes that never finished (a killed sweep's trials leave them);
    called under the sweep lock, when no writer of ours is running. Returns how many were removed."""
    if is_uri(results) or not Path(results).is_dir():
        return 0  # object stores publish whole objects: nothing partial to remove
    root = Path(results)
    # only the layout this module writes (rows, predictions, curves, failure records): a nested results
    # folder of another sweep, shards or Tune's files are not ours to clean
    patterns = ("*/.*.parquet.*.tmp", f"{PREDICTIONS}/*/.*.tmp", f"{CURVES}/*/.*.tmp", f"{FAILED}/.*.tmp")
    stale = [p for pat in patterns for p in root.glob(pat) if p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return len(stale)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def sweep_lock(results: str | Path) -> Iterator[None]:
    """Hold `<results>/_lock.json` (host, pid, start) for one sweep; a second sweep on the folder stops.

    A lock left by a killed sweep on this host (its pid gone) is taken over; one from another host is
    reported with its holder, since its process cannot be checked from here. Object-store results are
    not locked (a store has no atomic create): run one sweep at a time there.
    """
    if is_uri(results):
        yield
        return
    path = Path(results) / LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    me = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = json.loads(path.read_text())
            except (OSError, ValueError):
                holder = {}
            if holder.get("host") == me["host"] and not _pid_alive(int(holder.get("pid", 0) or 0)):
                path.unlink(missing_ok=True)  # stale: its sweep was killed
                continue
            raise ScanshiftError(f"{results} is in use by a sweep on {holder.get('host', '?')} (pid "
                                 f"{holder.get('pid', '?')}, since {holder.get('started', '?')}); wait for it, or "
                                 f"remove {path} if that sweep is gone") from None
        with os.fdopen(fd, "w") as out:
            json.dump(me, out)
        break
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
