"""Shards and results behind URIs (file:// goes through the same pyarrow code as s3:// and gs://)."""

from __future__ import annotations

import pytest

from scanshift_ray import results, storage
from scanshift_ray.cli import main as scanshift_main
from scanshift_ray.datasets import DATASETS
from scanshift_ray.errors import ScanshiftError
from scanshift_ray.shards import load_domains


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(storage.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_uri_shards_are_fetched_once_per_node_and_refreshed_when_changed(toy_root, cache):
    spec = DATASETS.get("ct-lidc")
    uri = f"file://{toy_root}"
    first = load_domains(uri, spec)
    copies = sorted(cache.rglob("*.h5"))
    assert [p.name for p in copies] == ["ge.h5", "other.h5"]
    stamps = [p.stat().st_mtime_ns for p in copies]
    again = load_domains(uri, spec)
    assert [p.stat().st_mtime_ns for p in copies] == stamps  # served from the cache
    assert (again["ge"].labels == first["ge"].labels).all()
    from tests.conftest import write_toy_dataset

    write_toy_dataset(toy_root, "ct-lidc", n_patients=20)  # the remote copy changes
    assert len(load_domains(uri, spec)["ge"]) == 40


def test_missing_uri_shard_is_one_line(tmp_path, cache):
    with pytest.raises(ScanshiftError, match="shard not found: file://"):
        load_domains(f"file://{tmp_path}", DATASETS.get("ct-lidc"))


def test_study_with_uri_shards_and_results(toy_root, tmp_path, cache, capsys):
    res = f"file://{tmp_path}/bucket/results"
    args = ["run", "--shards", f"file://{toy_root}", "--results", res, "--datasets", "ct-lidc", "--profile", "smoke",
            "--seeds", "1", "--experiments", "main", "--local"]
    assert scanshift_main(args) == 0
    assert len(results.done_cells(res)) == 2
    assert len(results.read_results(res)) == 4
    assert scanshift_main(args) == 0
    assert "2 already done, 0 to run" in capsys.readouterr().out
    results.record_failure(res, {"cell_id": "abc"}, "boom")
    assert results.failed_cells(res) == {"abc": "boom"}
