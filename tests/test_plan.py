"""The plan's wall-time estimate: from finished cells trained the same way only."""

from dataclasses import replace

import pandas as pd
from conftest import make_cell

from scanshift_ray.plan import make_plan


def test_estimate_uses_only_finished_cells_of_the_same_protocol():
    every = make_cell("ct-lidc", "ge", profile="paper", seed=0)
    done = pd.DataFrame([{"cell_id": every.cell_id, "model": every.model, "epochs": every.training.epochs,
                          "input_shape": "x".join(map(str, every.training.input_shape)), "wall_seconds": 60.0}])
    same = make_cell("ct-lidc", "ge", profile="paper", seed=1)
    third = replace(same, training=replace(same.training, val_every=3))  # another validation interval
    plan = make_plan([every, same, third], {every.cell_id}, done, cpus=1, gpus=0)
    assert plan.seconds == 60.0 and plan.unknown == 1  # rows without val_every validated every epoch
