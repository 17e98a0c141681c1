"""The model registry: one file per model family, each registering a builder by name.

A builder takes the model input shape ((H, W) or (D, H, W), single channel) and a width multiplier
(1.0 = the paper architecture) and returns an `nn.Module` mapping a batch (B, *shape) to logits (B,).
Beside its builder each model declares the share of one GPU a trial of it needs (Ray packs trials
by it); adding a model is one file with `@register(name, gpu_share=...)` plus its import below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from scanshift_ray.registry import Registry

Builder = Callable[[tuple[int, ...], float], nn.Module]
GpuShare = Callable[[tuple[int, ...], float], float]


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its builder and the GPU share of one trial at (input shape, width)."""

    build: Builder
    gpu_share: GpuShare


MODELS: Registry[ModelSpec] = Registry("model")


def register(name: str, gpu_share: GpuShare) -> Callable[[Builder], Builder]:
    """Decorator: register a builder under `name` with its GPU share."""
    def add(build: Builder) -> Builder:
        MODELS.add(name, ModelSpec(build, gpu_share))
        return build
    return add


def build_model(name: str, input_shape: tuple[int, ...], width: float = 1.0) -> nn.Module:
    """Build registered model `name` for single-channel inputs of `input_shape`."""
    return MODELS.get(name).build(tuple(input_shape), width)


def gpu_share(name: str, input_shape: tuple[int, ...], width: float) -> float:
    """The fraction of one GPU a trial of model `name` asks for (in (0, 1])."""
    return float(MODELS.get(name).gpu_share(tuple(input_shape), width))


def to_device(model: nn.Module, device: torch.device | str) -> nn.Module:
    """Move `model` to `device`, in channels-last memory format when all its convolutions are 2D.

    oneDNN (CPU) and cuDNN (tensor cores) both run 2D convolutions faster on NHWC tensors: measured
    here 1.2-1.75x per training step on the CPU (benchmarks/train_throughput.py). Outputs equal the
    NCHW ones up to float rounding. 3D models stay in the default format (channels_last is 4D only).
    """
    model = model.to(device)
    if _all_convs_2d(model):
        model = model.to(memory_format=torch.channels_last)
    return model


def _all_convs_2d(model: nn.Module) -> bool:
    return all(m.weight.ndim == 4 for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd))


def as_model_input(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`x` (N, ...) stored in the memory format the first convolution of `model` (from `to_device`) reads.

    A channels-last model given 4D inputs (NoduleX-2D: slices as channels, (N, D, H, W)) converts each
    batch to NHWC in its first convolution. An evaluation set stored so once spares that copy in every
    validation pass: measured 1.4x faster NoduleX-2D forward passes on the CPU (benchmarks/trial_overhead.py),
    with bit-identical logits (the convolution reads the same NHWC values). 3D inputs (N, H, W), which the
    2D models unsqueeze to one channel, and the inputs of 3D models are returned as they are.
    """
    convs = [m for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd)]
    if x.ndim != 4 or not convs or not _all_convs_2d(model):
        return x
    if not convs[0].weight.is_contiguous(memory_format=torch.channels_last):
        return x  # a model left in NCHW (not moved by `to_device`) reads NCHW inputs best
    return x.contiguous(memory_format=torch.channels_last)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def scaled(channels: int, width: float) -> int:
    """Channel count scaled by `width`, at least 4."""
    return max(4, int(round(channels * width)))


class Squeeze(nn.Module):
    """(B, 1) logits -> (B,)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.squeeze(-1)


# Registration happens on import of each family module.
from scanshift_ray.models import densenet, mrnet, nodulex  # noqa: E402,F401
