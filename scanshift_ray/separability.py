"""The scanner-separability diagnostic: how well does the dataset's CNN tell the two scanners apart?

A cell with `predict` "scanner" (the `separability` experiment) trains the dataset's own model with the
cell's own protocol and preprocessing (window, resize, normalisation) on the same patient splits as the
main experiment (a split depends only on dataset, domain and seed), but to predict the scanner domain
from the image alone: label = the domain's index in `DatasetSpec.domains` (0 = first, 1 = second), in
the training, validation and test sets and in the stored predictions.

- Training: both domains' training splits with equal class counts. The larger domain's training split
  is subsampled to the smaller one's size *by sample*, stratified by the disease label (proportional,
  largest remainder), with a generator seeded by (dataset, seed) only. By sample rather than by patient:
  it gives exactly equal counts (patients contribute different numbers of samples, so whole patients only
  approximately balance), and it keeps every training patient of the larger domain (more patient
  variety for the same count); patient separation between train, validation and test is already fixed
  by the splits. Stratifying keeps the larger domain's disease prevalence, so the subsample is
  representative of it. Prevalences still differ between the domains when the cohorts do, so a part
  of what the CNN uses may be disease-related: the diagnostic measures all that tells the scanners apart.
- Validation: both domains' validation splits (all samples); the selected epoch has the best validation
  AUC of scanner prediction, as the disease cells select on their validation AUC.
- Test: both domains' test splits; one row, test_domain "both", with the AUC over their union.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from scanshift_ray.datasets import DatasetSpec
from scanshift_ray.shards import Shard
from scanshift_ray.splits import seed_hash, split_digest
from scanshift_ray.study import Cell
from scanshift_ray.trial import _load, domain_splits, zscore

EvalParts = list[tuple[str, np.ndarray]]  # (domain, shard indices) of one evaluation set, in order


def _quotas(counts: np.ndarray, n: int) -> np.ndarray:
    """`n` split over classes in proportion to `counts` (largest remainder; sums to n, none above its count)."""
    exact = counts * n / counts.sum()
    quota = np.floor(exact).astype(int)
    quota[np.argsort(-(exact - quota), kind="stable")[: n - int(quota.sum())]] += 1
    return quota


def balance(train: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray],
            rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per domain, the training indices to keep so that every domain has as many as the smallest.

    train: domain -> shard indices of its training split; labels: domain -> disease labels of those
    indices. A larger domain is subsampled without replacement, stratified by disease label; the kept
    indices are returned sorted. A domain of the smallest size is kept whole.
    """
    n = min(len(v) for v in train.values())
    out = {}
    for d, idx in train.items():
        idx, y = np.asarray(idx), np.asarray(labels[d])
        if len(idx) == n:
            out[d] = idx
            continue
        classes, counts = np.unique(y, return_counts=True)
        take = [rng.choice(idx[y == c], q, replace=False) for c, q in zip(classes, _quotas(counts, n), strict=True)]
        out[d] = np.sort(np.concatenate(take))
    return out


def _stack(cell: Cell, spec: DatasetSpec, shards: Mapping[str, Shard], parts: EvalParts,
           shape: tuple[int, ...]) -> tuple[torch.Tensor, np.ndarray]:
    """The windowed, resized images of `parts` and their scanner labels (not yet normalised)."""
    x = torch.cat([_load(shards[d], i, shape, cell.training.window) for d, i in parts])
    y = np.concatenate([np.full(len(i), spec.domains.index(d), dtype=np.uint8) for d, i in parts])
    return x, y


def build_scanner_sets(cell: Cell, spec: DatasetSpec, shards: Mapping[str, Shard], shape: tuple[int, ...]
                       ) -> tuple[dict[str, tuple[torch.Tensor, np.ndarray]], dict]:
    """`trial.build_sets` for a scanner-prediction cell: train, val and test_<domain> with scanner labels.

    The metadata is `trial.build_sets`'s (n_mixed is 0); "index" maps each set to its (domain, indices)
    parts. n_train in the row is the balanced count: twice the smaller domain's training split.
    """
    splits = domain_splits(cell, spec, shards)
    full = {d: splits[d]["train"] for d in spec.domains}
    kept = balance(full, {d: shards[d].labels[full[d]] for d in spec.domains},
                   np.random.default_rng(seed_hash("balance", cell.dataset, cell.seed)))
    norm = cell.option("normalization")
    x_train, y_train = _stack(cell, spec, shards, [(d, kept[d]) for d in spec.domains], shape)
    stats = (float(x_train.mean()), float(x_train.std())) if norm == "train" else None
    sets = {"train": (zscore(x_train, norm, stats), y_train.astype(np.float32))}
    index: dict[str, EvalParts] = {"val": [(d, splits[d]["val"]) for d in spec.domains]}
    index.update({f"test_{d}": [(d, splits[d]["test"])] for d in spec.domains})
    for name, parts in index.items():
        x, y = _stack(cell, spec, shards, parts, shape)
        sets[name] = (zscore(x, norm, stats), y)
    split_id = "|".join(split_digest(shards[d].patient_ids, splits[d]) for d in spec.domains)
    return sets, {"n_mixed": 0, "split_id": split_id, "index": index}
