"""The fault corpus (benchmarks/fault_corpus.py): its fast subset runs here; every case must meet its class."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import fault_corpus  # noqa: E402


def test_corpus_is_large_and_covers_every_converter_and_class():
    faults = fault_corpus.all_faults()
    assert len(faults) >= 60
    assert len({f.name for f in faults}) == len(faults)
    assert {f.key for f in faults} == set(fault_corpus.FIXTURES) | set(fault_corpus.CLI_GROUPS)
    assert {f.expect for f in faults} == {"converted", "dropped", "refused"}
    cli = [f for f in faults if isinstance(f, fault_corpus.CliFault)]
    assert len(cli) >= 40 and {f.expect for f in cli} == {"converted", "refused"}
    assert {f.key for f in cli if f.fast} == set(fault_corpus.CLI_GROUPS)


def test_fast_subset_has_no_defect(capsys):
    fast = [f for f in fault_corpus.all_faults() if f.fast]
    outcomes = fault_corpus.run_corpus(fast, timeout=60, verbose=False)
    defects = [f"{o.fault.name}: {o.detail}" for o in outcomes if o.klass == "DEFECT"]
    assert not defects, defects
    assert {o.klass for o in outcomes} == {"converted", "dropped", "refused"}


def test_the_judge_calls_a_wrong_outcome_a_defect(tmp_path):
    wrong = fault_corpus.Fault("expects_a_refusal", "ct-hnscc", lambda r: None, "refused")
    outcome = fault_corpus.run_fault(wrong, tmp_path, timeout=60)
    assert outcome.klass == "DEFECT" and "expected refused, got converted" in outcome.detail


def test_the_cli_judge_calls_a_wrong_outcome_or_a_traceback_a_defect(tmp_path, monkeypatch):
    valid = next(f for f in fault_corpus.all_faults() if f.name == "shards_valid")
    wrong = fault_corpus.CliFault("expects_a_refusal", "shards", valid.setup, "refused", "anything")
    outcome = fault_corpus.run_cli_fault(wrong, tmp_path / "a", timeout=60)
    assert outcome.klass == "DEFECT" and "expected refused, got converted" in outcome.detail

    def crash(argv):
        raise KeyError("boom")

    monkeypatch.setattr("scanshift_ray.cli.main", crash)
    outcome = fault_corpus.run_cli_fault(valid, tmp_path / "b", timeout=60)
    assert outcome.klass == "DEFECT" and outcome.detail.startswith("traceback: KeyError")


def test_the_cli_judge_wants_the_reason_in_one_error_line(tmp_path):
    missing = next(f for f in fault_corpus.all_faults() if f.name == "shards_root_missing")
    other = fault_corpus.CliFault("wrong_reason", "shards", missing.setup, "refused", "a reason never given")
    outcome = fault_corpus.run_cli_fault(other, tmp_path, timeout=60)
    assert outcome.klass == "DEFECT" and "error lacks 'a reason never given'" in outcome.detail
