"""MRNet2D: MRNet (Bien et al. 2018) reduced to a single slice.

MRNet runs torchvision AlexNet `features` on each slice of an exam, global-average-pools each slice
and takes the max over slices before one linear logit. With one slice the max drops out, leaving
AlexNet features (first convolution taking 1 channel) -> global average pool -> Linear(256, 1).
At width 1 this has 2,454,465 parameters; `weights=None` always (no pretrained download).
"""

from __future__ import annotations

import torch
from torch import nn

from scanshift_ray.models import Squeeze, register, scaled


class MRNet2D(nn.Module):
    """AlexNet-features CNN for one-channel 2D slices; input (B, H, W) with H, W >= 63."""

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        c1, c2, c3, c4 = (scaled(c, width) for c in (64, 192, 384, 256))
        self.features = nn.Sequential(  # torchvision AlexNet.features with a 1-channel stem
            nn.Conv2d(1, c1, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(c1, c2, kernel_size=5, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(c2, c3, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c3, c4, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c4, c4, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c4, 1), Squeeze())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x.unsqueeze(1)))  # (B, H, W) -> (B, 1, H, W) -> (B,)


@register("mrnet2d", gpu_share=lambda shape, width: 0.25 if width < 1 else 0.5)
def mrnet2d(input_shape: tuple[int, ...], width: float) -> nn.Module:
    """MRNet2D for 2D slices of `input_shape` (H, W)."""
    if len(input_shape) != 2 or min(input_shape) < 63:
        raise ValueError(f"mrnet2d needs 2D inputs of at least 63 x 63, got {input_shape}")
    return MRNet2D(width)
