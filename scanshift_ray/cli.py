"""The `scanshift` command line: thin argparse wrappers over the package's functions.

Every user-facing error is a `ScanshiftError`, printed as one line (no traceback) with exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from scanshift_ray import __version__
from scanshift_ray.cli_run import add_study_args, cmd_run, csv
from scanshift_ray.datasets import DATASETS
from scanshift_ray.errors import ScanshiftError
from scanshift_ray.metrics import METRICS
from scanshift_ray.profiles import PROFILES
from scanshift_ray.storage import is_uri

if TYPE_CHECKING:
    import pandas as pd

def _ablation_names() -> list[str]:
    from scanshift_ray.synthetic.ablations import ABLATIONS
    return ABLATIONS.names()


def cmd_synth(args: argparse.Namespace) -> int:
    """Write synthetic twins as shards."""
    from scanshift_ray.synthetic.generate import write_twins

    if args.provenance:
        from scanshift_ray.synthetic.provenance import table
        print(table())
        return 0
    if not args.out:
        raise ScanshiftError("scanshift synth needs --out DIR (the shard root to write)")
    keys = args.datasets or tuple(DATASETS.names())
    for key in keys:
        DATASETS.get(key)
    severity = {}
    for item in args.severity or ():
        modality, _, value = item.partition("=")
        if modality not in ("CT", "MRI", "X-ray") or not value:
            raise ScanshiftError(f"--severity takes MODALITY=VALUE with MODALITY in CT, MRI, X-ray; got {item!r}")
        severity[modality] = float(value)
    made = write_twins(args.out, keys, PROFILES.get(args.profile), args.seed, severity, force=args.force,
                       ablate=tuple(args.ablate or ()))
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
    root = _results_root(args.results)
    if "cell_id" in rows.columns and root is not None:
        try:
            predictions = results.read_predictions(root, rows)
        except ScanshiftError:
            if args.metric != "auc":
                raise
            print("note: some cells have no stored predictions; the patient-level bootstrap is left out")
    elif args.metric != "auc":
        raise ScanshiftError(f"--metric {args.metric} needs the stored predictions: give the results folder "
                             f"that holds _predictions/ (not {args.results})")
    paths = report.write_report(rows, args.out, predictions, args.metric)
    if args.shards:  # the shift atlas beside the tables, from the same shards
        from scanshift_ray.atlas import write_atlas

        keys = sorted(set(rows["dataset"].astype(str)))
        paths += write_atlas(args.shards, args.out, profile=args.atlas_profile, datasets=keys)
        report.link_atlas(args.out)
    print(f"wrote {len(paths)} files to {args.out}: " + ", ".join(p.name for p in paths))
    return 0


def _results_root(path: str) -> str | None:
    """The results folder holding `_predictions` for `path` (the folder itself or, for an experiment
    subfolder or one cell file, the folder above), or None when there is none."""
    if is_uri(path):
        return path
    for cand in (Path(path), Path(path).parent, Path(path).parent.parent):
        if (cand / "_predictions").is_dir():
            return str(cand)
    return None


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
    """Validate every dataset's shards under a root (a folder or an s3:// / gs:// / file:// URI)."""
    from scanshift_ray.shards import has_any_shard, load_domains

    if not is_uri(args.root) and not Path(args.root).is_dir():
        raise ScanshiftError(f"shard root not found: {args.root}")
    found = [k for k in DATASETS.names() if has_any_shard(args.root, DATASETS.get(k))]
    if not found:
        raise ScanshiftError(f"no shards under {args.root} (expected <root>/<key>/<domain>.h5 for a key of "
                             f"{', '.join(DATASETS.names())})")
    for key in found:
        loaded = load_domains(args.root, DATASETS.get(key), verify=True)
        print(f"ok {key}: " + ", ".join(f"{d} {len(s)} images" for d, s in loaded.items()))
    print(f"{len(found)} dataset(s) valid under {args.root}")
    return 0


def cmd_atlas(args: argparse.Namespace) -> int:
    """Write the shift atlas (example images, histograms, distances per dataset) from shards alone."""
    from scanshift_ray.atlas import write_atlas

    paths = write_atlas(args.shards, args.out, profile=args.profile, datasets=args.datasets or None,
                        n_examples=args.examples, seed=args.seed)
    print(f"wrote {len(paths)} files to {args.out}: " + ", ".join(p.name for p in paths))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Compact a results folder into one Parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from scanshift_ray import results

    rows = results.read_results(args.results)
    out = Path(args.out)
    if out.is_dir():
        raise ScanshiftError(f"{out} is a folder; give the path of the Parquet file to write")
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(rows, preserve_index=False), out)
    print(f"wrote {len(rows)} rows of {rows['cell_id'].nunique() if 'cell_id' in rows else '?'} cells to {out}")
    return 0


def _add_preprocess_args(p: argparse.ArgumentParser) -> None:
    from preprocessing.cli import add_arguments

    add_arguments(p)


def cmd_preprocess(args: argparse.Namespace) -> int:
    """Convert a raw dataset into shards (see `preprocessing`)."""
    from preprocessing.cli import run

    return run(args)


class OneLineParser(argparse.ArgumentParser):
    """argparse with its errors as one line (`prog: error: ...`, exit 2), like every other user error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The `scanshift` argument parser."""
    parser = OneLineParser(prog="scanshift", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"scanshift-ray {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a study (same as python sweeps/full_study.py)")
    add_study_args(run)
    run.set_defaults(func=cmd_run)
    syn = sub.add_parser("synth", help="write synthetic twins as shards")
    syn.add_argument("--out", help="shard root to write <key>/<domain>.h5 under (required)")
    syn.add_argument("--profile", default="fast", choices=PROFILES.names(), help="twin size (default fast)")
    syn.add_argument("--datasets", type=csv, help=f"comma list of {', '.join(DATASETS.names())} (default all)")
    syn.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    syn.add_argument("--severity", action="append", help="MODALITY=VALUE, e.g. MRI=0.8 (repeatable)")
    syn.add_argument("--force", action="store_true", help="rewrite twins that are already current")
    syn.add_argument("--ablate", action="append", metavar="NAME",
                     help="turn one physical difference between the scanners off (repeatable): "
                          f"{', '.join(_ablation_names())}")
    syn.add_argument("--provenance", action="store_true",
                     help="print where every scanner parameter comes from (markdown) and exit")
    syn.set_defaults(func=cmd_synth)
    where_help = "keep only rows whose COLUMN equals VALUE (repeatable), e.g. normalization=image"
    summ = sub.add_parser("summary", help="print Table 2 from result Parquet files")
    summ.add_argument("results", help="result Parquet file or folder (or URI)")
    summ.add_argument("--where", action="append", default=[], metavar="COLUMN=VALUE", help=where_help)
    summ.set_defaults(func=cmd_summary)
    rep = sub.add_parser("report", help="tables, figures and a report from result Parquet files")
    rep.add_argument("results", help="result Parquet file or folder (or URI)")
    rep.add_argument("--out", required=True, help="folder for the tables, figures and report")
    rep.add_argument("--where", action="append", default=[], metavar="COLUMN=VALUE", help=where_help)
    rep.add_argument("--metric", default="auc", choices=METRICS.names(),
                     help="metric of the tables and figures (from the stored predictions; default auc)")
    rep.add_argument("--shards", help="shard root of these results: also write the shift atlas into the report")
    rep.add_argument("--atlas-profile", default="fast", choices=PROFILES.names(),
                     help="profile whose input size and normalisation the atlas shows (default fast)")
    rep.set_defaults(func=cmd_report)
    atl = sub.add_parser("atlas", help="shift atlas from shards alone: example images, histograms, distances")
    atl.add_argument("shards", help="shard root folder or URI")
    atl.add_argument("--out", required=True, help="folder for atlas.md, the figures and atlas_distances.csv")
    atl.add_argument("--profile", default="fast", choices=PROFILES.names(),
                     help="show images at this profile's input size and normalisation (default fast)")
    atl.add_argument("--datasets", type=csv, help=f"comma list of {', '.join(DATASETS.names())} (default: all "
                     "with shards)")
    atl.add_argument("--examples", type=int, default=4, help="example images per domain and label (default 4)")
    atl.add_argument("--seed", type=int, default=0, help="which examples and pixels (default 0)")
    atl.set_defaults(func=cmd_atlas)
    sub.add_parser("models", help="list models and parameter counts").set_defaults(func=cmd_models)
    pre = sub.add_parser("preprocess", help="raw dataset -> shards (same as python -m preprocessing)")
    pre.set_defaults(func=cmd_preprocess)
    _add_preprocess_args(pre)
    val = sub.add_parser("validate", help="validate the shards under a root (checks their content hashes)")
    val.add_argument("root", help="shard root folder or s3:// / gs:// / file:// URI")
    val.set_defaults(func=cmd_validate)
    exp = sub.add_parser("export", help="compact a results folder into one Parquet file")
    exp.add_argument("results", help="results folder or URI")
    exp.add_argument("out", help="the Parquet file to write")
    exp.set_defaults(func=cmd_export)
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
