"""Study files: a whole study declared in TOML, parsed into the frozen `Study` of `study.py` (pure).

    profile = "fast"                       # a registered profile
    shared_patients = "error"              # error | assign | drop
    [options]                              # fixed axis values for every cell
    normalization = "image"
    [models]                               # dataset = model (default: the dataset's paper model)
    xray-chest = "densenet121"
    [experiments.main]                     # a registered experiment, or a new one with `grid`
    datasets = "all"                       # "all" or a list of dataset keys
    seeds = { fast = 3, smoke = 2, paper = 10 }   # a count, a list, or a table per profile
    [experiments.mixing]
    datasets = ["mri-prostate", "ct-lidc", "ct-kidney"]
    seeds = 3
    grid.mix_fraction = [0.1, 0.2, 0.3, 0.4, 0.5]

The paper's study is `sweeps/paper_study.toml`, the default of `scanshift run` and
`python sweeps/full_study.py`; command-line flags override what the file says.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scanshift_ray.datasets import DATASETS
from scanshift_ray.errors import ScanshiftError
from scanshift_ray.models import MODELS
from scanshift_ray.profiles import PROFILES
from scanshift_ray.study import AXES, EXPERIMENTS, Experiment, Study

DEFAULT_STUDY = Path(__file__).resolve().parents[1] / "sweeps" / "paper_study.toml"
TOP_KEYS = {"profile", "shared_patients", "options", "models", "experiments"}
EXPERIMENT_KEYS = {"datasets", "seeds", "grid", "train_domains"}


def read_study_file(path: str | Path | None = None) -> dict[str, Any]:
    """The parsed TOML of a study file (default: the paper's), or a one-line error."""
    path = Path(path) if path is not None else DEFAULT_STUDY
    if not path.is_file():
        raise ScanshiftError(f"study file not found: {path}")
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ScanshiftError(f"{path}: not valid TOML: {exc}") from None


def _seeds(value: Any, profile: str, where: str) -> tuple[int, ...]:
    if isinstance(value, Mapping):
        if profile not in value:
            raise ScanshiftError(f"{where}: seeds has no entry for profile {profile!r} (has {', '.join(value)})")
        value = value[profile]
    if isinstance(value, bool) or not isinstance(value, int | list):
        raise ScanshiftError(f"{where}: seeds must be a count, a list of integers or a table per profile")
    seeds = tuple(range(value)) if isinstance(value, int) else tuple(value)
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise ScanshiftError(f"{where}: seeds must be non-negative integers, at least one")
    return seeds


def _datasets(value: Any, where: str) -> tuple[str, ...]:
    if value == "all":
        return tuple(DATASETS.names())
    if not isinstance(value, list) or not value:
        raise ScanshiftError(f"{where}: datasets must be \"all\" or a list of keys ({', '.join(DATASETS.names())})")
    for key in value:
        DATASETS.get(key)
    return tuple(value)


def parse_experiment(name: str, body: Mapping[str, Any], profile: str) -> Experiment:
    """One `[experiments.NAME]` table; missing entries come from the registered experiment of that name."""
    where = f"[experiments.{name}]"
    unknown = set(body) - EXPERIMENT_KEYS
    if unknown:
        raise ScanshiftError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; known: "
                             f"{', '.join(sorted(EXPERIMENT_KEYS))}")
    base = EXPERIMENTS.get(name) if name in EXPERIMENTS else Experiment(name, (), ())
    if name not in EXPERIMENTS and not {"datasets", "seeds"} <= set(body):
        raise ScanshiftError(f"{where}: a new experiment needs datasets and seeds (registered experiments: "
                             f"{', '.join(EXPERIMENTS.names())})")
    grid = body.get("grid")
    if grid is not None:
        if not isinstance(grid, Mapping) or not all(isinstance(v, list) and v for v in grid.values()):
            raise ScanshiftError(f"{where}: grid must map axis names to non-empty lists of values")
        for axis in grid:
            AXES.get(axis)
    return Experiment(
        name,
        _datasets(body["datasets"], where) if "datasets" in body else base.datasets,
        _seeds(body["seeds"], profile, where) if "seeds" in body else base.seeds,
        tuple((a, tuple(AXES.get(a).coerce(v) for v in vals)) for a, vals in grid.items()) if grid is not None
        else base.grid,
        tuple(body["train_domains"]) if "train_domains" in body else base.train_domains)


def parse_study(doc: Mapping[str, Any], profile: str | None = None) -> Study:
    """A `Study` from a parsed study file; `profile` overrides the file's."""
    unknown = set(doc) - TOP_KEYS
    if unknown:
        raise ScanshiftError(f"study file: unknown key(s) {', '.join(sorted(unknown))}; known: "
                             f"{', '.join(sorted(TOP_KEYS))}")
    profile = profile or str(doc.get("profile", "fast"))
    PROFILES.get(profile)
    experiments = doc.get("experiments")
    if not isinstance(experiments, Mapping) or not experiments:
        raise ScanshiftError("study file: no [experiments.NAME] table")
    models = dict(doc.get("models", {}))
    for key, model in models.items():
        DATASETS.get(key)
        MODELS.get(model)
    exps = tuple(parse_experiment(n, b, profile) for n, b in experiments.items())
    return Study(exps, profile=profile, models=models, options=dict(doc.get("options", {})),
                 shared_patients=str(doc.get("shared_patients", "error")))
