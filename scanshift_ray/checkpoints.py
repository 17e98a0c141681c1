"""Training-state checkpoints of long trials: the file inside a Ray Tune checkpoint, and where old ones lie.

A checkpoint is `state.pt` (torch.save of `training.fit`'s state plus the cell id) inside a Tune
checkpoint folder `<tune storage>/<sweep>/<cell_id>-<trial>/checkpoint_NNNNNN/`. Tune restores the
latest one itself when it retries a trial (a lost node); a new sweep after a killed driver finds the
newest one of the cell under any earlier sweep folder (`find_latest`, local and NFS storage). Once the
cell's result row is written they are deleted (`delete_for`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

STATE_FILE = "state.pt"


def save(folder: str | Path, cell_id: str, state: dict) -> None:
    """Write `state` for cell `cell_id` into `folder`."""
    torch.save({"cell_id": cell_id, **state}, Path(folder) / STATE_FILE)


def load(folder: str | Path, cell_id: str) -> dict | None:
    """The state in `folder` if it belongs to `cell_id` (another cell's state is never resumed), else None."""
    path = Path(folder) / STATE_FILE
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception:  # a torn or foreign file: start the cell afresh rather than fail it
        return None
    return state if state.get("cell_id") == cell_id else None


def _folders(storage: str | Path, cell_id: str) -> list[Path]:
    return sorted(Path(storage).glob(f"*/{cell_id}-*/checkpoint_*"))


def find_latest(storage: str | Path, cell_id: str) -> dict | None:
    """The most advanced saved state of `cell_id` under any sweep folder of a local `storage`."""
    states = [s for s in (load(f, cell_id) for f in _folders(storage, cell_id)) if s is not None]
    return max(states, key=lambda s: int(s["epoch"]), default=None)


def delete_for(storage: str | Path, cell_id: str) -> int:
    """Remove every checkpoint folder of `cell_id` under a local `storage`; returns how many."""
    folders = _folders(storage, cell_id)
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    return len(folders)
