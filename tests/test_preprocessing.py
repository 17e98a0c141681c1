"""Preprocessing end to end on miniature datasets written in the true formats (preprocessing.fixtures)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from preprocessing import fixtures_ct, fixtures_mr_xr
from preprocessing.cli import main as preprocess_main
from preprocessing.core import CONVERTERS, convert
from preprocessing.fixtures import FIXTURES
from scanshift_ray.cli import main as scanshift_main
from scanshift_ray.datasets import DATASETS
from scanshift_ray.shards import load_domains

KEY = b"test-secret-key"


def test_every_converter_has_a_fixture():
    assert set(CONVERTERS.names()) <= set(FIXTURES)
    assert set(CONVERTERS.names()) <= set(DATASETS.names())


_DONE: dict[str, tuple] = {}


def _convert(key: str, factory: pytest.TempPathFactory) -> tuple:
    """Write the fixture of `key` and convert it once per test session."""
    if key not in _DONE:
        make, options = FIXTURES[key]
        root = factory.mktemp(key)
        answers = make(root / "raw")
        _DONE[key] = (key, root, answers, convert(key, root / "raw", root / "out", KEY, options, workers=1), options)
    return _DONE[key]


@pytest.fixture(params=sorted(FIXTURES))
def converted(request, tmp_path_factory):
    return _convert(request.param, tmp_path_factory)


def test_labels_counts_and_shape(converted):
    key, root, answers, manifest, _ = converted
    spec = DATASETS.get(key)
    loaded = load_domains(root / "out", spec)  # the sweep engine's own reader accepts the shards
    for domain, labels in answers["labels"].items():
        assert loaded[domain].labels.tolist() == labels
        assert loaded[domain].images.dtype == (np.int16 if spec.modality == "CT" else np.float32)  # HU / scanner
        assert loaded[domain].attrs["data_source"] == "real"
    body = json.loads(manifest.read_text())
    assert body["cases"]["dropped"] == answers["dropped"]
    assert {d: c["n"] for d, c in body["counts"].items()} == {d: len(v) for d, v in answers["labels"].items()}


def test_no_identifying_string_reaches_shards_or_manifest(converted):
    key, root, answers, manifest, _ = converted
    files = list((root / "out" / key).iterdir())
    blob = b"".join(f.read_bytes() for f in files)
    for secret in answers["secrets"] + ["19450704", "Doe^Jane"]:
        if len(secret) >= 8:  # short numeric ids could occur in image bytes by chance
            assert secret.encode() not in blob, f"{secret} leaked into {key} outputs"
    text = (root / "out" / key / "manifest.json").read_text()
    for domain in answers["labels"]:
        with h5py.File(root / "out" / key / f"{domain}.h5") as f:
            pids = list(f["patient_ids"].asstr()[()])
            text += " ".join(pids) + " ".join(str(v) for v in f.attrs.values())
            assert all(p.startswith("sub-") and len(p) == 20 for p in pids)
    for secret in answers["secrets"]:
        assert secret not in text, f"{secret} leaked into {key} manifest or attributes"


def test_rerun_is_stable_and_parallel_equal(converted, tmp_path):
    key, root, _, manifest, options = converted
    again = convert(key, root / "raw", tmp_path, KEY, options, workers=2)
    assert sorted(p.name for p in again.parent.glob("*.h5")) == sorted(p.name for p in manifest.parent.glob("*.h5"))
    for h5 in (root / "out" / key).glob("*.h5"):
        with h5py.File(h5) as a, h5py.File(again.parent / h5.name) as b:
            assert a.attrs["content_sha1"] == b.attrs["content_sha1"]  # same pseudonyms, same order
            assert dict(a.attrs) == dict(b.attrs)
            for name in ("images", "labels", "patient_ids"):
                assert a[name].dtype == b[name].dtype and np.array_equal(a[name][()], b[name][()])
    assert json.loads(again.read_text()) == json.loads(manifest.read_text())  # records, skips, counts, order
    other = convert(key, root / "raw", tmp_path / "k2", b"another-key!", options, workers=1)
    first = sorted(other.parent.glob("*.h5"))[0]
    with h5py.File(first) as a, h5py.File(root / "out" / key / first.name) as b:
        assert set(a["patient_ids"].asstr()[()]).isdisjoint(b["patient_ids"].asstr()[()])
    assert not list((root / "out" / key).glob(".*tmp"))


def _middle(cube: np.ndarray) -> tuple[int, ...]:
    return tuple(s // 2 for s in cube.shape)


def test_opc_cube_is_centred_on_the_gtv(tmp_path_factory):
    key, root, *_ = _convert("ct-oropharyngeal", tmp_path_factory)
    for domain in ("ge", "toshiba"):
        with h5py.File(root / "out" / key / f"{domain}.h5") as f:
            cube = f["images"][0]
        assert cube.shape == (16, 16, 16)
        assert cube[_middle(cube)] == 1000  # the marker voxel at the GTV centroid
    with h5py.File(root / "out" / key / "toshiba.h5") as f:  # GTV at (10, 6, 6): rows/cols padded with air
        assert (f["images"][0][:, 0, :] == -1024).all()


def test_lidc_crops_are_centred_on_the_annotation(tmp_path_factory):
    key, root, answers, manifest, _ = _convert("ct-lidc", tmp_path_factory)
    for domain in ("ge", "other"):
        with h5py.File(root / "out" / key / f"{domain}.h5") as f:
            for crop in f["images"][()]:
                assert crop.shape == (5, 47, 47)
                assert crop[2, 23, 23] == 500
    reasons = " ".join(s["reason"] for s in json.loads(manifest.read_text())["skipped_files"])
    assert "malignancy 3" in reasons and "without characteristics" in reasons and "IdriReadMessage" in reasons


def test_kidney_reports_junk_and_cases_without_seg(tmp_path_factory):
    key, root, answers, manifest, _ = _convert("ct-kidney", tmp_path_factory)
    body = json.loads(manifest.read_text())
    assert {Path(s["path"]).name for s in body["skipped_files"]} == {"notes.txt", "1-999.dcm"}
    assert "no DICOM SEG" in body["dropped_cases"][0]["reason"]


def test_cli_errors_are_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SCANSHIFT_PSEUDONYM_KEY", "cli-test-key")
    assert preprocess_main(["ct-lidc", "--raw", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 2
    (tmp_path / "empty" / "a" / "b" / "c").mkdir(parents=True)
    (tmp_path / "empty" / "a" / "b" / "c" / "x.txt").write_text("x")
    assert preprocess_main(["ct-hnscc", "--raw", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    assert preprocess_main(["ct-lidc", "--raw", str(tmp_path), "--out", str(tmp_path), "--option", "nope=1"]) == 2
    monkeypatch.delenv("SCANSHIFT_PSEUDONYM_KEY")
    assert scanshift_main(["preprocess", "ct-lidc", "--raw", str(tmp_path), "--out", str(tmp_path)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(err) == 4
    assert "raw directory not found" in err[0] and "no ct-hnscc case found" in err[1]  # x.txt: no DICOM, no case
    assert "unknown option" in err[2] and "pseudonymisation key" in err[3]


def test_cli_converts_via_scanshift(tmp_path, capsys):
    fixtures_ct.make_hnscc(tmp_path / "raw")
    rc = scanshift_main(["preprocess", "ct-hnscc", "--raw", str(tmp_path / "raw"), "--out", str(tmp_path / "out"),
                         "--pseudonym-key", "a-long-key", "--option", "size=8", "--workers", "2"])
    assert rc == 0
    assert scanshift_main(["validate", str(tmp_path / "out")]) == 0


def test_duke_crop_is_centred_on_the_box_through_the_mapping_sheet(tmp_path_factory):
    key, root, answers, manifest, _ = _convert("mri-breast", tmp_path_factory)
    for domain in ("ge", "siemens"):
        with h5py.File(root / "out" / key / f"{domain}.h5") as f:
            crop = f["images"][0]
        assert crop.shape == (5, 47, 47) and crop[2, 23, 23] == 999
    assert "is software" in json.loads(manifest.read_text())["dropped_cases"][0]["reason"]  # MPTronic


def test_picai_ai_fallback_adds_the_study_with_only_an_ai_mask(tmp_path_factory, tmp_path):
    key, root, *_ = _convert("mri-prostate", tmp_path_factory)
    manifest = convert(key, root / "raw", tmp_path, KEY, ["size=16", "ai_fallback=true"], workers=1)
    body = json.loads(manifest.read_text())
    assert body["counts"]["siemens"] == {"n": 18, "n_pos": 4, "n_patients": 2}
    assert body["cases"]["dropped"] == 1  # only the study without a manufacturer


def test_brax_rows_paths_and_reasons(tmp_path_factory):
    key, root, answers, manifest, _ = _convert("xray-chest", tmp_path_factory)
    body = json.loads(manifest.read_text())
    reasons = {s["reason"] for s in body["skipped_files"]}
    assert {"1 rows dropped: view not in PA,AP", "1 rows dropped: manufacturer code not 3 or 5",
            "2 rows dropped: Cardiomegaly uncertain or blank", "image file not found"} <= reasons
    missing = next(s["path"] for s in body["skipped_files"] if s["reason"] == "image file not found")
    assert missing.startswith("images/sub-")  # the raw PatientID folder is pseudonymised
    with h5py.File(root / "out" / key / "3.h5") as f:
        assert f["images"].shape == (2, 16, 16)


def test_brax_reads_dicoms_with_source_dicom(tmp_path):
    from preprocessing.testing import Patient, write_ct_series

    lines = ["PatientID,Cardiomegaly,ViewPosition,Manufacturer,DicomPath,PngPath"]
    for i, (code, label) in enumerate([(3, 1), (5, 0), (3, 0)]):
        pid = f"id_{i:04d}abcd-0000"
        folder = tmp_path / "Anonymized_DICOMs" / pid / "Study_1" / "Series_1"
        write_ct_series(folder, Patient(pid).with_uids(), "x", np.full((1, 40, 30), 100 * (i + 1)),
                        names=["image-1.dcm"])
        lines.append(f"{pid},{label},PA,{code},Anonymized_DICOMs/{pid}/Study_1/Series_1/image-1.dcm,x.png")
    (tmp_path / "master_spreadsheet_update.csv").write_text("\n".join(lines) + "\n")
    manifest = convert("xray-chest", tmp_path, tmp_path / "out", KEY, ["source=dicom", "size=8"], workers=1)
    assert json.loads(manifest.read_text())["counts"] == {"3": {"n": 2, "n_pos": 1, "n_patients": 2},
                                                          "5": {"n": 1, "n_pos": 0, "n_patients": 1}}


def test_duke_takes_the_dicom_manufacturer_when_the_sheet_has_none(tmp_path):
    import pandas as pd

    from preprocessing.testing import write_xlsx

    fixtures_mr_xr.make_duke(tmp_path)
    sheet = tmp_path / "Clinical_and_Other_Features.xlsx"
    rows = pd.read_excel(sheet, header=None, dtype=object).drop(columns=[1]).fillna("").values.tolist()
    write_xlsx(sheet, rows)  # the same sheet without its Manufacturer column
    body = json.loads(convert("mri-breast", tmp_path, tmp_path / "out", KEY, (), workers=1).read_text())
    assert body["counts"]["ge"]["n"] == 1 and body["counts"]["siemens"]["n"] == 1
    assert "MPTronic" in body["dropped_cases"][0]["reason"]  # the DICOM tag of that patient says so
