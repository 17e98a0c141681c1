"""The paper's study (arXiv 2409.04368) as one sweep: Table 2 plus the appendix grids.

    python sweeps/full_study.py                       # all three experiments, synthetic twins, fast profile
    python sweeps/full_study.py --experiments main    # Table 2 only
    python sweeps/full_study.py --shards /data/shards --profile paper

The grid itself is declared in `scanshift_ray.study.EXPERIMENTS` (main: 7 datasets x 2 training
domains x 10 seeds; mixing: f in 0.1..0.5; noise: alpha in 1..50); options narrow it. Re-running the
same command trains nothing new; cells already in the results folder are skipped.
"""

from __future__ import annotations

import argparse
import sys

from scanshift_ray.cli import add_study_args, cmd_run, run_main


def main(argv: list[str] | None = None) -> int:
    """Run the study with the command-line options in `argv`."""
    parser = argparse.ArgumentParser(prog="full_study", description=__doc__.splitlines()[0])
    add_study_args(parser, default_experiments="main,mixing,noise")
    parser.set_defaults(func=cmd_run)
    return run_main(parser, argv)


if __name__ == "__main__":
    sys.exit(main())
