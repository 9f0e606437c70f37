"""TDANet: parameter and MAC counts against SPEC §9.3, shapes, gradients, batch independence, alignment."""

from __future__ import annotations

import itertools

import pytest
import torch

from separate import models
from separate.bench.complexity import count_macs, count_parameters
from separate.errors import SeparateError
from separate.models.tdanet import TDANet
from separate.models.tdanet_layers import DropPath, LocalAttention

TINY = {
    "bottleneck_channels": 16,
    "hidden_channels": 32,
    "n_heads": 4,
    "ffn_channels": 64,
    "n_unfoldings": 2,
}


def tiny(**overrides: object) -> TDANet:
    torch.manual_seed(0)
    return TDANet(**{**TINY, **overrides})


@pytest.mark.parametrize(
    ("preset", "decoder", "expected"),
    [
        ("tdanet", "mixing", 2_330_439),
        ("tdanet", "shared", 2_324_103),
        ("tdanet-large", "mixing", 2_316_391),
        ("tdanet-large", "shared", 2_314_759),
    ],
)
def test_preset_parameter_counts(preset: str, decoder: str, expected: int) -> None:
    assert count_parameters(models.build(preset, decoder=decoder)) == expected


def test_presets_default_to_shared_decoder() -> None:
    model = models.build("tdanet")
    assert model.config["decoder"] == "shared"
    assert model.kernel == 64 and model.stride == 16 and model.n_filters == 33
    large = models.build("tdanet-large")
    assert large.kernel == 32 and large.stride == 8 and large.n_filters == 17


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"global_attention": False}, 219_975),
        ({"self_attention": False, "feed_forward": False}, 219_975),
        ({"self_attention": False}, 1_277_767),
        ({"feed_forward": False}, 1_272_647),
        ({"td_fusion": "la"}, 2_330_439 + 23_040),
        ({"local_attention": False}, 2_330_439 - 4 * 10_752),
    ],
)
def test_ablation_parameter_counts(overrides: dict, expected: int) -> None:
    assert count_parameters(models.build("tdanet", decoder="mixing", **overrides)) == expected


def test_one_la_layer_has_10752_parameters() -> None:
    assert count_parameters(LocalAttention(512, 5)) == 10_752
    assert count_parameters(LocalAttention(512, 5, order="paper")) == 2 * 3_584


@pytest.mark.parametrize(("preset", "spec_gmacs"), [("tdanet", 4.79), ("tdanet-large", 9.59)])
def test_macs_per_second_match_spec(preset: str, spec_gmacs: float) -> None:
    macs = count_macs(models.build(preset), seconds=1.0)
    assert abs(macs / 1e9 - spec_gmacs) / spec_gmacs < 0.10


def test_model_facts() -> None:
    model = tiny(sources=3)
    assert TDANet.architecture == "tdanet" and TDANet.permutation_invariant
    assert model.sources == ["s1", "s2", "s3"] and model.audio_channels == 1
    assert model.receptive_field is None and model.default_segment == 4.0
    rebuilt = TDANet(**model.config)
    assert count_parameters(rebuilt) == count_parameters(model)


@pytest.mark.parametrize("length", [1, 2, 15, 16, 63, 64, 65, 127, 333])
def test_forward_returns_exactly_t_samples(length: int) -> None:
    model = tiny().eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, length))
    assert out.shape == (2, 2, 1, length)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(
    ("td_fusion", "la_order", "decoder"),
    list(itertools.product(["gate", "add", "la", "none"], ["code", "paper"], ["shared", "mixing"])),
)
def test_every_variant_runs(td_fusion: str, la_order: str, decoder: str) -> None:
    model = tiny(td_fusion=td_fusion, la_order=la_order, decoder=decoder, sources=3, kernel_ms=2.0).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, 77))
    assert out.shape == (2, 3, 1, 77)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"td_fusion": "la", "decoder": "mixing"},
        {"td_fusion": "none", "la_order": "paper"},
        {"global_attention": False, "local_attention": False},
        {"self_attention": False},
        {"feed_forward": False},
    ],
)
def test_gradients_reach_every_parameter(overrides: dict) -> None:
    model = tiny(dropout=0.0, drop_path=0.0, **overrides).train()
    model(torch.randn(2, 1, 203)).pow(2).mean().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert param.grad.abs().sum() > 0, name


@pytest.mark.parametrize("decoder", ["shared", "mixing"])
def test_batch_items_do_not_interact(decoder: str) -> None:
    model = tiny(decoder=decoder).eval()
    mix = torch.randn(2, 1, 250)
    changed = mix.clone()
    changed[1] = 10 * torch.randn(1, 250)
    with torch.no_grad():
        first = model(mix)[0]
        after_change = model(changed)[0]
        alone = model(mix[:1])[0]
    torch.testing.assert_close(after_change, first, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(alone, first, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("decoder", ["shared", "mixing"])
@pytest.mark.parametrize("length", [1, 37, 160])
def test_padding_and_cropping_align_with_the_input(decoder: str, length: int) -> None:
    """Delta filters with all-ones masks make the model an identity: any crop offset error shows."""
    model = tiny(decoder=decoder, sample_rate=8000)
    stride, n_filters, n_src = model.stride, model.n_filters, model.n_src
    with torch.no_grad():
        model.encoder.conv.weight.zero_()
        for offset in range(stride):
            model.encoder.conv.weight[offset, 0, offset] = 1.0
        mask_conv = model.mask_head[1]
        mask_conv.weight.zero_()
        mask_conv.bias.fill_(1.0)
        if decoder == "shared":
            weight = model.decoder.deconv.weight
            weight.zero_()
            for offset in range(stride):
                weight[offset, 0, offset] = 1.0
        else:
            weight = model.decoder.weight
            weight.zero_()
            for source, offset in itertools.product(range(n_src), range(stride)):
                weight[source * n_filters + offset, source, offset] = 1.0
        mix = torch.randn(2, 1, length)
        out = model.eval()(mix)
    torch.testing.assert_close(out, mix.unsqueeze(1).expand(-1, n_src, -1, -1))


def test_drop_path_is_per_item_and_off_in_eval() -> None:
    drop = DropPath(0.5)
    x = torch.ones(64, 3, 5)
    torch.manual_seed(0)
    dropped = drop.train()(x)
    per_item = dropped.flatten(1)
    assert ((per_item == 0).all(1) | (per_item == 2).all(1)).all()
    assert 0 < (per_item[:, 0] == 0).sum() < 64
    assert torch.equal(drop.eval()(x), x)


@pytest.mark.parametrize(
    "overrides",
    [
        {"kernel_ms": 1.3},
        {"td_fusion": "concat"},
        {"la_order": "reverse"},
        {"decoder": "grouped"},
        {"n_heads": 5},
        {"n_unfoldings": 0},
        {"kernel_size": 4},
    ],
)
def test_bad_options_raise_clear_errors(overrides: dict) -> None:
    with pytest.raises(SeparateError):
        tiny(**overrides)


def test_stereo_input_is_rejected() -> None:
    with pytest.raises(SeparateError):
        tiny()(torch.randn(1, 2, 100))
