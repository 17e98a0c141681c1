"""The fault corpus: damaged and oddly laid-out copies of the fixture trees, each with its expected outcome.

    python benchmarks/fault_corpus.py              # every case; prints one line per case and the tally
    python benchmarks/fault_corpus.py --fast       # the subset the test suite runs
    python benchmarks/fault_corpus.py --only kits  # cases whose name contains "kits"

Each case writes a fixture tree (`preprocessing.fixtures_*`) in a temporary folder, damages it, converts
it in this process and classes the outcome:
    converted  exit 0, the damage made no difference to the samples (or was only noted)
    dropped    exit 0, the damaged case, image or annotation dropped with a reason naming it
    refused    a one-line error (ScanshiftError), no shard written
    DEFECT     a traceback, a hang (over --timeout seconds), or exit 0 with a wrong output: a raw id in
               an output, a patient missing from both shards and dropped cases, a failed case check,
               or an outcome other than the expected one.
Cases of the shard validator, the sweep and the results commands (`fault_cases_shards.py`) instead run
one `scanshift` command line in this process (`scanshift_ray.cli.main`) on damaged shards or results:
    converted  exit 0
    refused    exit 2 with one error line on stderr (argparse's usage lines aside) holding the reason
    DEFECT     a traceback, another exit status, or a class other than the expected one.
Exit status 1 when any case is a DEFECT.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py

from preprocessing import (
    converters,  # noqa: F401  (registers the converters)
    )
from preprocessing.core import convert
from preprocessing.fixtures import FIXTURES
from scanshift_ray.errors import ScanshiftError

KEY = b"fault-corpus-key"
CLI_GROUPS = ("shards", "sweep", "results")  # the groups of `CliFault` cases
CLASSES = ("converted", "dropped", "refused", "DEFECT")
Check = Callable[[dict[str, Any], Path], str | None]  # (manifest, shard folder) -> problem or None


@dataclass(frozen=True)
class Fault:
    """One damaged input: how to damage the fixture of `key`, and what a correct converter does."""

    name: str
    key: str
    damage: Callable[[Path], object]
    expect: str  # converted | dropped | refused
    reason: str = ""  # text that the drop reason, skip reason, note or error must contain
    options: tuple[str, ...] = ()
    check: Check | None = None
    fast: bool = False
    out_setup: Callable[[Path, Path], None] | None = None  # (raw, out) prepared before the run


@dataclass(frozen=True)
class CliFault:
    """One damaged input of a `scanshift` command: `setup` builds it under a folder and returns the argv."""

    name: str
    key: str  # the group of the tally: shards | sweep | results
    setup: Callable[[Path], list[str]]
    expect: str  # converted | refused
    reason: str = ""  # text the error line must contain
    fast: bool = False


@dataclass
class Outcome:
    fault: Fault | CliFault
    klass: str
    detail: str = ""
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)


class _Timeout(Exception):
    pass


def _on_alarm(_signum: int, _frame: Any) -> None:
    raise _Timeout


def labels_of(folder: Path, domain: str) -> list[int]:
    """The labels of one shard (empty when the shard is absent)."""
    path = folder / f"{domain}.h5"
    if not path.is_file():
        return []
    with h5py.File(path) as f:
        return [int(v) for v in f["labels"][()]]


def _texts(body: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(drop and skip reasons, notes) of a manifest."""
    reasons = [d["reason"] for d in body["dropped_cases"]] + [s["reason"] for s in body["skipped_files"]]
    notes = [n for r in body.get("case_records", []) for n in r.get("notes", [])]
    return reasons, notes


def generic_problems(body: dict[str, Any], folder: Path, secrets: list[str]) -> list[str]:
    """Checks every successful run must pass: no raw id in any output, every case accounted for."""
    problems = []
    blob = b"".join(p.read_bytes() for p in folder.iterdir() if p.is_file())
    for secret in secrets:
        if len(secret) >= 8 and secret.encode() in blob:
            problems.append(f"raw id {secret!r} in an output")
    records = body.get("case_records", [])
    if len(records) != body["cases"]["seen"] or any(r["outcome"] not in ("converted", "dropped") for r in records):
        problems.append("a case without a record")
    in_shards: set[str] = set()
    for h5 in folder.glob("*.h5"):
        with h5py.File(h5) as f:
            in_shards |= set(f["patient_ids"].asstr()[()])
    accounted = in_shards | {d["patient"] for d in body["dropped_cases"]}
    if any(r["patient"] not in accounted for r in records):
        problems.append("a patient missing from both shards and dropped cases")
    return problems


def run_fault(fault: Fault, tmp: Path, timeout: float) -> Outcome:
    """Build, damage and convert one case; class the outcome."""
    make, options = FIXTURES[fault.key]
    raw, out = tmp / "raw", tmp / "out"
    answers = make(raw)
    fault.damage(raw)
    if fault.out_setup is not None:
        fault.out_setup(raw, out)
    before = {p.name: p.read_bytes() for p in (out / fault.key).glob("*.h5")} if out.is_dir() else {}
    start = time.perf_counter()
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        manifest = convert(fault.key, raw, out, KEY, [*options, *fault.options], workers=1)
    except ScanshiftError as exc:
        return _refused(fault, str(exc), out, before, time.perf_counter() - start)
    except _Timeout:
        return Outcome(fault, "DEFECT", f"hang: over {timeout:g} s", timeout)
    except Exception as exc:  # the very defect this corpus hunts: report it, go on
        return Outcome(fault, "DEFECT", f"traceback: {type(exc).__name__}: {exc}"[:200], time.perf_counter() - start)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    seconds = time.perf_counter() - start
    body = json.loads(manifest.read_text())
    reasons, notes = _texts(body)
    hit = bool(fault.reason) and any(fault.reason in r for r in reasons)
    klass = "dropped" if hit else "converted"
    problems = generic_problems(body, manifest.parent, answers["secrets"])
    if fault.reason and not hit and not any(fault.reason in n for n in notes):
        problems.append(f"no reason or note containing {fault.reason!r}")
    if fault.check is not None and (problem := fault.check(body, manifest.parent)):
        problems.append(problem)
    return _judge(Outcome(fault, klass, "", seconds, problems))


def _call_cli(argv: list[str]) -> tuple[int, str]:
    """(exit status, stderr) of `scanshift ARGV` run in this process; argparse's exits count as statuses."""
    import contextlib
    import io

    from scanshift_ray.cli import main as scanshift

    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            code = scanshift(argv)
        except SystemExit as exc:  # argparse: --help, bad flag values
            code = exc.code if isinstance(exc.code, int) else 2
    return code, err.getvalue()


def run_cli_fault(fault: CliFault, tmp: Path, timeout: float) -> Outcome:
    """Build one damaged input, run its `scanshift` command, class the outcome."""
    argv = fault.setup(tmp)
    start = time.perf_counter()
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    cache = os.environ.get("SCANSHIFT_CACHE_DIR")
    os.environ["SCANSHIFT_CACHE_DIR"] = str(tmp / "cache")  # no verified-shard entry of another case
    try:
        code, err = _call_cli(argv)
    except _Timeout:
        return Outcome(fault, "DEFECT", f"hang: over {timeout:g} s", timeout)
    except Exception as exc:  # a traceback out of the CLI
        return Outcome(fault, "DEFECT", f"traceback: {type(exc).__name__}: {exc}"[:200], time.perf_counter() - start)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        if cache is None:
            os.environ.pop("SCANSHIFT_CACHE_DIR", None)
        else:
            os.environ["SCANSHIFT_CACHE_DIR"] = cache
    seconds = time.perf_counter() - start
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith(("usage:", " "))]
    if code == 0:
        return _judge(Outcome(fault, "converted", "", seconds))
    problems = [] if code == 2 else [f"exit status {code}"]
    if "Traceback" in err or len(lines) != 1:
        problems.append(f"{len(lines)} error lines on stderr")
    if fault.reason and fault.reason not in err:
        problems.append(f"error lacks {fault.reason!r}")
    return _judge(Outcome(fault, "refused", " | ".join(lines)[:160], seconds, problems))


def _refused(fault: Fault, message: str, out: Path, before: dict[str, bytes], seconds: float) -> Outcome:
    problems = []
    if "\n" in message:
        problems.append("error message is not one line")
    if fault.reason and fault.reason not in message:
        problems.append(f"error lacks {fault.reason!r}")
    after = {p.name: p.read_bytes() for p in (out / fault.key).glob("*.h5")} if out.is_dir() else {}
    if after != before:
        problems.append("shards changed although the run was refused")
    return _judge(Outcome(fault, "refused", message[:160], seconds, problems))


def _judge(outcome: Outcome) -> Outcome:
    if outcome.klass != outcome.fault.expect:
        outcome.problems.append(f"expected {outcome.fault.expect}, got {outcome.klass}")
    if outcome.problems:
        outcome.detail = "; ".join(outcome.problems) + (f" [{outcome.detail}]" if outcome.detail else "")
        outcome.klass = "DEFECT"
    return outcome


def all_faults() -> list[Fault | CliFault]:
    """Every case of the corpus: the converters' (CT first), then the shard validator's, sweep's, results'."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # the case modules sit beside this file
    import fault_cases_ct
    import fault_cases_layout
    import fault_cases_mr_xr
    import fault_cases_shards

    return [*fault_cases_ct.FAULTS, *fault_cases_mr_xr.FAULTS, *fault_cases_layout.FAULTS, *fault_cases_shards.FAULTS]


def run_corpus(faults: Sequence[Fault | CliFault], timeout: float = 60.0, verbose: bool = True) -> list[Outcome]:
    """Run `faults`, each in its own temporary folder; print one line each when `verbose`."""
    outcomes = []
    for fault in faults:
        with tempfile.TemporaryDirectory(prefix="fault-") as tmp:
            if isinstance(fault, CliFault):
                outcome = run_cli_fault(fault, Path(tmp), timeout)
            else:
                outcome = run_fault(fault, Path(tmp), timeout)
        outcomes.append(outcome)
        if verbose:
            print(f"{outcome.klass:9s} {fault.key:16s} {fault.name:34s} {outcome.seconds:5.1f}s  {outcome.detail}",
                  flush=True)
    return outcomes


def tally(outcomes: list[Outcome]) -> str:
    """`converted N, dropped N, refused N, DEFECT N (of M)`."""
    counts = Counter(o.klass for o in outcomes)
    return ", ".join(f"{k} {counts.get(k, 0)}" for k in CLASSES) + f" (of {len(outcomes)} cases)"


def main(argv: list[str] | None = None) -> int:
    """Run the corpus (or a subset) and print the tally by class."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="only the cases the test suite runs")
    parser.add_argument("--only", default="", help="only cases whose name or dataset contains this")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds before a case counts as a hang")
    args = parser.parse_args(argv)
    faults = [f for f in all_faults() if (f.fast or not args.fast) and args.only in f"{f.key} {f.name}"]
    outcomes = run_corpus(faults, args.timeout)
    by_key = Counter((o.fault.key, o.klass) for o in outcomes)
    for key in [*FIXTURES, *CLI_GROUPS]:
        print(f"{key:16s} " + ", ".join(f"{k} {by_key.get((key, k), 0)}" for k in CLASSES))
    print(tally(outcomes))
    return 1 if any(o.klass == "DEFECT" for o in outcomes) else 0


if __name__ == "__main__":
    sys.modules["fault_corpus"] = sys.modules[__name__]  # one module, so the case modules' classes are ours
    sys.exit(main())
