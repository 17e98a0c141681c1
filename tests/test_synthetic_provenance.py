"""Ablations of single scanner differences, and the provenance of every scanner parameter."""

import dataclasses
import re

import pytest

from scanshift_ray import shards
from scanshift_ray.datasets import DATASETS
from scanshift_ray.errors import ScanshiftError
from scanshift_ray.profiles import PROFILES
from scanshift_ray.synthetic import ablations, provenance
from scanshift_ray.synthetic.generate import is_current, write_twins
from scanshift_ray.synthetic.twins import TWINS, scanner_at

SMOKE = PROFILES.get("smoke")


@pytest.mark.parametrize("name", ablations.ABLATIONS.names())
def test_an_ablation_turns_off_exactly_its_fields(name):
    abl = ablations.ABLATIONS.get(name)
    for key in TWINS.names():
        twin = TWINS.get(key)
        a, full, ablated = twin.scanners[0], scanner_at(twin, 1, 1.0), scanner_at(twin, 1, 1.0, (name,))
        for f in dataclasses.fields(a):
            if DATASETS.get(key).modality == abl.modality and f.name in abl.fields:
                assert getattr(ablated, f.name) == getattr(a, f.name)
            else:
                assert getattr(ablated, f.name) == getattr(full, f.name)
        assert scanner_at(twin, 0, 1.0, (name,)) == a  # domain 1 is never touched


def test_ablation_names_are_checked():
    with pytest.raises(ScanshiftError, match="unknown ablation"):
        ablations.check(("mri-feild",))
    with pytest.raises(ScanshiftError, match="twice"):
        ablations.check(("mri-field", "mri-field"))


def test_ablated_twins_are_other_data(tmp_path):
    base, abl = tmp_path / "base", tmp_path / "abl"
    write_twins(base, ["mri-breast"], SMOKE, workers=1)
    write_twins(abl, ["mri-breast"], SMOKE, workers=1, ablate=("mri-field",))
    assert is_current(abl, "mri-breast", SMOKE, 0, 1.0, ("mri-field",))
    assert not is_current(abl, "mri-breast", SMOKE, 0, 1.0)  # a plain synth rewrites it, never reuses it
    spec = DATASETS.get("mri-breast")
    ids = [shards.data_id(shards.load_domains(root, spec)) for root in (base, abl)]
    assert ids[0] != ids[1]
    prov = shards.read_shard(shards.shard_path(abl, "mri-breast", spec.domains[1])).attrs["provenance"]
    assert prov["ablate"] == ["mri-field"] and prov["scanner"]["field_t"] == TWINS.get("mri-breast").scanners[0].field_t


def test_every_scanner_parameter_has_a_provenance_entry_with_known_sources():
    for key in TWINS.names():
        for f in dataclasses.fields(TWINS.get(key).scanners[0]):
            if f.name == "name":
                continue
            status, note = provenance.entry(key, f.name)
            assert status in ("published", "range", "assumption", "post-processing"), (key, f.name)
            for ref in re.findall(r"\b[A-Z]\d?\b", note):
                assert ref in provenance.SOURCES or ref in ("A", "B", "T"), (key, f.name, ref)
    table = provenance.table()
    assert table.count("| scanners |") == len(TWINS.names())


def test_the_readme_shows_the_current_provenance_table():
    from pathlib import Path
    readme = Path(__file__).resolve().parents[1] / "README.md"
    assert provenance.table() in readme.read_text(), "regenerate it: scanshift synth --provenance"
