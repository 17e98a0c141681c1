"""Fault-corpus cases of the shard validator, the sweep and the results commands (see fault_corpus.py).

Each case writes small valid shards through the product's writer (or, for damage the writer refuses,
through h5py directly), damages them and runs one real `scanshift` command line on them:
`scanshift validate ROOT` for the shard validator, `scanshift run --local --dry-run` for the sweep (it
validates and hashes every shard and applies the shared-patient policy before any cell could run) and
`scanshift summary` / `export` for results folders.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from fault_corpus import CliFault

from scanshift_ray import shards
from scanshift_ray.datasets import DATASETS
from scanshift_ray.profiles import PROFILES

KEY = "xray-chest"  # 2-D, two domains "3" and "5"
# The sweep cases run the smoke profile, which refuses shards smaller than its input: write them at it.
SIDE = int(PROFILES.get("smoke").slice_size or 64)
N = 120  # images per domain: more than the reader's quick NaN check looks at


def write_toy(root: Path, key: str = KEY, shared: bool = False,
              overrides: dict[str, dict[str, Any]] | None = None) -> Path:
    """Both domains of `key` under `root`, written through `shards.write_shard`; returns `root`."""
    spec = DATASETS.get(key)
    shape = tuple(PROFILES.get("smoke").input_shape(spec))
    rng = np.random.default_rng(0)
    for domain in spec.domains:
        labels = np.tile([0, 1], N // 2).astype(np.uint8)
        images = rng.normal(100.0, 20.0, size=(N, *shape)).astype(np.float32)
        pids = np.asarray([f"p{'x' if shared else domain}{i // 2:03d}" for i in range(N)], dtype=object)
        attrs = {"dataset": key, "domain": domain, "modality": spec.modality, "task": spec.task,
                 "manufacturers": [domain], "data_source": "real", **(overrides or {}).get(domain, {})}
        shards.write_shard(shards.shard_path(root, key, domain), images, labels, pids, attrs)
    return root


def _shard(root: Path, domain: str = "3", key: str = KEY) -> Path:
    return shards.shard_path(root, key, domain)


def rewrite(domain: str, change: Callable[[dict[str, Any]], None], rehash: bool = True) -> Callable[[Path], None]:
    """A damage: read a shard's arrays and attrs, `change` them, write them back with h5py (not the writer).

    `rehash` stores the content hash of the changed arrays, so only the change itself is wrong.
    """
    def damage(root: Path) -> None:
        path = _shard(root, domain)
        with h5py.File(path) as f:
            parts = {"images": f["images"][()], "labels": f["labels"][()],
                     "patient_ids": f["patient_ids"].asstr()[()].astype(object), "attrs": dict(f.attrs)}
        change(parts)
        with h5py.File(path, "w") as f:
            f.create_dataset("images", data=parts["images"], **parts.get("layout", {}))
            f["labels"] = parts["labels"]
            pids = parts["patient_ids"]
            f.create_dataset("patient_ids", data=pids, dtype=h5py.string_dtype() if pids.dtype == object else None)
            if rehash and "content_sha1" in parts["attrs"]:
                parts["attrs"]["content_sha1"] = shards.content_digest(parts["images"], parts["labels"], pids)
            for k, v in parts["attrs"].items():
                f.attrs[k] = v
    return damage


def images_as(dtype: str) -> Callable[[dict[str, Any]], None]:
    return lambda p: p.update(images=p["images"].astype(dtype))


def put(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda p: p.update({name: value})


def attr(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(p: dict[str, Any]) -> None:
        if value is None:
            del p["attrs"][name]
        else:
            p["attrs"][name] = value
    return change


def pixel(index: int, value: float) -> Callable[[dict[str, Any]], None]:
    def change(p: dict[str, Any]) -> None:
        p["images"][index, 1, 2] = value
    return change


def _labels_two(p: dict[str, Any]) -> None:
    p["labels"][7] = 2


def _empty_pid(p: dict[str, Any]) -> None:
    p["patient_ids"][5] = ""


def _big_endian(p: dict[str, Any]) -> None:
    p["images"] = np.round(p["images"]).astype(">i2")


def _truncate(root: Path) -> None:
    path = _shard(root)
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])


def _flip_bytes(root: Path) -> None:
    """Change image bytes in place after writing (the stored hash stays)."""
    path = _shard(root)
    with h5py.File(path) as f:
        offset = f["images"].id.get_offset()
    with open(path, "r+b") as fh:
        fh.seek(offset + 4 * (SIDE * SIDE * 50) + 8)
        fh.write(b"\x01\x02\x03\x04")  # a finite float32, so only the hash can tell


def _other_dataset(root: Path) -> None:
    write_toy(root / "lidc", "ct-lidc")
    shutil.copy(_shard(root / "lidc", "ge", "ct-lidc"), _shard(root, "5"))


def _mixed_sources(root: Path) -> None:
    write_toy(root, overrides={"5": {"data_source": "synthetic"}})


def validate_case(damage: Callable[[Path], object]) -> Callable[[Path], list[str]]:
    """`scanshift validate ROOT` on the toy shards after `damage`."""
    def setup(tmp: Path) -> list[str]:
        root = write_toy(tmp / "shards")
        damage(root)
        return ["validate", str(root)]
    return setup


def _nothing(_root: Path) -> None:
    return None


def _delete(domain: str) -> Callable[[Path], None]:
    return lambda root: _shard(root, domain).unlink()


STUDY = 'profile = "smoke"\n[experiments.main]\ndatasets = ["xray-chest"]\nseeds = 1\n'


def sweep_case(damage: Callable[[Path], object], *flags: str, shared: bool = False) -> Callable[[Path], list[str]]:
    """`scanshift run --local --dry-run` of a one-dataset study on the toy shards after `damage`."""
    def setup(tmp: Path) -> list[str]:
        root = write_toy(tmp / "shards", shared=shared)
        damage(root)
        (tmp / "study.toml").write_text(STUDY)
        return ["run", str(tmp / "study.toml"), "--shards", str(root), "--results", str(tmp / "results"),
                "--local", "--dry-run", *flags]
    return setup


def _a_result(folder: Path) -> Path:
    """A results folder with one valid cell file; returns the file."""
    import pandas as pd

    path = folder / "main" / "c0ffee.parquet"
    path.parent.mkdir(parents=True)
    pd.DataFrame({"cell_id": ["c0ffee"], "experiment": ["main"], "auc": [0.7]}).to_parquet(path)
    return path


def results_case(damage: Callable[[Path], object], command: str = "summary") -> Callable[[Path], list[str]]:
    """`scanshift summary RESULTS` (or `export RESULTS OUT`) on a results folder after `damage`."""
    def setup(tmp: Path) -> list[str]:
        results = tmp / "results"
        results.mkdir()
        damage(results)
        return [command, str(results)] + ([str(results)] if command == "export" else [])
    return setup


def _corrupt_parquet(results: Path) -> None:
    path = _a_result(results)
    path.write_bytes(path.read_bytes()[:40] + b"\0" * 64)


def _not_parquet(results: Path) -> None:
    _a_result(results).write_text("cell_id,auc\nc0ffee,0.7\n")


def _empty_parquet(results: Path) -> None:
    _a_result(results).write_bytes(b"")


def _missing(results: Path) -> None:
    shutil.rmtree(results)


def _stray_columns(results: Path) -> None:
    _a_result(results)


V, S, R = "shards", "sweep", "results"
FAULTS = [
    CliFault("shards_valid", V, validate_case(_nothing), "converted", fast=True),
    CliFault("shards_images_float64", V, validate_case(rewrite("3", images_as("float64"))), "refused",
             "images are float64", fast=True),
    CliFault("shards_images_int8", V, validate_case(rewrite("3", images_as("int8"))), "refused", "images are int8"),
    CliFault("shards_images_int32", V, validate_case(rewrite("5", images_as("int32"))), "refused", "images are int32"),
    CliFault("shards_images_float16", V, validate_case(rewrite("3", images_as("float16"))), "refused",
             "images are float16"),
    CliFault("shards_images_uint16", V, validate_case(rewrite("3", images_as("uint16"))), "converted"),
    CliFault("shards_images_big_endian_int16", V, validate_case(rewrite("3", _big_endian)), "converted"),
    CliFault("shards_images_gzip_chunked", V, validate_case(rewrite("3", put("layout", {"chunks": (8, SIDE, SIDE),
             "compression": "gzip"}))), "converted"),
    CliFault("shards_nan_at_image_100", V, validate_case(rewrite("3", pixel(100, np.nan))), "refused",
             "NaN or inf (first at image 100)", fast=True),
    CliFault("shards_inf_at_image_0", V, validate_case(rewrite("5", pixel(0, np.inf))), "refused", "NaN or inf"),
    CliFault("shards_nan_hash_kept", V, validate_case(rewrite("3", pixel(119, np.nan), rehash=False)), "refused",
             "NaN or inf"),
    CliFault("shards_label_2", V, validate_case(rewrite("3", _labels_two)), "refused", "labels must be 0 or 1"),
    CliFault("shards_labels_short", V, validate_case(rewrite("3", lambda p: p.update(labels=p["labels"][:-1]))),
             "refused", "120 images but labels"),
    CliFault("shards_empty_patient_id", V, validate_case(rewrite("5", _empty_pid)), "refused", "empty patient id"),
    CliFault("shards_patient_ids_ints", V, validate_case(rewrite("3", put("patient_ids", np.arange(N)))), "refused",
             "patient_ids must be strings"),
    CliFault("shards_no_images", V, validate_case(rewrite("3", lambda p: p.update(
             images=p["images"][:0], labels=p["labels"][:0], patient_ids=p["patient_ids"][:0]))), "refused",
             "no images"),
    CliFault("shards_images_4d_for_2d_task", V, validate_case(rewrite("3", lambda p: p.update(
             images=p["images"][:, None]))), "refused", "needs 3-D images"),
    CliFault("shards_missing_domain", V, validate_case(_delete("5")), "refused", "shard not found"),
    CliFault("shards_domain_of_another_dataset", V, validate_case(_other_dataset), "refused", "says it is ct-lidc/ge"),
    CliFault("shards_domain_attr_swapped", V, validate_case(rewrite("3", attr("domain", "5"))), "refused",
             "says it is xray-chest/5"),
    CliFault("shards_missing_domain_attr", V, validate_case(rewrite("3", attr("domain", None))), "refused",
             "missing attribute(s) domain"),
    CliFault("shards_missing_hash_attr", V, validate_case(rewrite("3", attr("content_sha1", None))), "refused",
             "missing attribute(s) content_sha1"),
    CliFault("shards_format_version_newer", V, validate_case(rewrite("3", attr("format_version", 9))), "refused",
             "newer than this code"),
    CliFault("shards_format_version_text", V, validate_case(rewrite("3", attr("format_version", "one"))), "refused",
             "format_version must be a whole number"),
    CliFault("shards_data_source_unknown", V, validate_case(rewrite("3", attr("data_source", "web"))), "refused",
             "data_source must be one of"),
    CliFault("shards_mixed_sources", V, validate_case(_mixed_sources), "refused", "mix synthetic and real"),
    CliFault("shards_truncated_file", V, validate_case(_truncate), "refused", "cannot read shard", fast=True),
    CliFault("shards_not_hdf5", V, validate_case(lambda r: _shard(r).write_text("not a shard")), "refused",
             "cannot read shard"),
    CliFault("shards_empty_file", V, validate_case(lambda r: _shard(r).write_bytes(b"")), "refused",
             "cannot read shard"),
    CliFault("shards_bytes_changed_after_writing", V, validate_case(_flip_bytes), "refused",
             "does not match its stored hash", fast=True),
    CliFault("shards_root_missing", V, validate_case(lambda r: shutil.rmtree(r)), "refused", "shard root not found"),
    CliFault("sweep_valid", S, sweep_case(_nothing), "converted"),
    CliFault("sweep_patient_in_both_domains", S, sweep_case(_nothing, shared=True), "refused",
             "appear in both scanner domains", fast=True),
    CliFault("sweep_patient_in_both_dropped", S, sweep_case(_nothing, "--shared-patients", "drop", shared=True),
             "converted"),
    CliFault("sweep_bytes_changed_after_writing", S, sweep_case(_flip_bytes), "refused", "does not match"),
    CliFault("sweep_nan_at_image_100", S, sweep_case(rewrite("5", pixel(100, np.nan))), "refused", "NaN or inf"),
    CliFault("sweep_missing_domain", S, sweep_case(_delete("3")), "refused", "shard not found"),
    # shards converted at another size than the profile trains at: upsampling would invent resolution
    CliFault("sweep_shards_smaller_than_the_input", S,
             sweep_case(rewrite("3", lambda p: p.update(images=p["images"][:, ::4, ::4].copy()))), "refused",
             "needs at least its input shape"),
    CliFault("sweep_images_float64", S, sweep_case(rewrite("3", images_as("float64"))), "refused",
             "images are float64"),
    CliFault("sweep_max_failures_negative", S, sweep_case(_nothing, "--max-failures", "-1"), "refused",
             "--max-failures", fast=True),
    CliFault("sweep_max_concurrent_zero", S, sweep_case(_nothing, "--max-concurrent", "0"), "refused",
             "--max-concurrent"),
    CliFault("sweep_seeds_not_a_number", S, sweep_case(_nothing, "--seeds", "many"), "refused", "--seeds"),
    CliFault("sweep_unknown_dataset", S, sweep_case(_nothing, "--datasets", "ct-brain"), "refused", "ct-brain"),
    CliFault("sweep_shard_root_missing", S, sweep_case(lambda r: shutil.rmtree(r)), "refused",
             "shard root not found"),
    CliFault("results_corrupt_parquet", R, results_case(_corrupt_parquet), "refused", "unreadable result file",
             fast=True),
    CliFault("results_csv_named_parquet", R, results_case(_not_parquet), "refused", "unreadable result file"),
    CliFault("results_empty_parquet", R, results_case(_empty_parquet), "refused", "unreadable result file"),
    CliFault("results_no_parquet", R, results_case(_nothing), "refused", "no Parquet files"),
    CliFault("results_folder_missing", R, results_case(_missing), "refused", "results not found"),
    CliFault("results_columns_missing", R, results_case(_stray_columns), "refused", "column"),
    CliFault("results_export_corrupt_parquet", R, results_case(_corrupt_parquet, "export"), "refused",
             "unreadable result file"),
]
