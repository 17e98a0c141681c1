"""NoduleX-style CNNs for 3D crops (Causey et al. 2018, `jcausey-astate/NoduleX_code`).

What is known of the original: `keras_retrain_model.py` trains a *2D* CNN on 47 x 47 crops with the
5 slices as input channels (`img_channels=5`), Adadelta, 2-class softmax. The network definition
(`CNN47.json`) is not public; the training script's augmentation block is copied from Keras'
`cifar10_cnn.py`, whose network we therefore adopt: Conv32-Conv32-Pool-(Dropout .25)-Conv64-Conv64-
Pool-(Dropout .25)-Dense512-(Dropout .5). Choices made here: one logit trained with BCE (the
paper's protocol), and for deep crops (e.g. the 72^3 oropharyngeal cube) a 3D variant with the same
blocks as Conv3d (kernel 3), pooling (1, 2, 2) while depth <= 8, then global average pooling and
Linear(64, 1). Both are "NoduleX-style", not copies. `weights=None`: trained from scratch.
"""

from __future__ import annotations

import torch
from torch import nn

from scanshift_ray.models import Squeeze, register, scaled

MAX_CHANNEL_DEPTH = 8  # crops up to this many slices go through the 2D (slices-as-channels) network


class NoduleX2D(nn.Module):
    """Slices as channels: input (B, D, H, W) with D <= 8."""

    def __init__(self, input_shape: tuple[int, int, int], width: float) -> None:
        super().__init__()
        depth, height, wid = input_shape
        c1, c2, dense = scaled(32, width), scaled(64, width), scaled(512, width)
        self.features = nn.Sequential(
            nn.Conv2d(depth, c1, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c1, c1, 3), nn.ReLU(inplace=True), nn.MaxPool2d(2), nn.Dropout(0.25),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c2, c2, 3), nn.ReLU(inplace=True), nn.MaxPool2d(2), nn.Dropout(0.25),
        )
        flat = c2 * (((height - 2) // 2 - 2) // 2) * (((wid - 2) // 2 - 2) // 2)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(flat, dense), nn.ReLU(inplace=True),
                                  nn.Dropout(0.5), nn.Linear(dense, 1), Squeeze())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _block3d(cin: int, cout: int, depth: int) -> tuple[nn.Sequential, int]:
    pool = (1, 2, 2) if depth <= 8 else (2, 2, 2)
    block = nn.Sequential(nn.Conv3d(cin, cout, 3, padding=1), nn.ReLU(inplace=True),
                          nn.Conv3d(cout, cout, 3, padding=1), nn.ReLU(inplace=True),
                          nn.MaxPool3d(pool), nn.Dropout(0.25))
    return block, depth // pool[0]


class NoduleX3D(nn.Module):
    """3D variant for deep crops: input (B, D, H, W)."""

    def __init__(self, input_shape: tuple[int, int, int], width: float) -> None:
        super().__init__()
        c1, c2 = scaled(32, width), scaled(64, width)
        b1, depth = _block3d(1, c1, input_shape[0])
        b2, _ = _block3d(c1, c2, depth)
        self.features = nn.Sequential(b1, b2)
        self.head = nn.Sequential(nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(c2, 1), Squeeze())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x.unsqueeze(1)))  # (B, D, H, W) -> (B, 1, D, H, W)


# Scaled-down models pack four to a GPU; 72^3 cubes at paper width need a whole one.
@register("nodulex", gpu_share=lambda shape, width: 0.25 if width < 1 else 1.0 if shape[0] > 32 else 0.5)
def nodulex(input_shape: tuple[int, ...], width: float) -> nn.Module:
    """NoduleX-2D for thin crops (D <= 8), NoduleX-3D for deeper ones; input (D, H, W)."""
    if len(input_shape) != 3 or min(input_shape[1:]) < 12:
        raise ValueError(f"nodulex needs (D, H, W) crops of at least 12 x 12 in-plane, got {input_shape}")
    shape = (input_shape[0], input_shape[1], input_shape[2])
    return NoduleX2D(shape, width) if shape[0] <= MAX_CHANNEL_DEPTH else NoduleX3D(shape, width)
