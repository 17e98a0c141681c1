"""DenseNet-121 (Huang et al. 2017) for chest radiographs, as torchvision builds it.

The paper variant is torchvision's `densenet121(weights=None)` with a 1-channel stem
(Conv2d(1, 64, 7, 2, 3)) and one output logit: 6,948,609 parameters. Smaller widths scale growth rate
and initial features and shorten the blocks ((4, 4, 4) at width < 1), for CPU profiles.
"""

from __future__ import annotations

import torch
from torch import nn

from scanshift_ray.models import Squeeze, register, scaled


@register("densenet121", gpu_share=lambda shape, width: 0.25 if width < 1 else 1.0)
def densenet121_1ch(input_shape: tuple[int, ...], width: float) -> nn.Module:
    """DenseNet-121 (width 1) or a scaled-down DenseNet (width < 1) for 2D inputs (H, W)."""
    if len(input_shape) != 2 or min(input_shape) < 32:
        raise ValueError(f"densenet121 needs 2D inputs of at least 32 x 32, got {input_shape}")
    # torchvision is imported here, not at the top: importing it loads every torchvision model (~1 s),
    # which every Ray worker would pay at start-up even for trials of other models.
    from torchvision.models import DenseNet, densenet121

    if width >= 1.0:
        net = densenet121(weights=None, num_classes=1)
    else:
        net = DenseNet(growth_rate=scaled(32, width * 1.5), block_config=(4, 4, 4),
                       num_init_features=scaled(64, width * 1.5), num_classes=1)
    stem = net.features.conv0
    net.features.conv0 = nn.Conv2d(1, stem.out_channels, 7, 2, 3, bias=False)
    return nn.Sequential(_AddChannel(), net, Squeeze())


class _AddChannel(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(1)  # (B, H, W) -> (B, 1, H, W)
