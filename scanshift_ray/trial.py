"""One trial: a plain function of (cell, shards) -> result rows. No Ray in here.

Order of operations (it matters):
    split each domain by patient -> select samples -> (native-space noise, if asked, once) ->
    resize to the profile's input shape -> z-score (per image, or with training-split statistics)
    -> train on the training domain (+ mixed-in target images) -> pick the epoch with the best
    validation AUC on the training domain -> report test AUC on both domains at that epoch and at
    the last epoch.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from scanshift_ray import __version__
from scanshift_ray.datasets import DATASETS, DatasetSpec
from scanshift_ray.models import build_model, to_device
from scanshift_ray.profiles import DETERMINISTIC_ENV, PROFILES
from scanshift_ray.shards import Shard
from scanshift_ray.splits import seed_hash, split_digest, split_patients
from scanshift_ray.study import Cell
from scanshift_ray.training import FitResult, TrainConfig, evaluate, fit, pick_device


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


def build_sets(cell: Cell, spec: DatasetSpec, shards: Mapping[str, Shard],
               shape: tuple[int, ...]) -> tuple[dict[str, tuple[torch.Tensor, np.ndarray]], dict]:
    """Normalised tensors of train / val / test_<domain> with labels, plus split metadata."""
    src, tgt = cell.train_domain, spec.other_domain(cell.train_domain)
    splits = {d: split_patients(shards[d].patient_ids, spec.key, d, cell.seed) for d in spec.domains}
    mixed = mix_indices(splits[src]["train"], splits[tgt]["train"], cell.mix_fraction,
                        np.random.default_rng(seed_hash("mix", cell.cell_id)))
    once = cell.noise_alpha > 0 and cell.noise_draw == "once"
    noise_rng = np.random.default_rng(seed_hash("noise", cell.cell_id))
    native_alpha = cell.noise_alpha if once and cell.noise_space == "native" else 0.0
    train_parts = ((src, splits[src]["train"]), (tgt, mixed))
    x_train = torch.cat([_load(shards[d], i, shape, spec.window, native_alpha, noise_rng) for d, i in train_parts])
    y_train = np.concatenate([shards[d].labels[i] for d, i in train_parts]).astype(np.float32)
    stats = (float(x_train.mean()), float(x_train.std())) if cell.normalization == "train" else None
    x_train = zscore(x_train, cell.normalization, stats)
    if once and cell.noise_space == "normalized":
        x_train += cell.noise_alpha * torch.from_numpy(noise_rng.standard_normal(x_train.shape, dtype=np.float32))
    sets = {"train": (x_train, y_train)}
    for name, d, part in [("val", src, "val")] + [(f"test_{d}", d, "test") for d in spec.domains]:
        idx = splits[d][part]
        x = _load(shards[d], idx, shape, spec.window)
        sets[name] = (zscore(x, cell.normalization, stats), shards[d].labels[idx])
    split_id = "|".join(split_digest(shards[d].patient_ids, splits[d]) for d in spec.domains)
    return sets, {"n_mixed": len(mixed), "split_id": split_id}


def run_trial(cell: Cell, shards: Mapping[str, Shard], device: str | None = None,
              on_epoch: Callable[[dict], None] | None = None) -> list[dict]:
    """Train the model of `cell` and return one result row per test domain.

    Args:
        cell: what to run.
        shards: both domains of the cell's dataset (see `shards.load_domains`).
        device: torch device; default the GPU when one is visible, else the CPU.
        on_epoch: called with each epoch's record (loss, validation AUC), e.g. to report progress.
    """
    start, started_at = time.perf_counter(), time.time()
    spec, profile = DATASETS.get(cell.dataset), PROFILES.get(cell.profile)
    shape = profile.input_shape(spec)
    dev = pick_device(device)
    sets, meta = build_sets(cell, spec, shards, shape)
    torch.manual_seed(seed_hash("init", cell.cell_id))  # weight init is part of the cell's randomness
    model = to_device(build_model(cell.model, shape, profile.width), dev)
    on_dev = {k: (x.to(dev), y) for k, (x, y) in sets.items()}
    x_train, y_train = on_dev.pop("train")
    val = on_dev.pop("val")
    per_batch = cell.noise_alpha if cell.noise_draw == "per_batch" else 0.0
    cfg = TrainConfig(profile.epochs, profile.batch_size, profile.lr, seed_hash("train", cell.cell_id),
                      noise_alpha=per_batch, deterministic=os.environ.get(DETERMINISTIC_ENV) == "1")
    fitted = fit(model, x_train, torch.from_numpy(y_train).to(dev), val, cfg, on_epoch)
    last = evaluate(model, on_dev, cfg.amp)
    model.load_state_dict(fitted.best_state)
    best = evaluate(model, on_dev, cfg.amp)
    timing = {"device": str(dev), "train_seconds": sum(h["seconds"] for h in fitted.history),
              "wall_seconds": time.perf_counter() - start, "started_at": started_at, "finished_at": time.time()}
    return make_rows(cell, spec, sets, fitted, best, last, {**meta, **timing})


def make_rows(cell: Cell, spec: DatasetSpec, sets: Mapping[str, tuple[torch.Tensor, np.ndarray]],
              fitted: FitResult, best: Mapping[str, tuple[float, str]], last: Mapping[str, tuple[float, str]],
              extra: dict) -> list[dict]:
    """The long-form result rows of a finished trial, one per test domain."""
    rows = []
    for d in spec.domains:
        labels = sets[f"test_{d}"][1]
        rows.append({
            "experiment": cell.experiment, "dataset": cell.dataset, "modality": spec.modality,
            "data_source": cell.data_source, "train_domain": cell.train_domain, "test_domain": d,
            "same_domain": d == cell.train_domain, "seed": cell.seed, "mix_fraction": cell.mix_fraction,
            "noise_alpha": cell.noise_alpha, "model": cell.model, "profile": cell.profile,
            "epochs": len(fitted.history), "best_epoch": fitted.best_epoch, "auc": best[f"test_{d}"][0],
            "auc_last": last[f"test_{d}"][0], "auc_note": best[f"test_{d}"][1],
            "val_auc": fitted.history[fitted.best_epoch - 1]["auc_val"], "n_train": len(sets["train"][1]),
            "n_test": len(labels), "n_test_pos": int(labels.sum()), "cell_id": cell.cell_id,
            "data_id": cell.data_id, "normalization": cell.normalization, "noise_space": cell.noise_space,
            "noise_draw": cell.noise_draw, "code_version": __version__, "hostname": socket.gethostname(), **extra,
        })
    return rows
