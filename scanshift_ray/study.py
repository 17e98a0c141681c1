"""Declarative study grids and their expansion into cells.

A `Study` lists experiments; an `Experiment` is a grid over datasets x training domains x seeds x
mixing fractions x noise levels. `expand` (pure) turns a study into `Cell`s; a cell's id is a hash of
its canonical config, including the id of the exact data it runs on, so results computed on other
data (say synthetic vs real shards in the same results folder) never count as done.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace

from scanshift_ray.datasets import DATASETS
from scanshift_ray.errors import ScanshiftError
from scanshift_ray.registry import Registry

NORMALIZATIONS = ("image", "train")
NOISE_SPACES = ("normalized", "native")
NOISE_DRAWS = ("per_batch", "once")


@dataclass(frozen=True)
class Cell:
    """One training run: a model trained on one domain, tested on both. Everything that changes a result.

    normalization: "image" z-scores every image with its own mean and std (default; removes global
        gain/offset, leaving the non-affine shift), "train" uses the mean and std of the training split.
    noise_space / noise_draw: where alpha * N(0, I) is added ("normalized": after z-scoring, default,
        so alpha means the same on every modality; "native": in HU / scanner units before it) and
        whether it is drawn afresh for every batch (default, classic noise injection) or once.
    """

    experiment: str
    dataset: str
    train_domain: str
    seed: int
    model: str
    profile: str
    data_id: str
    data_source: str
    mix_fraction: float = 0.0
    noise_alpha: float = 0.0
    normalization: str = "image"
    noise_space: str = "normalized"
    noise_draw: str = "per_batch"

    def __post_init__(self) -> None:
        for name, value, allowed in (("normalization", self.normalization, NORMALIZATIONS),
                                     ("noise_space", self.noise_space, NOISE_SPACES),
                                     ("noise_draw", self.noise_draw, NOISE_DRAWS)):
            if value not in allowed:
                raise ScanshiftError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        if self.noise_space == "native" and self.noise_draw == "per_batch":
            raise ScanshiftError("noise_space 'native' needs noise_draw 'once' (native noise is added before "
                                 "z-scoring)")
        if not 0.0 <= self.mix_fraction < 1.0:
            raise ScanshiftError(f"mix_fraction must be in [0, 1), got {self.mix_fraction}")

    @property
    def cell_id(self) -> str:
        """16 hex digits of SHA-1 over the canonical JSON of the config."""
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha1(blob).hexdigest()[:16]


@dataclass(frozen=True)
class Experiment:
    """A grid. `train_domains` None means both domains of each dataset."""

    name: str
    datasets: tuple[str, ...]
    seeds: tuple[int, ...]
    mix_fractions: tuple[float, ...] = (0.0,)
    noise_alphas: tuple[float, ...] = (0.0,)
    train_domains: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Study:
    """Experiments plus the settings shared by all their cells."""

    experiments: tuple[Experiment, ...]
    profile: str = "fast"
    models: Mapping[str, str] = field(default_factory=dict)  # dataset -> model override
    normalization: str = "image"
    noise_space: str = "normalized"
    noise_draw: str = "per_batch"

    def dataset_keys(self) -> list[str]:
        """Every dataset any experiment of the study uses, in registry (Table 2) order."""
        return sorted({k for e in self.experiments for k in e.datasets}, key=DATASETS.names().index)


EXPERIMENTS: Registry[Experiment] = Registry("experiment")
ALL_DATASETS = tuple(DATASETS.names())
APPENDIX_DATASETS = ("mri-prostate", "ct-lidc", "ct-kidney")
EXPERIMENTS.add("main", Experiment("main", ALL_DATASETS, tuple(range(10))))
EXPERIMENTS.add("mixing", Experiment("mixing", APPENDIX_DATASETS, (0, 1, 2), mix_fractions=(0.1, 0.2, 0.3, 0.4, 0.5)))
EXPERIMENTS.add("noise", Experiment("noise", APPENDIX_DATASETS, (0, 1, 2),
                                    noise_alphas=(1.0, 2.0, 3.0, 4.0, 5.0, 7.0, 10.0, 15.0, 30.0, 50.0)))


def restrict(exp: Experiment, datasets: tuple[str, ...] | None = None,
             seeds: tuple[int, ...] | None = None) -> Experiment:
    """`exp` limited to `datasets` (intersection) and with `seeds` replaced, when given."""
    if datasets is not None:
        exp = replace(exp, datasets=tuple(d for d in exp.datasets if d in datasets))
    if seeds is not None:
        exp = replace(exp, seeds=seeds)
    return exp


def expand(study: Study, data: Mapping[str, tuple[str, str]]) -> list[Cell]:
    """All cells of `study`, in a stable order. `data` maps dataset -> (data_id, data_source)."""
    cells: list[Cell] = []
    for exp in study.experiments:
        for key in exp.datasets:
            spec = DATASETS.get(key)
            data_id, source = data[key]
            model = study.models.get(key, spec.model)
            grid = itertools.product(exp.train_domains or spec.domains, exp.seeds, exp.mix_fractions,
                                     exp.noise_alphas)
            cells += [Cell(exp.name, key, domain, seed, model, study.profile, data_id, source, float(mix),
                           float(alpha), study.normalization, study.noise_space, study.noise_draw)
                      for domain, seed, mix, alpha in grid]
    return cells
