import pytest

from scanshift_ray.errors import ScanshiftError
from scanshift_ray.study import EXPERIMENTS, Cell, Study, expand, restrict

DATA = {k: (f"id-{k}", "synthetic") for k in EXPERIMENTS.get("main").datasets}


def test_main_grid_is_datasets_times_domains_times_seeds():
    cells = expand(Study((restrict(EXPERIMENTS.get("main"), seeds=(0, 1, 2)),)), DATA)
    assert len(cells) == 7 * 2 * 3
    assert len({c.cell_id for c in cells}) == len(cells)
    assert {c.model for c in cells if c.dataset == "xray-chest"} == {"densenet121"}


def test_adding_seeds_keeps_existing_cell_ids():
    small = {c.cell_id for c in expand(Study((restrict(EXPERIMENTS.get("main"), seeds=(0, 1)),)), DATA)}
    big = {c.cell_id for c in expand(Study((restrict(EXPERIMENTS.get("main"), seeds=(0, 1, 2)),)), DATA)}
    assert small < big and len(big - small) == 14


def test_cell_id_depends_on_data_and_every_setting():
    base = Cell("main", "ct-lidc", "ge", 0, "nodulex", "fast", "abc", "synthetic")
    variants = [Cell("main", "ct-lidc", "ge", 0, "nodulex", "fast", "abd", "synthetic"),
                Cell("main", "ct-lidc", "ge", 1, "nodulex", "fast", "abc", "synthetic"),
                Cell("main", "ct-lidc", "ge", 0, "nodulex", "paper", "abc", "synthetic"),
                Cell("noise", "ct-lidc", "ge", 0, "nodulex", "fast", "abc", "synthetic", noise_alpha=1.0)]
    assert len({base.cell_id, *(v.cell_id for v in variants)}) == 5
    assert base.cell_id == Cell("main", "ct-lidc", "ge", 0, "nodulex", "fast", "abc", "synthetic").cell_id


def test_appendix_grids_match_the_paper():
    mixing = expand(Study((EXPERIMENTS.get("mixing"),)), DATA)
    noise = expand(Study((EXPERIMENTS.get("noise"),)), DATA)
    assert len(mixing) == 3 * 2 * 3 * 5 and len(noise) == 3 * 2 * 3 * 10


def test_invalid_options_are_user_errors():
    with pytest.raises(ScanshiftError, match="normalization must be one of"):
        Cell("main", "ct-lidc", "ge", 0, "nodulex", "fast", "a", "real", normalization="minmax")
    with pytest.raises(ScanshiftError, match="needs noise_draw 'once'"):
        Cell("noise", "ct-lidc", "ge", 0, "nodulex", "fast", "a", "real", noise_space="native")
