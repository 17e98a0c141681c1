"""Shared fixtures: small but real shards written through the product's own shard writer."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from scanshift_ray import shards
from scanshift_ray.datasets import DATASETS
from scanshift_ray.profiles import PROFILES

if TYPE_CHECKING:
    from scanshift_ray.study import Cell


def write_toy_dataset(root: Path, key: str, n_patients: int = 30, per_patient: int = 2, seed: int = 0,
                      shift: float = 0.0) -> None:
    """Both domains of `key` with a learnable signal: label-1 images carry a bright square.

    Domain 2 gets `shift` added to the square's contrast, so tests can create a scanner effect.
    """
    spec = DATASETS.get(key)
    shape = PROFILES.get("smoke").input_shape(spec)
    rng = np.random.default_rng(seed)
    for i, domain in enumerate(spec.domains):
        n = n_patients * per_patient
        labels = np.tile([0, 1], n // 2 + 1)[:n].astype(np.uint8)
        images = rng.normal(100.0, 20.0, size=(n, *shape)).astype(np.float32)
        h, w = shape[-2:]
        images[labels == 1, ..., h // 3: h // 3 + 8, w // 3: w // 3 + 8] += 60.0 + shift * i
        pids = np.repeat([f"p{domain}{k:03d}" for k in range(n_patients)], per_patient)
        attrs = {"dataset": key, "domain": domain, "modality": spec.modality, "task": spec.task,
                 "manufacturers": [domain], "data_source": "real"}
        shards.write_shard(shards.shard_path(root, key, domain), images, labels, pids, attrs)


@pytest.fixture
def toy_root(tmp_path: Path) -> Path:
    """A shard root with toy versions of ct-lidc (3D) and xray-chest (2D)."""
    root = tmp_path / "shards"
    for key in ("ct-lidc", "xray-chest"):
        write_toy_dataset(root, key)
    return root


def make_cell(key: str, domain: str, seed: int = 0, experiment: str = "main", profile: str = "smoke",
              data_id: str = "toy", source: str = "real", **options) -> Cell:
    """A cell of `key` with the resolved `profile` training values; `options` are axis values."""
    from scanshift_ray.study import Cell, Training

    spec = DATASETS.get(key)
    return Cell(experiment, key, domain, seed, spec.model, data_id, source,
                Training.resolve(PROFILES.get(profile), spec), options, profile)


def cell_on(root: Path, key: str, domain: str, **kw) -> Cell:
    """`make_cell` for the shards under `root` (the cell's data id matches them)."""
    loaded = shards.load_domains(root, DATASETS.get(key))
    return make_cell(key, domain, data_id=shards.data_id(loaded), **kw)


@pytest.fixture(autouse=True, scope="session")
def _private_verification_cache(tmp_path_factory):
    """Keep the verified-shard cache of the tests out of the user's ~/.cache."""
    import os

    os.environ["SCANSHIFT_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
