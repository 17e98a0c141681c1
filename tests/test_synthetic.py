"""The synthetic scanners: determinism, units, and a shift that z-scoring cannot remove."""

import numpy as np
import pytest

from scanshift_ray.datasets import DATASETS
from scanshift_ray.profiles import PROFILES
from scanshift_ray.synthetic import ct, xray
from scanshift_ray.synthetic.generate import generate_domain, write_twins
from scanshift_ray.synthetic.phantom import Grid
from scanshift_ray.synthetic.twins import TWINS, render_sample, sample_rng, scanner_at

SMOKE = PROFILES.get("smoke")


def test_every_dataset_has_a_twin():
    assert set(TWINS.names()) == set(DATASETS.names())


@pytest.mark.parametrize("key", TWINS.names())
def test_twin_is_deterministic_with_the_profile_shape(key):
    spec = DATASETS.get(key)
    twin = TWINS.get(key)
    shape = SMOKE.input_shape(spec)
    a = render_sample(twin, spec.modality, shape, scanner_at(twin, 1, 1.0), 1, sample_rng(0, key, 1, 3, 0))
    b = render_sample(twin, spec.modality, shape, scanner_at(twin, 1, 1.0), 1, sample_rng(0, key, 1, 3, 0))
    c = render_sample(twin, spec.modality, shape, scanner_at(twin, 1, 1.0), 1, sample_rng(1, key, 1, 3, 0))
    assert a.shape == shape and np.array_equal(a, b) and not np.array_equal(a, c)


def _pair(key: str, label: int, i: int) -> tuple[np.ndarray, np.ndarray]:
    """The same anatomy (same rng stream) acquired by scanner A and by scanner B*, windowed as the trial does."""
    spec, twin = DATASETS.get(key), TWINS.get(key)
    shape = SMOKE.input_shape(spec)
    images = [render_sample(twin, spec.modality, shape, scanner_at(twin, d, 1.0), label,
                            sample_rng(0, key, 0, i, 0)).astype(float) for d in (0, 1)]
    if spec.window is not None:
        images = [np.clip(x, *spec.window) for x in images]
    return images[0], images[1]


def _affine_residual(a: np.ndarray, b: np.ndarray) -> float:
    """Relative residual of the best affine map a -> b: 0 when z-scoring would remove the shift."""
    za, zb = (a - a.mean()) / a.std(), (b - b.mean()) / b.std()
    slope = (za * zb).mean()
    return float(np.sqrt(((zb - slope * za) ** 2).mean()))


def test_shift_is_not_affine_and_ordered_like_the_paper():
    res = {k: float(np.median([_affine_residual(*_pair(k, 1, i)) for i in range(6)])) for k in TWINS.names()}
    assert min(res.values()) > 0.02  # no scanner pair is an affine copy of the other
    by_modality = {m: np.mean([v for k, v in res.items() if DATASETS.get(k).modality == m])
                   for m in ("CT", "MRI", "X-ray")}
    assert by_modality["MRI"] > by_modality["X-ray"] > by_modality["CT"]


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
    assert len(set(pids)) == SMOKE.synthetic_patients


def test_write_twins_is_incremental(tmp_path):
    assert write_twins(tmp_path, ["xray-chest"], SMOKE, workers=1) == ["xray-chest"]
    assert write_twins(tmp_path, ["xray-chest"], SMOKE, workers=1) == []
    assert (tmp_path / "xray-chest" / "manifest.json").is_file()
