"""Run profiles: how big the models, inputs, synthetic twins and training runs are.

`paper` is the paper's protocol (60 epochs, batch 50, Adam lr 1e-4, paper architectures and input
sizes) and wants a GPU. `fast` is the CPU default: the same pipeline with scaled-down models and
inputs, fewer epochs and a larger learning rate so the small models converge in the few epochs a
2-core machine can afford (the paper's lr of 1e-4 with 8 epochs leaves them under-trained). It
validates every third epoch (and after the last): a validation pass is a forward pass over a quarter
as many samples as an epoch trains on, about 8 % of the epoch's compute, which on a CPU is time the
sweep does not train; the best epoch is chosen among the 10 validated ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from scanshift_ray.datasets import DatasetSpec
from scanshift_ray.errors import ScanshiftError
from scanshift_ray.registry import Registry

DETERMINISTIC_ENV = "SCANSHIFT_DETERMINISTIC"  # "1": deterministic GPU kernels (set by `--deterministic`)


@dataclass(frozen=True)
class Profile:
    """Sizes and training settings of one run profile.

    Attributes:
        name: registry key.
        epochs, batch_size, lr: the training protocol (Adam, BCE-with-logits).
        width: model width multiplier; 1.0 builds the exact paper architectures.
        slice_size: 2D input side in pixels; None keeps the dataset's paper shape.
        crop_hw: in-plane side of 3D crops; None keeps the paper shape.
        max_depth: depth cap for 3D crops (72-slice cubes become this deep); None keeps it.
        synthetic_patients: patients per scanner domain in the synthetic twins.
        slices_per_patient: 2D samples per synthetic patient (3D twins draw one or two crops).
        checkpoint_every: how often a trial saves its training state (does not change results).
        val_every: validate every this many epochs, and always after the last one; the best epoch is
            chosen among the validated ones. 1 validates every epoch (paper, smoke).
    """

    name: str
    epochs: int
    batch_size: int
    lr: float
    width: float
    slice_size: int | None
    crop_hw: int | None
    max_depth: int | None
    synthetic_patients: int
    slices_per_patient: int
    checkpoint_every: int = 0  # epochs between training-state checkpoints under Ray (0: none; short trials)
    val_every: int = 1

    def __post_init__(self) -> None:
        if self.val_every < 1:
            raise ScanshiftError(f"profile {self.name}: val_every must be >= 1, got {self.val_every}")

    def input_shape(self, spec: DatasetSpec) -> tuple[int, ...]:
        """The model input shape for `spec` under this profile, (H, W) or (D, H, W)."""
        if spec.task == "slice2d":
            return spec.paper_shape if self.slice_size is None else (self.slice_size, self.slice_size)
        depth, height, width = spec.paper_shape
        if self.max_depth is not None:
            depth = min(depth, self.max_depth)
        if self.crop_hw is not None:
            height = width = self.crop_hw
        return (depth, height, width)


PROFILES: Registry[Profile] = Registry("profile")
PROFILES.add("fast", Profile("fast", epochs=30, batch_size=50, lr=1e-3, width=0.25, slice_size=64,
                             crop_hw=32, max_depth=8, synthetic_patients=200, slices_per_patient=4, val_every=3))
PROFILES.add("paper", Profile("paper", epochs=60, batch_size=50, lr=1e-4, width=1.0, slice_size=None,
                              crop_hw=None, max_depth=None, synthetic_patients=400, slices_per_patient=6,
                              checkpoint_every=10))
# For tests and smoke runs: the fast pipeline on tiny twins with two epochs.
PROFILES.add("smoke", Profile("smoke", epochs=2, batch_size=50, lr=1e-3, width=0.25, slice_size=64,
                              crop_hw=32, max_depth=8, synthetic_patients=24, slices_per_patient=3))
# For the scale benchmark: the whole trial path (shards, splits, model, evaluation, results) without
# training, so what a benchmark measures is the scheduler's cost per cell.
PROFILES.add("noop", Profile("noop", epochs=0, batch_size=50, lr=1e-3, width=0.25, slice_size=64,
                             crop_hw=32, max_depth=8, synthetic_patients=24, slices_per_patient=3))
