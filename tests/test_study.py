"""Grid expansion and cell identity: every resolved value that changes a result, and nothing else."""

import json
from dataclasses import replace

import pytest
from conftest import make_cell

from scanshift_ray import study as study_mod
from scanshift_ray.errors import ScanshiftError
from scanshift_ray.study import AXES, EXPERIMENTS, Axis, Cell, DataRef, Experiment, Study, expand, restrict

DATA = {k: DataRef(f"id-{k}", "synthetic") for k in EXPERIMENTS.get("main").datasets}


def _ids(study: Study) -> set[str]:
    return {c.cell_id for c in expand(study, DATA)}


def test_main_grid_is_datasets_times_domains_times_seeds():
    cells = expand(Study((restrict(EXPERIMENTS.get("main"), seeds=(0, 1, 2)),)), DATA)
    assert len(cells) == 7 * 2 * 3
    assert len({c.cell_id for c in cells}) == len(cells)
    assert {c.model for c in cells if c.dataset == "xray-chest"} == {"densenet121"}
    assert {c.training.input_shape for c in cells if c.dataset == "ct-lidc"} == {(5, 32, 32)}


def test_adding_seeds_keeps_existing_cell_ids():
    small = _ids(Study((restrict(EXPERIMENTS.get("main"), seeds=(0, 1)),)))
    big = _ids(Study((restrict(EXPERIMENTS.get("main"), seeds=(0, 1, 2)),)))
    assert small < big and len(big - small) == 14


@pytest.mark.parametrize("change", [
    {"data_id": "other"}, {"seed": 1}, {"model": "mrnet2d"}, {"train_domain": "other"}, {"experiment": "noise"},
    {"training": {"epochs": 3}}, {"training": {"batch_size": 10}}, {"training": {"lr": 1e-4}},
    {"training": {"width": 1.0}}, {"training": {"input_shape": (5, 47, 47)}}, {"training": {"window": None}},
    {"training": {"val_every": 2}},
    {"options": {"normalization": "train"}}, {"options": {"mix_fraction": 0.1}},
    {"options": {"noise_alpha": 2.0}}])
def test_cell_id_changes_with_every_resolved_value(change):
    base = make_cell("ct-lidc", "ge", profile="fast")
    if "training" in change:
        changed = replace(base, training=replace(base.training, **change["training"]))
    elif "options" in change:
        changed = replace(base, options=change["options"])
    else:
        changed = replace(base, **change)
    assert changed.cell_id != base.cell_id


def test_profile_name_alone_and_inactive_axes_do_not_change_the_id():
    base = make_cell("ct-lidc", "ge", profile="fast")
    assert replace(base, profile="my-copy-of-fast").cell_id == base.cell_id
    assert make_cell("ct-lidc", "ge", profile="fast", noise_draw="once", noise_space="native").cell_id == base.cell_id
    noisy = make_cell("ct-lidc", "ge", profile="fast", noise_alpha=1.0)
    assert make_cell("ct-lidc", "ge", profile="fast", noise_alpha=1.0, noise_draw="once").cell_id != noisy.cell_id
    assert dict(noisy.options) == {"noise_alpha": 1.0, "noise_draw": "per_batch", "noise_space": "normalized",
                                   "normalization": "image"}


def test_noise_draw_once_leaves_main_cells_done():
    main = restrict(EXPERIMENTS.get("main"), ("ct-lidc",), (0,))
    noise = restrict(EXPERIMENTS.get("noise"), ("ct-lidc",), (0,))
    default = Study((main, noise))
    once = Study((main, noise), options={"noise_draw": "once"})
    main_ids = _ids(Study((main,)))
    assert main_ids <= _ids(default) and main_ids <= _ids(once)
    assert not (_ids(default) - main_ids) & (_ids(once) - main_ids)  # every noise cell is new


def test_protocol_version_is_part_of_the_id(monkeypatch):
    cell = make_cell("ct-lidc", "ge")
    before = cell.cell_id
    monkeypatch.setattr(study_mod, "PROTOCOL_VERSION", study_mod.PROTOCOL_VERSION + 1)
    assert cell.cell_id != before


def test_config_id_is_shared_by_seeds_only():
    a, b = make_cell("ct-lidc", "ge", seed=0), make_cell("ct-lidc", "ge", seed=1)
    assert a.config_id == b.config_id and a.cell_id != b.cell_id
    assert make_cell("ct-lidc", "other").config_id != a.config_id


def test_cells_round_trip_through_json():
    cell = make_cell("ct-lidc", "ge", noise_alpha=3.0, noise_draw="once")
    back = Cell.from_dict(json.loads(json.dumps(cell.to_dict())))
    assert back == cell and back.cell_id == cell.cell_id


def test_rows_describe_resolved_values():
    d = make_cell("ct-lidc", "ge", profile="fast", mix_fraction=0.2).describe()
    assert d["epochs"] == 30 and d["lr"] == 1e-3 and d["input_shape"] == "5x32x32" and d["window"] == "-1000..400"
    assert d["mix_fraction"] == 0.2 and d["noise_alpha"] == 0.0 and d["noise_draw"] is None
    assert d["protocol_version"] == study_mod.PROTOCOL_VERSION


def test_appendix_grids_match_the_paper():
    mixing = expand(Study((EXPERIMENTS.get("mixing"),)), DATA)
    noise = expand(Study((EXPERIMENTS.get("noise"),)), DATA)
    assert len(mixing) == 3 * 2 * 3 * 5 and len(noise) == 3 * 2 * 3 * 10
    assert {c.option("mix_fraction") for c in mixing} == {0.1, 0.2, 0.3, 0.4, 0.5}


def test_invalid_options_are_user_errors():
    with pytest.raises(ScanshiftError, match="normalization must be one of"):
        make_cell("ct-lidc", "ge", normalization="minmax")
    with pytest.raises(ScanshiftError, match="needs noise_draw 'once'"):
        make_cell("ct-lidc", "ge", noise_alpha=1.0, noise_space="native")
    with pytest.raises(ScanshiftError, match="unknown axis 'harmonisation'"):
        Study((EXPERIMENTS.get("main"),), options={"harmonisation": "combat"})
    with pytest.raises(ScanshiftError, match="mix_fraction must be in"):
        make_cell("ct-lidc", "ge", mix_fraction=1.0)


def test_a_new_axis_is_one_registration(monkeypatch):
    """A harmonisation axis: registered once, varied by an experiment, carried by cells and rows."""
    axis = Axis("harmonization", str, "none", "harmonisation", allowed=("none", "histogram"), neutral="none")
    monkeypatch.setitem(AXES._entries, "harmonization", axis)
    base = make_cell("ct-lidc", "ge")
    exp = Experiment("harmonize", ("ct-lidc",), (0,), grid=(("harmonization", ("none", "histogram")),))
    cells = expand(Study((exp,), profile="smoke"), {"ct-lidc": DataRef("toy", "real")})
    ids = {c.option("harmonization"): c.cell_id for c in cells if c.train_domain == "ge"}
    assert ids["none"] != ids["histogram"]
    assert replace(base, experiment="harmonize").cell_id == ids["none"]  # neutral: the axis is not in the id
    assert cells[-1].describe()["harmonization"] == "histogram"


def test_the_predict_axis_and_val_every_leave_existing_cell_ids_unchanged():
    import hashlib

    cells = expand(Study(tuple(EXPERIMENTS.get(n) for n in ("main", "mixing", "noise")), profile="paper"), DATA)
    digest = hashlib.sha1(",".join(c.cell_id + c.config_id for c in cells).encode()).hexdigest()[:16]
    # computed at 82158b6, before `val_every` existed (the fast profile's ids were pinned the same way before
    # `predict` was registered; they changed, as they must, when fast began validating every third epoch)
    assert len(cells) == 410 and digest == "366f3bc2cfba2cb6"
    assert make_cell("ct-lidc", "ge", predict="disease").cell_id == make_cell("ct-lidc", "ge").cell_id
    assert make_cell("ct-lidc", "ge", predict="scanner").cell_id != make_cell("ct-lidc", "ge").cell_id


def test_separability_is_one_cell_per_dataset_and_seed():
    cells = expand(Study((EXPERIMENTS.get("separability"),)), DATA)
    assert len(cells) == 7 * 3 and len({c.cell_id for c in cells}) == len(cells)
    assert {c.option("predict") for c in cells} == {"scanner"}
    both = Experiment("sep", ("ct-lidc",), (0,), grid=(("predict", ("scanner",)),), train_domains=("other", "ge"))
    (cell,) = expand(Study((both,)), DATA)  # the training domains do not multiply scanner cells
    assert cell.train_domain == "ge" and cell.describe()["train_domain"] == "both"
    assert cell.describe()["predict"] == "scanner" and make_cell("ct-lidc", "ge").describe()["predict"] == "disease"
    with pytest.raises(ScanshiftError, match="separability experiment's grid axis"):
        Study((EXPERIMENTS.get("main"),), options={"predict": "scanner"})


def test_main_cannot_vary_the_prediction_target():
    exp = Experiment("main", ("xray-chest",), (0,), grid=(("predict", ("disease", "scanner")),))
    with pytest.raises(ScanshiftError, match="main experiment .* cannot vary predict"):
        Study((exp,))


def test_validating_every_epoch_keeps_the_ids_cells_had_before_val_every():
    cell = make_cell("ct-lidc", "ge", profile="paper")
    assert cell.training.val_every == 1 and "val_every" not in cell.identity()["training"]
    assert cell.cell_id == "313df2c76631490d"  # its id before the field existed (results on disk stay done)
    fast = make_cell("ct-lidc", "ge", profile="fast")
    assert fast.training.val_every == 3 and fast.identity()["training"]["val_every"] == 3
    assert fast.describe()["val_every"] == 3 and Cell.from_dict(json.loads(json.dumps(fast.to_dict()))) == fast


def test_a_profile_must_validate():
    from scanshift_ray.profiles import Profile

    with pytest.raises(ScanshiftError, match="val_every must be >= 1"):
        Profile("p", 2, 50, 1e-3, 0.25, 64, 32, 8, 24, 3, val_every=0)
