"""Registry-driven: every registered model on every input shape its datasets use."""

import pytest
import torch

from scanshift_ray.datasets import DATASETS
from scanshift_ray.models import MODELS, build_model, count_parameters
from scanshift_ray.profiles import PROFILES

SHAPES = sorted({(PROFILES.get(p).input_shape(DATASETS.get(k)), PROFILES.get(p).width)
                 for k in DATASETS for p in ("fast", "smoke")} | {((5, 47, 47), 0.25), ((16, 24, 24), 0.25)})


def _supports(name, shape, width) -> bool:
    try:
        build_model(name, shape, width)
    except ValueError:
        return False
    return True


# Every registered model on every input shape of the study it accepts (a new model is picked up here).
CASES = [(m, s, w) for m in MODELS.names() for s, w in SHAPES if _supports(m, s, w)]


def test_every_registered_model_accepts_some_study_input_and_declares_a_gpu_share():
    from scanshift_ray.models import gpu_share

    for name in MODELS.names():
        shapes = [(s, w) for m, s, w in CASES if m == name]
        assert shapes, f"{name} accepts none of the study's input shapes"
        assert all(0 < gpu_share(name, s, w) <= 1 for s, w in shapes)
        assert all(0 < gpu_share(name, s, 1.0) <= 1 for s, _ in shapes)


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


def test_every_dataset_default_model_is_registered():
    assert {DATASETS.get(k).model for k in DATASETS} <= set(MODELS.names())


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


@pytest.mark.parametrize("name, shape, width", CASES)
def test_evaluation_inputs_in_the_model_memory_format_give_identical_logits(name, shape, width):
    """`as_model_input` only changes how an evaluation set is stored: the logits stay equal bit for bit."""
    from scanshift_ray.models import as_model_input, to_device

    torch.manual_seed(0)
    model = to_device(build_model(name, shape, width), "cpu").eval()
    x = torch.randn(6, *shape)
    stored = as_model_input(model, x)
    with torch.inference_mode():
        assert torch.equal(model(stored), model(x))
    # 4D inputs of a 2D (channels-last) model are stored NHWC; everything else is passed through as is.
    if x.ndim == 4 and all(p.ndim != 5 for p in model.parameters()):
        assert stored.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous(
            memory_format=torch.channels_last)
    else:
        assert stored is x


def test_a_model_left_in_nchw_gets_its_inputs_unchanged():
    from scanshift_ray.models import as_model_input

    model = build_model("nodulex", (5, 32, 32), 0.25)  # not moved by to_device: NCHW weights
    x = torch.randn(2, 5, 32, 32)
    assert as_model_input(model, x) is x
