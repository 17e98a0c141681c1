"""`scanshift run` / `python sweeps/full_study.py`: a study file plus flags -> a sweep (thin CLI layer).

Both run the same thing: the study file given (default `sweeps/paper_study.toml`, the paper's three
experiments), with flags overriding what it says.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from scanshift_ray import runner
from scanshift_ray.datasets import DATASETS
from scanshift_ray.errors import ScanshiftError
from scanshift_ray.profiles import DETERMINISTIC_ENV, PROFILES
from scanshift_ray.storage import is_uri
from scanshift_ray.study import AXES, SHARED_PATIENT_POLICIES, Experiment, Study, restrict


def csv(value: str) -> tuple[str, ...]:
    """'a, b' -> ('a', 'b')."""
    return tuple(v.strip() for v in value.split(",") if v.strip())


def _nonneg_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {value!r}")
    return n


def _pos_int(value: str) -> int:
    n = _nonneg_int(value)
    if n == 0:
        raise argparse.ArgumentTypeError("must be >= 1")
    return n


def _pos_float(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        x = 0.0
    if not x > 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {value!r}")
    return x


def add_study_args(p: argparse.ArgumentParser) -> None:
    """Options shared by `scanshift run` and `sweeps/full_study.py`."""
    p.add_argument("study", nargs="?", help="study file (TOML; default sweeps/paper_study.toml: the paper's "
                   "main, mixing and noise experiments)")
    p.add_argument("--shards", help="shard root or s3:// / gs:// URI (<root>/<key>/<domain>.h5); default: "
                   "synthetic twins generated under data/synthetic/<profile>")
    p.add_argument("--results", default="results", help="results folder or s3:// / gs:// URI (default: results)")
    p.add_argument("--tune-storage", help="Ray Tune storage_path (default <results>/_tune); shared on clusters")
    p.add_argument("--profile", choices=PROFILES.names(), help="run profile (default: the study file's)")
    p.add_argument("--experiments", type=csv, help="comma list: run only these experiments of the study file")
    p.add_argument("--datasets", type=csv, help=f"comma list of dataset keys ({', '.join(DATASETS.names())}); "
                   "default: each experiment's own")
    p.add_argument("--seeds", help="seeds of every experiment run: a count (3 -> 0,1,2), a comma list, or "
                   "EXPERIMENT=COUNT pairs (main=10,mixing=3); default: the study file's")
    p.add_argument("--model", action="append", default=[], metavar="DATASET=MODEL",
                   help="train MODEL on DATASET instead of the study file's choice (repeatable; see scanshift models)")
    for name in ("normalization", "noise_space", "noise_draw"):
        axis = AXES.get(name)
        p.add_argument(f"--{name.replace('_', '-')}", choices=axis.allowed,
                       help=f"{axis.title} (default {axis.default}); same as --option {name}=VALUE")
    p.add_argument("--option", action="append", default=[], metavar="AXIS=VALUE",
                   help=f"fix an axis for every cell (repeatable); axes: {', '.join(AXES.names())}")
    p.add_argument("--shared-patients", choices=SHARED_PATIENT_POLICIES,
                   help="patients found in both scanner domains: stop (default), assign each to the domain with "
                   "more of its samples, or drop them")
    p.add_argument("--local", action="store_true", help="run cells in this process, without Ray")
    p.add_argument("--max-failures", type=_nonneg_int, default=2, help="retries per trial under Ray (default 2)")
    p.add_argument("--max-concurrent", type=_pos_int, help="at most this many trials at once (default: as many "
                   "as the CPUs and GPU shares allow)")
    p.add_argument("--gpus-per-trial", type=_pos_float, help="GPU share of every trial (default: each model's "
                   "own, e.g. 0.25 for the fast profile's small models)")
    p.add_argument("--checkpoint-every", type=_nonneg_int, help="epochs between training-state checkpoints under "
                   "Ray, so a lost node or a killed driver resumes a trial (default: the profile's, 10 for paper, "
                   "0 = none for the short fast trials)")
    p.add_argument("--deterministic", action="store_true",
                   help="deterministic GPU kernels (slower; CPU runs are reproducible anyway)")
    p.add_argument("--dry-run", action="store_true", help="print the grid (cells done / to run per experiment), "
                   "the resources per trial and a wall-time estimate, then stop")
    p.add_argument("--verbose", action="store_true", help="also print the workers' logs")
    p.add_argument("--tracker", choices=("mlflow", "wandb", "tensorboard"),
                   help="also log every trial through Ray Tune's logger callback: mlflow (file store under "
                   "<results>/_mlflow unless MLFLOW_TRACKING_URI), wandb (offline), tensorboard (<results>/_tune)")


def key_values(items: Sequence[str], flag: str) -> list[tuple[str, str]]:
    """['a=1', 'b=2'] -> [('a', '1'), ('b', '2')], or a one-line error naming `flag`."""
    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ScanshiftError(f"{flag} takes NAME=VALUE, got {item!r}")
        out.append((key.strip(), value.strip()))
    return out


def _seed_overrides(text: str | None, names: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """`--seeds` as experiment -> seeds."""
    if text is None:
        return {}

    def parse(v: str) -> tuple[int, ...]:
        try:
            seeds = tuple(int(s) for s in v.split("+")) if "+" in v else tuple(range(int(v)))
        except ValueError:
            raise ScanshiftError(f"--seeds takes a count, a comma list or EXPERIMENT=COUNT, got {text!r}") from None
        if not seeds or min(seeds) < 0:
            raise ScanshiftError(f"--seeds needs at least one seed >= 0, got {text!r}")
        return seeds

    if "=" in text:
        pairs = key_values(text.split(","), "--seeds")
        unknown = [k for k, _ in pairs if k not in names]
        if unknown:
            raise ScanshiftError(f"--seeds names experiment(s) {', '.join(unknown)} not in the study "
                                 f"({', '.join(names)})")
        return {k: parse(v) for k, v in pairs}
    seeds = parse(text.replace(",", "+")) if "," in text else parse(text)
    return dict.fromkeys(names, seeds)


def study_from_args(args: argparse.Namespace) -> Study:
    """The study file (default: the paper's) with the command line's overrides applied."""
    from scanshift_ray.studyfile import parse_study, read_study_file

    study = parse_study(read_study_file(args.study), args.profile)
    exps: tuple[Experiment, ...] = study.experiments
    names = [e.name for e in exps]
    if args.experiments:
        unknown = [e for e in args.experiments if e not in names]
        if unknown:
            raise ScanshiftError(f"experiment(s) {', '.join(unknown)} not in the study; it has {', '.join(names)}")
        exps = tuple(e for e in exps if e.name in args.experiments)
    for key in args.datasets or ():
        DATASETS.get(key)  # one-line error listing the known keys
    seeds = _seed_overrides(args.seeds, [e.name for e in exps])
    exps = tuple(restrict(e, args.datasets, seeds.get(e.name)) for e in exps)
    exps = tuple(e for e in exps if e.datasets)
    if not exps:
        raise ScanshiftError("the grid is empty: no experiment of the study uses any of the datasets "
                             f"{', '.join(args.datasets or ())}")
    models = {**study.models, **dict(key_values(args.model, "--model"))}
    options = {**study.options, **dict(key_values(args.option, "--option"))}
    for name in ("normalization", "noise_space", "noise_draw"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    return Study(exps, profile=study.profile, models=models, options=options,
                 shared_patients=args.shared_patients or study.shared_patients)


def _check_models(study: Study) -> None:
    from scanshift_ray.models import MODELS

    for key, model in study.models.items():
        DATASETS.get(key)
        MODELS.get(model)


def cmd_run(args: argparse.Namespace) -> int:
    """Run a study and print its Table-2 summary; exit 1 when cells failed."""
    from scanshift_ray import results
    from scanshift_ray.cli import summary_text

    study = study_from_args(args)
    _check_models(study)
    if args.deterministic:  # read by every trial; Ray workers inherit the driver's environment
        os.environ[DETERMINISTIC_ENV] = "1"
    if args.shards and not args.datasets:
        study = only_present(study, args.shards)
    shard_root = args.shards or ensure_synthetic(study)
    backend = "local" if args.local else "ray"
    if args.tracker and args.local:
        raise ScanshiftError("--tracker works through Ray Tune's callbacks: drop --local")
    if args.dry_run:
        return dry_run(study, shard_root, args.results, backend, args)
    outcome = runner.run_study(study, shard_root, args.results, backend, args.max_failures,
                               tune_storage=args.tune_storage, gpus_per_trial=args.gpus_per_trial,
                               max_concurrent=args.max_concurrent, verbose=2 if args.verbose else 1,
                               checkpoint_every=args.checkpoint_every, tracker=args.tracker)
    rows = results.read_results(args.results) if results.done_cells(args.results) else None
    if rows is not None:
        rows = rows[rows["cell_id"].isin(outcome.cell_ids)]
        if (rows["experiment"] == "main").any():
            print("\n" + summary_text(rows))
    if outcome.ran:
        print("\n" + efficiency_line(outcome))
    for cell_id, err in outcome.failed.items():
        print(f"FAILED {cell_id}: {err}", file=sys.stderr)
    where = args.results if is_uri(args.results) else Path(args.results).resolve()
    print(f"results: {where}  ({len(outcome.failed)} failed cells)")
    return 1 if outcome.failed else 0


def efficiency_line(outcome: runner.StudyOutcome) -> str:
    """How close the sweep came to the ideal: wall / (sum of the trials' wall seconds / CPUs).

    A trial's wall seconds run from its start to its rows (data preparation, training, evaluation,
    writing); the ideal is those seconds spread perfectly over the CPUs, so the ratio measures the
    scheduler's overhead and idle slots, not the trials' own. The training loops' share is beside it.
    """
    ideal = outcome.trial_seconds / max(outcome.cpus, 1.0)
    if ideal <= 0:  # no trial timing came back (e.g. every cell was already written by an earlier attempt)
        return f"ran {outcome.ran} cells in {outcome.wall_seconds:.0f} s wall (no trial timings)"
    ratio = outcome.wall_seconds / ideal
    return (f"ran {outcome.ran} cells in {outcome.wall_seconds:.0f} s wall; the trials took "
            f"{outcome.trial_seconds:.0f} s ({outcome.train_seconds:.0f} s of it in training loops) on "
            f"{outcome.cpus:.0f} CPUs: ideal {ideal:.0f} s, wall / ideal = {ratio:.2f}")


def dry_run(study: Study, shard_root: str, results_dir: str, backend: str, args: argparse.Namespace) -> int:
    """Print what a run would do: the plan, and the resources each kind of trial asks for."""
    from scanshift_ray.plan import trial_resources

    todo, cells, text = runner.plan_study(study, shard_root, results_dir, backend, args.gpus_per_trial,
                                          args.max_concurrent)
    print(text)
    kinds = {(c.dataset, c.model, "x".join(map(str, c.training.input_shape))): c for c in cells}
    print("resources per trial (CPU, GPU share when GPUs are present):")
    for (dataset, model, shape), cell in kinds.items():
        res = trial_resources(cell, True, args.gpus_per_trial)
        print(f"  {dataset:<17} {model:<12} {shape:<9} CPU {res['CPU']:g}, GPU {res['GPU']:g}")
    print(f"dry run: nothing trained ({len(todo)} cells would run)")
    return 0


def only_present(study: Study, root: str) -> Study:
    """`study` limited to the datasets with shards under `root` (what `--shards` without `--datasets` means)."""
    from scanshift_ray.shards import has_any_shard

    if not is_uri(root) and not Path(root).is_dir():
        raise ScanshiftError(f"shard root not found: {root}")
    keys = study.dataset_keys()
    present = tuple(k for k in keys if has_any_shard(root, DATASETS.get(k)))
    if not present:
        raise ScanshiftError(f"no shards under {root} for any of {', '.join(keys)} "
                             "(expected <root>/<key>/<domain>.h5)")
    if len(present) < len(keys):
        print(f"shards found for {', '.join(present)}; skipping {', '.join(k for k in keys if k not in present)}")
    exps = tuple(restrict(e, present) for e in study.experiments)
    return replace(study, experiments=tuple(e for e in exps if e.datasets))


def ensure_synthetic(study: Study, root: str | None = None) -> str:
    """Generate any missing synthetic twin of `study` under data/synthetic/<profile>; return the root.

    On a Ray cluster of several nodes the twins would exist on this machine only, so the run stops
    here and asks for a shared `--shards` instead.
    """
    from scanshift_ray.synthetic.generate import write_twins

    if os.environ.get("RAY_ADDRESS"):
        raise ScanshiftError("RAY_ADDRESS is set (a cluster): generate the twins where every node sees them "
                             "(scanshift synth --out SHARED/DIR) and pass --shards SHARED/DIR or an s3:// URI")
    root = root or f"data/synthetic/{study.profile}"
    made = write_twins(root, study.dataset_keys(), PROFILES.get(study.profile))
    if made:
        print(f"generated synthetic twins for {', '.join(made)} under {root}")
    return root
