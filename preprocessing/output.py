"""Writing a conversion's results: shard identity, the output folder's checks, shards and manifest.

Refusals happen before anything is written: `--out` that is a file or cannot be written, or shards of
the dataset already there that were made with other options (the options are the shard's identity;
`--overwrite` replaces them). New shards are written to a staging folder beside the final ones and
moved into place only when all of them are complete, so a full disk or a failed write leaves the
earlier shards as they were. Every file gets the user's normal permissions (0666 minus the umask),
since clusters share shard folders. Every string that reaches the manifest has the raw ids scrubbed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from scanshift_ray import __version__, shards
from scanshift_ray.errors import ScanshiftError

if TYPE_CHECKING:
    from preprocessing.core import CaseOutput, Job


def identity(job: Job) -> dict[str, Any]:
    """What makes shards of one dataset interchangeable: the converter and its options."""
    options = dataclasses.asdict(job.options)
    text = json.dumps({"converter": job.key, "options": options}, sort_keys=True, default=str)
    return {"converter": job.key, "options": options, "options_id": hashlib.sha1(text.encode()).hexdigest()[:12]}


def key_check(secret: bytes) -> str:
    """Equal across runs iff the same pseudonym key was used (reveals nothing about the key)."""
    return hmac.new(secret, b"scanshift-key-check", hashlib.sha256).hexdigest()[:8]


def check_out(out: Path, key: str) -> None:
    """Refuse an `--out` that is a file or cannot be written, before any work."""
    if out.exists() and not out.is_dir():
        raise ScanshiftError(f"--out {out} is a file, not a folder")
    try:
        (out / key).mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=out / key)
        os.close(fd)
        os.remove(probe)
    except OSError as exc:
        raise ScanshiftError(f"--out {out} cannot be written: {exc.strerror or exc}") from None


def _previous(folder: Path) -> dict[str, Any] | None:
    try:
        body = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    return body if isinstance(body, dict) else None


def check_previous(out: Path, job: Job, overwrite: bool) -> list[str]:
    """Warnings about the shards already in `<out>/<key>`; refuse shards made with other options."""
    folder = out / job.key
    present = sorted(p.name for p in folder.glob("*.h5"))
    if not present:
        return []
    prev, mine = _previous(folder), identity(job)
    before = (prev or {}).get("identity", {}).get("options") or (prev or {}).get("converter_options")
    if before != mine["options"] and not overwrite:
        what = "no manifest saying how they were made" if prev is None else f"options {json.dumps(before)}"
        raise ScanshiftError(f"{folder} holds shards ({', '.join(present)}) with {what}; this run has options "
                             f"{json.dumps(mine['options'])}: pass --overwrite to replace them, or another --out")
    if prev is not None and prev.get("pseudonym_key_check") not in (None, key_check(job.secret)):
        return [f"{folder} was made with a different pseudonym key: patient ids of this run will not match "
                "earlier shards or splits (reuse the same key to keep them stable)"]
    return []


def _scrubbed(job: Job, raw_ids: set[str], items: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"path": job.scrub(p, raw_ids), "reason": job.scrub(r, raw_ids)} for p, r in items]


def case_record(job: Job, o: CaseOutput, raw_ids: set[str]) -> dict[str, Any]:
    """One case's line in the manifest: outcome, domain, scanner strings and notes."""
    from preprocessing.vendors import vendor_of

    vendor = vendor_of(o.manufacturer)
    record: dict[str, Any] = {"patient": o.patient, "outcome": "dropped" if o.dropped else "converted",
                              "domain": None if o.dropped else o.domain, "samples": len(o.labels),
                              "manufacturer": o.manufacturer, "model": o.model, "vendor": vendor.name,
                              "software_vendor": vendor.software}
    if o.dropped:
        record["reason"] = job.scrub(o.dropped, raw_ids)
    if o.notes:
        record["notes"] = [job.scrub(n, raw_ids) for n in o.notes]
    return record


def manifest_info(job: Job, outs: list[CaseOutput], loose: list[tuple[str, str]], raw_ids: set[str],
                  removed: list[str]) -> dict[str, Any]:
    """The manifest body beyond the counts: identity, every case's outcome, skipped files, versions."""
    return {
        "data_source": "real", "code_version": __version__, "converter_options": dataclasses.asdict(job.options),
        "identity": identity(job), "pseudonym_key_check": key_check(job.secret),
        "cases": {"seen": len(outs), "used": sum(1 for o in outs if o.domain and o.labels and not o.dropped),
                  "dropped": len([o for o in outs if o.dropped])},
        "dropped_cases": [{"patient": o.patient, "reason": job.scrub(o.dropped, raw_ids)} for o in outs if o.dropped],
        "case_records": [case_record(job, o, raw_ids) for o in outs],
        "skipped_files": _scrubbed(job, raw_ids, [x for o in outs for x in o.skipped] + list(loose)),
        "removed_stale_shards": removed,
    }


def _stage(job: Job, group: list[CaseOutput], domain: str, path: Path) -> None:
    spec = job.spec
    images = shards.ImageBlocks(tuple(b for o in group if (b := o.pack().block) is not None))
    labels = np.asarray([lab for o in group for lab in o.labels], dtype=np.uint8)
    pids = np.asarray([o.patient for o in group for _ in o.labels], dtype=object)
    attrs = {"dataset": job.key, "domain": domain, "modality": spec.modality, "task": spec.task,
             "manufacturers": sorted({o.manufacturer for o in group}), "data_source": "real",
             "units": "HU" if spec.modality == "CT" else "scanner",
             "provenance": {"converter": job.key, "code_version": __version__, "options": identity(job)["options"],
                            "options_id": identity(job)["options_id"]}}
    shards.write_shard(path, images, labels, pids, attrs)  # gives the file 0666 minus the umask itself


def write_outputs(job: Job, outs: list[CaseOutput], loose: list[tuple[str, str]], out: Path,
                  raw_ids: set[str]) -> Path:
    """One shard per domain with samples, moved into place together, then the manifest."""
    by_domain: dict[str, list[CaseOutput]] = {d: [] for d in job.spec.domains}
    for o in outs:
        if o.domain is not None and o.labels and not o.dropped:
            by_domain[o.domain].append(o)
    if not any(by_domain.values()):
        reasons = [r for r, _ in Counter(job.scrub(o.dropped, raw_ids) for o in outs if o.dropped).most_common(3)]
        raise ScanshiftError(f"no usable {job.key} case under {job.raw} ({len(outs)} cases looked at"
                             + (f"; e.g. {'; '.join(reasons)}" if reasons else "") + ")")
    folder = out / job.key
    try:
        stage = Path(tempfile.mkdtemp(prefix=".staging-", dir=folder))
        try:
            for domain, group in by_domain.items():
                if group:
                    _stage(job, group, domain, stage / f"{domain}.h5")
            removed = _commit(stage, folder, by_domain)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
        manifest = shards.write_manifest(out, job.key, manifest_info(job, outs, loose, raw_ids, removed))
    except OSError as exc:
        raise ScanshiftError(f"cannot write {job.key} shards under {out}: {exc.strerror or exc} "
                             "(shards already there were left as they were)") from None
    return manifest


def _commit(stage: Path, folder: Path, by_domain: dict[str, list[CaseOutput]]) -> list[str]:
    """Move the staged shards into place; remove (and name) earlier shards of domains now empty."""
    removed = []
    for domain, group in by_domain.items():
        final = folder / f"{domain}.h5"
        if group:
            os.replace(stage / f"{domain}.h5", final)
        elif final.exists():
            final.unlink()  # never leave a previous run's shard beside this run's, but say so
            removed.append(final.name)
    return removed


def summary(manifest: Path) -> list[str]:
    """The command's last lines: per domain counts, dropped cases by reason, skipped files."""
    body = json.loads(manifest.read_text())
    lines = [f"converted {body['cases']['used']} of {body['cases']['seen']} cases: "
             + ", ".join(f"{d} {c['n']} samples ({c['n_pos']} positive, {c['n_patients']} patients)"
                         for d, c in body["counts"].items())]
    reasons = Counter(d["reason"] for d in body["dropped_cases"])
    if reasons:
        lines.append(f"dropped {sum(reasons.values())} cases: "
                     + "; ".join(f"{n} x {r[:120]}" for r, n in reasons.most_common(5)))
    if body["skipped_files"]:
        lines.append(f"skipped {len(body['skipped_files'])} files or annotations (reasons in the manifest)")
    if body.get("removed_stale_shards"):
        lines.append(f"removed earlier shards of domains with no case now: {', '.join(body['removed_stale_shards'])}")
    return lines
