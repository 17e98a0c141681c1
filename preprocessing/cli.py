"""`python -m preprocessing <key> --raw <raw_dir> --out <shard_root>`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from scanshift_ray.datasets import DATASETS
from scanshift_ray.errors import ScanshiftError

CONVERTERS: dict[str, object] = {}  # dataset key -> converter; filled as converters are written


def convert(key: str, raw: Path, out: Path) -> None:
    """Convert raw dataset `key` under `raw` into shards under `out`."""
    DATASETS.get(key)
    if not raw.is_dir():
        raise ScanshiftError(f"raw directory not found: {raw}")
    if key not in CONVERTERS:
        raise ScanshiftError(f"no converter for {key} yet; write shards in the scanshift_ray.shards format "
                             "or use the synthetic twins (scanshift synth)")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; user errors are one line with exit status 2."""
    parser = argparse.ArgumentParser(prog="python -m preprocessing")
    parser.add_argument("key", help=", ".join(DATASETS.names()))
    parser.add_argument("--raw", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        convert(args.key, args.raw, args.out)
    except ScanshiftError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    return 0
