"""The training protocol, in one place: Adam, BCE-with-logits, fixed epochs, per-epoch evaluation.

Data lives on the device as whole tensors (the datasets of this study fit in memory), so an epoch is
a loop over index slices with no DataLoader, worker processes or per-sample Python.
On a GPU, mixed precision (float16 autocast) is on by default; `deterministic` asks torch for
deterministic kernels (bit-reproducible on the CPU anyway).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import nn


@dataclass(frozen=True)
class TrainConfig:
    """How to train. `noise_alpha` > 0 adds alpha * N(0, 1) to every training batch (fresh draws)."""

    epochs: int
    batch_size: int
    lr: float
    seed: int
    noise_alpha: float = 0.0
    amp: bool = True
    deterministic: bool = False


def pick_device(requested: str | None = None) -> torch.device:
    """`requested` if given, else the GPU Ray or the user made visible, else the CPU."""
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def auc_or_nan(labels: np.ndarray, scores: np.ndarray) -> tuple[float, str]:
    """ROC AUC, or (NaN, reason) when it is undefined (one class, or non-finite scores)."""
    classes = np.unique(labels)
    if len(labels) == 0:
        return float("nan"), "empty test set"
    if len(classes) < 2:
        return float("nan"), f"test set has only class {int(classes[0])}"
    if not np.isfinite(scores).all():
        return float("nan"), "non-finite model outputs"
    return float(roc_auc_score(labels, scores)), ""


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """Logits of `model` for every sample of `x` (N, ...), as float64 numpy (N,)."""
    model.eval()
    out = [model(x[i:i + batch_size]).float() for i in range(0, len(x), batch_size)]
    return torch.cat(out).double().cpu().numpy() if out else np.zeros(0)


EvalSets = Mapping[str, tuple[torch.Tensor, np.ndarray]]


def fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eval_sets: EvalSets, cfg: TrainConfig,
        on_epoch: Callable[[dict], None] | None = None) -> list[dict]:
    """Train `model` on (x (N, ...), y (N,)) and evaluate AUC on `eval_sets` after every epoch.

    Returns one dict per epoch: epoch (1-based), loss, seconds, and `auc_<name>` per eval set.
    """
    torch.manual_seed(cfg.seed)
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    device = x.device
    use_amp = cfg.amp and device.type == "cuda"
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    loss_fn = nn.BCEWithLogitsLoss()
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    history = []
    for epoch in range(1, cfg.epochs + 1):
        start, total = time.perf_counter(), 0.0
        model.train()
        order = torch.randperm(len(x), generator=gen).to(device)
        for i in range(0, len(x), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            xb = x[idx]
            if cfg.noise_alpha > 0:
                noise = torch.randn(xb.shape, generator=gen).to(device)
                xb = xb + cfg.noise_alpha * noise
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                loss = loss_fn(model(xb).float(), y[idx])
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            total += float(loss.detach()) * len(idx)
        record: dict[str, float | str] = {"epoch": epoch, "loss": total / len(x),
                                          "seconds": time.perf_counter() - start}
        for name, (ex, ey) in eval_sets.items():
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                record[f"auc_{name}"], record[f"note_{name}"] = auc_or_nan(ey, predict(model, ex))
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
    return history
