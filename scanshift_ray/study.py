"""Declarative study grids and their expansion into self-describing cells.

A `Study` lists experiments; an `Experiment` is a grid over datasets x training domains x seeds x the
axes it declares (`grid`, e.g. mixing fractions or noise levels). Axes are registered in `AXES`; a
study fixes the value of the axes its experiments do not vary (`Study.options`). `expand` (pure)
turns a study into `Cell`s.

A cell's id hashes every resolved value that changes its result: the training protocol (epochs,
batch size, lr, model width, validation interval, input shape, intensity window, model), the exact data (`data_id`), the
axis values that apply to it and `PROTOCOL_VERSION`. It does not hash labels that change nothing (the
profile's name) nor axes that do not apply (noise options at alpha = 0, mixing at f = 0), so
`--noise-draw once` leaves the main experiment's cells done. Adding an axis is one `AXES.add` here
plus its use in `trial`; the CLI (`--option`), the Ray adapter and the report take it from `AXES`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, NamedTuple

from scanshift_ray.datasets import DATASETS, DatasetSpec
from scanshift_ray.errors import ScanshiftError
from scanshift_ray.profiles import PROFILES, Profile
from scanshift_ray.registry import Registry

# Bump whenever what a trial computes from the same cell changes (training loop, splits, evaluation,
# preprocessing inside the trial): every cell id changes with it, so old results are not counted done.
PROTOCOL_VERSION = 2
SHARED_PATIENT_POLICIES = ("error", "assign", "drop")


@dataclass(frozen=True)
class Axis:
    """One option a cell can vary along.

    neutral: the value at which the axis does nothing (mixing at f = 0); a cell at it does not carry the
        axis in its identity. None: the axis always applies.
    requires: the axis that must be away from its neutral value for this one to apply (noise options
        need noise_alpha > 0); an axis that does not apply is left out of the cell.
    """

    name: str
    kind: type
    default: Any
    title: str
    allowed: tuple[Any, ...] | None = None
    neutral: Any = None
    requires: str | None = None
    check: Callable[[Any], str | None] | None = None  # returns an error text for a bad value
    log_scale: bool = False  # how the report plots an experiment over this axis

    def coerce(self, value: Any) -> Any:
        """`value` as this axis' type (from a CLI string too), or a one-line error."""
        try:
            out = self.kind(value)
        except (TypeError, ValueError):
            raise ScanshiftError(f"{self.name} takes a {self.kind.__name__}, got {value!r}") from None
        if self.allowed is not None and out not in self.allowed:
            raise ScanshiftError(f"{self.name} must be one of {', '.join(map(str, self.allowed))}, got {value!r}")
        problem = self.check(out) if self.check else None
        if problem:
            raise ScanshiftError(f"{self.name} {problem}, got {value!r}")
        return out


AXES: Registry[Axis] = Registry("axis")
AXES.add("normalization", Axis(
    "normalization", str, "image", "intensity normalisation", allowed=("image", "train")))
AXES.add("mix_fraction", Axis(
    "mix_fraction", float, 0.0, "target fraction f", neutral=0.0,
    check=lambda v: None if 0.0 <= v < 1.0 else "must be in [0, 1)"))
AXES.add("noise_alpha", Axis(
    "noise_alpha", float, 0.0, "noise level alpha", neutral=0.0,
    check=lambda v: None if v >= 0.0 else "must be >= 0", log_scale=True))
AXES.add("noise_space", Axis(
    "noise_space", str, "normalized", "noise space", allowed=("normalized", "native"), requires="noise_alpha"))
AXES.add("noise_draw", Axis(
    "noise_draw", str, "per_batch", "noise draw", allowed=("per_batch", "once"), requires="noise_alpha"))
# What the CNN is trained to predict. "scanner" is the separability diagnostic (`scanshift_ray.separability`):
# the scanner domain from the image, trained on both domains, so such a cell has no training domain of its own.
AXES.add("predict", Axis(
    "predict", str, "disease", "prediction target", allowed=("disease", "scanner"), neutral="disease"))
BOTH = "both"  # the train_domain / test_domain of a scanner-prediction row: it uses both domains


def _check_combination(values: Mapping[str, Any]) -> None:
    if values.get("noise_space") == "native" and values.get("noise_draw") == "per_batch":
        raise ScanshiftError("noise_space 'native' needs noise_draw 'once' (native noise is added before z-scoring)")
    if values.get("predict") == "scanner" and ("mix_fraction" in values or "noise_alpha" in values):
        raise ScanshiftError("predict 'scanner' trains on both scanners without mixing or noise: "
                             "drop mix_fraction / noise_alpha")


def resolve_options(values: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """The canonical options of a cell: every axis that applies, with its value, sorted by name.

    Unknown names are an error; missing axes take their defaults; axes at their neutral value and axes
    whose `requires` axis is neutral are dropped.
    """
    for name in values:
        AXES.get(name)
    full = {name: AXES.get(name).coerce(values.get(name, AXES.get(name).default)) for name in AXES}

    def applies(name: str) -> bool:
        axis = AXES.get(name)
        if axis.neutral is not None and full[name] == axis.neutral:
            return False
        return axis.requires is None or applies(axis.requires)

    active = {k: v for k, v in full.items() if applies(k)}
    _check_combination(active)
    return tuple(sorted(active.items()))


@dataclass(frozen=True)
class Training:
    """The resolved training protocol of a cell (what a profile means for one dataset)."""

    epochs: int
    batch_size: int
    lr: float
    width: float
    input_shape: tuple[int, ...]
    window: tuple[float, float] | None
    val_every: int = 1  # validation every this many epochs (and after the last); selects the best epoch

    @classmethod
    def resolve(cls, profile: Profile, spec: DatasetSpec) -> Training:
        """`profile`'s settings for `spec`: its input shape and intensity window."""
        return cls(profile.epochs, profile.batch_size, float(profile.lr), float(profile.width),
                   tuple(profile.input_shape(spec)), spec.window, profile.val_every)

    def identity(self) -> dict[str, Any]:
        """The hashed form: `val_every` only when it is not 1, so cells that validate every epoch keep the ids
        they had before the field existed."""
        out = asdict(self)
        if self.val_every == 1:
            del out["val_every"]
        return out


@dataclass(frozen=True)
class Cell:
    """One training run: a model trained on one domain, tested on both. Everything that changes a result.

    `options` holds the axes that apply (see `resolve_options`; any mapping is canonicalised here).
    `profile` only labels where `training` came from. `shared_patients` is the policy for patients found
    in both scanner domains, set only when the data has such patients.
    """

    experiment: str
    dataset: str
    train_domain: str
    seed: int
    model: str
    data_id: str
    data_source: str
    training: Training
    options: Any = ()
    profile: str = ""
    shared_patients: str | None = None
    grid: tuple[str, ...] = ()  # label: the axes the cell's experiment varies (not part of the identity)

    def __post_init__(self) -> None:
        raw = self.options.items() if isinstance(self.options, Mapping) else self.options
        object.__setattr__(self, "options", resolve_options(dict(raw)))
        if isinstance(self.training, Mapping):  # from JSON (Ray configs)
            t = dict(self.training)
            t["input_shape"] = tuple(t["input_shape"])
            t["window"] = tuple(t["window"]) if t["window"] is not None else None
            object.__setattr__(self, "training", Training(**t))
        object.__setattr__(self, "grid", tuple(self.grid))
        if self.shared_patients is not None and self.shared_patients not in SHARED_PATIENT_POLICIES:
            raise ScanshiftError(f"shared_patients must be one of {', '.join(SHARED_PATIENT_POLICIES)}")

    def option(self, name: str) -> Any:
        """The value of axis `name` for this cell (its neutral value or default when it does not apply)."""
        axis = AXES.get(name)
        found = dict(self.options)
        if name in found:
            return found[name]
        return axis.neutral if axis.neutral is not None else axis.default

    @property
    def trained_on(self) -> str:
        """The training domain as rows report it: "both" for a scanner-prediction cell, else `train_domain`."""
        return BOTH if self.option("predict") == "scanner" else self.train_domain

    def identity(self, with_seed: bool = True) -> dict[str, Any]:
        """Everything that changes the result, as canonical JSON-able values."""
        out: dict[str, Any] = {"protocol": PROTOCOL_VERSION, "experiment": self.experiment, "dataset": self.dataset,
                               "train_domain": self.train_domain, "model": self.model, "data_id": self.data_id,
                               "data_source": self.data_source, "training": self.training.identity(),
                               "options": dict(self.options)}
        if self.shared_patients is not None:
            out["shared_patients"] = self.shared_patients
        if with_seed:
            out["seed"] = self.seed
        return out

    @property
    def cell_id(self) -> str:
        """16 hex digits of SHA-1 over the canonical JSON of `identity()`."""
        return _digest(self.identity())

    @property
    def config_id(self) -> str:
        """The id of the cell's configuration: its identity without the seed (seeds of one setting share it)."""
        return _digest(self.identity(with_seed=False))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict that `Cell.from_dict` turns back into this cell."""
        return {**asdict(self), "options": dict(self.options)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Cell:
        """Inverse of `to_dict`."""
        return cls(**dict(d))

    def describe(self) -> dict[str, Any]:
        """The resolved values as flat result-row columns; axes that do not apply are their neutral value or None.

        A scanner-prediction cell trains on both domains, so its rows say train_domain "both" (its
        `train_domain` field, the dataset's first domain, only completes its identity).
        """
        t = self.training
        found = dict(self.options)
        axes = {n: found.get(n, AXES.get(n).neutral) for n in AXES}
        return {"experiment": self.experiment, "dataset": self.dataset, "train_domain": self.trained_on,
                "seed": self.seed, "model": self.model, "profile": self.profile, "data_id": self.data_id,
                "data_source": self.data_source, "protocol_version": PROTOCOL_VERSION, "epochs": t.epochs,
                "batch_size": t.batch_size, "lr": t.lr, "width": t.width, "val_every": t.val_every,
                "input_shape": "x".join(map(str, t.input_shape)),
                "window": "none" if t.window is None else f"{t.window[0]:g}..{t.window[1]:g}",
                "shared_patients": self.shared_patients or "none", "grid_axes": ",".join(self.grid), **axes,
                "cell_id": self.cell_id, "config_id": self.config_id}

    def label(self) -> str:
        """A short human name: experiment-dataset-domain-seed plus the treatment axes that apply."""
        extra = "".join(f"-{k}{v:g}" if isinstance(v, float) else f"-{v}" for k, v in self.options
                        if AXES.get(k).neutral is not None)
        return f"{self.experiment}-{self.dataset}-{self.trained_on}-s{self.seed}{extra}"


def _digest(obj: Any) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Experiment:
    """A grid. `grid` declares the axes it varies, as (axis name, values); `train_domains` None means both."""

    name: str
    datasets: tuple[str, ...]
    seeds: tuple[int, ...]
    grid: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    train_domains: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        for axis, _ in self.grid:
            AXES.get(axis)

    def axes(self) -> tuple[str, ...]:
        """The names of the axes this experiment varies."""
        return tuple(a for a, _ in self.grid)


@dataclass(frozen=True)
class Study:
    """Experiments plus the settings shared by all their cells.

    options: fixed axis values for every cell (an experiment's own grid axes override them).
    shared_patients: what to do with patients found in both scanner domains of a dataset: "error"
        (default: stop), "assign" (each to the domain with more of its samples) or "drop".
    """

    experiments: tuple[Experiment, ...]
    profile: str = "fast"
    models: Mapping[str, str] = field(default_factory=dict)  # dataset -> model override
    options: Mapping[str, Any] = field(default_factory=dict)
    shared_patients: str = "error"

    def __post_init__(self) -> None:
        if dict(resolve_options(self.options)).get("predict") == "scanner":  # also checks every axis and value
            raise ScanshiftError("predict 'scanner' is the separability experiment's grid axis, not an option of "
                                 "every cell (Table 2 needs disease cells)")
        if any(e.name == "main" and "predict" in e.axes() for e in self.experiments):
            raise ScanshiftError("the main experiment (Table 2) cannot vary predict: declare the scanner cells as "
                                 "their own experiment (see [experiments.separability] in sweeps/paper_study.toml)")
        if self.shared_patients not in SHARED_PATIENT_POLICIES:
            raise ScanshiftError(f"shared_patients must be one of {', '.join(SHARED_PATIENT_POLICIES)}")

    def dataset_keys(self) -> list[str]:
        """Every dataset any experiment of the study uses, in registry (Table 2) order."""
        return sorted({k for e in self.experiments for k in e.datasets}, key=DATASETS.names().index)


class DataRef(NamedTuple):
    """What `expand` needs to know about one dataset's shards."""

    data_id: str
    data_source: str
    n_shared_patients: int = 0  # pseudonymous ids present in both domains


EXPERIMENTS: Registry[Experiment] = Registry("experiment")
ALL_DATASETS = tuple(DATASETS.names())
APPENDIX_DATASETS = ("mri-prostate", "ct-lidc", "ct-kidney")
EXPERIMENTS.add("main", Experiment("main", ALL_DATASETS, tuple(range(10))))
EXPERIMENTS.add("mixing", Experiment("mixing", APPENDIX_DATASETS, (0, 1, 2),
                                     grid=(("mix_fraction", (0.1, 0.2, 0.3, 0.4, 0.5)),)))
EXPERIMENTS.add("noise", Experiment("noise", APPENDIX_DATASETS, (0, 1, 2),
                                    grid=(("noise_alpha", (1.0, 2.0, 3.0, 4.0, 5.0, 7.0, 10.0, 15.0, 30.0, 50.0)),)))
# Beyond the paper: how well the dataset's CNN tells the two scanners apart (one cell per dataset and seed).
EXPERIMENTS.add("separability", Experiment("separability", ALL_DATASETS, (0, 1, 2), grid=(("predict", ("scanner",)),)))


def restrict(exp: Experiment, datasets: tuple[str, ...] | None = None,
             seeds: tuple[int, ...] | None = None) -> Experiment:
    """`exp` limited to `datasets` (intersection) and with `seeds` replaced, when given."""
    if datasets is not None:
        exp = replace(exp, datasets=tuple(d for d in exp.datasets if d in datasets))
    if seeds is not None:
        exp = replace(exp, seeds=seeds)
    return exp


def expand(study: Study, data: Mapping[str, DataRef | tuple]) -> list[Cell]:
    """All cells of `study`, in a stable order. `data` maps dataset -> DataRef (or a plain tuple of it).

    A scanner-prediction cell (`predict` "scanner") trains on both domains: there is one per dataset and
    seed, whatever the training domains, with the dataset's first domain as its `train_domain`.
    """
    profile = PROFILES.get(study.profile)
    cells: list[Cell] = []
    for exp in study.experiments:
        names, values = exp.axes(), [v for _, v in exp.grid]
        for key in exp.datasets:
            spec, ref = DATASETS.get(key), DataRef(*data[key])
            training = Training.resolve(profile, spec)
            policy = study.shared_patients if ref.n_shared_patients else None
            seen: set[str] = set()
            for domain, seed, *point in itertools.product(exp.train_domains or spec.domains, exp.seeds, *values):
                options = {**study.options, **dict(zip(names, point, strict=True))}
                scanner = options.get("predict") == "scanner"
                cell = Cell(exp.name, key, spec.domains[0] if scanner else domain, seed,
                            study.models.get(key, spec.model), ref.data_id, ref.data_source, training, options,
                            study.profile, policy, names)
                if cell.cell_id not in seen:
                    seen.add(cell.cell_id)
                    cells.append(cell)
    return cells
