"""Registry-driven: every registered model on every input shape its datasets use."""

import pytest
import torch

from scanshift_ray.datasets import DATASETS
from scanshift_ray.models import MODELS, build_model, count_parameters
from scanshift_ray.profiles import PROFILES

CASES = sorted({(DATASETS.get(k).model, PROFILES.get(p).input_shape(DATASETS.get(k)), PROFILES.get(p).width)
                for k in DATASETS for p in ("fast", "smoke")} |
               {(m, (5, 47, 47), 0.25) for m in ["nodulex"]} | {("nodulex", (16, 24, 24), 0.25)})


@pytest.mark.parametrize("name, shape, width", CASES)
def test_forward_backward_shape_and_finite(name, shape, width):
    torch.manual_seed(0)
    model = build_model(name, shape, width)
    x = torch.randn(3, *shape)
    out = model(x)
    assert out.shape == (3,)
    out.sum().backward()
    assert torch.isfinite(out).all()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_every_registered_model_is_used_by_a_dataset():
    assert {DATASETS.get(k).model for k in DATASETS} == set(MODELS.names())


@pytest.mark.parametrize("name, shape, count", [
    ("mrnet2d", (256, 256), 2_454_465),      # 1-channel AlexNet features 2,454,208 + Linear(256, 1)
    ("nodulex", (5, 47, 47), 3_343_969),     # cifar10-style CNN with 5 slices as channels
    ("nodulex", (72, 72, 72), 194_657),      # NoduleX-3D
    ("densenet121", (224, 224), 6_948_609),  # torchvision DenseNet-121, 1-channel stem, 1 logit
])
def test_paper_parameter_counts(name, shape, count):
    assert count_parameters(build_model(name, shape, 1.0)) == count


def test_bad_input_shape_is_rejected():
    with pytest.raises(ValueError, match="mrnet2d needs 2D inputs"):
        build_model("mrnet2d", (5, 32, 32), 1.0)
