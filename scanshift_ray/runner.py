"""Run a study: validate the shards, expand the grid, skip done cells, run the rest, summarise.

This is the I/O shell around the pure pieces (`study.expand`, `trial.run_trial`, `summary`).
The backend is Ray Tune (`tune_adapter`) or, for debugging and tests, a plain in-process loop.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from scanshift_ray import plan, results, shards, splits
from scanshift_ray.datasets import DATASETS, DatasetSpec
from scanshift_ray.errors import ScanshiftError
from scanshift_ray.profiles import PROFILES
from scanshift_ray.study import Cell, DataRef, Study, expand


@dataclass
class StudyOutcome:
    """What a run of a study did: counts, failures, timing."""

    total: int
    already_done: int
    ran: int
    failed: dict[str, str] = field(default_factory=dict)
    wall_seconds: float = 0.0
    train_seconds: float = 0.0
    cpus: float = 1.0
    cell_ids: frozenset[str] = frozenset()  # every cell of the study, done before or now
    trial_seconds: float = 0.0  # sum of the finished trials' wall times


def dataset_refs(study: Study, shard_root: str | Path) -> dict[str, DataRef]:
    """dataset -> DataRef for every dataset of `study`.

    Validates all its shards first, checks their bytes against their stored content hashes (cached by
    size and mtime), and applies the study's policy for patients found in both scanner domains (the
    default policy stops here with the count).
    """
    out = {}
    for key in study.dataset_keys():
        loaded = shards.load_domains(shard_root, DATASETS.get(key), mmap=True, verify=True)
        ids = {d: s.patient_ids for d, s in loaded.items()}
        shared = splits.shared_patients(ids)
        if shared:
            splits.keep_masks(ids, None if study.shared_patients == "error" else study.shared_patients, key)
        check_shape(loaded, DATASETS.get(key), study.profile)
        out[key] = DataRef(shards.data_id(loaded), str(next(iter(loaded.values())).attrs["data_source"]), len(shared))
    return out


def check_shape(loaded: dict[str, shards.Shard], spec: DatasetSpec, profile: str) -> None:
    """Refuse shards made with other size options than `profile` expects.

    Every profile refuses shards smaller than its input (upsampling would invent resolution); a profile
    that trains at the paper's input shape (`paper`) needs shards of exactly that shape, since a resize
    would quietly change the paper's protocol.
    """
    prof = PROFILES.get(profile)
    want = tuple(prof.input_shape(spec))
    paper = want == tuple(spec.paper_shape)
    for domain, shard in loaded.items():
        have = tuple(shard.images.shape[1:])
        if any(h < w for h, w in zip(have, want, strict=True)) or (paper and have != want):
            rule = "the paper's input shape" if paper else "at least its input shape"
            raise ScanshiftError(f"{spec.key}/{domain} shards are {'x'.join(map(str, have))} but profile {profile} "
                                 f"needs {rule}, {'x'.join(map(str, want))}: convert again with the size options "
                                 "for it (python -m preprocessing --option ...) or choose another profile")


def pending_cells(study: Study, shard_root: str | Path, results_dir: str | Path) -> tuple[list[Cell], list[Cell]]:
    """The cells of `study` without a result file, and all cells of the study."""
    cells = expand(study, dataset_refs(study, shard_root))
    done = results.done_cells(results_dir)
    return [c for c in cells if c.cell_id not in done], cells


def run_local(cells: list[Cell], shard_root: str | Path, results_dir: str | Path,
              log: Callable[[str], None] = print) -> StudyOutcome:
    """Run cells one after another in this process (no Ray); failures are recorded, not raised."""
    from scanshift_ray.trial import run_trial

    start, train, trial, failed = time.time(), 0.0, 0.0, {}
    for i, cell in enumerate(cells, 1):
        try:
            out = run_trial(cell, shards.load_domains(shard_root, DATASETS.get(cell.dataset)))
        except Exception as exc:  # a failing cell must not stop the sweep
            failed[cell.cell_id] = f"{type(exc).__name__}: {exc}"
            results.record_failure(results_dir, {"cell_id": cell.cell_id, **cell.to_dict()}, failed[cell.cell_id])
            continue
        results.write_output(results_dir, out.rows, out.predictions, out.curve)
        train += out.rows[0]["train_seconds"]
        trial += out.rows[0]["wall_seconds"]
        log(plan.progress_line(i, len(cells), time.time() - start, cell.label(), out.rows))
    return StudyOutcome(len(cells), 0, len(cells) - len(failed), failed, time.time() - start, train, 1.0,
                        trial_seconds=trial)


def visible_resources(backend: str) -> tuple[int, int]:
    """(CPUs, GPUs) this machine offers a sweep (the local backend runs one cell at a time)."""
    if backend == "local":
        return 1, 0
    import torch

    return os.cpu_count() or 1, torch.cuda.device_count()


def plan_study(study: Study, shard_root: str | Path, results_dir: str | Path, backend: str = "ray",
               gpus_per_trial: float | None = None, max_concurrent: int | None = None
               ) -> tuple[list[Cell], list[Cell], str]:
    """Pending cells, all cells, and the plan text (counts per experiment, estimate) of `study`."""
    todo, cells = pending_cells(study, shard_root, results_dir)
    done = {c.cell_id for c in cells} - {c.cell_id for c in todo}
    history = results.read_results(results_dir) if done else None
    cpus, gpus = visible_resources(backend)
    p = plan.make_plan(cells, done, history, cpus, gpus, gpus_per_trial, max_concurrent)
    return todo, cells, plan.format_plan(p, cpus, gpus)


def run_study(study: Study, shard_root: str | Path, results_dir: str | Path, backend: str = "ray",
              max_failures: int = 2, log: Callable[[str], None] = print, tune_storage: str | None = None,
              gpus_per_trial: float | None = None, max_concurrent: int | None = None,
              verbose: int = 1, checkpoint_every: int | None = None, tracker: str | None = None) -> StudyOutcome:
    """Run every cell of `study` that has no result yet, holding the results folder's sweep lock."""
    if max_failures < 0:
        raise ScanshiftError(f"max_failures must be >= 0, got {max_failures}")
    with results.sweep_lock(results_dir):
        results.remove_partial_writes(results_dir)
        todo, cells, text = plan_study(study, shard_root, results_dir, backend, gpus_per_trial, max_concurrent)
        total, ids = len(cells), frozenset(c.cell_id for c in cells)
        log(text)
        if not todo:
            return StudyOutcome(total, total, 0, cell_ids=ids)
        if backend == "local":
            out = run_local(todo, shard_root, results_dir, log)
        else:
            from scanshift_ray.tune_adapter import run_cells

            rep = run_cells(todo, shard_root, results_dir, max_failures=max_failures, tune_storage=tune_storage,
                            gpus_per_trial=gpus_per_trial, max_concurrent=max_concurrent, verbose=verbose, log=log,
                            checkpoint_every=checkpoint_every, tracker=tracker)
            out = StudyOutcome(total, 0, rep.finished, rep.failed, rep.wall_seconds, rep.train_seconds, rep.cpus,
                               trial_seconds=rep.trial_seconds)
        # a trial lost with its node (or killed mid-write) leaves its temporary file; every trial has ended
        # here and the lock is still ours, so nothing partial outlives the sweep
        results.remove_partial_writes(results_dir)
    out.total, out.already_done, out.cell_ids = total, total - len(todo), ids
    return out
