"""The paper's study (arXiv 2409.04368) as one sweep: Table 2 plus the appendix grids.

    python sweeps/full_study.py                       # sweeps/paper_study.toml: main, mixing, noise
    python sweeps/full_study.py my_study.toml         # another study file
    python sweeps/full_study.py --experiments main    # Table 2 only
    python sweeps/full_study.py --dry-run             # what would run, and how long it should take
    python sweeps/full_study.py --shards /data/shards --profile paper

Exactly `scanshift run` with the same arguments. The grid is declared in the study file
(`sweeps/paper_study.toml`: main: 7 datasets x 2 training domains x seeds; mixing: f in 0.1..0.5;
noise: alpha in 1..50); flags override it. Re-running the same command trains nothing new; cells
already in the results folder are skipped.
"""

from __future__ import annotations

import sys

from scanshift_ray.cli import OneLineParser, run_main
from scanshift_ray.cli_run import add_study_args, cmd_run


def main(argv: list[str] | None = None) -> int:
    """Run the study with the command-line options in `argv`."""
    parser = OneLineParser(prog="full_study", description=__doc__.splitlines()[0])
    add_study_args(parser)
    parser.set_defaults(func=cmd_run)
    return run_main(parser, argv)


if __name__ == "__main__":
    sys.exit(main())
