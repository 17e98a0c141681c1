"""The `scanshift` command line: thin argparse wrappers over the package's functions.

Every user-facing error is a `ScanshiftError`, printed as one line (no traceback) with exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from scanshift_ray.datasets import DATASETS
from scanshift_ray.errors import ScanshiftError
from scanshift_ray.metrics import METRICS
from scanshift_ray.profiles import DETERMINISTIC_ENV, PROFILES
from scanshift_ray.storage import is_uri
from scanshift_ray.study import AXES, EXPERIMENTS, SHARED_PATIENT_POLICIES, Study, restrict

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_SEEDS = {"fast": 3, "smoke": 2, "paper": 10}


def _csv(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def _seeds(value: str) -> tuple[int, ...]:
    """'3' -> (0, 1, 2); '0,4,7' -> (0, 4, 7)."""
    try:
        return tuple(int(v) for v in value.split(",")) if "," in value else tuple(range(int(value)))
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be a count or a comma list, got {value!r}") from None


def add_study_args(p: argparse.ArgumentParser, default_experiments: str = "main") -> None:
    """Options shared by `scanshift run` and `sweeps/full_study.py`."""
    p.add_argument("--shards", help="shard root or s3:// / gs:// URI (<root>/<key>/<domain>.h5); default: "
                   "synthetic twins generated under data/synthetic/<profile>")
    p.add_argument("--results", default="results", help="results folder or s3:// / gs:// URI (default: results)")
    p.add_argument("--tune-storage", help="Ray Tune storage_path (default <results>/_tune); shared on clusters")
    p.add_argument("--profile", default="fast", choices=PROFILES.names())
    p.add_argument("--experiments", type=_csv, default=_csv(default_experiments),
                   help=f"comma list of {', '.join(EXPERIMENTS.names())} (default: {default_experiments})")
    p.add_argument("--datasets", type=_csv, help="comma list of dataset keys (default: each experiment's own)")
    p.add_argument("--seeds", type=_seeds, help="seed count or comma list (default: 3 fast, 10 paper)")
    for name in ("normalization", "noise_space", "noise_draw"):
        axis = AXES.get(name)
        p.add_argument(f"--{name.replace('_', '-')}", choices=axis.allowed,
                       help=f"{axis.title} (default {axis.default}); same as --option {name}=VALUE")
    p.add_argument("--option", action="append", default=[], metavar="AXIS=VALUE",
                   help=f"fix an axis for every cell (repeatable); axes: {', '.join(AXES.names())}")
    p.add_argument("--shared-patients", default="error", choices=SHARED_PATIENT_POLICIES,
                   help="patients found in both scanner domains: stop (default), assign each to the domain with "
                   "more of its samples, or drop them")
    p.add_argument("--local", action="store_true", help="run cells in this process, without Ray")
    p.add_argument("--max-failures", type=int, default=2, help="retries per trial under Ray (default 2)")
    p.add_argument("--deterministic", action="store_true",
                   help="deterministic GPU kernels (slower; CPU runs are reproducible anyway)")


def study_from_args(args: argparse.Namespace) -> Study:
    """Build the declarative study from parsed options."""
    for key in args.datasets or ():
        DATASETS.get(key)  # one-line error on an unknown key
    seeds = args.seeds or tuple(range(DEFAULT_SEEDS.get(args.profile, 3)))
    exps = tuple(restrict(EXPERIMENTS.get(e), args.datasets,
                          seeds if e == "main" or args.seeds else None) for e in args.experiments)
    options = dict(_key_values(args.option, "--option"))
    for name in ("normalization", "noise_space", "noise_draw"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    return Study(exps, profile=args.profile, options=options, shared_patients=args.shared_patients)


def _key_values(items: Sequence[str], flag: str) -> list[tuple[str, str]]:
    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise ScanshiftError(f"{flag} takes NAME=VALUE, got {item!r}")
        out.append((key.strip(), value.strip()))
    return out


def cmd_run(args: argparse.Namespace) -> int:
    """Run a study and print its Table-2 summary; exit 1 when cells failed."""
    from scanshift_ray import results, runner

    study = study_from_args(args)
    if args.deterministic:  # read by every trial; Ray workers inherit the driver's environment
        os.environ[DETERMINISTIC_ENV] = "1"
    if args.shards and not args.datasets:
        study = only_present(study, args.shards)
    shard_root = args.shards or ensure_synthetic(study)
    outcome = runner.run_study(study, shard_root, args.results, "local" if args.local else "ray",
                               args.max_failures, tune_storage=args.tune_storage)
    rows = results.read_results(args.results) if results.done_cells(args.results) else None
    if rows is not None:
        rows = rows[rows["cell_id"].isin(outcome.cell_ids)]
        if (rows["experiment"] == "main").any():
            print("\n" + summary_text(rows))
    if outcome.ran:
        ideal = outcome.train_seconds / max(outcome.cpus, 1.0)
        print(f"\nran {outcome.ran} cells in {outcome.wall_seconds:.0f} s wall; training time "
              f"{outcome.train_seconds:.0f} s / {outcome.cpus:.0f} CPUs = {ideal:.0f} s "
              f"(wall / ideal = {outcome.wall_seconds / max(ideal, 1e-9):.2f})")
    for cell_id, err in outcome.failed.items():
        print(f"FAILED {cell_id}: {err}", file=sys.stderr)
    where = args.results if is_uri(args.results) else Path(args.results).resolve()
    print(f"results: {where}  ({len(outcome.failed)} failed cells)")
    return 1 if outcome.failed else 0


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
    """Generate any missing synthetic twin of `study` under data/synthetic/<profile>; return the root."""
    from scanshift_ray.synthetic.generate import write_twins

    root = root or f"data/synthetic/{study.profile}"
    made = write_twins(root, study.dataset_keys(), PROFILES.get(study.profile))
    if made:
        print(f"generated synthetic twins for {', '.join(made)} under {root}")
    return root


def cmd_synth(args: argparse.Namespace) -> int:
    """Write synthetic twins as shards."""
    from scanshift_ray.synthetic.generate import write_twins

    keys = args.datasets or tuple(DATASETS.names())
    for key in keys:
        DATASETS.get(key)
    severity = {}
    for item in args.severity or ():
        modality, _, value = item.partition("=")
        if modality not in ("CT", "MRI", "X-ray") or not value:
            raise ScanshiftError(f"--severity takes MODALITY=VALUE with MODALITY in CT, MRI, X-ray; got {item!r}")
        severity[modality] = float(value)
    made = write_twins(args.out, keys, PROFILES.get(args.profile), args.seed, severity, force=args.force)
    print(f"{len(made)} twin(s) written, {len(keys) - len(made)} already current, under {args.out}")
    return 0


def summary_text(rows: pd.DataFrame) -> str:
    """Table 2 with corrected CIs and the modality means, for the terminal; refuses pooled configurations."""
    from scanshift_ray import analysis, report, summary

    rows = report.prepare(rows)
    summary.check_pooling(rows)
    table = analysis.full_table(rows)
    mods = analysis.modality_table(table)
    lines = [summary.format_table2(table, ", ".join(sorted(rows["data_source"].astype(str).unique()))),
             "Mean delta per modality: " + ", ".join(
                 f"{m.modality} {m.mean_delta:+.3f} [{m.ci_low:+.3f}, {m.ci_high:+.3f}] (n={m.n_settings})"
                 for m in mods.itertuples()),
             "95% CI: corrected resampled t-test over seeds (Nadeau & Bengio); " + analysis.data_statement(rows)]
    flagged = table[table["n_seeds"] < analysis.MIN_SEEDS]
    if len(flagged):
        lines.append(f"{len(flagged)} setting(s) have fewer than {analysis.MIN_SEEDS} seeds: their intervals are wide")
    return "\n".join(lines)


def cmd_summary(args: argparse.Namespace) -> int:
    """Print Table 2 of a results file or folder."""
    from scanshift_ray import results, summary

    print(summary_text(summary.select(results.read_results(args.results), args.where)))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Write tables, figures and report.md/.html from result Parquet files (and their stored predictions)."""
    from scanshift_ray import report, results, summary

    rows = summary.select(report.prepare(results.read_results(args.results)), args.where)
    predictions = None
    if "cell_id" in rows.columns and (is_uri(args.results) or Path(args.results).is_dir()):
        try:
            predictions = results.read_predictions(args.results, rows)
        except ScanshiftError:
            if args.metric != "auc":
                raise
            print("note: some cells have no stored predictions; the patient-level bootstrap is left out")
    paths = report.write_report(rows, args.out, predictions, args.metric)
    print(f"wrote {len(paths)} files to {args.out}: " + ", ".join(p.name for p in paths))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    """List registered models with parameter counts at each profile's input shapes."""
    from scanshift_ray.models import build_model, count_parameters

    print(f"{'model':<12} {'profile':<7} {'dataset':<17} {'input':<14} {'parameters':>11}")
    for spec in DATASETS:
        ds = DATASETS.get(spec)
        for name in ("paper", "fast"):
            prof = PROFILES.get(name)
            shape = prof.input_shape(ds)
            n = count_parameters(build_model(ds.model, shape, prof.width))
            print(f"{ds.model:<12} {name:<7} {ds.key:<17} {'x'.join(map(str, shape)):<14} {n:>11,}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Validate every dataset's shards under a root."""
    from scanshift_ray.shards import load_domains

    if not Path(args.root).is_dir():
        raise ScanshiftError(f"shard root not found: {args.root}")
    found = [k for k in DATASETS.names() if (Path(args.root) / k).is_dir()]
    for key in found:
        loaded = load_domains(args.root, DATASETS.get(key))
        print(f"ok {key}: " + ", ".join(f"{d} {len(s)} images" for d, s in loaded.items()))
    print(f"{len(found)} dataset(s) valid under {args.root}")
    return 0


def _add_preprocess_args(p: argparse.ArgumentParser) -> None:
    from preprocessing.cli import add_arguments

    add_arguments(p)


def cmd_preprocess(args: argparse.Namespace) -> int:
    """Convert a raw dataset into shards (see `preprocessing`)."""
    from preprocessing.cli import run

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    """The `scanshift` argument parser."""
    parser = argparse.ArgumentParser(prog="scanshift", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a study (same as python sweeps/full_study.py)")
    add_study_args(run)
    run.set_defaults(func=cmd_run)
    syn = sub.add_parser("synth", help="write synthetic twins as shards")
    syn.add_argument("--out", required=True)
    syn.add_argument("--profile", default="fast", choices=PROFILES.names())
    syn.add_argument("--datasets", type=_csv)
    syn.add_argument("--seed", type=int, default=0)
    syn.add_argument("--severity", action="append", help="MODALITY=VALUE, e.g. MRI=0.8 (repeatable)")
    syn.add_argument("--force", action="store_true")
    syn.set_defaults(func=cmd_synth)
    where_help = "keep only rows whose COLUMN equals VALUE (repeatable), e.g. normalization=image"
    summ = sub.add_parser("summary", help="print Table 2 from result Parquet files")
    summ.add_argument("results")
    summ.add_argument("--where", action="append", default=[], metavar="COLUMN=VALUE", help=where_help)
    summ.set_defaults(func=cmd_summary)
    rep = sub.add_parser("report", help="tables, figures and a report from result Parquet files")
    rep.add_argument("results")
    rep.add_argument("--out", required=True)
    rep.add_argument("--where", action="append", default=[], metavar="COLUMN=VALUE", help=where_help)
    rep.add_argument("--metric", default="auc", choices=METRICS.names(),
                     help="metric of the tables and figures (from the stored predictions; default auc)")
    rep.set_defaults(func=cmd_report)
    sub.add_parser("models", help="list models and parameter counts").set_defaults(func=cmd_models)
    pre = sub.add_parser("preprocess", help="raw dataset -> shards (same as python -m preprocessing)")
    pre.set_defaults(func=cmd_preprocess)
    _add_preprocess_args(pre)
    val = sub.add_parser("validate", help="validate the shards under a root")
    val.add_argument("root")
    val.set_defaults(func=cmd_validate)
    return parser


def run_main(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    """Parse, dispatch, and turn user errors and interrupts into one-line messages."""
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ScanshiftError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted; finished cells are saved, re-run the same command to continue",
              file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `scanshift` console command."""
    return run_main(build_parser(), argv)
