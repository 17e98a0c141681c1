from pathlib import Path

import h5py
import numpy as np
import pytest

from scanshift_ray import shards
from scanshift_ray.datasets import DATASETS
from scanshift_ray.errors import ScanshiftError

ATTRS = {"dataset": "ct-lidc", "domain": "ge", "modality": "CT", "task": "crop3d", "data_source": "real",
         "manufacturers": ["GE MEDICAL SYSTEMS"], "provenance": {"note": "test"}}


def _write(path: Path, n: int = 6) -> Path:
    images = np.arange(n * 5 * 8 * 8, dtype=np.int16).reshape(n, 5, 8, 8)
    return shards.write_shard(path, images, np.array([0, 1] * (n // 2)), [f"p{i // 2}" for i in range(n)], ATTRS)


def test_round_trip_is_memory_mapped_and_keeps_attrs(tmp_path):
    path = _write(tmp_path / "ct-lidc" / "ge.h5")
    shard = shards.read_shard(path)
    assert isinstance(shard.images, np.memmap)
    assert shard.images.shape == (6, 5, 8, 8) and shard.images[1, 0, 0, 1] == 321
    assert shard.labels.tolist() == [0, 1, 0, 1, 0, 1]
    assert list(shard.patient_ids) == ["p0", "p0", "p1", "p1", "p2", "p2"]
    assert shard.attrs["manufacturers"] == ["GE MEDICAL SYSTEMS"]
    assert shard.attrs["provenance"] == {"note": "test"}
    assert shard.attrs["format_version"] == shards.FORMAT_VERSION
    assert [p.name for p in path.parent.iterdir()] == ["ge.h5"]  # no temp file left behind


def test_non_mmap_read_equals_mmap(tmp_path):
    path = _write(tmp_path / "s.h5")
    assert np.array_equal(shards.read_shard(path, mmap=False).images, shards.read_shard(path).images)


@pytest.mark.parametrize("labels, pids, msg", [
    (np.array([0, 2, 0, 1]), ["a", "a", "b", "b"], "labels must be 0 or 1"),
    (np.array([0, 1, 0]), ["a", "a", "b", "b"], "4 images but labels"),
    (np.array([0, 1, 0, 1]), ["a", "", "b", "b"], "empty patient id"),
])
def test_writer_rejects_invalid_data(tmp_path, labels, pids, msg):
    with pytest.raises(ScanshiftError, match=msg):
        shards.write_shard(tmp_path / "x.h5", np.zeros((4, 8, 8), np.int16), labels, pids, ATTRS)
    assert not (tmp_path / "x.h5").exists()


def test_reader_names_the_file_of_a_broken_shard(tmp_path):
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((3, 8, 8))
        f["labels"] = np.array([0, 1, 1])
    with pytest.raises(ScanshiftError, match=f"invalid shard {path}: missing dataset"):
        shards.read_shard(path)
    path.write_text("not hdf5")
    with pytest.raises(ScanshiftError, match=f"cannot read shard {path}"):
        shards.read_shard(path)


def test_load_domains_errors_are_one_line_and_name_the_file(tmp_path):
    spec = DATASETS.get("ct-lidc")
    with pytest.raises(ScanshiftError, match="shard root not found"):
        shards.load_domains(tmp_path / "nope", spec)
    _write(tmp_path / "ct-lidc" / "ge.h5")
    with pytest.raises(ScanshiftError, match=r"shard not found: .*ct-lidc/other\.h5"):
        shards.load_domains(tmp_path, spec)


def test_load_domains_rejects_a_shard_for_another_dataset(tmp_path):
    spec = DATASETS.get("ct-lidc")
    _write(tmp_path / "ct-lidc" / "ge.h5")
    _write(tmp_path / "ct-lidc" / "other.h5")  # its attrs still say domain "ge"
    with pytest.raises(ScanshiftError, match="says it is ct-lidc/ge"):
        shards.load_domains(tmp_path, spec)


def test_data_id_changes_with_content(toy_root):
    spec = DATASETS.get("xray-chest")
    before = shards.data_id(shards.load_domains(toy_root, spec))
    from conftest import write_toy_dataset

    write_toy_dataset(toy_root, "xray-chest", seed=1)
    assert shards.data_id(shards.load_domains(toy_root, spec)) != before


def test_manifest_counts(toy_root):
    import json

    path = shards.write_manifest(toy_root, "xray-chest", {"note": "x"})
    body = json.loads(path.read_text())
    assert body["counts"]["3"] == {"n": 60, "n_pos": 30, "n_patients": 30}


def test_content_is_verified_against_the_stored_hash(toy_root, tmp_path, monkeypatch):
    import os

    import h5py

    from scanshift_ray.datasets import DATASETS

    monkeypatch.setenv("SCANSHIFT_CACHE_DIR", str(tmp_path / "cache"))
    spec = DATASETS.get("xray-chest")
    shards.load_domains(toy_root, spec, verify=True)
    assert (tmp_path / "cache" / "verified-shards.json").is_file()
    path = shards.shard_path(toy_root, "xray-chest", "5")
    with h5py.File(path, "r+") as f:  # the images change, the stored hash does not
        f["images"][0, 0, 0] += 1.0
    shards.load_domains(toy_root, spec)  # attributes alone look fine
    with pytest.raises(ScanshiftError, match="does not match its stored hash"):
        shards.load_domains(toy_root, spec, verify=True)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # cached entry is keyed by size and mtime: still refused
    with pytest.raises(ScanshiftError, match="does not match"):
        shards.load_domains(toy_root, spec, verify=True)


def test_verification_checks_every_image_for_nan(tmp_path, monkeypatch):
    import h5py

    from scanshift_ray.datasets import DATASETS

    monkeypatch.setenv("SCANSHIFT_CACHE_DIR", str(tmp_path / "cache"))
    from conftest import write_toy_dataset

    write_toy_dataset(tmp_path, "xray-chest", n_patients=60)
    path = shards.shard_path(tmp_path, "xray-chest", "3")
    with h5py.File(path, "r+") as f:
        f["images"][100, 0, 0] = np.nan  # past the first 64 images that read-time validation looks at
    with pytest.raises(ScanshiftError, match="NaN or inf"):
        shards.load_domains(tmp_path, DATASETS.get("xray-chest"), verify=True)


def _raw_shard(path: Path, images: np.ndarray, labels=None, pids=None, **attrs) -> Path:
    """A shard written with h5py directly, bypassing the writer's checks (hash left as given)."""
    n = len(images)
    with h5py.File(path, "w") as f:
        f["images"] = images
        f["labels"] = np.tile([0, 1], n)[:n].astype(np.uint8) if labels is None else labels
        f.create_dataset("patient_ids", data=[f"p{i}" for i in range(n)] if pids is None else pids,
                         dtype=h5py.string_dtype() if pids is None else None)
        for k, v in {**ATTRS, "manufacturers": "[]", "provenance": "{}", "format_version": 1,
                     "content_sha1": "0" * 40, **attrs}.items():
            f.attrs[k] = v
    return path


@pytest.mark.parametrize("dtype", ["float64", "int8", "int32", "uint8", "bool"])
def test_writer_and_reader_refuse_other_image_dtypes(tmp_path, dtype):
    images = np.zeros((4, 8, 8), dtype=dtype)
    with pytest.raises(ScanshiftError, match=rf"invalid shard {tmp_path / 'x.h5'}: images are {dtype}; "):
        shards.write_shard(tmp_path / "x.h5", images, [0, 1, 0, 1], list("aabb"), ATTRS)
    assert not (tmp_path / "x.h5").exists()
    path = _raw_shard(tmp_path / "raw.h5", images)
    with pytest.raises(ScanshiftError, match=rf"invalid shard {path}: images are {dtype}; a shard holds int16"):
        shards.read_shard(path)


@pytest.mark.parametrize("dtype", ["int16", "uint16", "float32"])
def test_the_allowed_image_dtypes_round_trip(tmp_path, dtype):
    images = np.arange(4 * 8 * 8).reshape(4, 8, 8).astype(dtype)
    path = shards.write_shard(tmp_path / "x.h5", images, [0, 1, 0, 1], list("aabb"), ATTRS)
    back = shards.read_shard(path)
    assert back.images.dtype == np.dtype(dtype) and np.array_equal(back.images, images)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_writer_checks_every_image_not_only_the_first(tmp_path, bad):
    images = np.zeros((120, 8, 8), np.float32)
    images[100, 3, 4] = bad  # past the reader's quick check of the first images
    with pytest.raises(ScanshiftError, match=r"x\.h5: images contain NaN or inf \(first at image 100\)"):
        shards.write_shard(tmp_path / "x.h5", images, np.tile([0, 1], 60), [f"p{i}" for i in range(120)], ATTRS)
    assert list(tmp_path.iterdir()) == []


def test_reader_checks_the_first_images_for_nan(tmp_path):
    images = np.zeros((4, 8, 8), np.float32)
    images[2, 0, 0] = np.nan
    path = _raw_shard(tmp_path / "nan.h5", images)
    with pytest.raises(ScanshiftError, match=f"invalid shard {path}: images contain NaN or inf"):
        shards.read_shard(path)


def test_reader_names_a_truncated_file(tmp_path):
    path = _write(tmp_path / "t.h5", n=40)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    for mmap in (True, False):
        with pytest.raises(ScanshiftError, match=f"(invalid|cannot read) shard {path}: ") as info:
            shards.read_shard(path, mmap=mmap)
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("change, msg", [
    (dict(pids=np.arange(4)), "patient_ids must be strings, got int64"),
    (dict(format_version="one"), "format_version must be a whole number, got 'one'"),
    (dict(format_version=2), "format version 2 is newer"),
    (dict(data_source="scraped"), "data_source must be one of"),
    (dict(labels=np.array([0, 1, 2, 1])), "labels must be 0 or 1"),
])
def test_reader_refuses_misfit_files_in_one_line(tmp_path, change, msg):
    path = _raw_shard(tmp_path / "m.h5", np.zeros((4, 8, 8), np.int16), **change)
    with pytest.raises(ScanshiftError, match=f"invalid shard {path}: {msg}"):
        shards.read_shard(path)


def test_reader_refuses_images_that_are_a_group(tmp_path):
    path = tmp_path / "g.h5"
    with h5py.File(path, "w") as f:
        f.create_group("images")
        f["labels"] = np.zeros(2, np.uint8)
        f["patient_ids"] = ["a", "b"]
    with pytest.raises(ScanshiftError, match=f"invalid shard {path}: missing dataset.s. images$"):
        shards.read_shard(path)


def test_image_blocks_write_the_shard_of_their_concatenation(tmp_path):
    images = np.arange(7 * 3 * 4, dtype=np.int16).reshape(7, 3, 4)
    labels, pids = [0, 1] * 3 + [0], [f"p{i // 2}" for i in range(7)]
    whole = shards.read_shard(shards.write_shard(tmp_path / "a.h5", images, labels, pids, ATTRS))
    blocks = shards.ImageBlocks((images[:2], images[2:2], images[2:6], images[6:]))
    parts = shards.read_shard(shards.write_shard(tmp_path / "b.h5", blocks, labels, pids, ATTRS))
    assert isinstance(parts.images, np.memmap) and np.array_equal(parts.images, images)
    assert parts.attrs["content_sha1"] == whole.attrs["content_sha1"] == shards.content_digest(images, np.array(labels),
                                                                                              np.array(pids))
    assert parts.labels.tolist() == labels and list(parts.patient_ids) == pids


def test_image_blocks_that_do_not_stack_are_refused(tmp_path):
    blocks = shards.ImageBlocks((np.zeros((2, 3, 4), np.int16), np.zeros((2, 3, 5), np.int16)))
    with pytest.raises(ScanshiftError, match=r"x\.h5: image blocks differ in dtype or image shape"):
        shards.write_shard(tmp_path / "x.h5", blocks, [0, 1, 0, 1], list("aabb"), ATTRS)
    assert list(tmp_path.iterdir()) == []


def test_nan_in_a_later_block_is_named_by_its_place_in_the_shard(tmp_path):
    second = np.zeros((3, 8, 8), np.float32)
    second[1, 2, 2] = np.nan
    blocks = shards.ImageBlocks((np.zeros((4, 8, 8), np.float32), second))
    with pytest.raises(ScanshiftError, match=r"images contain NaN or inf \(first at image 5\)"):
        shards.write_shard(tmp_path / "x.h5", blocks, [0, 1] * 3 + [0], list("aabbccd"), ATTRS)
    assert list(tmp_path.iterdir()) == []
