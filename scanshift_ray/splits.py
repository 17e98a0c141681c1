"""Patient-level splits: 2/3 train, 1/6 validation, 1/6 test per scanner domain, derived from a hash.

The split of a domain depends only on (dataset, domain, seed) and the set of patient ids, never on
the order of samples in a shard or on other grid dimensions, so every experiment that shares a seed
shares the split (as in the paper's Figure 1).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

FRACTIONS = (2 / 3, 1 / 6, 1 / 6)
SPLITS = ("train", "val", "test")


def seed_hash(*parts: Any) -> int:
    """A stable 31-bit seed from any JSON-serialisable parts (DomainBed's seed_hash)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return int(hashlib.sha256(blob).hexdigest()[:8], 16) & 0x7FFFFFFF


def split_patients(patient_ids: np.ndarray, dataset: str, domain: str, seed: int) -> dict[str, np.ndarray]:
    """Sample indices of each split; every patient's samples land in exactly one split.

    Patients are sorted, shuffled with seed_hash(dataset, domain, seed) and cut at 2/3 and 5/6 of
    the patient count (rounded), so each split gets at least one patient when there are three or more.
    """
    ids = np.asarray([str(p) for p in patient_ids])
    patients = np.unique(ids)
    order = np.random.default_rng(seed_hash(dataset, domain, seed)).permutation(len(patients))
    shuffled = patients[order]
    n = len(shuffled)
    n_train = max(1, int(round(n * FRACTIONS[0]))) if n >= 3 else n
    n_val = max(1, int(round(n * FRACTIONS[1]))) if n >= 3 else 0
    n_train = min(n_train, n - n_val - 1) if n >= 3 else n_train
    groups = {"train": shuffled[:n_train], "val": shuffled[n_train:n_train + n_val],
              "test": shuffled[n_train + n_val:]}
    return {name: np.flatnonzero(np.isin(ids, members)) for name, members in groups.items()}


def split_digest(patient_ids: np.ndarray, split: dict[str, np.ndarray]) -> str:
    """A short fingerprint of which patients went where, stored with every result row."""
    ids = np.asarray([str(p) for p in patient_ids])
    body = {name: sorted(set(ids[idx].tolist())) for name, idx in split.items()}
    return hashlib.sha1(json.dumps(body, sort_keys=True).encode()).hexdigest()[:12]
