"""Training throughput of each model, and the product loop against a plain DataLoader loop.

    python benchmarks/train_throughput.py            # fast sizes, plus paper sizes with few batches
    python benchmarks/train_throughput.py --quick    # fast sizes only

For every (model, profile) it writes one HDF5 shard of random images with the shard writer, then
times, in the same process and on the same data:
  product:   `scanshift_ray.training.fit` on tensors read once from the shard (what a trial does);
  reference: a plain torch loop over `DataLoader(H5Dataset)` reading every sample from the HDF5 file
             with h5py, the usual way such a loop is written.
It prints images/second of both and their ratio (product / reference; > 1 means the product is faster).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from scanshift_ray import shards
from scanshift_ray.datasets import DATASETS
from scanshift_ray.models import build_model, to_device
from scanshift_ray.profiles import PROFILES
from scanshift_ray.training import TrainConfig, fit
from scanshift_ray.trial import resize, zscore


class H5Dataset(Dataset):
    """Reads one sample at a time from a shard with h5py (opened lazily per worker)."""

    def __init__(self, path: Path) -> None:
        self.path, self.file = path, None
        with h5py.File(path, "r") as f:
            self.n = len(f["labels"])

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.file is None:
            self.file = h5py.File(self.path, "r")
        x = torch.from_numpy(self.file["images"][i].astype(np.float32))
        x = (x - x.mean()) / (x.std() + 1e-6)
        return x, torch.tensor(float(self.file["labels"][i]))


def reference_loop(model: nn.Module, path: Path, batch: int, epochs: int) -> float:
    """Seconds for `epochs` epochs of a plain DataLoader training loop."""
    loader = DataLoader(H5Dataset(path), batch_size=batch, shuffle=True)
    opt, loss_fn = torch.optim.Adam(model.parameters(), 1e-4), nn.BCEWithLogitsLoss()
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for xb, yb in loader:
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()
    return time.perf_counter() - start


def product_loop(model: nn.Module, path: Path, shape: tuple[int, ...], batch: int, epochs: int) -> float:
    """Seconds for reading the shard once and `epochs` epochs of `training.fit`."""
    start = time.perf_counter()
    model = to_device(model, "cpu")  # what a trial does: channels-last for 2D convolutions
    shard = shards.read_shard(path)
    x = zscore(resize(np.asarray(shard.images), shape), "image")
    y = torch.from_numpy(shard.labels.astype(np.float32))
    # fit always runs a validation pass per epoch; give it 2 samples so both loops do the same work.
    fit(model, x, y, (x[:2], shard.labels[:2]), TrainConfig(epochs, batch, 1e-4, 0))
    return time.perf_counter() - start


def bench(key: str, profile_name: str, n: int, epochs: int, folder: Path) -> dict:
    """Throughput of both loops for dataset `key`'s model at `profile_name` sizes."""
    spec, profile = DATASETS.get(key), PROFILES.get(profile_name)
    shape = profile.input_shape(spec)
    rng = np.random.default_rng(0)
    path = shards.write_shard(folder / f"{key}-{profile_name}.h5", rng.normal(0, 100, (n, *shape)).astype(np.int16),
                              rng.integers(0, 2, n), [f"p{i}" for i in range(n)],
                              {"dataset": key, "domain": spec.domains[0], "modality": spec.modality,
                               "task": spec.task, "data_source": "synthetic"})
    times = {}
    for name in ("reference", "product"):
        torch.manual_seed(0)
        model = build_model(spec.model, shape, profile.width)
        times[name] = (reference_loop(model, path, profile.batch_size, epochs) if name == "reference"
                       else product_loop(model, path, shape, profile.batch_size, epochs))
    images = n * epochs
    return {"model": spec.model, "profile": profile_name, "input": "x".join(map(str, shape)),
            "product_ips": images / times["product"], "reference_ips": images / times["reference"],
            "ratio": times["reference"] / times["product"]}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark grid and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fast sizes only")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    grid = [(k, "fast", 500, 3) for k in ("ct-kidney", "ct-lidc", "ct-oropharyngeal", "xray-chest")]
    if not args.quick:
        grid += [("ct-kidney", "paper", 100, 1), ("ct-lidc", "paper", 200, 1), ("ct-oropharyngeal", "paper", 50, 1),
                 ("xray-chest", "paper", 50, 1)]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU")
    print(f"{'model':<12} {'profile':<7} {'input':<10} {'product img/s':>14} {'reference img/s':>16} {'ratio':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        for key, prof, n, epochs in grid:
            r = bench(key, prof, n, epochs, Path(tmp))
            print(f"{r['model']:<12} {r['profile']:<7} {r['input']:<10} {r['product_ips']:>14.1f} "
                  f"{r['reference_ips']:>16.1f} {r['ratio']:>6.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
