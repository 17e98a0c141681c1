"""The training protocol, in one place: Adam, BCE-with-logits, fixed epochs, validation every
`val_every` epochs and after the last.

Data lives on the device as whole tensors (the datasets of this study fit in memory), so an epoch is
a loop over index slices with no DataLoader, worker processes or per-sample Python.
On a GPU, mixed precision is on by default (`amp_dtype`: bfloat16 autocast where the GPU supports it
natively, else float16 with a GradScaler); the CPU always runs in float32. `deterministic` asks torch
for deterministic kernels (bit-reproducible on the CPU anyway).
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from scanshift_ray.metrics import rank_auc


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
    checkpoint_every: int = 0  # epochs between training-state checkpoints; 0: none
    val_every: int = 1  # validate after epochs val_every, 2 * val_every, ... and after the last epoch

    def __post_init__(self) -> None:
        if self.val_every < 1:
            raise ValueError(f"val_every must be >= 1, got {self.val_every}")

    def validates(self, epoch: int) -> bool:
        """Whether the validation AUC is computed after `epoch` (1-based)."""
        return epoch % self.val_every == 0 or epoch == self.epochs


def pick_device(requested: str | None = None) -> torch.device:
    """`requested` if given, else the GPU Ray or the user made visible, else the CPU."""
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def amp_dtype(device_type: str, amp: bool = True) -> torch.dtype | None:
    """The autocast dtype of mixed precision on `device_type`, or None for none (the CPU, or `amp` off).

    bfloat16 on GPUs with native support (compute capability >= 8: A100, H100, ...); it keeps float32's
    exponent range, so the loss needs no scaling. float16 elsewhere (T4, V100), with a GradScaler. The
    emulated bfloat16 that `is_bf16_supported()` also reports by default (slow, no cuDNN convolutions on
    such GPUs) does not count.
    """
    if not amp or device_type != "cuda" or not torch.cuda.is_available():
        return None
    try:
        native = torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # torch versions without the argument report native support only
        native = torch.cuda.is_bf16_supported()
    return torch.bfloat16 if native else torch.float16


def auc_or_nan(labels: np.ndarray, scores: np.ndarray) -> tuple[float, str]:
    """ROC AUC, or (NaN, reason) when it is undefined (one class, or non-finite scores).

    The Mann-Whitney rank sum (`metrics.rank_auc`): the exact rational AUC rounded once, so equal AUCs
    of two epochs are equal floats (the earliest wins the tie), and about 50x cheaper than sklearn's
    trapezoid, which differs from it in the last bits (< 1e-15).
    """
    classes = np.unique(labels)
    if len(labels) == 0:
        return float("nan"), "empty test set"
    if len(classes) < 2:
        return float("nan"), f"test set has only class {int(classes[0])}"
    if not np.isfinite(scores).all():
        return float("nan"), "non-finite model outputs"
    return rank_auc(labels, scores), ""


@torch.inference_mode()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """Logits of `model` for every sample of `x` (N, ...), as float64 numpy (N,)."""
    model.eval()
    out = [model(x[i:i + batch_size]).float() for i in range(0, len(x), batch_size)]
    return torch.cat(out).double().cpu().numpy() if out else np.zeros(0)


@dataclass
class FitResult:
    """Per-epoch history, and the weights of the validated epoch with the best validation AUC."""

    history: list[dict]
    best_epoch: int  # 1-based; among validated epochs the highest AUC, earliest on ties; last epoch if all NaN
    best_state: dict[str, torch.Tensor]


def _train_epoch(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig, opt: torch.optim.Optimizer,
                 scaler: torch.amp.GradScaler, gen: torch.Generator, dtype: torch.dtype | None) -> float:
    """One pass over (x, y) in shuffled batches, autocast to `dtype` (None: none); returns the mean loss."""
    loss_fn, device, total = nn.BCEWithLogitsLoss(), x.device, 0.0
    model.train()
    order = torch.randperm(len(x), generator=gen).to(device)
    for i in range(0, len(x), cfg.batch_size):
        idx = order[i:i + cfg.batch_size]
        xb = x[idx]
        if cfg.noise_alpha > 0:
            xb = xb + cfg.noise_alpha * torch.randn(xb.shape, generator=gen).to(device)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = loss_fn(model(xb).float(), y[idx])
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        total += float(loss.detach()) * len(idx)
    return total / len(x)


def _state(epoch: int, model: nn.Module, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
           gen: torch.Generator, history: list[dict], best: tuple[float, int, dict]) -> dict:
    """Everything the rest of a fit depends on, so a resumed fit ends exactly as an uninterrupted one.

    A deep copy: state_dict() tensors are the live parameters, which go on training after this call.
    """
    return copy.deepcopy({
        "epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict(), "scaler": scaler.state_dict(),
        "generator": gen.get_state(), "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "history": list(history), "best": best})


def _restore(state: dict, model: nn.Module, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
             gen: torch.Generator) -> tuple[int, list[dict], tuple[float, int, dict]]:
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    if state["scaler"]:  # empty when saved without float16 scaling (CPU, bf16): nothing to restore
        scaler.load_state_dict(state["scaler"])
    gen.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return int(state["epoch"]), list(state["history"]), state["best"]


def fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, val: tuple[torch.Tensor, np.ndarray],
        cfg: TrainConfig, on_epoch: Callable[[dict, dict | None], None] | None = None,
        resume: dict | None = None) -> FitResult:
    """Train `model` on (x (N, ...), y (N,)); after every `cfg.val_every`-th epoch and the last compute the
    validation AUC on `val` (other epochs record NaN, note "not validated").

    The weights of the best validated epoch are kept in memory, so test sets are evaluated only twice
    (best and last epoch) instead of after every epoch. Every `cfg.checkpoint_every` epochs (but the
    last) `on_epoch` also gets the full training state to save; `resume` continues from such a state.
    """
    torch.manual_seed(cfg.seed)
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # required by deterministic cuBLAS
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)
    dtype = amp_dtype(x.device.type, cfg.amp)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)  # bfloat16 needs no loss scaling
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    history: list[dict] = []
    best_state: dict[str, torch.Tensor] = {}
    done, best_auc, best_epoch = 0, -np.inf, 0
    if resume is not None:
        done, history, (best_auc, best_epoch, best_state) = _restore(resume, model, opt, scaler, gen)
    for epoch in range(done + 1, cfg.epochs + 1):
        start = time.perf_counter()
        loss = _train_epoch(model, x, y, cfg, opt, scaler, gen, dtype)
        seconds, val_start = time.perf_counter() - start, time.perf_counter()
        auc, note = float("nan"), "not validated"
        if cfg.validates(epoch):
            with torch.autocast(x.device.type, dtype=dtype, enabled=dtype is not None):
                auc, note = auc_or_nan(val[1], predict(model, val[0]))
        history.append({"epoch": epoch, "loss": loss, "seconds": seconds, "auc_val": auc, "note_val": note,
                        "val_seconds": time.perf_counter() - val_start})
        if np.isfinite(auc) and auc > best_auc:
            best_auc, best_epoch = auc, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        due = cfg.checkpoint_every > 0 and epoch % cfg.checkpoint_every == 0 and epoch < cfg.epochs
        if on_epoch is not None:
            on_epoch(history[-1], _state(epoch, model, opt, scaler, gen, history, (best_auc, best_epoch, best_state))
                     if due else None)
    if not best_state:  # every validation AUC was NaN: report the last epoch
        best_epoch, best_state = cfg.epochs, {k: v.detach().clone() for k, v in model.state_dict().items()}
    return FitResult(history, best_epoch, best_state)
