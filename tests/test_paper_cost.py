"""The FLOP accounting of benchmarks/paper_cost.py: counts checked by hand, costs linear in epochs and cells."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import paper_cost  # noqa: E402

from scanshift_ray.study import DataRef, Experiment, Study, expand  # noqa: E402


class SummedLinear(nn.Module):
    """One Linear(n_in, n_out) whose outputs are summed to one logit (the sum costs no counted FLOPs)."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.fc = nn.Linear(n_in, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x).sum(-1)


def test_one_linear_layer_counts_as_computed_by_hand():
    n_in, n_out, batch = 8, 3, 4
    model, x = SummedLinear(n_in, n_out), torch.randn(batch, n_in)
    forward = 2 * n_in * n_out * batch  # one multiply-add per weight and sample
    assert paper_cost.count_flops(model, x, train=False) == forward
    # Backward computes only the weight gradient (another 2*in*out per sample): the input needs no gradient.
    assert paper_cost.count_flops(model, x, train=True) == 2 * forward


def test_hidden_layers_cost_twice_their_forward_in_backward():
    batch = 4
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1), nn.Flatten(0))
    forward = 2 * batch * (8 * 16 + 16 * 1)
    backward = 2 * batch * 8 * 16 + 2 * (2 * batch * 16 * 1)  # first layer: weights only; second: weights + input
    x = torch.randn(batch, 8)
    assert paper_cost.count_flops(model, x, train=False) == forward
    assert paper_cost.count_flops(model, x, train=True) == forward + backward


def test_registered_model_is_linear_in_the_batch_and_counted_once():
    shape = (8, 32, 32)  # the fast-profile NoduleX-2D: cheap
    paper_cost.model_flops.cache_clear()
    flops = paper_cost.model_flops("nodulex", shape, 0.25)
    assert paper_cost.model_flops("nodulex", shape, 0.25) is flops
    assert paper_cost.model_flops.cache_info().hits == 1 and paper_cost.model_flops.cache_info().misses == 1
    assert 2.0 < flops.train / flops.forward < 3.0  # backward: about twice the forward, the first layer once
    paper_cost.check_linearity("nodulex", shape, 0.25, batch=6)  # raises unless exactly 3 x batch 2
    model = paper_cost._model("nodulex", shape, 0.25)
    assert paper_cost.count_flops(model, torch.randn(5, *shape), train=True) == 5 * flops.train


def test_split_and_mixing_counts():
    assert paper_cost.split_sizes(600) == (400, 100, 100)
    plain = paper_cost.cell_samples(600, 1200)
    assert plain == paper_cost.CellSamples(train=400, val=100, final=2 * (100 + 100 + 200))
    mixed = paper_cost.cell_samples(600, 1200, mix_fraction=0.2)  # f / (1 - f) = 1/4 of the source train split
    assert mixed.train == 500 and mixed.val == plain.val and mixed.final == plain.final


def test_cell_flops_are_linear_in_epochs():
    samples, flops = paper_cost.CellSamples(400, 100, 800), paper_cost.ModelFlops(train=30.0, forward=10.0)
    final = paper_cost.cell_flops(samples, flops, epochs=0)
    assert final == 800 * 10.0
    per_epoch = 400 * 30.0 + 100 * 10.0
    for epochs in (1, 7, 60):
        assert paper_cost.cell_flops(samples, flops, epochs) == final + epochs * per_epoch
    training = [paper_cost.cell_flops(samples, flops, e) - final for e in (60, 120)]
    assert training[1] == 2 * training[0]
    # validating every third epoch (fast): 10 passes over the validation split in 30 epochs
    assert paper_cost.cell_flops(samples, flops, 30, val_every=3) == final + 30 * 400 * 30.0 + 10 * 100 * 10.0


def _cells(seeds: int, epochs: int = 60, grid: tuple = ()) -> list:
    exp = Experiment("main", ("ct-lidc", "xray-chest"), tuple(range(seeds)), grid=grid)
    cells = expand(Study((exp,), profile="paper"), {k: DataRef("x", "real") for k in ("ct-lidc", "xray-chest")})
    return [replace(c, training=replace(c.training, epochs=epochs)) for c in cells]


def _total(cells: list) -> float:
    sizes = paper_cost.domain_sizes({k: paper_cost.PAPER_SIZES[k] for k in ("ct-lidc", "xray-chest")})
    fake = lambda cell: paper_cost.ModelFlops(3.0, 1.0) if cell.model == "nodulex" else paper_cost.ModelFlops(9.0, 3.0)  # noqa: E731
    return sum(r.flops for r in paper_cost.cost_rows(cells, sizes, fake))


def test_totals_are_linear_in_cells_and_in_training_epochs():
    one, three = _total(_cells(1)), _total(_cells(3))
    assert three == pytest.approx(3 * one, rel=1e-12)
    no_training = _total(_cells(2, epochs=0))
    assert _total(_cells(2, epochs=40)) - no_training == pytest.approx(2 * (_total(_cells(2, epochs=20)) - no_training))
    rows = paper_cost.cost_rows(_cells(3, grid=(("mix_fraction", (0.1, 0.5)),)),
                                paper_cost.domain_sizes(paper_cost.PAPER_SIZES), lambda c: paper_cost.ModelFlops(1, 1))
    assert [(r.dataset, r.cells) for r in rows] == [("ct-lidc", 12), ("xray-chest", 12)]


def test_sample_overrides_and_projection():
    assert paper_cost.parse_override("ct-hnscc=1000") == ("ct-hnscc", None, 1000)
    assert paper_cost.parse_override("xray-chest:3=10") == ("xray-chest", "3", 10)
    for bad in ("ct-hnscc", "ct-hnscc=0", "nope=5", "xray-chest:4=10", "ct-lidc=1e3"):
        with pytest.raises(argparse.ArgumentTypeError):
            paper_cost.parse_override(bad)
    sizes = paper_cost.domain_sizes(paper_cost.PAPER_SIZES, [("ct-hnscc", None, 1001), ("xray-chest", "3", 10)])
    assert sizes["ct-hnscc"] == {"ge": 501, "other": 500}
    assert sizes["xray-chest"] == {"3": 10, "5": paper_cost.PAPER_SIZES["xray-chest"].samples // 2}
    assert paper_cost.wall_seconds(989e12 * 0.5 * 3600 * 8, 989, 0.5, 8) == pytest.approx(3600)


def test_script_runs_end_to_end_on_the_smoke_profile(capsys):
    # smoke: main has 2 seeds (7 x 2 x 2 = 28 cells) + mixing 90 + noise 180 + separability 7 x 2
    assert paper_cost.main(["--profile", "smoke", "--gpus", "2", "--samples", "ct-lidc=600"]) == 0
    out = capsys.readouterr().out
    assert "312 cells" in out and "linearity checked" in out and "projected wall time" in out
    assert "ct-lidc                 600  (ge 300 / other 300)  from --samples" in out
    assert "assumed: 400 slices per patient" in out
