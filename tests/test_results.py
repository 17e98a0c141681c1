import pandas as pd
import pytest

from scanshift_ray import results
from scanshift_ray.errors import ScanshiftError


def _rows(cell_id: str, experiment: str = "main") -> list[dict]:
    return [{"experiment": experiment, "cell_id": cell_id, "test_domain": d, "auc": 0.8} for d in ("a", "b")]


def test_write_read_and_ledger(tmp_path):
    results.write_cell(tmp_path, _rows("c1"))
    results.write_cell(tmp_path, _rows("c2", "noise"))
    assert results.done_cells(tmp_path) == {"c1", "c2"}
    df = results.read_results(tmp_path)
    assert len(df) == 4 and set(df["cell_id"]) == {"c1", "c2"}
    assert len(pd.read_parquet(tmp_path / "main")) == 2  # plain pandas reads an experiment folder
    assert not list(tmp_path.rglob("*.tmp"))


def test_failure_record_is_cleared_by_success(tmp_path):
    results.record_failure(tmp_path, {"cell_id": "c1", "dataset": "x"}, "boom")
    assert results.failed_cells(tmp_path) == {"c1": "boom"}
    assert results.done_cells(tmp_path) == set()
    results.write_cell(tmp_path, _rows("c1"))
    assert results.failed_cells(tmp_path) == {}


def test_unreadable_result_file_is_named(tmp_path):
    (tmp_path / "main").mkdir()
    (tmp_path / "main" / "broken.parquet").write_text("nope")
    with pytest.raises(ScanshiftError, match="unreadable result file .*broken.parquet"):
        results.read_results(tmp_path)
    with pytest.raises(ScanshiftError, match="results not found"):
        results.read_results(tmp_path / "missing")


def test_partial_writes_of_a_killed_sweep_are_removed(tmp_path):
    results.write_cell(tmp_path, _rows("c1"))
    stray = tmp_path / "_predictions" / "main" / ".c2.parquet.abc.tmp"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"half")
    shard_tmp = tmp_path / "shards" / "ct-lidc" / ".ge.h5.xyz.tmp"  # not a results file: left alone
    shard_tmp.parent.mkdir(parents=True)
    shard_tmp.write_bytes(b"x")
    assert results.remove_partial_writes(tmp_path) == 1
    assert not stray.exists() and shard_tmp.exists() and results.done_cells(tmp_path) == {"c1"}


def test_rows_from_before_a_column_existed_read_with_the_value_they_had(tmp_path):
    import pandas as pd

    pd.DataFrame([{"experiment": "main", "cell_id": "old", "auc": 0.8}]).to_parquet(tmp_path / "main-old.parquet")
    pd.DataFrame([{"experiment": "main", "cell_id": "new", "auc": 0.7, "val_every": 3}]).to_parquet(
        tmp_path / "main-new.parquet")
    rows = results.read_results(tmp_path).set_index("cell_id")
    assert rows.loc["old", "val_every"] == 1 and rows.loc["new", "val_every"] == 3
    assert str(rows["val_every"].dtype) == "int64"
    assert results.read_results(tmp_path / "main-old.parquet")["val_every"].tolist() == [1]
