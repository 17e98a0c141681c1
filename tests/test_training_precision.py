"""Mixed-precision choice of `training.amp_dtype`, on the CPU with the CUDA queries monkeypatched."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from scanshift_ray import training
from scanshift_ray.training import TrainConfig, amp_dtype, fit


def _fake_cuda(monkeypatch: pytest.MonkeyPatch, available: bool, bf16: bool) -> list[dict]:
    """Pretend a GPU is (not) there and does (not) support bfloat16 natively; returns the bf16 queries made."""
    calls: list[dict] = []

    def is_bf16_supported(**kwargs: bool) -> bool:
        calls.append(kwargs)
        return bf16 if not kwargs.get("including_emulation", True) else True  # emulation: "supported" anywhere

    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    return calls


@pytest.mark.parametrize(("bf16", "want"), [(True, torch.bfloat16), (False, torch.float16)])
def test_gpu_uses_bfloat16_where_native_else_float16(monkeypatch, bf16, want):
    calls = _fake_cuda(monkeypatch, available=True, bf16=bf16)
    assert amp_dtype("cuda") is want
    assert calls == [{"including_emulation": False}]  # emulated bf16 (a T4's) must not count


def test_older_torch_without_the_emulation_argument(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert amp_dtype("cuda") is torch.float16


@pytest.mark.parametrize(("device", "amp", "available"), [("cpu", True, True), ("cpu", True, False),
                                                          ("cuda", False, True), ("cuda", True, False)])
def test_no_autocast_on_the_cpu_when_off_or_without_cuda(monkeypatch, device, amp, available):
    calls = _fake_cuda(monkeypatch, available=available, bf16=True)
    assert amp_dtype(device, amp) is None
    assert calls == []


def _fit_on_cpu(amp: bool) -> tuple[dict[str, torch.Tensor], list[float], dict]:
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(40, 6, generator=gen), (torch.rand(40, generator=gen) > 0.5).float()
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 1), nn.Flatten(0))
    states: list[dict] = []
    cfg = TrainConfig(epochs=3, batch_size=16, lr=1e-2, seed=3, amp=amp, checkpoint_every=1)
    result = fit(model, x, y, (x[:20], y[:20].numpy()), cfg, on_epoch=lambda _, s: states.append(s) if s else None)
    return model.state_dict(), [h["loss"] for h in result.history], states[0]["scaler"]


def test_cpu_training_is_identical_with_and_without_amp(monkeypatch):
    plain_state, plain_loss, plain_scaler = _fit_on_cpu(amp=False)
    queries: list[dict] = []

    def is_bf16_supported(**kwargs: bool) -> bool:
        queries.append(kwargs)
        return True

    # torch.cuda.is_available stays real here: faking it sends Adam after a CUDA stream.
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    state, loss, scaler = _fit_on_cpu(amp=True)
    assert loss == plain_loss and np.isfinite(loss).all()
    assert all(torch.equal(state[k], plain_state[k]) for k in plain_state)
    assert scaler == plain_scaler == {}  # disabled GradScaler on the CPU; the checkpoint still holds its state
    assert queries == [] and training.amp_dtype("cpu") is None


def test_validation_every_third_epoch_and_after_the_last():
    torch.manual_seed(0)
    x, y = torch.randn(60, 4), torch.cat([torch.zeros(30), torch.ones(30)])
    val = (torch.randn(20, 4), np.array([0, 1] * 10))
    net = nn.Sequential(nn.Linear(4, 1), nn.Flatten(0))
    out = fit(net, x, y, val, TrainConfig(epochs=7, batch_size=20, lr=1e-2, seed=0, val_every=3))
    checked = [h["epoch"] for h in out.history if np.isfinite(h["auc_val"])]
    assert checked == [3, 6, 7] and out.best_epoch in checked
    assert {h["note_val"] for h in out.history if h["epoch"] not in checked} == {"not validated"}
