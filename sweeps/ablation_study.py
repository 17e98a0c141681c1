"""Which scanner difference causes how much of the drop: the main experiment on ablated twins.

    python sweeps/ablation_study.py                                  # one ablation per modality
    python sweeps/ablation_study.py --ablate mri-field,ct-kernel --seeds 5
    python sweeps/ablation_study.py --ablate all                     # every registered ablation

For each ablation NAME: writes the twins of its modality with that difference turned off under
data/synthetic/<profile>-no-NAME (`scanshift synth --ablate NAME`), runs the main experiment on them
into <out>/NAME, makes sure the same cells exist on the default twins in --results (the default
study's folder; cells already there are not trained again), and prints and writes the ablation table
(<out>/ablation_table.md and .csv): per setting, delta with the full scanner pair, with the ablated
pair, and the paired change. Synthetic only: it says which simulated difference the simulated drop
comes from, nothing about real scanners.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from scanshift_ray import ablation, results
from scanshift_ray.cli import OneLineParser, run_main
from scanshift_ray.cli import main as scanshift
from scanshift_ray.cli_run import csv
from scanshift_ray.datasets import DATASETS
from scanshift_ray.errors import ScanshiftError
from scanshift_ray.profiles import PROFILES
from scanshift_ray.runner import dataset_refs
from scanshift_ray.study import EXPERIMENTS, Study, expand, restrict
from scanshift_ray.synthetic.ablations import ABLATIONS, check
from scanshift_ray.synthetic.generate import write_twins

DEFAULT_ABLATIONS = ("mri-field", "mri-denoising", "ct-kernel", "xray-processing", "xray-detector")


def _datasets(name: str) -> list[str]:
    modality = ABLATIONS.get(name).modality
    return [k for k in EXPERIMENTS.get("main").datasets if DATASETS.get(k).modality == modality]


def _run(shards: str, out: str, datasets: list[str], args: argparse.Namespace) -> None:
    argv = ["run", "--shards", shards, "--results", out, "--experiments", "main", "--datasets", ",".join(datasets),
            "--seeds", str(args.seeds), "--profile", args.profile, *(["--local"] if args.local else [])]
    if scanshift(argv) != 0:
        raise ScanshiftError(f"the run into {out} did not finish; re-run the same command to continue")


def _cell_ids(shards: str, datasets: list[str], args: argparse.Namespace) -> set[str]:
    """The ids of the cells `_run` runs: a reused folder may also hold other cells of the same settings
    (other seeds, or an older protocol of the profile), which are not part of this comparison."""
    study = Study((restrict(EXPERIMENTS.get("main"), tuple(datasets), tuple(range(args.seeds))),),
                  profile=args.profile)
    return {c.cell_id for c in expand(study, dataset_refs(study, shards))}


def _rows(folder: str, ids: set[str]) -> pd.DataFrame:
    rows = results.read_results(folder)
    return rows[rows["cell_id"].isin(ids)]


def cmd_ablation(args: argparse.Namespace) -> int:
    """Run every ablation named and write the table."""
    names = tuple(ABLATIONS.names()) if args.ablate == ("all",) else check(args.ablate)
    profile = PROFILES.get(args.profile)
    ablated: dict[str, pd.DataFrame] = {}
    full: set[str] = set()  # cell ids on the default twins; two ablations of one modality share them
    default = f"data/synthetic/{profile.name}"
    for name in names:
        datasets = _datasets(name)
        root = f"{default}-no-{name}"
        write_twins(root, datasets, profile, ablate=(name,))
        write_twins(default, datasets, profile)
        _run(default, args.results, datasets, args)
        _run(root, f"{args.out}/{name}", datasets, args)
        ablated[name] = _rows(f"{args.out}/{name}", _cell_ids(root, datasets, args))
        full |= _cell_ids(default, datasets, args)
    table = ablation.ablation_table(_rows(args.results, full), ablated)
    text = ablation.format_table(table)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "ablation_table.md").write_text(text + "\n")
    table.to_csv(Path(args.out) / "ablation_table.csv", index=False)
    print(text)
    print(f"written to {args.out}/ablation_table.md (synthetic twins: illustrates the simulator, not real scanners)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse `argv` and run the ablations."""
    parser = OneLineParser(prog="ablation_study", description=__doc__.splitlines()[0])
    parser.add_argument("--ablate", type=csv, default=DEFAULT_ABLATIONS,
                        help=f"comma list of ablations or 'all' (default {','.join(DEFAULT_ABLATIONS)}); "
                             f"known: {', '.join(ABLATIONS.names())}")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 of the main experiment (default 3)")
    parser.add_argument("--profile", default="fast", choices=PROFILES.names(), help="run profile (default fast)")
    parser.add_argument("--results", default="results", help="the default study's results folder (default results)")
    parser.add_argument("--out", default="results-ablation", help="folder of the ablated runs and the table")
    parser.add_argument("--local", action="store_true", help="run cells in this process, without Ray")
    parser.set_defaults(func=cmd_ablation)
    return run_main(parser, argv)


if __name__ == "__main__":
    sys.exit(main())
