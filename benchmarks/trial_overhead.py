"""How much of a fast-profile trial is not training: data preparation, per-epoch validation, final evaluation.

    python benchmarks/trial_overhead.py [--shards data/synthetic/fast] [--datasets ...]

Runs one fast-profile main cell per dataset on the synthetic twins (generated first when missing),
one thread as under Ray, and prints per trial the seconds and the share of its wall time spent in
data preparation (`prep_seconds`), the per-epoch validation passes with their AUCs (`val_seconds`),
the final evaluation of validation and test sets at two epochs (`eval_seconds`) and the rest
(model construction, optimizer set-up, best-epoch weight copies), all read from the result rows the
trial itself writes. Two shares of the trial's wall time, both from the same run:

    per-epoch  (prep + val) / wall: data preparation and the per-epoch validation passes with their
               AUCs, the share issue #15 bounds at 5 %;
    non-train  1 - train / wall: everything outside the training loop (adds the final evaluation and
               the rest, e.g. the first trial of a process importing torch._dynamo in Adam's constructor).
"""

from __future__ import annotations

import argparse
import sys

import torch

from scanshift_ray import shards
from scanshift_ray.datasets import DATASETS
from scanshift_ray.profiles import PROFILES
from scanshift_ray.runner import dataset_refs
from scanshift_ray.study import EXPERIMENTS, Study, expand, restrict
from scanshift_ray.synthetic.generate import write_twins
from scanshift_ray.trial import run_trial


def main(argv: list[str] | None = None) -> int:
    """Run the trials and print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shards", default="data/synthetic/fast")
    p.add_argument("--datasets", default=",".join(DATASETS.names()))
    args = p.parse_args(argv)
    keys = tuple(args.datasets.split(","))
    write_twins(args.shards, keys, PROFILES.get("fast"))
    torch.set_num_threads(1)
    study = Study((restrict(EXPERIMENTS.get("main"), keys, (0,)),), profile="fast")
    cells = [c for c in expand(study, dataset_refs(study, args.shards)) if c.train_domain == DATASETS.get(
        c.dataset).domains[0]]
    print(f"{'dataset':<17} {'wall s':>7} {'train':>6} {'prep':>6} {'val':>6} {'eval':>6} {'rest':>6}  "
          f"{'per-epoch':>9} {'non-train':>9}")
    shares: list[tuple[float, float]] = []
    for cell in cells:
        r = run_trial(cell, shards.load_domains(args.shards, DATASETS.get(cell.dataset))).rows[0]
        wall = r["wall_seconds"]
        rest = wall - r["train_seconds"] - r["prep_seconds"] - r["val_seconds"] - r["eval_seconds"]
        shares.append(((r["prep_seconds"] + r["val_seconds"]) / wall, 1 - r["train_seconds"] / wall))
        print(f"{cell.dataset:<17} {wall:7.2f} {r['train_seconds']:6.2f} {r['prep_seconds']:6.2f} "
              f"{r['val_seconds']:6.2f} {r['eval_seconds']:6.2f} {rest:6.2f}  {100 * shares[-1][0]:7.1f} % "
              f"{100 * shares[-1][1]:7.1f} %", flush=True)
    per_epoch, non_train = (100 * sum(s[i] for s in shares) / len(shares) for i in (0, 1))
    print(f"mean per-epoch share (prep + val) {per_epoch:.1f} % (target 5 %), non-training share {non_train:.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
