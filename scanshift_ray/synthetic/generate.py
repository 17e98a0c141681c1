"""Write synthetic twins as shards: `<root>/<key>/<domain>.h5` plus `manifest.json`."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np

from scanshift_ray import __version__, shards
from scanshift_ray.datasets import DATASETS
from scanshift_ray.profiles import Profile
from scanshift_ray.synthetic import ablations
from scanshift_ray.synthetic.patients import render_patient
from scanshift_ray.synthetic.twins import DEFAULT_SEVERITY, TWINS, scanner_at

GENERATOR_VERSION = 9  # bump when a twin's anatomy or physics changes, so stale shards are regenerated


def generate_domain(key: str, domain_index: int, profile: Profile, seed: int, severity: float,
                    ablate: tuple[str, ...] = ()) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images (N, ...), labels (N,) and patient ids (N,) of one domain of one twin."""
    spec, twin = DATASETS.get(key), TWINS.get(key)
    shape = profile.input_shape(spec)
    scanner = scanner_at(twin, domain_index, severity, ablate)
    per_patient = twin.samples_per_patient or profile.slices_per_patient
    images: list[np.ndarray] = []
    labels: list[int] = []
    pids: list[str] = []
    for patient in range(twin.patients(profile.synthetic_patients)):
        pid = f"syn-{spec.domains[domain_index]}-{patient:05d}"
        imgs, labs = render_patient(twin, spec.modality, shape, scanner, per_patient,
                                    (seed, key, domain_index, patient))
        images += imgs
        labels += labs
        pids += [pid] * len(imgs)
    return np.stack(images), np.asarray(labels, dtype=np.uint8), np.asarray(pids, dtype=object)


def _write_domain(root: str, key: str, domain_index: int, profile: Profile, seed: int, severity: float,
                  ablate: tuple[str, ...]) -> str:
    spec, twin = DATASETS.get(key), TWINS.get(key)
    images, labels, pids = generate_domain(key, domain_index, profile, seed, severity, ablate)
    scanner = scanner_at(twin, domain_index, severity, ablate)
    attrs = {
        "dataset": key, "domain": spec.domains[domain_index], "modality": spec.modality, "task": spec.task,
        "manufacturers": [scanner.name], "data_source": "synthetic",
        "units": {"CT": "HU", "MRI": "scanner units", "X-ray": "processed detector value"}[spec.modality],
        "provenance": {"generator": "scanshift_ray.synthetic", "generator_version": GENERATOR_VERSION,
                       "code_version": __version__, "seed": seed,
                       "profile": profile.name, "severity": severity, "ablate": list(ablate),
                       "scanner": asdict(scanner)},
    }
    return str(shards.write_shard(shards.shard_path(root, key, spec.domains[domain_index]),
                                  images, labels, pids, attrs))


def is_current(root: str | Path, key: str, profile: Profile, seed: int, severity: float,
               ablate: tuple[str, ...] = ()) -> bool:
    """True when both shards of twin `key` exist and were made with these settings."""
    spec = DATASETS.get(key)
    for domain in spec.domains:
        path = shards.shard_path(root, key, domain)
        if not path.is_file():
            return False
        prov = shards.read_shard(path).attrs.get("provenance", {})
        settings = (prov.get("generator_version"), prov.get("profile"), prov.get("seed"), prov.get("severity"),
                    tuple(prov.get("ablate", ())))
        if settings != (GENERATOR_VERSION, profile.name, seed, severity, ablate):
            return False
    return True


def write_twins(root: str | Path, keys: Iterable[str], profile: Profile, seed: int = 0,
                severity: Mapping[str, float] | None = None, workers: int | None = None,
                force: bool = False, ablate: tuple[str, ...] = ()) -> list[str]:
    """Generate the twins `keys` under `root` in parallel; up-to-date twins are kept unless `force`.

    `ablate` names ablations (`ablations.ABLATIONS`) whose scanner differences are turned off.
    Returns the keys that were (re)generated.
    """
    sev = {**DEFAULT_SEVERITY, **(severity or {})}
    ablate = ablations.check(ablate)
    todo = [k for k in keys
            if force or not is_current(root, k, profile, seed, sev[DATASETS.get(k).modality], ablate)]
    jobs = [(str(root), k, d, profile, seed, sev[DATASETS.get(k).modality], ablate) for k in todo for d in (0, 1)]
    if not jobs:
        return []
    start = time.time()
    workers = workers or min(len(jobs), os.cpu_count() or 1)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for path in pool.map(_write_domain, *zip(*jobs, strict=True)):
            print(f"  wrote {path}", flush=True)
    for key in todo:
        shards.write_manifest(root, key, {"data_source": "synthetic", "profile": profile.name, "seed": seed,
                                          "severity": sev[DATASETS.get(key).modality], "ablate": list(ablate),
                                          "code_version": __version__})
    print(f"  synthetic twins ready in {time.time() - start:.0f} s", flush=True)
    return todo
