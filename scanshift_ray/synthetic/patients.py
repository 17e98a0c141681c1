"""Synthetic patients: several correlated samples per patient, laid out as in the real datasets.

Every patient owns three random streams, all functions of (seed, dataset, domain, patient):
    label stream    the patient's label (or, for "crops", the patient's propensity for positive lesions);
    patient stream  re-created identically for every sample, so the geometry an anatomy draws from it
                    (organ shape and position, the tumour, the lung parenchyma, the chest) is shared;
    sample streams  one per sample: texture, the sample's own lesion, positioning and acquisition noise.
Layouts (`Twin.layout`):
    "slices"  axial slabs at evenly spaced z through one body (`Twin.extent_mm`); a slice is positive iff
              the tumour mask has a voxel within +-1.5 mm of its centre (the label rule of KiTS, HNSCC,
              PI-CAI: tumour on the slice), so positives cluster in patients and in adjacent slices;
    "crops"   lesion-centred crops; each lesion's label is drawn with the patient's propensity
              p ~ Beta(2 prevalence, 2 (1 - prevalence)), an intra-patient correlation of 1/3;
    "views"   radiographs of one chest with other positioning and exposure; one label per patient.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from scanshift_ray.synthetic import ct, mri, xray
from scanshift_ray.synthetic.phantom import OVERSAMPLE, Grid
from scanshift_ray.synthetic.twins import Twin

LABEL_HALF_MM = 1.5  # a slice is labelled by the tumour within this distance of its centre
_PATIENT_STREAM = 2**31  # sample indices stay below it, so the streams never coincide
_CROP_CONCENTRATION = 2.0  # Beta(k p, k (1 - p)): intra-patient correlation 1 / (k + 1)


def sample_rng(seed: int, key: str, domain_index: int, patient: int, sample: int) -> np.random.Generator:
    """The generator of one sample: independent streams per (seed, dataset, domain, patient, sample)."""
    return np.random.default_rng([seed, zlib.crc32(key.encode()), domain_index, patient, sample])


def patient_rng(seed: int, key: str, domain_index: int, patient: int) -> np.random.Generator:
    """The patient's geometry stream; call again for each sample to replay the same anatomy."""
    return sample_rng(seed, key, domain_index, patient, _PATIENT_STREAM)


def label_rng(seed: int, key: str, domain_index: int, patient: int) -> np.random.Generator:
    """The patient's label stream."""
    return np.random.default_rng([seed, zlib.crc32(key.encode()), domain_index, patient])


def render_patient(twin: Twin, modality: str, shape: tuple[int, ...], scanner: Any, n_samples: int,
                   streams: tuple[int, str, int, int]) -> tuple[list[np.ndarray], list[int]]:
    """The `n_samples` images (each of `shape`) and labels of one patient acquired with `scanner`.

    `streams` is (seed, dataset key, domain index, patient index).
    """
    render = {"slices": _slices, "crops": _crops, "views": _views}[twin.layout]
    return render(twin, modality, shape, scanner, n_samples, streams)


def _fine_grid(twin: Twin, shape: tuple[int, ...], z0: float = 0.0) -> tuple[Grid, int]:
    """The oversampled render grid of one sample and the number of output slices it reduces to."""
    height, width = shape[-2:]
    depth = shape[0] if len(shape) == 3 else 1
    fine = max(8, 2 * depth) if len(shape) == 3 else 8
    spacing = twin.fov_mm / (height * OVERSAMPLE)
    return Grid((fine, height * OVERSAMPLE, width * OVERSAMPLE), (twin.depth_mm / fine, spacing, spacing), z0), depth


def _acquire(volume: Any, grid: Grid, modality: str, scanner: Any, depth: int, shape: tuple[int, ...],
             rng: np.random.Generator) -> np.ndarray:
    module: Any = ct if modality == "CT" else mri
    image = module.render(volume, grid, scanner, depth, rng)
    return image if len(shape) == 3 else image[0]


def slice_positions(extent_mm: float, n: int) -> np.ndarray:
    """Centres (mm) of `n` evenly spaced slices over `extent_mm`, symmetric about 0."""
    return (np.arange(n) - (n - 1) / 2.0) * (extent_mm / n)


def _slices(twin: Twin, modality: str, shape: tuple[int, ...], scanner: Any, n: int,
            streams: tuple[int, str, int, int]) -> tuple[list[np.ndarray], list[int]]:
    label = int(label_rng(*streams).random() < twin.prevalence)
    images, labels = [], []
    for k, z0 in enumerate(slice_positions(twin.extent_mm, n)):
        grid, depth = _fine_grid(twin, shape, float(z0))
        rng = sample_rng(*streams, k)
        assert twin.anatomy is not None
        volume, lesion = twin.anatomy(grid, label, patient_rng(*streams), rng)
        labels.append(int(lesion[grid.central_rows(LABEL_HALF_MM)].any()))
        images.append(_acquire(volume, grid, modality, scanner, depth, shape, rng))
    return images, labels


def _crops(twin: Twin, modality: str, shape: tuple[int, ...], scanner: Any, n: int,
           streams: tuple[int, str, int, int]) -> tuple[list[np.ndarray], list[int]]:
    draw = label_rng(*streams)
    k, p = _CROP_CONCENTRATION, twin.prevalence
    propensity = draw.beta(k * p, k * (1 - p)) if n > 1 else p
    images, labels = [], []
    for sample in range(n):
        rng = sample_rng(*streams, sample)
        label = int(rng.random() < propensity)
        grid, depth = _fine_grid(twin, shape)
        assert twin.anatomy is not None
        volume = twin.anatomy(grid, label, patient_rng(*streams), rng)
        images.append(_acquire(volume, grid, modality, scanner, depth, shape, rng))
        labels.append(label)
    return images, labels


def _views(twin: Twin, modality: str, shape: tuple[int, ...], scanner: Any, n: int,
           streams: tuple[int, str, int, int]) -> tuple[list[np.ndarray], list[int]]:
    del modality
    label = int(label_rng(*streams).random() < twin.prevalence)
    height, width = shape[-2:]
    paths = xray.chest((height * OVERSAMPLE, width * OVERSAMPLE), twin.fov_mm, label, patient_rng(*streams))
    images = [xray.render(xray.reposition(paths, rng), scanner, rng)
              for rng in (sample_rng(*streams, v) for v in range(n))]
    return images, [label] * n
