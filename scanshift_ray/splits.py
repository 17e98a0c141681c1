"""Patient-level splits: 2/3 train, 1/6 validation, 1/6 test per scanner domain, derived from a hash.

The split of a domain depends only on (dataset, domain, seed) and the set of patient ids, never on
the order of samples in a shard or on other grid dimensions, so every experiment that shares a seed
shares the split (as in the paper's Figure 1).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from scanshift_ray.errors import ScanshiftError

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


def shared_patients(ids_by_domain: Mapping[str, np.ndarray]) -> list[str]:
    """Pseudonymous patient ids present in more than one domain, sorted."""
    sets = [set(map(str, ids)) for ids in ids_by_domain.values()]
    return sorted(set.union(*[a & b for i, a in enumerate(sets) for b in sets[i + 1:]] or [set()]))


def keep_masks(ids_by_domain: Mapping[str, np.ndarray], policy: str | None, dataset: str) -> dict[str, np.ndarray]:
    """Per domain, a boolean mask (N,) of the samples a trial may use.

    Patients found in both domains would let one person sit in Train_A and Test_B. With `policy`
    "drop" their samples are removed from both domains; with "assign" each stays only in the domain
    holding more of its samples (on a tie, the domain picked by seed_hash(dataset, id), so no domain is
    favoured). Without shared patients every sample is kept; with them and no policy this refuses.
    """
    ids = {d: np.asarray([str(p) for p in v]) for d, v in ids_by_domain.items()}
    shared = shared_patients(ids)
    keep = {d: np.ones(len(v), dtype=bool) for d, v in ids.items()}
    if not shared:
        return keep
    if policy not in ("drop", "assign"):
        raise ScanshiftError(f"{dataset}: {len(shared)} pseudonymous patient id(s) appear in both scanner domains; "
                             "pass --shared-patients assign (each to the domain with more of its samples) or drop")
    domains = list(ids)
    for pid in shared:
        counts = [int((ids[d] == pid).sum()) for d in domains]
        if policy == "assign":
            best = max(counts)
            tied = [d for d, c in zip(domains, counts, strict=True) if c == best]
            owner = tied[seed_hash(dataset, pid) % len(tied)]
        for d in domains:
            if policy == "drop" or d != owner:
                keep[d] &= ids[d] != pid
    return keep
