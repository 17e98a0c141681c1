"""The synthetic scanners: determinism, units, and a shift that z-scoring cannot remove."""

import numpy as np
import pytest

from scanshift_ray.datasets import DATASETS
from scanshift_ray.profiles import PROFILES
from scanshift_ray.synthetic import ct, xray
from scanshift_ray.synthetic.generate import generate_domain, write_twins
from scanshift_ray.synthetic.patients import render_patient
from scanshift_ray.synthetic.phantom import Grid
from scanshift_ray.synthetic.twins import TWINS, scanner_at

SMOKE = PROFILES.get("smoke")


def test_every_dataset_has_a_twin():
    assert set(TWINS.names()) == set(DATASETS.names())


@pytest.mark.parametrize("key", TWINS.names())
def test_twin_is_deterministic_with_the_profile_shape(key):
    spec = DATASETS.get(key)
    twin = TWINS.get(key)
    shape = SMOKE.input_shape(spec)
    scanner = scanner_at(twin, 1, 1.0)
    a, la = render_patient(twin, spec.modality, shape, scanner, 2, (0, key, 1, 3))
    b, lb = render_patient(twin, spec.modality, shape, scanner, 2, (0, key, 1, 3))
    c, _ = render_patient(twin, spec.modality, shape, scanner, 2, (1, key, 1, 3))
    assert a[0].shape == shape and la == lb and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0])


def _pair(key: str, label: int, i: int) -> tuple[np.ndarray, np.ndarray]:
    """The same anatomy (same rng stream) acquired by scanner A and by scanner B*, windowed as the trial does."""
    spec, twin = DATASETS.get(key), TWINS.get(key)
    shape = SMOKE.input_shape(spec)
    images = [render_patient(twin, spec.modality, shape, scanner_at(twin, d, 1.0), 1,
                             (label, key, 0, i))[0][0].astype(float) for d in (0, 1)]
    if spec.window is not None:
        images = [np.clip(x, *spec.window) for x in images]
    return images[0], images[1]


def _affine_residual(a: np.ndarray, b: np.ndarray) -> float:
    """Relative residual of the best affine map a -> b: 0 when z-scoring would remove the shift."""
    za, zb = (a - a.mean()) / a.std(), (b - b.mean()) / b.std()
    slope = (za * zb).mean()
    return float(np.sqrt(((zb - slope * za) ** 2).mean()))


def test_shift_is_not_affine():
    # No ordering across modalities is asserted: the drop is whatever the physics gives.
    res = {k: float(np.median([_affine_residual(*_pair(k, 1, i)) for i in range(6)])) for k in TWINS.names()}
    assert min(res.values()) > 0.02  # no scanner pair is an affine copy of the other


def test_ct_is_calibrated_in_hounsfield_units():
    grid = Grid((8, 64, 64), (1.0, 2.0, 2.0))
    water = np.zeros(grid.shape)
    air = np.full(grid.shape, -1000.0)
    scanner = TWINS.get("ct-hnscc").scanners[0]
    rng = np.random.default_rng(0)
    assert abs(ct.render(water, grid, scanner, 1, rng).mean()) < 3
    assert abs(ct.render(air, grid, scanner, 1, rng).mean() + 1000) < 5


def test_xray_spectrum_hardens_with_kvp():
    low, high = TWINS.get("xray-chest").scanners[1], TWINS.get("xray-chest").scanners[0]
    mean_energy = [float((e * w).sum()) for e, w in (xray.spectrum(low), xray.spectrum(high))]
    assert mean_energy[0] < mean_energy[1]


def test_labels_are_balanced_and_patients_repeat():
    images, labels, pids = generate_domain("mri-breast", 0, SMOKE, 0, 1.0)
    assert images.dtype == np.uint16 and images.shape[1:] == SMOKE.input_shape(DATASETS.get("mri-breast"))
    assert 0.3 < labels.mean() < 0.7
    assert len(set(pids)) == TWINS.get("mri-breast").patients(SMOKE.synthetic_patients) == len(pids)


def test_write_twins_is_incremental(tmp_path):
    assert write_twins(tmp_path, ["xray-chest"], SMOKE, workers=1) == ["xray-chest"]
    assert write_twins(tmp_path, ["xray-chest"], SMOKE, workers=1) == []
    assert (tmp_path / "xray-chest" / "manifest.json").is_file()


def _patients(key: str, n_patients: int, per_patient: int) -> list[tuple[list[np.ndarray], list[int]]]:
    spec, twin = DATASETS.get(key), TWINS.get(key)
    shape, scanner = SMOKE.input_shape(spec), scanner_at(twin, 0, 1.0)
    return [render_patient(twin, spec.modality, shape, scanner, per_patient, (0, key, 0, p))
            for p in range(n_patients)]


@pytest.mark.parametrize("key", [k for k in TWINS.names() if TWINS.get(k).layout == "slices"])
def test_a_patients_slices_share_their_anatomy(key):
    """Two slices of one patient are closer to each other than slices of two patients."""
    pats = [[x.astype(float) for x in imgs] for imgs, _ in _patients(key, 6, 2)]
    within = np.mean([np.abs(a - b).mean() for a, b in pats])
    between = np.mean([np.abs(pats[i][0] - pats[i + 1][1]).mean() for i in range(len(pats) - 1)])
    assert within < 0.8 * between


def test_slice_labels_cluster_in_patients_with_a_lesion():
    twin = TWINS.get("mri-prostate")
    pats = _patients("mri-prostate", 30, 4)
    labels = np.array([labs for _, labs in pats])
    assert labels.any() and not labels.all()
    # a patient without a lesion has no positive slice; the label stream decides who has one
    from scanshift_ray.synthetic.patients import label_rng
    has_lesion = np.array([label_rng(0, "mri-prostate", 0, p).random() < twin.prevalence for p in range(30)])
    assert not labels[~has_lesion].any() and labels[has_lesion].any(axis=1).mean() > 0.5


def test_crop_labels_are_correlated_within_a_patient():
    pats = _patients("ct-lidc", 80, 2)
    pairs = np.array([labs for _, labs in pats], dtype=float)
    r = np.corrcoef(pairs[:, 0], pairs[:, 1])[0, 1]
    assert 0.1 < r < 0.7  # Beta(1, 1) propensity: intra-patient correlation 1/3 in expectation


def test_views_of_one_patient_share_the_label_not_the_pixels():
    pats = _patients("xray-chest", 10, 3)
    assert all(len(set(labs)) == 1 for _, labs in pats)
    assert not any(np.array_equal(imgs[0], imgs[1]) for imgs, _ in pats)


def test_a_patients_streams_are_distinct():
    from scanshift_ray.synthetic.patients import label_rng, patient_rng, sample_rng
    # numpy pads seeds shorter than four words with zeros, so [a, b, c] and [a, b, c, 0] would coincide
    for patient in (0, 1):
        draws = [g.random() for g in (label_rng(0, "ct-lidc", 0, patient), patient_rng(0, "ct-lidc", 0, patient),
                                      sample_rng(0, "ct-lidc", 0, patient, 0), sample_rng(0, "ct-lidc", 0, patient, 1))]
        assert len(set(draws)) == 4
