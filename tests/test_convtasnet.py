"""Conv-TasNet: parameter counts (SPEC 9.5), exact lengths, gradients, causality."""

from __future__ import annotations

import pytest
import torch

from separate import models
from separate.bench.complexity import count_parameters

TINY = dict(n_filters=16, kernel_size=8, stride=4, bottleneck=8, hidden=16, skip=8, blocks=3, repeats=2)


@pytest.mark.parametrize("sources", [2, 5, 10, 15, 20])
def test_parameter_count_matches_spec(sources: int) -> None:
    with torch.device("meta"):
        model = models.build("convtasnet", sources=sources)
    # SPEC 9.5 counts 5 050 545 at J = 2, including the last block's unused residual conv (65 664).
    assert count_parameters(model) == 5_050_545 - 65_664 + 66_048 * (sources - 2)


@pytest.mark.parametrize("length", [1, 7, 8, 333, 1001])
def test_exact_length_and_batch(length: int) -> None:
    model = models.build("convtasnet", sources=3, **TINY)
    assert model(torch.randn(2, 1, length)).shape == (2, 3, 1, length)


def test_gradients_reach_every_parameter() -> None:
    model = models.build("convtasnet", **TINY)
    out = model(torch.randn(2, 1, 400))
    (out * torch.randn_like(out)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_causal_model_ignores_the_future() -> None:
    torch.manual_seed(0)
    model = models.build("convtasnet", causal=True, **TINY).double().eval()
    mix = torch.randn(1, 1, 800, dtype=torch.float64)
    changed = mix.clone()
    cut = 500
    changed[..., cut:] += torch.randn(1, 1, 300, dtype=torch.float64)
    with torch.no_grad():
        before, after = model(mix), model(changed)
    # A frame spans kernel_size samples, so outputs up to one frame before the change may move.
    safe = cut - TINY["kernel_size"] - TINY["stride"]
    assert torch.equal(before[..., :safe], after[..., :safe])
    assert not torch.allclose(before[..., cut:], after[..., cut:])


def test_non_causal_model_looks_ahead() -> None:
    torch.manual_seed(0)
    model = models.build("convtasnet", **TINY).double().eval()
    mix = torch.randn(1, 1, 800, dtype=torch.float64)
    changed = mix.clone()
    changed[..., 500:] += 1.0
    with torch.no_grad():
        assert not torch.allclose(model(mix)[..., :400], model(changed)[..., :400])


@pytest.mark.parametrize("encoder", ["gated", "mpgtf"])
def test_other_encoders_drop_in(encoder: str) -> None:
    free = models.build("convtasnet", **TINY)
    swapped = models.build("convtasnet", encoder=encoder, **TINY)
    assert swapped(torch.randn(2, 1, 333)).shape == (2, 2, 1, 333)
    if encoder == "mpgtf":
        assert count_parameters(swapped) == count_parameters(free) - TINY["n_filters"] * TINY["kernel_size"]
