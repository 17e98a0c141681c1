"""The preprocessing engine shared by every dataset: converters, pseudonyms, parallel cases, shards.

A converter (one module per dataset, registered in `CONVERTERS`) has two parts:
    discover(raw, options) -> (cases, loose_skips, context)   # main process: list cases, read sheets
    process(case, job) -> CaseOutput                         # worker process: one patient's samples
The engine runs `process` over the cases in a process pool with a progress line, then writes one shard
per domain (`scanshift_ray.shards`, atomic) and `manifest.json` with counts, every skipped file or
dropped case with its reason, the options and the code version.

Privacy: patient ids are replaced by a keyed hash (HMAC-SHA256 with a secret key the user supplies),
so they are stable across runs (splits stay by patient) but cannot be reversed by hashing a list of
public ids. Paths written to the manifest have the raw patient id replaced by that pseudonym.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scanshift_ray.datasets import DATASETS, DatasetSpec
from scanshift_ray.errors import ScanshiftError
from scanshift_ray.registry import Registry

KEY_ENV = "SCANSHIFT_PSEUDONYM_KEY"


@dataclass(frozen=True)
class Job:
    """Everything a worker needs for one dataset: picklable, shared by all cases."""

    key: str
    raw: Path
    secret: bytes
    options: Any  # the converter's frozen options dataclass
    context: Mapping[str, Any] = field(default_factory=dict)  # e.g. a clinical sheet, keyed by raw id

    @property
    def spec(self) -> DatasetSpec:
        return DATASETS.get(self.key)

    def pseudonym(self, raw_id: str) -> str:
        """Keyed hash of a raw patient id: 'sub-' + 16 hex digits."""
        return "sub-" + hmac.new(self.secret, raw_id.encode(), hashlib.sha256).hexdigest()[:16]

    def scrub(self, text: str, raw_ids: Iterable[str]) -> str:
        """`text` with every raw id in it replaced by its pseudonym (longest first)."""
        for raw_id in sorted({r for r in raw_ids if r}, key=len, reverse=True):
            text = text.replace(raw_id, self.pseudonym(raw_id))
        return text

    def relpath(self, path: Path, raw_ids: Iterable[str]) -> str:
        """`path` relative to the raw root with every raw id in it replaced by its pseudonym."""
        text = str(Path(path).relative_to(self.raw)) if Path(path).is_relative_to(self.raw) else Path(path).name
        return self.scrub(text, raw_ids)


class Drop(Exception):
    """Raised inside a converter to drop the current case with this message as its recorded reason."""


@dataclass
class CaseOutput:
    """What one case produced: samples of one domain, or the reason it produced none."""

    patient: str  # pseudonym
    domain: str | None = None
    images: list[np.ndarray] = field(default_factory=list)  # one per sample, as the converter appends them
    labels: list[int] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (sanitised path, reason)
    dropped: str = ""
    manufacturer: str = ""
    model: str = ""  # ManufacturerModelName (0008,1090) of the series that decided the domain
    notes: list[str] = field(default_factory=list)  # case-level facts worth a look (e.g. sheet vs DICOM)
    raw_ids: set[str] = field(default_factory=set)  # raw ids seen (never written; scrubbed from all text)
    block: np.ndarray | None = None  # `images` stacked (N, ...) by `pack`; then `images` is empty

    def drop(self, reason: str) -> CaseOutput:
        """Drop the whole case with `reason` (no sample of it is kept)."""
        self.dropped, self.images, self.labels, self.block = reason, [], [], None
        return self

    def pack(self) -> CaseOutput:
        """Stack `images` into `block`. Done in the worker process, so the stacking runs in parallel and
        the main process gets one array per case to pass on to the shard writer."""
        if self.images:
            self.block, self.images = np.stack(self.images), []
        return self


@dataclass(frozen=True)
class Converter:
    """One dataset's raw-to-shard recipe."""

    key: str
    options: type
    discover: Callable[[Path, Any], tuple[list[Any], list[tuple[Path, str]], dict[str, Any]]]
    process: Callable[[Any, Job], CaseOutput]


CONVERTERS: Registry[Converter] = Registry("converter")


def parse_options(cls: type, pairs: Iterable[str]) -> Any:
    """Build converter options `cls` from NAME=VALUE strings, converting to each field's type."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in fields:
            raise ScanshiftError(f"unknown option {pair!r}; options: {', '.join(fields) or 'none'}")
        default: Any = fields[name].default
        try:
            if isinstance(default, bool):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(value)
                values[name] = value.lower() in ("true", "1", "yes")
            else:
                values[name] = type(default)(value) if default is not None else value
        except ValueError:
            raise ScanshiftError(f"option {name}: cannot read {value!r} as {type(default).__name__}") from None
    return cls(**values)


def secret_key(given: str | None) -> bytes:
    """The pseudonymisation key from `--pseudonym-key` or the environment; a one-line error without one."""
    key = given or os.environ.get(KEY_ENV, "")
    if len(key) < 8:
        raise ScanshiftError(f"a pseudonymisation key of at least 8 characters is needed: pass --pseudonym-key "
                             f"or set {KEY_ENV} (keep it secret and reuse it so patient ids stay stable)")
    return key.encode()


class Progress:
    """A progress line on stderr: rewritten in place on a terminal, every 10 % otherwise."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.done, self.samples = label, total, 0, 0
        self.start, self.last = time.perf_counter(), 0.0
        self.tty = sys.stderr.isatty()

    def update(self, samples: int) -> None:
        self.done, self.samples = self.done + 1, self.samples + samples
        now = time.perf_counter()
        step = max(1, self.total // 10)
        if (self.tty and now - self.last > 0.2) or self.done == self.total or (not self.tty and self.done % step == 0):
            rate = self.samples / max(now - self.start, 1e-9)
            end = "\n" if self.done == self.total or not self.tty else ""
            print(f"\r{self.label}: {self.done}/{self.total} cases, {self.samples} samples, {rate:.1f} samples/s",
                  end=end, file=sys.stderr, flush=True)
            self.last = now


def _safe_process(process: Callable[[Any, Job], CaseOutput], case: Any, job: Job) -> CaseOutput:
    """Run one case; an unexpected error drops that case (with its reason) instead of the whole run."""
    name = str(getattr(case, "raw_id", None) or case)
    try:
        out = process(case, job)
    except Drop as exc:
        message = job.scrub(str(exc).replace(str(job.raw), "<raw>"), [name])
        out = CaseOutput(job.pseudonym(name), dropped=message[:300])
    except Exception as exc:
        message = job.scrub(f"{type(exc).__name__}: {exc}".replace(str(job.raw), "<raw>"), [name])
        out = CaseOutput(job.pseudonym(name), dropped=f"failed: {message}"[:300])
    out.raw_ids.add(name)
    if not out.labels and not out.dropped:
        out.drop("no sample produced")  # a case never vanishes without a record
    try:
        return out.pack()
    except ValueError as exc:  # images of differing shapes: a converter bug, never a silently ragged shard
        return out.drop(job.scrub(f"failed: the case's images do not stack: {exc}", out.raw_ids)[:300])


_WORKER: dict[str, Any] = {}  # per worker process: the converter's process function, the job and the cases
TASKS_PER_WORKER = 64  # enough tasks that the last one leaves the other workers idle for little of the run
MAX_CHUNK = 8  # cases per task at most: a task costs ~0.5 ms of the main process, a radiograph ~20 ms


def _init_worker(process: Callable[[Any, Job], CaseOutput], job: Job, cases: list[Any]) -> None:
    _WORKER.update(process=process, job=job, cases=cases)  # once per worker (inherited on fork), not per task


def _run_chunk(start: int, stop: int) -> list[CaseOutput]:
    """Cases [start, stop) of the list the worker got at start-up: a task is two integers, not pickled cases."""
    return [_safe_process(_WORKER["process"], case, _WORKER["job"]) for case in _WORKER["cases"][start:stop]]


def chunk_bounds(n: int, workers: int) -> list[tuple[int, int]]:
    """Consecutive [start, stop) ranges covering `n` cases: several cases per task when there are many
    (fewer round trips between processes), one when there are few (no worker idles at the end while
    another still has a backlog)."""
    size = max(1, min(MAX_CHUNK, n // (max(1, workers) * TASKS_PER_WORKER)))
    return [(i, min(i + size, n)) for i in range(0, n, size)]


def run_cases(conv: Converter, cases: list[Any], job: Job, workers: int) -> list[CaseOutput]:
    """`conv.process` over `cases`, in `workers` processes (1: in this process), in case order."""
    progress = Progress(job.key, len(cases))
    if workers <= 1:
        outs = []
        for case in cases:
            outs.append(_safe_process(conv.process, case, job))
            progress.update(len(outs[-1].labels))
        return outs
    results: dict[int, CaseOutput] = {}
    try:
        with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker,
                                 initargs=(conv.process, job, cases)) as pool:
            futures = {pool.submit(_run_chunk, a, b): a for a, b in chunk_bounds(len(cases), workers)}
            for fut in as_completed(futures):
                for i, out in enumerate(fut.result(), start=futures[fut]):
                    results[i] = out
                    progress.update(len(out.labels))
    except BrokenProcessPool:
        raise ScanshiftError(f"a {job.key} worker process died (killed, or out of memory?) after "
                             f"{len(results)}/{len(cases)} cases; nothing was written; rerun with --workers 1 "
                             "to see which case") from None
    return [results[i] for i in range(len(cases))]


def convert(key: str, raw: Path, out: Path, secret: bytes, option_pairs: Iterable[str] = (),
            workers: int | None = None, overwrite: bool = False) -> Path:
    """Convert raw dataset `key` under `raw` into `<out>/<key>/<domain>.h5` + manifest; return the manifest.

    Refused (ScanshiftError, nothing written) when `out` is not a writable folder, or when it holds shards
    of `key` made with other options and `overwrite` is false. A different pseudonym key only warns.
    """
    from preprocessing import output  # imports this module: loaded late to keep the import graph acyclic

    conv = CONVERTERS.get(key)
    raw = Path(raw).resolve()
    if not raw.is_dir():
        raise ScanshiftError(f"raw directory not found: {raw}")
    options = parse_options(conv.options, option_pairs)
    output.check_out(Path(out), key)
    cases, loose, context = conv.discover(raw, options)
    job = Job(key, raw, secret, options, context)
    if not cases:
        raise ScanshiftError(f"no {key} case found under {raw}")
    for warning in output.check_previous(Path(out), job, overwrite):
        print(f"warning: {warning}", file=sys.stderr)
    outs = run_cases(conv, cases, job, workers or min(len(cases), os.cpu_count() or 1))
    raw_ids = {str(getattr(c, "raw_id", "")) for c in cases} | {i for o in outs for i in o.raw_ids}
    loose_rel = [(job.relpath(p, raw_ids), job.scrub(r, raw_ids)) for p, r in loose]
    return output.write_outputs(job, outs, loose_rel, Path(out), raw_ids)
