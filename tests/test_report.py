"""The report on hand-made results whose answers are known."""

import numpy as np
import pandas as pd
import pytest

from scanshift_ray.cli import main
from scanshift_ray.errors import ScanshiftError
from scanshift_ray.report import full_table, write_report
from scanshift_ray.stats import bootstrap_ci, paired_test

SAME = {"ct-lidc": [0.90, 0.92, 0.94], "mri-prostate": [0.80, 0.82, 0.84]}
DROP = {"ct-lidc": 0.02, "mri-prostate": 0.20}


def _rows(source: str = "real", seeds: int = 3) -> pd.DataFrame:
    out = []
    for key, modality, doms in (("ct-lidc", "CT", ("ge", "other")), ("mri-prostate", "MRI", ("siemens", "other"))):
        for train in doms:
            for seed in range(seeds):
                same = SAME[key][seed]
                for test in doms:
                    auc = same if test == train else same - DROP[key] + 0.01 * seed
                    out.append({"experiment": "main", "dataset": key, "modality": modality, "train_domain": train,
                                "test_domain": test, "seed": seed, "mix_fraction": 0.0, "noise_alpha": 0.0,
                                "auc": auc, "data_source": source})
    return pd.DataFrame(out)


def test_table_values_tests_and_ci():
    table = full_table(_rows()).set_index(["dataset", "train_domain"])
    lidc = table.loc[("ct-lidc", "ge")]
    assert lidc["same_mean"] == pytest.approx(0.92) and lidc["same_std"] == pytest.approx(0.02)
    # other = same - 0.02 + 0.01 * seed -> deltas -0.02, -0.01, 0.00
    assert lidc["delta"] == pytest.approx(-0.01)
    assert lidc["ci_low"] == pytest.approx(-0.02) and lidc["ci_high"] == pytest.approx(0.0)
    assert lidc["test"] == "paired t-test" and lidc["p_value"] == pytest.approx(0.2254, abs=1e-3)
    assert lidc["paper_delta"] == pytest.approx(-0.032)
    assert table.loc[("mri-prostate", "siemens"), "delta"] == pytest.approx(-0.19)


def test_stats_edge_cases():
    assert np.isnan(paired_test(np.array([0.9]), np.array([0.8]))[1])
    assert np.isnan(bootstrap_ci(np.array([0.1]))[0])


def test_report_files_and_synthetic_label(tmp_path):
    rows = _rows("synthetic", seeds=2)
    rows.loc[0, "auc"] = np.nan
    mixing = rows[rows["dataset"] == "ct-lidc"].assign(experiment="mixing", mix_fraction=0.3)
    paths = write_report(pd.concat([rows, mixing]), tmp_path)
    names = {p.name for p in paths}
    assert {"table2.csv", "table2.md", "modality_summary.csv", "fig2_bars.png", "fig3_box.png",
            "fig4_mixing.png", "report.md", "report.html"} <= names
    md = (tmp_path / "report.md").read_text()
    assert "SYNTHETIC" in md and "fewer than 3 seeds" in md and "1 NaN AUC" in md
    assert "paper_delta" not in (tmp_path / "table2.csv").read_text()  # paper values only beside real data
    summary = pd.read_csv(tmp_path / "modality_summary.csv").set_index("modality")
    assert summary.loc["MRI", "n_settings"] == 2


def test_report_cli_and_bad_input(tmp_path, capsys):
    _rows().to_parquet(tmp_path / "r.parquet")
    assert main(["report", str(tmp_path / "r.parquet"), "--out", str(tmp_path / "rep")]) == 0
    assert "paper_delta" in (tmp_path / "rep" / "table2.csv").read_text()
    _rows().drop(columns=["auc"]).to_parquet(tmp_path / "bad.parquet")
    assert main(["report", str(tmp_path / "bad.parquet"), "--out", str(tmp_path / "x")]) == 2
    assert "lack column(s) auc" in capsys.readouterr().err
    with pytest.raises(ScanshiftError):
        write_report(_rows().assign(experiment="noise"), tmp_path / "y")
