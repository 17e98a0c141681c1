"""FLOPs and projected GPU time of every training of the paper study under the paper profile.

    python benchmarks/paper_cost.py                                  # paper study, 8 x H100 at 30 %
    python benchmarks/paper_cost.py --gpus 16 --utilization 0.2
    python benchmarks/paper_cost.py --peak-tflops 65 --gpus 4        # one g4dn.12xlarge (4 x T4, FP16)
    python benchmarks/paper_cost.py --samples ct-hnscc=80000 --samples xray-chest:3=9000

The cells come from the study file (`sweeps/paper_study.toml` by default) expanded under the profile
(`paper` by default), so epochs, batch size, models and input shapes are the product's own. Per
(model, input shape) torch's FLOP counter (`torch.utils.flop_counter.FlopCounterMode`) counts, once, on
the CPU with small real tensors:
    train:    forward + backward of the BCE loss of one training batch, per sample;
    forward:  a no-grad forward in eval mode (validation and test predictions), per sample.
It counts convolution and matrix-multiply FLOPs (2 per multiply-add); BatchNorm, ReLU, pooling, the
loss and the Adam update are not counted (memory-bound, a small share of the arithmetic). Counts are
taken at a batch of 2 and scaled to per-sample values: FLOPs of these models are exactly linear in the
batch, which the script checks once at the training batch size on the cheapest model.

A cell costs epochs x train samples x train + validated epochs (every `val_every`-th and the last) x
validation samples x forward, plus the evaluations after
training (validation and both test sets, at the last and at the best epoch: `trial.run_trial`).
Real sample counts need real data, which is not here: the per-dataset counts below are taken from the
paper and `../shared/reference/datasets.md` where they state them, the rest is assumed, and every count
can be overridden with --samples. The script prints which numbers are assumed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from scanshift_ray.datasets import DATASETS
from scanshift_ray.models import build_model, count_parameters, to_device
from scanshift_ray.study import Cell, DataRef, expand
from scanshift_ray.studyfile import parse_study, read_study_file
from scanshift_ray.training import TrainConfig

MEASURE_BATCH = 2  # samples per counted batch; FLOPs per sample do not depend on it (checked in `check_linearity`)
# NVIDIA H100 SXM5 datasheet: BF16 Tensor Core 1,979 TFLOP/s "shown with sparsity; specifications 1/2
# lower without sparsity", i.e. 989.4 TFLOP/s dense (2:4 sparsity does not apply to these dense CNNs).
H100_SXM_DENSE_BF16_TFLOPS = 989.0
DEFAULT_UTILIZATION = 0.3
DEFAULT_GPUS = 8
SPLIT = (2 / 3, 1 / 6, 1 / 6)  # train / val / test of each domain, by patient (paper-2409.04368.md:67)


@dataclass(frozen=True)
class DatasetSize:
    """How many samples a dataset has over both domains, and where the numbers come from.

    units: what the references count (patients, studies or images); per_unit: samples of one unit
    (2D slices per patient for slice datasets, 1 for crops and radiographs).
    """

    units: int
    per_unit: int
    stated: str
    assumed: str

    @property
    def samples(self) -> int:
        """Samples over both domains."""
        return self.units * self.per_unit


# No reference gives per-domain counts: every dataset is split evenly between its two domains (this does
# not change any total: see `cell_samples`). Paths are relative to ../shared/reference/.
PAPER_SIZES: dict[str, DatasetSize] = {
    # datasets.md:20 "210 subjects" (C4KC-KiTS); the arterial series' slice count is not stated.
    "ct-kidney": DatasetSize(210, 200, "210 subjects (datasets.md:20)", "200 arterial slices per patient"),
    # No count of LIDC nodules rated 1 or 5 in the references.
    "ct-lidc": DatasetSize(1000, 1, "no count in the references", "1,000 nodule crops rated 1 or 5"),
    # paper-2409.04368.md:101 "approximately 400 patients ... with around 200-600 slice images per patient".
    "ct-hnscc": DatasetSize(400, 400, "~400 patients, 200-600 slices each (paper:101)",
                            "400 slices per patient (the middle of 200-600)"),
    # datasets.md:40 "606 patients, 605 with an RTSTRUCT" (OPC-Radiomics); one GTV-centred crop each.
    "ct-oropharyngeal": DatasetSize(605, 1, "605 patients with an RTSTRUCT (datasets.md:40)",
                                    "one crop per patient, none dropped for unknown HPV status"),
    # paper-2409.04368.md:103 "1,476 patients"; datasets.md:59 "1476 patients / 1500 studies" (slices per study).
    "mri-prostate": DatasetSize(1500, 24, "1,476 patients (paper:103) / 1,500 studies (datasets.md:59)",
                                "24 axial T2W slices per study"),
    # datasets.md:73 "IDs Breast_MRI_001…922" (Duke); one box-centred crop per patient.
    "mri-breast": DatasetSize(922, 1, "922 patients (datasets.md:73)", "one crop per patient, none dropped"),
    # paper-2409.04368.md:107 "24,959 chest radiographs" (BRAX).
    "xray-chest": DatasetSize(24959, 1, "24,959 radiographs (paper:107)",
                              "all of them (the frontal-view and label filters would drop some)"),
}


@dataclass(frozen=True)
class ModelFlops:
    """FLOPs per sample of one (model, input shape): a training step (forward + backward) and an evaluation."""

    train: float
    forward: float


@dataclass(frozen=True)
class CellSamples:
    """Samples one cell processes: per epoch (train, val) and once after training (final)."""

    train: int  # source training split plus mixed-in target images, one pass per epoch
    val: int  # source validation split, one pass per epoch
    final: int  # validation + both test sets, at the last and at the best epoch


@dataclass
class Row:
    """Cost of the cells of one (experiment, dataset, model, input shape)."""

    experiment: str
    dataset: str
    model: str
    shape: str
    cells: int = 0
    samples_per_epoch: int = 0  # summed over the cells
    flops: float = 0.0  # summed over the cells

    def add(self, samples_per_epoch: int, flops: float) -> None:
        """Count one more cell."""
        self.cells += 1
        self.samples_per_epoch += samples_per_epoch
        self.flops += flops


def count_flops(model: nn.Module, x: torch.Tensor, train: bool) -> int:
    """FLOPs FlopCounterMode counts for batch `x` (B, *shape) -> logits (B,).

    train: forward + backward of BCE-with-logits in train mode (what one step of `training.fit` runs
    before the optimizer); else a no-grad forward in eval mode (what `training.predict` runs).
    """
    counter = FlopCounterMode(display=False)
    if train:
        model.train()
        with counter:
            loss = nn.functional.binary_cross_entropy_with_logits(model(x).float(), torch.zeros(len(x)))
            loss.backward()
        model.zero_grad(set_to_none=True)
    else:
        model.eval()
        with torch.no_grad(), counter:
            model(x)
    return int(counter.get_total_flops())


def _model(name: str, input_shape: tuple[int, ...], width: float) -> nn.Module:
    torch.manual_seed(0)
    return to_device(build_model(name, input_shape, width), "cpu")


@cache
def model_flops(name: str, input_shape: tuple[int, ...], width: float, batch: int = MEASURE_BATCH) -> ModelFlops:
    """Per-sample FLOPs of registered model `name` at `input_shape`, counted once per argument tuple."""
    model, x = _model(name, input_shape, width), torch.randn(batch, *input_shape)
    return ModelFlops(count_flops(model, x, train=True) / batch, count_flops(model, x, train=False) / batch)


def check_linearity(name: str, input_shape: tuple[int, ...], width: float, batch: int) -> None:
    """Raise unless training and evaluation FLOPs at `batch` are exactly batch / MEASURE_BATCH times those
    at MEASURE_BATCH (what scaling a counted batch of 2 to batches of 50 relies on)."""
    model, x = _model(name, input_shape, width), torch.randn(batch, *input_shape)
    small = model_flops(name, input_shape, width)
    for train, per_sample in ((True, small.train), (False, small.forward)):
        got = count_flops(model, x, train)
        if got != per_sample * batch:
            raise SystemExit(f"FLOPs of {name} {input_shape} are not linear in the batch: {got} at {batch}, "
                             f"{per_sample * MEASURE_BATCH:.0f} at {MEASURE_BATCH}")


def split_sizes(n: int) -> tuple[int, int, int]:
    """(train, val, test) samples of a domain with `n` samples: 2/3, 1/6, the rest (as `splits` cuts patients)."""
    train, val = int(round(n * SPLIT[0])), int(round(n * SPLIT[1]))
    return train, val, n - train - val


def cell_samples(n_source: int, n_target: int, mix_fraction: float = 0.0) -> CellSamples:
    """The samples of a cell trained on a domain of `n_source` samples and also tested on one of `n_target`.

    Every count is linear in n_source or n_target (up to rounding), and each domain trains in as many
    cells as the other, so a study's total depends on a dataset's total samples, not on their split.
    """
    s_train, s_val, s_test = split_sizes(n_source)
    mixed = int(round(mix_fraction / (1.0 - mix_fraction) * s_train)) if mix_fraction > 0 else 0  # mix_indices
    return CellSamples(s_train + mixed, s_val, 2 * (s_val + s_test + split_sizes(n_target)[2]))


def cell_flops(samples: CellSamples, flops: ModelFlops, epochs: int, val_every: int = 1) -> float:
    """FLOPs of one cell: `epochs` of training, a validation pass after every `val_every`-th epoch and the
    last (`TrainConfig.validates`), then the final evaluations."""
    validated = sum(TrainConfig(epochs, 1, 0.0, 0, val_every=val_every).validates(e) for e in range(1, epochs + 1))
    return epochs * samples.train * flops.train + (validated * samples.val + samples.final) * flops.forward


def cell_model_flops(cell: Cell) -> ModelFlops:
    """`model_flops` of the model and input shape a cell trains."""
    return model_flops(cell.model, cell.training.input_shape, cell.training.width)


def cost_rows(cells: Iterable[Cell], sizes: Mapping[str, Mapping[str, int]],
              flops: Callable[[Cell], ModelFlops] = cell_model_flops) -> list[Row]:
    """One Row per (experiment, dataset, model, input shape), in the order of `cells`.

    sizes: dataset -> domain -> samples.
    """
    rows: dict[tuple[str, str, str, str], Row] = {}
    for cell in cells:
        domains = sizes[cell.dataset]
        target = DATASETS.get(cell.dataset).other_domain(cell.train_domain)
        samples = cell_samples(domains[cell.train_domain], domains[target], cell.option("mix_fraction"))
        key = (cell.experiment, cell.dataset, cell.model, "x".join(map(str, cell.training.input_shape)))
        rows.setdefault(key, Row(*key)).add(samples.train, cell_flops(samples, flops(cell), cell.training.epochs,
                                                                       cell.training.val_every))
    return list(rows.values())


def wall_seconds(total_flops: float, peak_tflops: float, utilization: float, gpus: int) -> float:
    """Seconds `gpus` GPUs of `peak_tflops` take for `total_flops` at `utilization` of peak, perfectly packed."""
    return total_flops / (peak_tflops * 1e12 * utilization * gpus)


def parse_override(text: str) -> tuple[str, str | None, int]:
    """`KEY=N` (a dataset's total, split evenly) or `KEY:DOMAIN=N` (one domain) -> (key, domain or None, N)."""
    name, sep, value = text.partition("=")
    key, colon, domain = name.partition(":")
    if not sep or not value.strip().isdigit() or int(value) <= 0:
        raise argparse.ArgumentTypeError(f"--samples takes KEY=N or KEY:DOMAIN=N with N > 0, got {text!r}")
    if key not in DATASETS:
        raise argparse.ArgumentTypeError(f"unknown dataset {key!r} (known: {', '.join(DATASETS.names())})")
    domains = DATASETS.get(key).domains
    if colon and domain not in domains:
        raise argparse.ArgumentTypeError(f"{key} has domains {', '.join(domains)}, got {domain!r}")
    return key, (domain if colon else None), int(value)


def domain_sizes(defaults: Mapping[str, DatasetSize],
                 overrides: Sequence[tuple[str, str | None, int]] = ()) -> dict[str, dict[str, int]]:
    """dataset -> domain -> samples: each default total split evenly, then the overrides in order."""
    def even(key: str, n: int) -> dict[str, int]:
        first, second = DATASETS.get(key).domains
        return {first: n - n // 2, second: n // 2}

    out = {key: even(key, size.samples) for key, size in defaults.items()}
    for key, domain, n in overrides:
        if domain is None:
            out[key] = even(key, n)
        else:
            out.setdefault(key, even(key, 0))[domain] = n
    return out


def si(value: float) -> str:
    """`value` with an SI prefix, 3 significant digits: 3.06e16 -> '30.6 P'."""
    for exponent, prefix in ((18, "E"), (15, "P"), (12, "T"), (9, "G"), (6, "M"), (3, "k")):
        if abs(value) >= 10.0 ** exponent:
            return f"{value / 10.0 ** exponent:.3g} {prefix}"
    return f"{value:.3g} "


def study_cells(study_file: str | None, profile: str) -> list[Cell]:
    """Every cell of the study file under `profile`; data ids are placeholders (no shards are read)."""
    study = parse_study(read_study_file(study_file), profile=profile)
    return expand(study, {key: DataRef("assumed-sizes", "real") for key in study.dataset_keys()})


def print_assumptions(keys: Sequence[str], sizes: Mapping[str, Mapping[str, int]], overridden: set[str]) -> None:
    """What the sample counts rest on, dataset by dataset."""
    print("Assumed sample counts (override with --samples KEY=N or KEY:DOMAIN=N):")
    for key in keys:
        size, counts = PAPER_SIZES[key], sizes[key]
        split = " / ".join(f"{d} {n:,}" for d, n in counts.items())
        if key in overridden:
            print(f"  {key:17s} {sum(counts.values()):>9,}  ({split})  from --samples")
            continue
        unit = f"{size.units:,} x {size.per_unit}" if size.per_unit > 1 else f"{size.units:,}"
        print(f"  {key:17s} {sum(counts.values()):>9,} = {unit}  ({split})  stated: {size.stated}; "
              f"assumed: {size.assumed}")
    print("  every domain: an even share of its dataset where no per-domain count is stated (totals do not "
          "depend on it);\n  splits 2/3 train, 1/6 validation, 1/6 test of each domain's samples "
          "(paper-2409.04368.md:67; the real split is by patient).")


def print_models(cells: Sequence[Cell], batch: int) -> None:
    """Per (model, input shape): parameters and counted FLOPs."""
    print(f"\nFLOPs per sample (FlopCounterMode on the CPU, counted at batch {MEASURE_BATCH}; conv + matmul only):")
    print(f"  {'model':12s} {'input':9s} {'params':>10s} {'forward':>10s} {'train':>10s} {'train/fwd':>9s} "
          f"{f'step@{batch}':>10s}")
    seen: set[tuple[str, tuple[int, ...], float]] = set()
    for cell in cells:
        key = (cell.model, cell.training.input_shape, cell.training.width)
        if key in seen:
            continue
        seen.add(key)
        f = model_flops(*key)
        params = count_parameters(build_model(*key))
        print(f"  {key[0]:12s} {'x'.join(map(str, key[1])):9s} {params:>10,} {si(f.forward):>9s}F {si(f.train):>9s}F "
              f"{f.train / f.forward:>9.2f} {si(f.train * batch):>9s}F")


def print_table(rows: Sequence[Row]) -> float:
    """The cost table; returns the grand total of FLOPs."""
    total = sum(r.flops for r in rows)
    print(f"\n{'experiment':10s} {'dataset':17s} {'model':12s} {'input':9s} {'cells':>5s} {'samples/epoch':>13s} "
          f"{'FLOP/cell':>10s} {'total':>10s} {'share':>6s}")
    for r in rows:
        print(f"{r.experiment:10s} {r.dataset:17s} {r.model:12s} {r.shape:9s} {r.cells:>5d} "
              f"{r.samples_per_epoch / r.cells:>13,.0f} {si(r.flops / r.cells):>9s}F {si(r.flops):>9s}F "
              f"{100 * r.flops / total:>5.1f}%")
    print(f"{'total':10s} {'':17s} {'':12s} {'':9s} {sum(r.cells for r in rows):>5d} {'':13s} {'':10s} "
          f"{si(total):>9s}F {100.0:>5.1f}%")
    print("samples/epoch and FLOP/cell: means over the row's cells (both training domains, every grid value); "
          "a cell also validates every epoch and evaluates val + both tests twice at the end.")
    return total


def print_projection(total: float, peak_tflops: float, utilization: float, gpus: int) -> None:
    """The projected wall time on `gpus` GPUs."""
    seconds = wall_seconds(total, peak_tflops, utilization, gpus)
    gpu_hours = seconds * gpus / 3600
    print(f"\nprojected wall time: {seconds / 3600:.2f} h ({seconds / 86400:.2f} days) on {gpus} GPU(s) at "
          f"{peak_tflops:g} TFLOP/s peak x {utilization:.0%} utilisation = {gpu_hours:.1f} GPU-hours "
          f"for {total:.3e} FLOPs (perfect packing; data loading, checkpoints and start-up not included)")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--study", default=None, help="study file (default: sweeps/paper_study.toml)")
    p.add_argument("--profile", default="paper", help="run profile the cells are expanded under (default: paper)")
    p.add_argument("--samples", action="append", type=parse_override, default=[], metavar="KEY[:DOMAIN]=N",
                   help="samples of a dataset (split evenly between its domains) or of one domain; repeatable")
    p.add_argument("--peak-tflops", type=float, default=H100_SXM_DENSE_BF16_TFLOPS,
                   help="peak TFLOP/s of one GPU in the training precision (default: %(default)g, H100 SXM dense "
                        "BF16; a T4 is 65 in FP16)")
    p.add_argument("--utilization", type=float, default=DEFAULT_UTILIZATION,
                   help="achieved fraction of --peak-tflops (default: %(default)g). Small CNNs reach far below "
                        "peak: their convolutions (1-channel first layers, 5x47x47 crops, 64-256 channels) are "
                        "too small to fill a large GPU's SMs and tensor cores, kernel launches and Python "
                        "per step dominate at batch 50, BatchNorm/ReLU/pooling are memory-bound and uncounted, "
                        "3D convolutions have slower kernels, and every step syncs for the loss value. "
                        "Packing several trials per GPU (Ray gpu_share) recovers some of it.")
    p.add_argument("--gpus", type=int, default=DEFAULT_GPUS, help="GPUs working in parallel (default: %(default)s)")
    args = p.parse_args(argv)
    if not 0 < args.utilization <= 1 or args.peak_tflops <= 0 or args.gpus < 1:
        p.error("--utilization must be in (0, 1], --peak-tflops > 0 and --gpus >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Print the assumptions, the per-model FLOPs, the cost table and the projected wall time."""
    args = parse_args(argv)
    start = time.perf_counter()
    cells = study_cells(args.study, args.profile)
    keys = list(dict.fromkeys(c.dataset for c in cells))
    sizes = domain_sizes({k: PAPER_SIZES[k] for k in keys}, args.samples)
    print(f"{len(cells)} cells of {args.study or 'sweeps/paper_study.toml'} under profile {args.profile!r}\n")
    print_assumptions(keys, sizes, {key for key, _, _ in args.samples})
    batch = cells[0].training.batch_size
    print_models(cells, batch)
    cheapest = min({(c.model, c.training.input_shape, c.training.width) for c in cells},
                   key=lambda k: model_flops(*k).train)
    check_linearity(*cheapest, batch=batch)
    print(f"  linearity checked: {cheapest[0]} {'x'.join(map(str, cheapest[1]))} counted at batch {batch} has "
          f"exactly {batch / MEASURE_BATCH:g} x its FLOPs at batch {MEASURE_BATCH} (train and forward)")
    total = print_table(cost_rows(cells, sizes))
    print_projection(total, args.peak_tflops, args.utilization, args.gpus)
    print(f"(counted in {time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
