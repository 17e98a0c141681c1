"""The shard format: the one module that writes, reads and validates `<root>/<key>/<domain>.h5`.

Layout of one shard (format version 1)::

    images       (N, H, W) or (N, D, H, W), depth first, native units (HU for CT, scanner units for
                 MRI, detector values for X-ray); int16/uint16/float32; stored contiguous and
                 uncompressed so readers can memory-map it (concurrent trials share the page cache)
    labels       (N,) uint8, 0 or 1
    patient_ids  (N,) variable-length UTF-8, pseudonymous
    attrs        dataset, domain, modality, task, manufacturers (JSON list), data_source
                 ("synthetic" | "real"), units, format_version, provenance (JSON), content_sha1

Beside the shards, `<root>/<key>/manifest.json` records counts per domain and label and whatever the
writer wants to say (skipped cases, options, code version).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from scanshift_ray import storage
from scanshift_ray.datasets import DatasetSpec
from scanshift_ray.errors import ScanshiftError

FORMAT_VERSION = 1
REQUIRED_ATTRS = ("dataset", "domain", "modality", "task", "data_source", "format_version", "content_sha1")
DATA_SOURCES = ("synthetic", "real")
IMAGE_DTYPES = ("int16", "uint16", "float32")
QUICK_CHECK = 64  # images checked for NaN/inf on every read (the whole shard: `verify_content`)


@dataclass(frozen=True)
class Shard:
    """One scanner domain of one dataset, in memory (or memory-mapped)."""

    images: np.ndarray
    labels: np.ndarray
    patient_ids: np.ndarray
    attrs: Mapping[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def shard_path(root: str | Path, key: str, domain: str) -> Path:
    """Where the shard of (dataset `key`, `domain`) lives under `root`."""
    return Path(root) / key / f"{domain}.h5"


def content_digest(images: np.ndarray, labels: np.ndarray, patient_ids: np.ndarray,
                   on_chunk: Callable[[np.ndarray], None] | None = None) -> str:
    """SHA-1 over the arrays; identifies the data a result was computed on.

    Reads `images` in chunks of about 64 MB (a memory-mapped shard is never copied whole) and hands each
    chunk to `on_chunk`, so one pass can both hash and check every image.
    """
    return _digest(tuple(images.shape), [images] if images.ndim else [], labels, patient_ids, on_chunk)


def _digest(shape: tuple[int, ...], blocks: Sequence[np.ndarray], labels: np.ndarray, patient_ids: np.ndarray,
            on_chunk: Callable[[np.ndarray], None] | None) -> str:
    """`content_digest` of images of `shape` held as consecutive `blocks` (the same bytes as one array)."""
    h = hashlib.sha1()
    h.update(str(shape).encode())
    for block in blocks:
        per = max(1, (64 << 20) // max(1, block[:1].nbytes))
        for i in range(0, block.shape[0], per):
            chunk = np.ascontiguousarray(block[i:i + per])
            if on_chunk is not None:
                on_chunk(chunk)
            h.update(chunk.data.cast("B"))  # the same bytes as tobytes(), without copying them
    h.update(np.asarray(labels, dtype=np.uint8).tobytes())
    h.update("\0".join(map(str, patient_ids)).encode())
    return h.hexdigest()


def _finite_check(where: str) -> Callable[[np.ndarray], None]:
    """An `on_chunk` for `content_digest` that refuses NaN/inf, naming the first bad image."""
    seen = [0]

    def check(chunk: np.ndarray) -> None:
        if chunk.dtype.kind == "f" and not np.isfinite(chunk).all():
            first = seen[0] + int(np.flatnonzero(~np.isfinite(chunk.reshape(len(chunk), -1)).all(axis=1))[0])
            raise ScanshiftError(f"invalid shard {where}: images contain NaN or inf (first at image {first})")
        seen[0] += len(chunk)
    return check


def _cache_file() -> Path:
    base = os.environ.get("SCANSHIFT_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "scanshift-ray")
    return Path(base) / "verified-shards.json"


def _read_cache() -> dict[str, list]:
    try:
        return dict(json.loads(_cache_file().read_text()))
    except (OSError, ValueError, TypeError):
        return {}


def _remember(key: str, entry: list) -> None:
    """Add one verified shard to the cache; an unwritable cache only costs a re-hash next time."""
    try:
        cache = _read_cache()
        cache[key] = entry
        path = _cache_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache))
        os.replace(tmp, path)
    except OSError:
        pass


def verify_content(path: str | Path, shard: Shard) -> None:
    """Check a shard's stored `content_sha1` against its bytes, and every image for NaN/inf.

    A verified (size, mtime, inode, ctime) is cached per file (ctime cannot be set back, unlike mtime),
    so re-runs do not re-hash unchanged shards.

    Raises:
        ScanshiftError: the bytes do not match the stored hash, or an image holds NaN or inf.
    """
    path = Path(path).resolve()
    st = path.stat()
    stored = str(shard.attrs["content_sha1"])
    if _read_cache().get(str(path)) == [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, stored]:
        return
    actual = content_digest(shard.images, shard.labels, shard.patient_ids, on_chunk=_finite_check(str(path)))
    if actual != stored:
        raise ScanshiftError(f"invalid shard {path}: its content does not match its stored hash (stored "
                             f"{stored[:12]}, bytes {actual[:12]}); the file changed after it was written, "
                             "re-create it")
    _remember(str(path), [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, stored])


@dataclass(frozen=True)
class ImageBlocks:
    """Images handed to `write_shard` as consecutive blocks of one dtype and image shape: the shard holds
    their concatenation, which is never built in memory (a converter's cases arrive one block each)."""

    blocks: tuple[np.ndarray, ...]

    def shape(self, where: str) -> tuple[int, ...]:
        """Shape of the concatenation; a one-line error when the blocks do not stack."""
        first = self.blocks[0] if self.blocks else np.zeros((0, 0, 0), np.float32)
        if any(b.ndim == 0 or b.dtype != first.dtype or b.shape[1:] != first.shape[1:] for b in self.blocks):
            raise ScanshiftError(f"invalid shard {where}: image blocks differ in dtype or image shape "
                                 f"({sorted({f'{b.dtype}{b.shape[1:]}' for b in self.blocks})})")
        return (sum(int(b.shape[0]) for b in self.blocks), *first.shape[1:])


def write_shard(path: str | Path, images: np.ndarray | ImageBlocks, labels: np.ndarray, patient_ids: np.ndarray,
                attrs: Mapping[str, Any]) -> Path:
    """Validate and write one shard atomically (temp file in the same folder, then rename).

    Unlike a read, a write checks every image for NaN/inf: the array is in memory anyway, and the check
    rides on the pass that computes the content hash. That pass runs in a thread while the file is
    written (hashlib and h5py release the GIL), so the two take the time of the longer, not of both.

    Raises:
        ScanshiftError: the data breaks a shard invariant (one line naming `path`); nothing is written.
    """
    path = Path(path)
    blocks = images.blocks if isinstance(images, ImageBlocks) else (np.asarray(images),)
    shape = ImageBlocks(blocks).shape(str(path)) if isinstance(images, ImageBlocks) else blocks[0].shape
    labels = np.asarray(labels)
    patient_ids = np.asarray([str(p) for p in patient_ids], dtype=object)
    full = {**attrs, "format_version": FORMAT_VERSION, "content_sha1": ""}
    # The invariants on a zero-stride stand-in of the right shape and dtype: every image is checked for
    # NaN/inf by the hash pass below, so validate's quick check of the first images is not needed here.
    dtype = blocks[0].dtype if blocks else np.dtype(np.float32)
    validate(Shard(np.broadcast_to(np.zeros((), dtype), shape), labels, patient_ids, full), str(path))
    labels = labels.astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with ThreadPoolExecutor(max_workers=1) as hashing:
            digest = hashing.submit(_digest, tuple(shape), blocks, labels, patient_ids, _finite_check(str(path)))
            with h5py.File(tmp, "w") as f:
                _write_arrays(f, tuple(shape), blocks, labels, patient_ids)
                full["content_sha1"] = digest.result()  # re-raises a NaN/inf refusal: the temp file goes
                for k, v in full.items():
                    f.attrs[k] = json.dumps(v) if isinstance(v, list | dict | tuple) else v
        storage.normal_permissions(tmp)  # 0666 minus the umask
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def _write_arrays(f: h5py.File, shape: tuple[int, ...], blocks: Sequence[np.ndarray], labels: np.ndarray,
                  patient_ids: np.ndarray) -> None:
    """The three datasets; images contiguous and uncompressed (mmap-able), written block by block."""
    images = f.create_dataset("images", shape=shape, dtype=blocks[0].dtype)
    start = 0
    for block in blocks:
        if len(block):
            images[start:start + len(block)] = np.ascontiguousarray(block)
        start += len(block)
    f.create_dataset("labels", data=labels)
    f.create_dataset("patient_ids", data=patient_ids, dtype=h5py.string_dtype())


def _decode_attr(value: Any) -> Any:
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    if isinstance(value, np.generic):
        return value.item()
    return value


def _mmap_images(path: Path, dset: h5py.Dataset) -> np.ndarray | None:
    """A read-only memory map of a contiguous, uncompressed dataset, else None."""
    offset = dset.id.get_offset()
    if offset is None or dset.chunks is not None or dset.compression is not None:
        return None
    if offset + dset.dtype.itemsize * dset.size > path.stat().st_size:
        raise ScanshiftError(f"invalid shard {path}: the file is truncated (images end past its last byte)")
    return np.memmap(path, mode="r", dtype=dset.dtype, shape=dset.shape, offset=offset)


def _read_arrays(path: Path, f: h5py.File, mmap: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """images, labels and patient ids of an open shard file; a one-line error for a misfit layout."""
    missing = [k for k in ("images", "labels", "patient_ids") if not isinstance(f.get(k), h5py.Dataset)]
    if missing:
        raise ScanshiftError(f"invalid shard {path}: missing dataset(s) {', '.join(missing)}")
    images = _mmap_images(path, f["images"]) if mmap else None
    if images is None:
        images = f["images"][()]
    if f["patient_ids"].dtype.kind not in "OSU":
        raise ScanshiftError(f"invalid shard {path}: patient_ids must be strings, got {f['patient_ids'].dtype}")
    return images, f["labels"][()], np.asarray(f["patient_ids"].asstr()[()], dtype=object)


def read_shard(path: str | Path, mmap: bool = True) -> Shard:
    """Read and validate one shard; images are memory-mapped when the layout allows.

    Raises:
        ScanshiftError: the file is missing, is not HDF5, or fails validation (message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise ScanshiftError(f"shard not found: {path}")
    try:
        with h5py.File(path, "r") as f:
            images, labels, patient_ids = _read_arrays(path, f, mmap)
            attrs = {k: _decode_attr(v) for k, v in f.attrs.items()}
    except (OSError, UnicodeDecodeError) as exc:
        raise ScanshiftError(f"cannot read shard {path}: {' '.join(str(exc).split())}") from None
    shard = Shard(images, labels, patient_ids, attrs)
    validate(shard, str(path))
    return shard


def validate(shard: Shard, where: str) -> None:
    """Check the shard invariants; raise a one-line ScanshiftError naming `where` on the first breach."""
    def bad(msg: str) -> ScanshiftError:
        return ScanshiftError(f"invalid shard {where}: {msg}")

    n = shard.images.shape[0] if shard.images.ndim else 0
    if shard.images.dtype.name not in IMAGE_DTYPES:
        raise bad(f"images are {shard.images.dtype.name}; a shard holds {', '.join(IMAGE_DTYPES)} images")
    if shard.images.ndim not in (3, 4):
        raise bad(f"images must be (N,H,W) or (N,D,H,W), got shape {shard.images.shape}")
    if n == 0:
        raise bad("no images")
    if shard.labels.shape != (n,) or shard.patient_ids.shape != (n,):
        raise bad(f"{n} images but labels {shard.labels.shape} and patient_ids {shard.patient_ids.shape}")
    if not np.isin(shard.labels, (0, 1)).all():
        raise bad("labels must be 0 or 1")
    if any(not str(p) for p in shard.patient_ids):
        raise bad("empty patient id")
    missing = [k for k in REQUIRED_ATTRS if k not in shard.attrs]
    if missing:
        raise bad(f"missing attribute(s) {', '.join(missing)}")
    if shard.attrs["data_source"] not in DATA_SOURCES:
        raise bad(f"data_source must be one of {DATA_SOURCES}")
    version = shard.attrs["format_version"]
    try:
        newer = int(version) > FORMAT_VERSION
    except (TypeError, ValueError):
        raise bad(f"format_version must be a whole number, got {version!r}") from None
    if newer:
        raise bad(f"format version {version} is newer than this code ({FORMAT_VERSION})")
    # Only the first images: this runs on every read of a trial, and a full scan of a multi-GB shard per
    # trial is too slow. Every image is checked where it is cheap or required: `write_shard` (in memory)
    # and `verify_content`, which the sweep runs on the whole shard (cached by size and mtime) before any
    # cell can count as done (`runner.dataset_refs`, `scanshift validate`).
    if shard.images.dtype.kind == "f" and not np.isfinite(shard.images[: min(n, QUICK_CHECK)]).all():
        raise bad("images contain NaN or inf")


def has_any_shard(root: str | Path, spec: DatasetSpec) -> bool:
    """True when `root` (a path or URI) holds a shard of any domain of `spec` (a missing second domain is
    then an error of `load_domains`, naming the file)."""
    return any(storage.exists(f"{str(root).rstrip('/')}/{spec.key}/{d}.h5") for d in spec.domains)


def load_domains(root: str | Path, spec: DatasetSpec, mmap: bool = True, verify: bool = False) -> dict[str, Shard]:
    """Read both domains of `spec` under `root`, checking that they agree with the spec and each other.

    `verify` also checks each shard's bytes against its stored content hash (`verify_content`).

    `root` may be an object-store URI (s3://, gs://, file://): the shards are then read from this node's
    cached copy (`storage.local_shard_root`).
    """
    root = storage.local_shard_root(root, spec.key, spec.domains)
    if not root.is_dir():
        raise ScanshiftError(f"shard root not found: {root}")
    shards = {d: read_shard(shard_path(root, spec.key, d), mmap=mmap) for d in spec.domains}
    for domain, shard in shards.items():
        where = shard_path(root, spec.key, domain)
        if shard.attrs["dataset"] != spec.key or shard.attrs["domain"] != domain:
            raise ScanshiftError(f"invalid shard {where}: says it is {shard.attrs['dataset']}/"
                                 f"{shard.attrs['domain']}")
        want = 3 if spec.task == "slice2d" else 4
        if shard.images.ndim != want:
            raise ScanshiftError(f"invalid shard {where}: task {spec.task} needs {want}-D images, "
                                 f"got shape {shard.images.shape}")
    if verify:
        for domain, shard in shards.items():
            verify_content(shard_path(root, spec.key, domain), shard)
    sources = {s.attrs["data_source"] for s in shards.values()}
    if len(sources) != 1:
        raise ScanshiftError(f"{root / spec.key}: domains mix synthetic and real shards")
    return shards


def data_id(shards: Mapping[str, Shard]) -> str:
    """A short id of the exact data of a dataset (all domains), part of every cell id."""
    joined = "|".join(f"{d}:{shards[d].attrs['content_sha1']}" for d in sorted(shards))
    return hashlib.sha1(joined.encode()).hexdigest()[:12]


def write_manifest(root: str | Path, key: str, info: Mapping[str, Any]) -> Path:
    """Write `<root>/<key>/manifest.json` atomically, adding counts read back from the shards present."""
    folder = Path(root) / key
    counts = {}
    for h5 in sorted(folder.glob("*.h5")):
        with h5py.File(h5, "r") as f:
            labels = f["labels"][()]
            counts[h5.stem] = {"n": int(labels.size), "n_pos": int(labels.sum()),
                               "n_patients": len(set(f["patient_ids"].asstr()[()]))}
    body = json.dumps({"dataset": key, "format_version": FORMAT_VERSION, "counts": counts, **info},
                      indent=2, default=str)
    tmp = folder / ".manifest.json.tmp"
    tmp.write_text(body)
    os.replace(tmp, folder / "manifest.json")
    return folder / "manifest.json"
