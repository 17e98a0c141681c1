"""Where shards and results live: local paths, shared file systems, or object stores (s3://, gs://).

Any URI that `pyarrow.fs.FileSystem.from_uri` understands works (s3://bucket/prefix, gs://bucket/prefix,
file:///abs/path); plain paths are local or on a shared mount. Credentials come from the usual
environment (instance roles, AWS_* / GOOGLE_APPLICATION_CREDENTIALS); none are stored here.

Shards: every node copies a shard once into its cache (`$SCANSHIFT_CACHE`, default
~/.cache/scanshift/shards/<hash of the root URI>/<key>/<domain>.h5) under a file lock, so the trials
of one node fetch it once and then memory-map the local copy. A copy is refreshed when the remote
size or modification time changes.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow.fs as pafs

from scanshift_ray.errors import ScanshiftError

CACHE_ENV = "SCANSHIFT_CACHE"


def is_uri(location: str | Path) -> bool:
    """True for `scheme://...` locations (object stores, file://), False for plain paths."""
    return "://" in str(location)


def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """(pyarrow file system, path inside it) of `uri`; a one-line error for an unusable URI."""
    try:
        return pafs.FileSystem.from_uri(uri)
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError variants
        raise ScanshiftError(f"cannot open {uri}: {exc}") from None


def exists(location: str | Path) -> bool:
    """True when the file at a path or URI exists."""
    if not is_uri(location):
        return Path(location).is_file()
    fs, path = filesystem(str(location))
    return bool(fs.get_file_info(path).type == pafs.FileType.File)


def cache_root() -> Path:
    """This node's shard cache folder."""
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "scanshift" / "shards"))


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # trials of one node queue here; the first one downloads
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def fetch(uri: str, local: Path) -> Path:
    """Copy the object at `uri` to `local` unless an identical copy is there; returns `local`."""
    fs, path = filesystem(uri)
    info = fs.get_file_info(path)
    if info.type != pafs.FileType.File:
        raise ScanshiftError(f"shard not found: {uri}")
    stamp = {"uri": uri, "size": info.size, "mtime": str(info.mtime)}
    meta = Path(f"{local}.source.json")
    with _locked(local):
        if local.exists() and meta.exists() and json.loads(meta.read_text()) == stamp:
            return local
        tmp = local.with_name(f".{local.name}.part")
        with fs.open_input_stream(path) as src, open(tmp, "wb") as dst:
            while chunk := src.read(16 << 20):
                dst.write(chunk)
        os.replace(tmp, local)
        meta.write_text(json.dumps(stamp))
    return local


def local_shard_root(root: str | Path, key: str, domains: tuple[str, ...]) -> Path:
    """A local folder holding `<key>/<domain>.h5` of `root`: `root` itself, or this node's cached copy."""
    if not is_uri(root):
        return Path(root)
    base = str(root).rstrip("/")
    local = cache_root() / hashlib.sha1(base.encode()).hexdigest()[:16]
    for domain in domains:
        fetch(f"{base}/{key}/{domain}.h5", local / key / f"{domain}.h5")
    return local


def normal_permissions(path: str | Path) -> None:
    """Give a file made by `tempfile.mkstemp` (mode 0600) the mode a plain `open` would: 0666 minus the
    umask, so shards and results on a shared cluster folder stay readable by the rest of the group."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)
