"""What a sweep will do before it does it: cells per experiment, resources per trial, a wall-time estimate.

Pure functions over cells and the rows already in the results folder (no Ray, no training), used by
`--dry-run` and by the one-line summary every run starts with.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd

from scanshift_ray.models import gpu_share
from scanshift_ray.results import fill_later_columns
from scanshift_ray.study import Cell


def trial_resources(cell: Cell, gpus_available: bool, gpus_per_trial: float | None = None) -> dict[str, float]:
    """One CPU, and the GPU share its model declares (`models.register`) unless `gpus_per_trial` overrides it."""
    if not gpus_available:
        return {"CPU": 1.0, "GPU": 0.0}
    share = gpus_per_trial if gpus_per_trial is not None else gpu_share(
        cell.model, cell.training.input_shape, cell.training.width)
    return {"CPU": 1.0, "GPU": float(share)}


@dataclass(frozen=True)
class Plan:
    """Counts per experiment and the estimate for the cells still to run."""

    per_experiment: dict[str, tuple[int, int]]  # experiment -> (done, to run)
    seconds: float  # estimated wall seconds for the known part of the pending cells
    unknown: int  # pending cells without a finished cell of the same model, input shape, epochs, val_every
    slots: int  # trials that run at once


_Key = tuple[str, str, int, int]
_BY = ["model", "input_shape", "epochs", "val_every"]


def _key(model: str, shape: str, epochs: int, val_every: int) -> _Key:
    return (str(model), str(shape), int(epochs), int(val_every))


def trial_seconds(history: pd.DataFrame | None) -> dict[_Key, float]:
    """Mean wall seconds of a finished trial per (model, input shape, epochs, val_every), from result rows."""
    need = {"cell_id", "model", "input_shape", "epochs", "wall_seconds"}
    if history is None or not need <= set(history.columns):
        return {}
    cells = fill_later_columns(history.drop_duplicates("cell_id"))  # older rows validated every epoch
    return {_key(*k): float(v) for k, v in cells.groupby(_BY)["wall_seconds"].mean().items()}


def concurrency(cells: Sequence[Cell], cpus: int, gpus: int, gpus_per_trial: float | None = None,
                max_concurrent: int | None = None) -> int:
    """How many trials run at once: one per CPU, or as many GPU shares as fit, whichever is fewer."""
    slots = max(1, cpus)
    if gpus > 0 and cells:
        share = max(trial_resources(c, True, gpus_per_trial)["GPU"] for c in cells)
        if share > 0:
            slots = min(slots, max(1, int(gpus / share)))
    return min(slots, max_concurrent) if max_concurrent else slots


def make_plan(cells: Sequence[Cell], done: Iterable[str], history: pd.DataFrame | None, cpus: int, gpus: int,
              gpus_per_trial: float | None = None, max_concurrent: int | None = None) -> Plan:
    """Count done / pending cells per experiment and estimate the pending cells' wall time."""
    done = set(done)
    per: dict[str, tuple[int, int]] = {}
    for c in cells:
        d, t = per.get(c.experiment, (0, 0))
        per[c.experiment] = (d + 1, t) if c.cell_id in done else (d, t + 1)
    todo = [c for c in cells if c.cell_id not in done]
    known = trial_seconds(history)
    slots = concurrency(todo, cpus, gpus, gpus_per_trial, max_concurrent)
    secs = [known.get(_key(c.model, "x".join(map(str, c.training.input_shape)), c.training.epochs,
                           c.training.val_every)) for c in todo]
    total = sum(s for s in secs if s is not None)
    return Plan(per, total / slots, sum(s is None for s in secs), slots)


def format_plan(plan: Plan, cpus: int, gpus: int) -> str:
    """One line per experiment plus the estimate, e.g. for `--dry-run`."""
    lines = [f"  {name}: {d + t} cells, {d} done, {t} to run" for name, (d, t) in plan.per_experiment.items()]
    total_done = sum(d for d, _ in plan.per_experiment.values())
    total_todo = sum(t for _, t in plan.per_experiment.values())
    eta = _duration(plan.seconds) if plan.seconds else "no estimate yet" if total_todo else "nothing to run"
    if plan.unknown and plan.seconds:
        eta += f" for the cells with a history, plus {plan.unknown} without one"
    elif plan.unknown:
        eta = (f"no estimate ({plan.unknown} cells have no finished cell of the same model, input shape, epochs "
               "and validation interval)")
    head = (f"{total_done + total_todo} cells: {total_done} already done, {total_todo} to run; "
            f"{plan.slots} at a time on {cpus} CPU(s), {gpus} GPU(s); estimated wall time {eta}")
    return "\n".join([head, *lines])


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def progress_line(done: int, total: int, elapsed: float, label: str, rows: list[dict]) -> str:
    """`[k/N] label: AUCs (elapsed, ETA)`; the ETA extrapolates the mean time per finished cell."""
    eta = elapsed / max(done, 1) * (total - done)
    aucs = ", ".join(f"{r['test_domain']} {r['auc']:.3f}" for r in rows)
    return f"[{done}/{total}] {label}: {aucs}  ({_duration(elapsed)}, ETA {_duration(eta)})"
