"""One trial: a plain function of (cell, shards) -> result rows. No Ray in here.

Order of operations (it matters):
    split each domain by patient -> select samples -> (native-space noise, if asked, once) ->
    resize to the profile's input shape -> z-score (per image, or with training-split statistics)
    -> train on the training domain (+ mixed-in target images) -> pick the epoch with the best
    validation AUC on the training domain -> report test AUC on both domains at that epoch and at
    the last epoch, and keep every validation and test logit of both epochs (`TrialOutput`), so any
    metric can be computed later without retraining.

A cell with `predict` "scanner" (the separability diagnostic) builds its sets in `separability` and
gives one row, the scanner AUC over both test sets; training and selection are the same.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from scanshift_ray import __version__
from scanshift_ray.datasets import DATASETS, DatasetSpec
from scanshift_ray.errors import ScanshiftError
from scanshift_ray.models import as_model_input, build_model, to_device
from scanshift_ray.profiles import DETERMINISTIC_ENV
from scanshift_ray.shards import Shard
from scanshift_ray.splits import keep_masks, seed_hash, split_digest, split_patients
from scanshift_ray.study import BOTH, Cell
from scanshift_ray.training import FitResult, TrainConfig, auc_or_nan, fit, pick_device, predict


def resize(images: np.ndarray, shape: tuple[int, ...]) -> torch.Tensor:
    """(N, *native) -> float32 tensor (N, *shape), area-averaged (bilinear/trilinear when enlarging)."""
    x = torch.from_numpy(np.asarray(images, dtype=np.float32))
    if tuple(x.shape[1:]) == tuple(shape):
        return x
    shrinking = all(s <= n for s, n in zip(shape, x.shape[1:], strict=True))
    mode = "area" if shrinking else ("bilinear" if len(shape) == 2 else "trilinear")
    kwargs = {} if mode == "area" else {"align_corners": False}
    return F.interpolate(x.unsqueeze(1), size=tuple(shape), mode=mode, **kwargs).squeeze(1)


def zscore(x: torch.Tensor, mode: str, stats: tuple[float, float] | None = None) -> torch.Tensor:
    """Per-image z-score (`mode="image"`) or with given (mean, std) (`mode="train"`)."""
    if mode == "image":
        dims = tuple(range(1, x.ndim))
        return (x - x.mean(dims, keepdim=True)) / (x.std(dims, keepdim=True) + 1e-6)
    assert stats is not None
    return (x - stats[0]) / (stats[1] + 1e-6)


def mix_indices(source: np.ndarray, target: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Target-domain training indices making up `fraction` of the mixed training set.

    n_target = round(f / (1 - f) * n_source); drawn without replacement while the target split
    lasts, then duplicated (the paper duplicates when the target split is too small).
    """
    if fraction <= 0:
        return np.zeros(0, dtype=int)
    need = int(round(fraction / (1.0 - fraction) * len(source)))
    reps = -(-need // len(target))
    pool = np.concatenate([rng.permutation(target) for _ in range(reps)])
    return pool[:need]


def _load(shard: Shard, idx: np.ndarray, shape: tuple[int, ...], window: tuple[float, float] | None,
          native_alpha: float = 0.0, rng: np.random.Generator | None = None) -> torch.Tensor:
    """Samples `idx` of `shard` (memory-mapped; fancy indexing copies only them), windowed, resized."""
    images = np.asarray(shard.images[idx], dtype=np.float32)
    if native_alpha > 0 and rng is not None:
        images += native_alpha * rng.standard_normal(images.shape, dtype=np.float32)
    if window is not None:
        np.clip(images, window[0], window[1], out=images)
    return resize(images, shape)


@dataclass
class TrialOutput:
    """What a finished trial produces.

    rows: one result row per test domain (resolved cell values, AUCs, counts, timing); a scanner cell
        has one, test_domain "both".
    predictions: one row per (split, domain, epoch, sample): columns cell_id, split ("val" | "test"),
        domain, epoch ("best" | "last"), index (sample index in the domain's shard), patient_id,
        label (the disease; for a scanner cell the domain's index in the dataset's domains), logit
        (float64, exactly what the AUCs were computed from).
    curve: one row per epoch: cell_id, epoch, loss, val_auc, val_note, seconds.
    """

    rows: list[dict]
    predictions: pd.DataFrame
    curve: pd.DataFrame


def domain_splits(cell: Cell, spec: DatasetSpec, shards: Mapping[str, Shard]) -> dict[str, dict[str, np.ndarray]]:
    """Per domain, the shard indices of train / val / test, after the cell's shared-patient policy."""
    keep = keep_masks({d: shards[d].patient_ids for d in spec.domains}, cell.shared_patients, spec.key)
    out = {}
    for d in spec.domains:
        rows = np.flatnonzero(keep[d])
        local = split_patients(np.asarray(shards[d].patient_ids)[rows], spec.key, d, cell.seed)
        out[d] = {name: rows[idx] for name, idx in local.items()}
    return out


def build_sets(cell: Cell, spec: DatasetSpec, shards: Mapping[str, Shard],
               shape: tuple[int, ...]) -> tuple[dict[str, tuple[torch.Tensor, np.ndarray]], dict]:
    """Normalised tensors of train / val / test_<domain> with labels, plus split metadata.

    The metadata holds, per evaluation set, its [(domain, shard indices)] parts under "index".
    """
    src, tgt = cell.train_domain, spec.other_domain(cell.train_domain)
    splits = domain_splits(cell, spec, shards)
    alpha, draw, space = cell.option("noise_alpha"), cell.option("noise_draw"), cell.option("noise_space")
    mixed = mix_indices(splits[src]["train"], splits[tgt]["train"], cell.option("mix_fraction"),
                        np.random.default_rng(seed_hash("mix", cell.cell_id)))
    once = alpha > 0 and draw == "once"
    noise_rng = np.random.default_rng(seed_hash("noise", cell.cell_id))
    native_alpha = alpha if once and space == "native" else 0.0
    window = cell.training.window
    train_parts = ((src, splits[src]["train"]), (tgt, mixed))
    x_train = torch.cat([_load(shards[d], i, shape, window, native_alpha, noise_rng) for d, i in train_parts])
    y_train = np.concatenate([shards[d].labels[i] for d, i in train_parts]).astype(np.float32)
    norm = cell.option("normalization")
    stats = (float(x_train.mean()), float(x_train.std())) if norm == "train" else None
    x_train = zscore(x_train, norm, stats)
    if once and space == "normalized":
        x_train += alpha * torch.from_numpy(noise_rng.standard_normal(x_train.shape, dtype=np.float32))
    sets = {"train": (x_train, y_train)}
    index = {}
    for name, d, part in [("val", src, "val")] + [(f"test_{d}", d, "test") for d in spec.domains]:
        idx = splits[d][part]
        x = _load(shards[d], idx, shape, window)
        sets[name] = (zscore(x, norm, stats), shards[d].labels[idx])
        index[name] = [(d, idx)]
    split_id = "|".join(split_digest(shards[d].patient_ids, splits[d]) for d in spec.domains)
    return sets, {"n_mixed": len(mixed), "split_id": split_id, "index": index}


def run_trial(cell: Cell, shards: Mapping[str, Shard], device: str | None = None,
              on_epoch: Callable[[dict, dict | None], None] | None = None, resume: dict | None = None,
              checkpoint_every: int = 0) -> TrialOutput:
    """Train the model of `cell` and return its rows (one per test domain), predictions and curve.

    Args:
        cell: what to run.
        shards: both domains of the cell's dataset (see `shards.load_domains`).
        device: torch device; default the GPU when one is visible, else the CPU.
        on_epoch: called with each epoch's record (loss, validation AUC), e.g. to report progress, and
            every `checkpoint_every` epochs with the training state to save (else None).
        resume: a state saved that way: training continues after its epoch, to the same final result.
    """
    start, started_at = time.perf_counter(), time.time()
    spec, t = DATASETS.get(cell.dataset), cell.training
    _check_data(cell, shards)
    dev = pick_device(device)
    if cell.option("predict") == "scanner":
        from scanshift_ray.separability import build_scanner_sets  # it builds on this module

        sets, meta = build_scanner_sets(cell, spec, shards, t.input_shape)
    else:
        sets, meta = build_sets(cell, spec, shards, t.input_shape)
    prep_seconds = time.perf_counter() - start
    torch.manual_seed(seed_hash("init", cell.cell_id))  # weight init is part of the cell's randomness
    model = to_device(build_model(cell.model, t.input_shape, t.width), dev)
    on_dev = _on_device(model, sets, dev)
    x_train, y_train = on_dev.pop("train")
    per_batch = cell.option("noise_alpha") if cell.option("noise_draw") == "per_batch" else 0.0
    cfg = TrainConfig(t.epochs, t.batch_size, t.lr, seed_hash("train", cell.cell_id),
                      noise_alpha=per_batch, deterministic=os.environ.get(DETERMINISTIC_ENV) == "1",
                      checkpoint_every=checkpoint_every, val_every=t.val_every)
    fitted = fit(model, x_train, torch.from_numpy(y_train).to(dev), on_dev["val"], cfg, on_epoch, resume)
    eval_start = time.perf_counter()
    logits = {"last": _logits(model, on_dev, cfg.amp)}
    model.load_state_dict(fitted.best_state)
    logits["best"] = _logits(model, on_dev, cfg.amp)
    timing = {"device": str(dev), "train_seconds": sum(h["seconds"] for h in fitted.history),
              "prep_seconds": prep_seconds, "val_seconds": sum(h.get("val_seconds", 0.0) for h in fitted.history),
              "eval_seconds": time.perf_counter() - eval_start,
              "resumed_from_epoch": int(resume["epoch"]) if resume else 0,
              "wall_seconds": time.perf_counter() - start, "started_at": started_at, "finished_at": time.time()}
    index = meta.pop("index")
    rows = make_rows(cell, spec, sets, fitted, logits, {**meta, **timing})
    return TrialOutput(rows, _predictions(cell, shards, sets, index, logits), _curve(cell, fitted))


def _on_device(model: torch.nn.Module, sets: Mapping[str, tuple[torch.Tensor, np.ndarray]],
               device: torch.device) -> dict[str, tuple[torch.Tensor, np.ndarray]]:
    """`sets` moved to `device`; the evaluation sets (all but "train") also in `model`'s input memory format.

    Converted once here, not in each of the 30-60 validation passes (`models.as_model_input`; same logits).
    The training set stays as it is: its batches are gathered by index every step anyway.
    """
    return {k: (x.to(device) if k == "train" else as_model_input(model, x.to(device)), y)
            for k, (x, y) in sets.items()}


def _check_data(cell: Cell, shards: Mapping[str, Shard]) -> None:
    """Refuse shards that are not the data the cell was made for (say, replaced in the middle of a sweep)."""
    from scanshift_ray.shards import data_id

    if data_id(shards) != cell.data_id:
        raise ScanshiftError(f"the {cell.dataset} shards changed since the sweep started (data id "
                             f"{data_id(shards)}, cell made for {cell.data_id}); re-run the sweep")


def _logits(model: torch.nn.Module, sets: Mapping[str, tuple[torch.Tensor, np.ndarray]],
            amp: bool) -> dict[str, np.ndarray]:
    """Logits (float64, (N,)) of every evaluation set (validation and tests), in `training.fit`'s precision."""
    from scanshift_ray.training import amp_dtype

    device = next(model.parameters()).device
    dtype = amp_dtype(device.type, amp)
    with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
        return {name: predict(model, x) for name, (x, _) in sets.items()}


def _predictions(cell: Cell, shards: Mapping[str, Shard], sets: Mapping[str, tuple[torch.Tensor, np.ndarray]],
                 index: Mapping[str, list[tuple[str, np.ndarray]]], logits: Mapping[str, Mapping[str, np.ndarray]]
                 ) -> pd.DataFrame:
    parts = []
    for epoch, by_set in logits.items():
        for name, scores in by_set.items():
            start = 0
            for domain, idx in index[name]:  # a set's samples are its parts' in order
                end = start + len(idx)
                parts.append(pd.DataFrame({
                    "cell_id": cell.cell_id, "split": "val" if name == "val" else "test", "domain": domain,
                    "epoch": epoch, "index": idx.astype(np.int64),
                    "patient_id": np.asarray(shards[domain].patient_ids)[idx].astype(str),
                    "label": np.asarray(sets[name][1][start:end]).astype(np.uint8),
                    "logit": scores[start:end].astype(np.float64)}))
                start = end
    return pd.concat(parts, ignore_index=True)


def _curve(cell: Cell, fitted: FitResult) -> pd.DataFrame:
    return pd.DataFrame([{"cell_id": cell.cell_id, "epoch": h["epoch"], "loss": h["loss"], "val_auc": h["auc_val"],
                          "val_note": h["note_val"], "seconds": h["seconds"]} for h in fitted.history])


def evaluations(cell: Cell, spec: DatasetSpec) -> list[tuple[str, list[str], bool]]:
    """The rows a trial reports: (test_domain, test sets pooled for it, same_domain).

    One per test domain; a scanner cell has one over both test sets (test_domain "both", same_domain
    False: its model is trained on both domains, so no test set is the "other scanner" either).
    """
    if cell.option("predict") == "scanner":
        return [(BOTH, [f"test_{d}" for d in spec.domains], False)]
    return [(d, [f"test_{d}"], d == cell.train_domain) for d in spec.domains]


def make_rows(cell: Cell, spec: DatasetSpec, sets: Mapping[str, tuple[torch.Tensor, np.ndarray]],
              fitted: FitResult, logits: Mapping[str, Mapping[str, np.ndarray]], extra: dict) -> list[dict]:
    """The long-form result rows of a finished trial, one per `evaluations` entry: the cell's resolved
    values (`Cell.describe`) plus the outcome."""
    rows = []
    for test_domain, names, same in evaluations(cell, spec):
        labels = np.concatenate([sets[n][1] for n in names])
        best = auc_or_nan(labels, np.concatenate([logits["best"][n] for n in names]))
        rows.append({
            **cell.describe(), "modality": spec.modality, "test_domain": test_domain, "same_domain": same,
            "epochs_run": len(fitted.history), "best_epoch": fitted.best_epoch, "auc": best[0],
            "auc_last": auc_or_nan(labels, np.concatenate([logits["last"][n] for n in names]))[0],
            "auc_note": best[1],
            "val_auc": fitted.history[fitted.best_epoch - 1]["auc_val"] if fitted.history else float("nan"),
            "n_train": len(sets["train"][1]), "n_val": len(sets["val"][1]), "n_test": len(labels),
            "n_test_pos": int(labels.sum()),
            "code_version": __version__, "hostname": socket.gethostname(), **extra,
        })
    return rows
