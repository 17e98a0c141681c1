"""`python -m preprocessing <key> --raw <raw_dir> --out <shard_root>` (also `scanshift preprocess`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from preprocessing import converters  # noqa: F401  (registers the converters)
from preprocessing.core import CONVERTERS, KEY_ENV, convert, secret_key
from preprocessing.output import summary
from scanshift_ray.datasets import DATASETS
from scanshift_ray.errors import ScanshiftError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The preprocessing options (shared with `scanshift preprocess`)."""
    parser.add_argument("key", help=", ".join(DATASETS.names()))
    parser.add_argument("--raw", required=True, type=Path, help="the dataset as downloaded")
    parser.add_argument("--out", required=True, type=Path, help="shard root; writes <out>/<key>/<domain>.h5")
    parser.add_argument("--pseudonym-key", help=f"secret key for patient pseudonyms (else ${KEY_ENV})")
    parser.add_argument("--workers", type=int, help="processes (default: one per core)")
    parser.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                        help="converter option, repeatable; see README \"Preprocessing\" or the converter module")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace shards in --out that were made with other converter options")


def run(args: argparse.Namespace) -> int:
    """Convert one dataset and print where the shards went."""
    DATASETS.get(args.key)
    if args.key not in CONVERTERS:
        raise ScanshiftError(f"no converter for {args.key} yet (available: {', '.join(CONVERTERS.names())})")
    if not args.raw.is_dir():
        raise ScanshiftError(f"raw directory not found: {args.raw}")
    manifest = convert(args.key, args.raw, args.out, secret_key(args.pseudonym_key), args.option, args.workers,
                       overwrite=getattr(args, "overwrite", False))
    for line in summary(manifest):
        print(line)
    print(f"wrote {manifest.parent}/*.h5 and {manifest}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; user errors are one line with exit status 2."""
    parser = argparse.ArgumentParser(prog="python -m preprocessing", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except ScanshiftError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
