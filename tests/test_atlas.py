"""The shift atlas: files, known-answer distances, the centre slice of volumes, determinism, errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import write_toy_dataset
from scipy.ndimage import gaussian_filter

from scanshift_ray import atlas, shards
from scanshift_ray.datasets import DATASETS
from scanshift_ray.errors import ScanshiftError
from scanshift_ray.trial import _load, zscore

XRAY = DATASETS.get("xray-chest")  # no CT window and toy images already at the fast input size: exact answers


def _transformed(root: Path, transform: Callable[[np.ndarray], np.ndarray], key: str = "xray-chest") -> dict:
    """Shards of `key` whose second domain is `transform` of the first domain's images (same labels)."""
    write_toy_dataset(root, key)
    spec = DATASETS.get(key)
    first, second = (shards.read_shard(shards.shard_path(root, key, d), mmap=False) for d in spec.domains)
    images = transform(first.images.astype(np.float32)).astype(np.float32)
    shards.write_shard(shards.shard_path(root, key, spec.domains[1]), images, first.labels, second.patient_ids,
                       dict(second.attrs))
    return shards.load_domains(root, spec)


@pytest.fixture(scope="module")
def atlas_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("atlas") / "shards"
    for key in ("ct-lidc", "xray-chest"):
        write_toy_dataset(root, key)
    out = root.parent / "out"
    return out, atlas.write_atlas(root, out, n_examples=3)


def test_write_atlas_files(atlas_run: tuple[Path, list[Path]]) -> None:
    out, paths = atlas_run
    names = [p.name for p in paths]
    for key in ("ct-lidc", "xray-chest"):
        assert f"atlas_{key}_examples.png" in names and f"atlas_{key}_histograms.png" in names
    assert names[-2:] == ["atlas_distances.csv", "atlas.md"]
    assert all(p.is_file() and p.stat().st_size > 0 and p.parent == out for p in paths)
    table = pd.read_csv(out / "atlas_distances.csv")
    assert table["dataset"].tolist() == ["ct-lidc", "xray-chest"]
    assert {"w1_normalized", "w1_native", "laplacian_2_std", "data_source"} <= set(table.columns)
    md = (out / "atlas.md").read_text()
    assert "**real**" in md and "![atlas_ct-lidc_examples](atlas_ct-lidc_examples.png)" in md
    assert "| xray-chest | 3 / 5 |" in md


def test_same_distribution_is_close_and_contrast_shift_is_not(tmp_path: Path) -> None:
    write_toy_dataset(tmp_path / "same", "xray-chest", shift=0.0)
    write_toy_dataset(tmp_path / "shifted", "xray-chest", shift=150.0)
    same = atlas.distances(shards.load_domains(tmp_path / "same", XRAY), XRAY)
    shifted = atlas.distances(shards.load_domains(tmp_path / "shifted", XRAY), XRAY)
    assert same["w1_normalized"] < 0.02 and same["w1_native"] < 1.0
    assert shifted["w1_normalized"] > 5 * same["w1_normalized"]
    assert shifted["w1_native"] > 5 * same["w1_native"]
    assert shifted["image_std_2_mean"] > 1.2 * shifted["image_std_1_mean"]  # brighter squares, wider spread


def test_offset_known_answer(tmp_path: Path) -> None:
    row = atlas.distances(_transformed(tmp_path, lambda x: x + 37.0), XRAY)
    assert row["w1_native"] == pytest.approx(37.0, abs=1e-3)  # W1 of a translate is the translation
    assert row["image_mean_2_mean"] - row["image_mean_1_mean"] == pytest.approx(37.0, abs=1e-3)
    assert row["w1_normalized"] < 1e-4


def test_gain_and_offset_vanish_after_per_image_zscore(tmp_path: Path) -> None:
    row = atlas.distances(_transformed(tmp_path, lambda x: 3.0 * x - 80.0), XRAY)
    assert row["w1_native"] > 100.0
    assert row["w1_normalized"] < 1e-4  # per-image z-scoring removes any per-image a*x + b
    assert row["image_std_2_mean"] == pytest.approx(3.0 * row["image_std_1_mean"], rel=1e-4)
    assert row["laplacian_2_mean"] == pytest.approx(row["laplacian_1_mean"], rel=1e-3)


def test_blur_lowers_high_frequency_energy(tmp_path: Path) -> None:
    row = atlas.distances(_transformed(tmp_path, lambda x: gaussian_filter(x, sigma=(0, 1.0, 1.0))), XRAY)
    assert row["laplacian_2_mean"] < 0.4 * row["laplacian_1_mean"]
    assert row["image_std_2_mean"] < 0.7 * row["image_std_1_mean"]  # blurred noise has less variance


def test_volume_shows_centre_slice_of_the_normalised_input(tmp_path: Path) -> None:
    spec = DATASETS.get("ct-lidc")
    root = tmp_path / "shards"
    write_toy_dataset(root, spec.key)
    first = shards.read_shard(shards.shard_path(root, spec.key, spec.domains[0]), mmap=False)
    images = first.images.copy()
    depth = images.shape[1]
    images[:, depth // 2, 2:10, 2:10] += 300.0  # a marker only in the centre slice
    shards.write_shard(shards.shard_path(root, spec.key, spec.domains[0]), images, first.labels,
                       first.patient_ids, dict(first.attrs))
    shard = shards.load_domains(root, spec)[spec.domains[0]]
    idx = np.array([5, 1, 3])  # any order: handed back in the order asked for
    shown = atlas.example_images(shard, idx, spec, "fast")
    assert shown.shape == (3, 32, 32)
    want = zscore(_load(shard, idx, (5, 32, 32), spec.window), "image").numpy()[:, depth // 2]
    np.testing.assert_allclose(shown, want, rtol=1e-6)
    assert (shown[:, 2:10, 2:10].mean(axis=(1, 2)) > shown[:, 16:, 16:].mean(axis=(1, 2)) + 2.0).all()


def test_examples_one_per_patient_and_deterministic() -> None:
    labels = np.tile([0, 1], 20)
    pids = np.repeat([f"p{i}" for i in range(10)], 4)  # four samples, two of each label, per patient
    picked = atlas.pick_examples(labels, pids, 1, 6, seed=3)
    assert len(picked) == 6 and (labels[picked] == 1).all() and len(set(pids[picked])) == 6
    np.testing.assert_array_equal(picked, atlas.pick_examples(labels, pids, 1, 6, seed=3))
    assert not np.array_equal(picked, atlas.pick_examples(labels, pids, 1, 6, seed=4))
    assert len(atlas.pick_examples(labels, pids, 0, 50, seed=0)) == 10  # never two of one patient


def test_same_seed_same_bytes(atlas_run: tuple[Path, list[Path]], tmp_path: Path) -> None:
    out, paths = atlas_run
    root = out.parent / "shards"
    again = atlas.write_atlas(root, tmp_path / "again", datasets=["xray-chest"], n_examples=3)
    for p in again:
        if p.suffix == ".png":
            assert p.read_bytes() == (out / p.name).read_bytes(), p.name
    header, _, xray = (out / "atlas_distances.csv").read_text().splitlines()
    assert (tmp_path / "again" / "atlas_distances.csv").read_text().splitlines() == [header, xray]
    loaded = shards.load_domains(root, XRAY)
    assert atlas.distances(loaded, XRAY, seed=0) == atlas.distances(loaded, XRAY, seed=0)
    assert atlas.distances(loaded, XRAY, seed=1)["w1_native"] != atlas.distances(loaded, XRAY)["w1_native"]


@pytest.mark.parametrize("make", [lambda p: p.mkdir(), lambda p: None])
def test_root_without_shards_is_one_line_error(tmp_path: Path, make: Callable[[Path], None]) -> None:
    root = tmp_path / "empty"
    make(root)
    with pytest.raises(ScanshiftError) as err:
        atlas.write_atlas(root, tmp_path / "out")
    assert "\n" not in str(err.value) and str(root) in str(err.value)
    assert not (tmp_path / "out").exists()
