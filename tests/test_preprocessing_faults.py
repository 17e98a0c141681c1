"""Preprocessing on damaged or unusual inputs: scanner identity, compressed pixels, output folder rules."""

from __future__ import annotations

import json
import os
import stat

import h5py
import numpy as np
import pydicom
import pytest
from pydicom.uid import JPEG2000Lossless

from preprocessing import core, fixtures_ct, fixtures_mr_xr
from preprocessing.cli import main as preprocess_main
from preprocessing.core import convert
from preprocessing.vendors import match_domain, vendor_of
from scanshift_ray.datasets import DATASETS
from scanshift_ray.errors import ScanshiftError

KEY = b"test-secret-key"


@pytest.mark.parametrize("text, vendor, software", [
    ("GE MEDICAL SYSTEMS", "ge", False), ("GE Medical Systems", "ge", False), ("GE", "ge", False),
    ("GE MEDICAL S]STEMS", "ge", False), ("SIEMENS", "siemens", False), ("Siemens Healthineers", "siemens", False),
    ("Siemens HealthCare GmbH", "siemens", False), ("TOSHIBA_MEC", "toshiba", False),
    ("Canon Medical Systems", "canon", False), ("Philips", "philips", False), ("Merge Healthcare", "merge", True),
    ("ADAC", "adac", True), ("Pinnacle3", "adac", True), ("MIM Software Inc.", "mim", True),
    ("Varian Medical Systems", "varian", True), ("QIICR", "qiicr", True), ("Gemini", "", False),
])
def test_vendor_words(text, vendor, software):
    assert (vendor_of(text).name, vendor_of(text).software) == (vendor, software)


def test_domains_from_vendor_words():
    lidc, opc = DATASETS.get("ct-lidc"), DATASETS.get("ct-oropharyngeal")
    assert match_domain(lidc, "GE MEDICAL S]STEMS")[0] == "ge"
    assert match_domain(lidc, "Merge Healthcare") == (None, "manufacturer 'Merge Healthcare' is software (merge), "
                                                            "not a scanner")
    assert match_domain(lidc, "SIEMENS")[0] == "other" and match_domain(lidc, "")[0] is None
    assert match_domain(opc, "Canon Medical Systems")[0] == "toshiba"
    assert match_domain(opc, "SIEMENS")[0] is None  # neither GE nor Toshiba/Canon


def test_jpeg2000_ct_decodes_to_the_same_shard(tmp_path):
    fixtures_ct.make_hnscc(tmp_path / "raw")
    plain = convert("ct-hnscc", tmp_path / "raw", tmp_path / "plain", KEY, ["size=0"], workers=1)
    for path in sorted((tmp_path / "raw").rglob("NA-28768/*.dcm")):
        ds = pydicom.dcmread(path)
        ds.compress(JPEG2000Lossless)
        ds.save_as(path)
    assert pydicom.dcmread(path).file_meta.TransferSyntaxUID == JPEG2000Lossless
    packed = convert("ct-hnscc", tmp_path / "raw", tmp_path / "packed", KEY, ["size=0"], workers=1)
    for domain in ("ge", "other"):
        with h5py.File(plain.parent / f"{domain}.h5") as a, h5py.File(packed.parent / f"{domain}.h5") as b:
            assert a.attrs["content_sha1"] == b.attrs["content_sha1"]


def test_files_get_normal_permissions_and_manifest_records_scanners(tmp_path):
    fixtures_ct.make_hnscc(tmp_path / "raw")
    old = os.umask(0o022)
    try:
        manifest = convert("ct-hnscc", tmp_path / "raw", tmp_path / "out", KEY, ["size=8"], workers=1)
    finally:
        os.umask(old)
    for path in manifest.parent.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    body = json.loads(manifest.read_text())
    records = {r["domain"]: r for r in body["case_records"]}
    assert records["other"]["manufacturer"] == "Philips Medical Systems" and records["other"]["vendor"] == "philips"
    assert body["identity"]["options"]["size"] == 8 and len(body["identity"]["options_id"]) == 12


def test_other_options_refused_unless_overwrite_and_other_key_warns(tmp_path, capsys, monkeypatch):
    fixtures_ct.make_hnscc(tmp_path / "raw")
    args = ["ct-hnscc", "--raw", str(tmp_path / "raw"), "--out", str(tmp_path / "out"), "--workers", "1"]
    monkeypatch.setenv("SCANSHIFT_PSEUDONYM_KEY", "first-key-123")
    assert preprocess_main([*args, "--option", "size=8"]) == 0
    before = (tmp_path / "out" / "ct-hnscc" / "ge.h5").read_bytes()
    assert preprocess_main([*args, "--option", "size=4"]) == 2
    assert (tmp_path / "out" / "ct-hnscc" / "ge.h5").read_bytes() == before
    monkeypatch.setenv("SCANSHIFT_PSEUDONYM_KEY", "second-key-456")
    assert preprocess_main([*args, "--option", "size=4", "--overwrite"]) == 0
    captured = capsys.readouterr()
    assert "--overwrite" in captured.err and "different pseudonym key" in captured.err
    assert "converted 2 of 2 cases" in captured.out
    with h5py.File(tmp_path / "out" / "ct-hnscc" / "ge.h5") as f:
        assert f["images"].shape[1:] == (4, 4)


def _die(case, job):  # module level so a worker process can unpickle it
    os._exit(3)


def test_a_killed_worker_is_a_one_line_refusal(tmp_path, monkeypatch):
    fixtures_ct.make_hnscc(tmp_path / "raw")
    conv = core.CONVERTERS.get("ct-hnscc")
    job = core.Job("ct-hnscc", tmp_path / "raw", KEY, conv.options())
    cases, _, _ = conv.discover(tmp_path / "raw", conv.options())
    dying = core.Converter("ct-hnscc", conv.options, conv.discover, _die)
    with pytest.raises(ScanshiftError, match="worker process died"):
        core.run_cases(dying, cases, job, workers=2)


def _numbered(case, job):  # module level: the worker processes call it
    if case % 7 == 3:
        raise core.Drop("dropped on purpose")
    return core.CaseOutput(job.pseudonym(str(case)), domain="ge", images=[np.full((2, 2), case, np.int16)] * 2,
                           labels=[case % 2, 1])


def _ragged(case, job):
    return core.CaseOutput(job.pseudonym(str(case)), domain="ge", images=[np.zeros((2, 2)), np.zeros((3, 3))],
                           labels=[0, 1])


@pytest.mark.parametrize("n, workers", [(1, 2), (5, 2), (300, 2), (1000, 3)])
def test_chunks_cover_every_case_once_in_order(n, workers):
    bounds = core.chunk_bounds(n, workers)
    assert [i for a, b in bounds for i in range(a, b)] == list(range(n))
    assert max(b - a for a, b in bounds) <= core.MAX_CHUNK
    assert len(bounds) >= min(n, workers * core.TASKS_PER_WORKER)  # few cases: one per task


def test_pool_returns_the_single_process_outputs_in_case_order(tmp_path):
    conv = core.Converter("ct-hnscc", core.CONVERTERS.get("ct-hnscc").options, lambda raw, opt: ([], [], {}),
                          _numbered)
    job = core.Job("ct-hnscc", tmp_path, KEY, conv.options())
    cases = list(range(700))  # several cases per task
    one, two = core.run_cases(conv, cases, job, workers=1), core.run_cases(conv, cases, job, workers=2)
    for a, b in zip(one, two, strict=True):
        assert (a.patient, a.labels, a.dropped, a.raw_ids) == (b.patient, b.labels, b.dropped, b.raw_ids)
        assert (a.block is None and b.block is None) or np.array_equal(a.block, b.block)
    assert [o.dropped for o in one[:4]] == ["", "", "", "dropped on purpose"]
    assert one[5].block.shape == (2, 2, 2) and one[5].images == [] and one[5].block[0, 0, 0] == 5


def test_a_case_whose_images_do_not_stack_is_dropped_with_why(tmp_path):
    conv = core.Converter("ct-hnscc", core.CONVERTERS.get("ct-hnscc").options, lambda raw, opt: ([], [], {}),
                          _ragged)
    out, = core.run_cases(conv, [0], core.Job("ct-hnscc", tmp_path, KEY, conv.options()), workers=1)
    assert out.dropped.startswith("failed: the case's images do not stack") and out.block is None


def test_duke_disagreement_is_recorded_and_the_source_is_an_option(tmp_path):
    from openpyxl import load_workbook

    fixtures_mr_xr.make_duke(tmp_path)
    wb = load_workbook(tmp_path / "Clinical_and_Other_Features.xlsx")
    wb.active.cell(row=4, column=2, value=2)  # the GE patient: the sheet now says Siemens
    wb.save(tmp_path / "Clinical_and_Other_Features.xlsx")
    for source, domain in (("sheet", "siemens"), ("dicom", "ge")):
        body = json.loads(convert("mri-breast", tmp_path, tmp_path / source, KEY, [f"scanner_source={source}"],
                                  workers=1).read_text())
        record = next(r for r in body["case_records"] if r.get("notes"))
        assert "scanner disagreement" in record["notes"][0] and record["domain"] == domain


def test_bad_lidc_annotation_drops_only_itself(tmp_path):
    fixtures_ct.make_lidc(tmp_path)
    xml = next(tmp_path.rglob("LIDC-IDRI-0001/**/069.xml"))
    xml.write_text(xml.read_text().replace("<malignancy>5<", "<malignancy>high<"))
    manifest = convert("ct-lidc", tmp_path, tmp_path / "out", KEY, (), workers=1)
    with h5py.File(manifest.parent / "ge.h5") as f:
        assert f["labels"][()].tolist() == [0]  # the malignancy-1 nodule stays
    assert any("unreadable malignancy" in s["reason"] for s in json.loads(manifest.read_text())["skipped_files"])


def test_png_of_other_depth_is_dropped_not_mixed(tmp_path):
    from PIL import Image

    fixtures_mr_xr.make_brax(tmp_path)
    png = next(tmp_path.rglob("image-0-1.png"))
    Image.fromarray(np.full((60, 50), 200, dtype=np.uint8)).save(png)
    body = json.loads(convert("xray-chest", tmp_path, tmp_path / "out", KEY, ["size=8"], workers=1).read_text())
    assert body["counts"]["3"]["n"] == 1
    assert any("8-bit" in s["reason"] for s in body["skipped_files"])


def test_a_full_disk_while_writing_leaves_the_earlier_shards_intact(tmp_path, monkeypatch):
    import errno

    from scanshift_ray import shards

    fixtures_ct.make_hnscc(tmp_path / "raw")
    manifest = convert("ct-hnscc", tmp_path / "raw", tmp_path / "out", KEY, ["size=8"], workers=1)
    before = {p.name: p.read_bytes() for p in manifest.parent.iterdir()}
    real, calls = shards.write_shard, []

    def second_fills_the_disk(path, *args, **kw):  # the disk fills while the second domain is staged
        calls.append(path)
        if len(calls) == 2:
            with open(path, "wb") as f:
                f.write(b"\0" * 100)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, *args, **kw)

    monkeypatch.setattr(shards, "write_shard", second_fills_the_disk)
    with pytest.raises(ScanshiftError, match="No space left on device.*left as they were"):
        convert("ct-hnscc", tmp_path / "raw", tmp_path / "out", KEY, ["size=8"], workers=1, overwrite=True)
    assert {p.name: p.read_bytes() for p in manifest.parent.iterdir()} == before  # no staging folder left either
