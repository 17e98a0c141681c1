"""The report on hand-made results and predictions whose answers are known."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from scanshift_ray import analysis
from scanshift_ray.cli import main
from scanshift_ray.errors import ScanshiftError
from scanshift_ray.report import prepare, write_report

SAME = {"ct-lidc": [0.90, 0.92, 0.94], "mri-prostate": [0.80, 0.82, 0.84]}
DROP = {"ct-lidc": 0.02, "mri-prostate": 0.20}
DOMAINS = {"ct-lidc": ("CT", ("ge", "other")), "mri-prostate": ("MRI", ("siemens", "other"))}


def _rows(source: str = "real", seeds: int = 3) -> pd.DataFrame:
    """Model trained on domain i: same-domain AUC SAME + 0.05 i; other-domain AUC that - DROP + 0.01 seed."""
    out = []
    for key, (modality, doms) in DOMAINS.items():
        for i, train in enumerate(doms):
            for seed in range(seeds):
                same = SAME[key][seed % 3] + 0.05 * i
                for test in doms:
                    auc = same if test == train else same - DROP[key] + 0.01 * seed
                    out.append({"experiment": "main", "dataset": key, "modality": modality, "train_domain": train,
                                "test_domain": test, "seed": seed, "mix_fraction": 0.0, "noise_alpha": 0.0,
                                "auc": auc, "data_source": source, "cell_id": f"{key}-{train}-{seed}"})
    return pd.DataFrame(out)


def _corrected(deltas, ratio=0.25):
    d = np.asarray(deltas)
    se = np.sqrt((1 / len(d) + ratio) * d.var(ddof=1))
    half = sps.t.ppf(0.975, len(d) - 1) * se
    return d.mean(), d.mean() - half, d.mean() + half, 2 * sps.t.sf(abs(d.mean() / se), len(d) - 1)


def test_table_values_corrected_interval_and_same_test_control():
    table = analysis.full_table(prepare(_rows())).set_index(["dataset", "train_domain"])
    lidc = table.loc[("ct-lidc", "ge")]
    assert lidc["same_mean"] == pytest.approx(0.92) and lidc["same_std"] == pytest.approx(0.02)
    mean, lo, hi, p = _corrected([-0.02, -0.01, 0.00])  # other = same - 0.02 + 0.01 * seed
    assert lidc["delta"] == pytest.approx(mean)
    assert (lidc["ci_low"], lidc["ci_high"], lidc["p_value"]) == pytest.approx((lo, hi, p))
    assert lidc["ci_low"] < 0 < lidc["ci_high"] and lidc["p_value"] > 0.05  # CI and p agree
    # same test set (other's): this model (same - 0.02 + 0.01 s) minus the native model there (same + 0.05)
    assert lidc["delta_st"] == pytest.approx(-0.06)
    assert table.loc[("ct-lidc", "other"), "delta_st"] == pytest.approx(0.04)
    assert lidc["paper_delta"] == pytest.approx(-0.032) and lidc["sign_agrees"]
    assert table.loc[("mri-prostate", "siemens"), "delta"] == pytest.approx(-0.19)
    assert "fewer than 5 seeds" in lidc["warning"]


def test_modality_means_have_intervals():
    table = analysis.full_table(prepare(_rows(seeds=6)))
    mods = analysis.modality_table(table).set_index("modality")
    assert mods.loc["MRI", "mean_delta"] == pytest.approx(table[table["modality"] == "MRI"]["delta"].mean())
    assert mods.loc["MRI", "ci_low"] < mods.loc["MRI", "mean_delta"] < mods.loc["MRI", "ci_high"]
    assert mods.loc["MRI", "paper_mean_delta"] == pytest.approx(-0.097)


def test_report_files_synthetic_label_and_paper_beside(tmp_path):
    rows = _rows("synthetic", seeds=2)
    rows.loc[0, "auc"] = np.nan
    mixing = rows[rows["dataset"] == "ct-lidc"].assign(experiment="mixing", mix_fraction=0.3)
    paths = write_report(pd.concat([rows, mixing]), tmp_path)
    names = {p.name for p in paths}
    assert {"table2.csv", "table2.md", "modality_summary.csv", "paper_comparison.csv", "fig2_bars.png",
            "fig3_box.png", "fig4_mixing.png", "report.md", "report.html"} <= names
    md = (tmp_path / "report.md").read_text()
    assert "No number in this report was computed on real data" in md and "SYNTHETIC" in md
    assert "fewer than 5 seeds" in md and "1 NaN values" in md
    assert "paper_delta" in (tmp_path / "table2.csv").read_text()  # beside the paper, synthetic too
    assert "illustrates, it does not replicate" in md
    comparison = pd.read_csv(tmp_path / "paper_comparison.csv").iloc[0]
    assert comparison["n_settings"] == 4 and 0 <= comparison["sign_agree"] <= 4


def test_paper_comparison_numbers():
    table = pd.DataFrame({"delta": [-0.1, -0.2, 0.05, -0.3], "paper_delta": [-0.1, -0.05, -0.02, -0.2]})
    c = analysis.paper_comparison(table)
    assert c["sign_agree"] == 3 and c["mean_abs_diff"] == pytest.approx((0.0 + 0.15 + 0.07 + 0.1) / 4)
    assert c["spearman_r"] == pytest.approx(0.8)  # ranks (3, 2, 4, 1) vs (2, 3, 4, 1): 1 - 6 * 2 / (4 * 15)


def test_report_cli_where_and_bad_input(tmp_path, capsys):
    both = pd.concat([_rows().assign(normalization="image"), _rows().assign(normalization="train")])
    both.to_parquet(tmp_path / "r.parquet")
    assert main(["report", str(tmp_path / "r.parquet"), "--out", str(tmp_path / "rep")]) == 2
    err = capsys.readouterr().err
    assert "--where normalization=image" in err and err.count("\n") == 1
    assert main(["report", str(tmp_path / "r.parquet"), "--out", str(tmp_path / "rep"),
                 "--where", "normalization=train"]) == 0
    assert main(["summary", str(tmp_path / "r.parquet"), "--where", "normalization=image"]) == 0
    assert "corrected resampled t-test" in capsys.readouterr().out
    _rows().drop(columns=["auc"]).to_parquet(tmp_path / "bad.parquet")
    assert main(["report", str(tmp_path / "bad.parquet"), "--out", str(tmp_path / "x")]) == 2
    assert "lack column(s) auc" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "r.parquet"), "--out", str(tmp_path / "x"), "--metric", "ap",
                 "--where", "normalization=image"]) == 2
    assert "needs the stored predictions" in capsys.readouterr().err
    with pytest.raises(ScanshiftError):
        write_report(_rows().assign(experiment="noise"), tmp_path / "y")


def _predictions(rows: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Random predictions for every row's test set (20 patients x 2 samples) and a validation set."""
    parts = []
    for r in rows.drop_duplicates(["cell_id", "test_domain"]).itertuples():
        for split, domain in (("test", r.test_domain), ("val", r.train_domain)):
            labels = np.tile([0, 1], 20)
            parts.append(pd.DataFrame({"cell_id": r.cell_id, "split": split, "domain": domain, "epoch": "best",
                                       "index": np.arange(40), "patient_id": np.repeat([f"p{i}" for i in range(20)], 2),
                                       "label": labels, "logit": labels * 1.0 + rng.normal(0, 1, 40)}))
    return pd.concat(parts, ignore_index=True).drop_duplicates(["cell_id", "split", "domain", "index"])


def test_metrics_and_bootstrap_from_predictions():
    rows = prepare(_rows())
    preds = _predictions(rows, np.random.default_rng(0))
    brier = analysis.metric_values(rows, preds, "brier")
    first = preds[(preds["cell_id"] == rows.loc[0, "cell_id"]) & (preds["split"] == "test")
                  & (preds["domain"] == rows.loc[0, "test_domain"])]
    expected = np.mean((1 / (1 + np.exp(-first["logit"])) - first["label"]) ** 2)
    assert brier.iloc[0] == pytest.approx(expected)
    rows["auc"] = analysis.metric_values(rows, preds, "auc")  # AUCs that match the predictions
    table = analysis.full_table(rows, preds).set_index(["dataset", "train_domain"])
    lidc = table.loc[("ct-lidc", "ge")]
    assert lidc["boot_ci_low"] <= lidc["delta"] <= lidc["boot_ci_high"]
    assert lidc["st_boot_ci_low"] <= lidc["delta_st"] <= lidc["st_boot_ci_high"]


def test_curves_start_at_the_matching_main_cells():
    from scanshift_ray.report import baseline

    main = prepare(_rows()).assign(noise_draw=None, noise_space=None, normalization="image")
    noise = main.assign(experiment="noise", noise_alpha=3.0, noise_draw="per_batch", noise_space="normalized")
    base = baseline(main, noise, "noise_alpha")  # noise options do not apply at alpha = 0
    assert len(base) == len(main) and set(base["noise_alpha"]) == {0.0}
    other = main.assign(normalization="train")
    assert baseline(other, noise, "noise_alpha").empty  # another configuration is not the curve's start


def test_a_main_cell_with_noise_is_not_the_zero_noise_point():
    from scanshift_ray.report import baseline

    main = prepare(_rows()).assign(noise_draw=None, noise_space=None, normalization="image", noise_alpha=1.0)
    noise = main.assign(experiment="noise", noise_alpha=3.0, noise_draw="per_batch", noise_space="normalized")
    assert baseline(main, noise, "noise_alpha").empty
    few = noise[noise["seed"] < 2]
    main0 = main.assign(noise_alpha=0.0)
    assert set(baseline(main0, few, "noise_alpha")["seed"]) == {0, 1}  # the curve's seeds only


SCANNER_AUC = {"ct-lidc": [0.70, 0.74, 0.78], "mri-prostate": [0.95, 0.97, 0.99]}


def _separability_rows(source: str = "real") -> pd.DataFrame:
    """Rows of the separability diagnostic: one per dataset and seed, trained and tested on both scanners."""
    out = []
    for key, (modality, _) in DOMAINS.items():
        for seed, auc in enumerate(SCANNER_AUC[key]):
            out.append({"experiment": "separability", "dataset": key, "modality": modality, "train_domain": "both",
                        "test_domain": "both", "same_domain": False, "seed": seed, "mix_fraction": 0.0,
                        "noise_alpha": 0.0, "predict": "scanner", "auc": auc, "n_test": 40, "n_train": 160,
                        "data_source": source, "cell_id": f"sep-{key}-{seed}"})
    return pd.DataFrame(out)


def test_separability_rows_change_neither_table2_nor_the_pooling_check():
    from scanshift_ray.summary import check_pooling

    main_only = prepare(_rows())  # written before `predict` existed: the column is missing
    both = prepare(pd.concat([_rows(), _separability_rows()], ignore_index=True))
    check_pooling(both)
    pd.testing.assert_frame_equal(analysis.full_table(both), analysis.full_table(main_only))
    newer = _rows().assign(predict="disease")  # later seeds of main, written with the axis, pool with old ones
    check_pooling(prepare(pd.concat([_rows(), newer[newer["seed"] == 2].assign(seed=3)], ignore_index=True)))


def test_separability_table_has_corrected_intervals_clipped_to_0_1():
    table = analysis.separability_table(prepare(_separability_rows())).set_index("dataset")
    mean, lo, hi, _ = _corrected(SCANNER_AUC["ct-lidc"], ratio=40 / 160)
    lidc = table.loc["ct-lidc"]
    assert (lidc["scanner_auc"], lidc["ci_low"], lidc["ci_high"]) == pytest.approx((mean, lo, hi))
    assert lidc["scanner_auc_std"] == pytest.approx(0.04) and lidc["n_seeds"] == 3
    assert table.loc["mri-prostate", "ci_high"] == 1.0  # 0.97 + t(2) x se is above 1
    assert analysis.separability_table(prepare(_rows())).empty
    two = pd.concat([_separability_rows(), _separability_rows().assign(experiment="sep2")])
    with pytest.raises(ScanshiftError, match="--where experiment=sep2"):
        analysis.separability_table(prepare(two))


def test_spearman_with_a_bootstrap_over_datasets():
    x = np.array([0.6, 0.6, 0.7, 0.7, 0.8, 0.8, 0.9, 0.9])  # two settings per dataset share its scanner AUC
    y = np.array([0.00, -0.01, -0.02, -0.05, -0.04, -0.08, -0.10, -0.12])
    groups = np.repeat(["a", "b", "c", "d"], 2)
    c = analysis.spearman_ci(x, y, groups)
    rank_x, rank_y = [1.5, 1.5, 3.5, 3.5, 5.5, 5.5, 7.5, 7.5], [8, 7, 6, 4, 5, 3, 2, 1]  # ties share mid-ranks
    assert c["r"] == pytest.approx(np.corrcoef(rank_x, rank_y)[0, 1]) and c["r"] < -0.9
    assert c["ci_low"] <= c["r"] <= c["ci_high"] <= 1.0 and (c["n_points"], c["n_groups"]) == (8, 4)
    assert c == analysis.spearman_ci(x, y, groups)  # a fixed bootstrap seed
    nan = analysis.spearman_ci(np.append(x[:4], np.nan), np.append(y[:4], 0.0), np.append(groups[:4], "e"))
    assert np.isnan(nan["r"]) and nan["n_groups"] == 2  # the NaN point is dropped: 2 datasets are too few


def test_report_with_separability_rows_has_its_section_and_figure(tmp_path):
    rows = pd.concat([_rows("synthetic"), _separability_rows("synthetic")], ignore_index=True)
    names = {p.name for p in write_report(rows, tmp_path)}
    assert {"separability.csv", "shift_vs_separability.csv", "fig6_separability.png"} <= names
    assert "fig_separability.png" not in names  # no curve over the predict axis
    md = (tmp_path / "report.md").read_text()
    order = [md.index(h) for h in ("## Mean delta per modality", "## Scanner separability", "## Beside the paper")]
    assert order == sorted(order)
    assert "![Fig. 6: delta against scanner separability](fig6_separability.png)" in md
    assert "Over 4 settings of 2 datasets, Spearman r of delta" in md
    page = (tmp_path / "report.html").read_text()
    assert "<h2>Scanner separability</h2>" in page and "fig6_separability.png" in page
    points = pd.read_csv(tmp_path / "shift_vs_separability.csv")
    assert len(points) == 4 and set(points.columns) >= {"dataset", "train_domain", "scanner_auc", "delta", "delta_st"}
    plain = tmp_path / "plain"
    names = {p.name for p in write_report(_rows("synthetic"), plain)}
    assert not {"separability.csv", "fig6_separability.png"} & names
    assert "Scanner separability" not in (plain / "report.md").read_text()
    assert "Scanner separability" not in (plain / "report.html").read_text()
    assert (tmp_path / "table2.csv").read_text() == (plain / "table2.csv").read_text()
