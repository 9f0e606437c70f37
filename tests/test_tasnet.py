"""TasNet baseline and LTL (X_trans_Y): parameter counts, shapes, gradients, causality (SPEC §2, §9.1)."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from separate import models
from separate.bench.complexity import count_parameters
from separate.errors import SeparateError
from separate.models.tasnet import LTL, TasNet, default_heads, parse_layout

TINY = {"n_filters": 16, "segment_length": 8, "lstm_hidden": 16, "ffn_dim": 8}


def lstm_params(inputs: int, hidden: int, bidirectional: bool) -> int:
    return (2 if bidirectional else 1) * 4 * (inputs * hidden + hidden * hidden + 2 * hidden)


def transformer_params(dim: int, ffn: int) -> int:
    attention = 4 * dim * dim + 4 * dim
    return attention + (dim * ffn + ffn) + (ffn * dim + dim) + 2 * 2 * dim


def analytic_count(before: int, layers: int, after: int, bidirectional: bool, ffn: int) -> int:
    """SPEC §9.1 reading: N = 500, L = 220, hidden 500, J = 2, gated encoder, affine LayerNorm over N."""
    n, length, hidden, sources = 500, 220, 500, 2
    width = hidden * (2 if bidirectional else 1)
    total = 2 * n * length + 2 * n + n * length  # gated encoder U, V; LayerNorm; decoder
    dim = n
    for _ in range(before):
        total += lstm_params(dim, hidden, bidirectional)
        dim = width
    total += layers * transformer_params(dim, ffn)
    for _ in range(after):
        total += lstm_params(dim, hidden, bidirectional)
        dim = width
    return total + dim * sources * n + sources * n  # mask head


def build_on_meta(name: str, **overrides: Any) -> torch.nn.Module:
    with torch.device("meta"):
        return models.build(name, **overrides)


PRESET_COUNTS = {
    "tasnet": (8_848_000, analytic_count(4, 0, 0, False, 0)),
    "tasnet-bi": (23_364_000, analytic_count(4, 0, 0, True, 0)),
    "ltl-1-trans-0": (7_879_024, analytic_count(1, 4, 0, False, 256)),
    "ltl-2-trans-0": (9_883_024, analytic_count(2, 4, 0, False, 256)),
    "ltl-3-trans-0-bi": (33_570_096, analytic_count(3, 2, 0, True, 2048)),
}


@pytest.mark.parametrize("name", sorted(PRESET_COUNTS))
def test_preset_parameter_counts_are_exact(name: str) -> None:
    exact, analytic = PRESET_COUNTS[name]
    assert exact == analytic
    assert count_parameters(build_on_meta(name)) == exact


def test_preset_counts_match_the_papers_within_five_percent() -> None:
    tasnet, tasnet_bi = PRESET_COUNTS["tasnet"][0], PRESET_COUNTS["tasnet-bi"][0]
    assert tasnet_bi == pytest.approx(23.6e6, rel=0.05)  # BLSTM-TasNet as listed by TDANet
    assert PRESET_COUNTS["ltl-1-trans-0"][0] == pytest.approx(0.89 * tasnet, rel=0.05)  # "11 % less"
    assert PRESET_COUNTS["ltl-3-trans-0-bi"][0] == pytest.approx(33e6, rel=0.05)  # "33 M"
    assert PRESET_COUNTS["ltl-3-trans-0-bi"][0] == pytest.approx(1.43 * tasnet_bi, rel=0.05)  # "+43 %"


@pytest.mark.parametrize(
    ("layout", "layers", "bidirectional", "ffn", "millions"),
    [
        ("1_trans_0", 1, False, 256, 4.10),
        ("1_trans_0", 2, False, 256, 5.36),
        ("1_trans_0", 3, False, 256, 6.62),
        ("1_trans_0", 1, False, 2048, 5.89),
        ("1_trans_0", 2, False, 2048, 8.95),
        ("1_trans_0", 4, False, 2048, 15.05),
        ("3_trans_0", 1, True, 2048, 25.46),
        ("3_trans_0", 3, True, 2048, 41.68),
    ],
)
def test_ltl_variants_match_the_spec_table(
    layout: str, layers: int, bidirectional: bool, ffn: int, millions: float
) -> None:
    with torch.device("meta"):
        model = LTL(layout=layout, n_transformer_layers=layers, bidirectional=bidirectional, ffn_dim=ffn)
    count = count_parameters(model)
    before, after = parse_layout(layout)
    assert count == analytic_count(before, layers, after, bidirectional, ffn)
    assert count / 1e6 == pytest.approx(millions, abs=0.005)


def test_presets_are_registered_with_the_paper_defaults() -> None:
    for name in PRESET_COUNTS:
        assert name in models.PRESETS
    model = build_on_meta("ltl-3-trans-0-bi")
    assert model.architecture == "ltl" and not model.causal
    assert model.sources == ["vocals", "accompaniment"] and model.sample_rate == 44100
    assert model.audio_channels == 1 and model.default_segment == 10.0 and model.receptive_field is None
    assert model.separator.heads == 8 and len(model.separator.transformer) == 2
    causal = build_on_meta("ltl-1-trans-0")
    assert causal.causal and causal.separator.heads == 4 and len(causal.separator.transformer) == 4
    assert build_on_meta("tasnet").architecture == "tasnet"


TINY_CONFIGS = {
    "tasnet": ("tasnet", {}),
    "tasnet-bi-skips": ("tasnet", {"bidirectional": True, "skip_connections": True, "lstm_layers": 2}),
    "ltl-1-trans-1": ("ltl", {"layout": "1_trans_1", "n_transformer_layers": 2}),
    "ltl-0-trans-2-bi-mpgtf": (
        "ltl",
        {"layout": "0_trans_2", "n_transformer_layers": 1, "bidirectional": True, "encoder": "mpgtf"},
    ),
    "tasnet-sigmoid-unnormalised": ("tasnet", {"mask_activation": "sigmoid", "normalise": False}),
    "ltl-bi-window": (
        "ltl",
        {"layout": "1_trans_0", "n_transformer_layers": 1, "bidirectional": True, "window": 32},
    ),
}


def tiny(key: str, **extra: Any) -> TasNet:
    architecture, kwargs = TINY_CONFIGS[key]
    torch.manual_seed(0)
    return models.build(architecture, **{**TINY, **kwargs, **extra})


@pytest.mark.parametrize("key", sorted(TINY_CONFIGS))
def test_forward_returns_exactly_t_samples(key: str) -> None:
    model = tiny(key).eval()
    with torch.no_grad():
        for length in (1, 219, 221, 1000):
            est = model(torch.randn(2, 1, length))
            assert est.shape == (2, 2, 1, length)
            assert torch.isfinite(est).all()


def test_silence_separates_into_silence() -> None:
    with torch.no_grad():
        est = tiny("ltl-1-trans-1").eval()(torch.zeros(1, 1, 50))
    assert torch.equal(est, torch.zeros_like(est))


@pytest.mark.parametrize(
    "key", ["tasnet-bi-skips", "ltl-1-trans-1", "ltl-0-trans-2-bi-mpgtf", "ltl-bi-window"]
)
def test_gradients_reach_every_trainable_parameter(key: str) -> None:
    model = tiny(key)
    est = model(torch.randn(2, 1, 300))
    (est * torch.randn_like(est)).sum().backward()  # a plain sum would cancel through the softmax masks
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    ("key", "extra"),
    [("tasnet", {}), ("ltl-1-trans-1", {}), ("ltl-1-trans-1", {"layout": "0_trans_1"})],
)
def test_causal_models_ignore_the_future(key: str, extra: dict[str, Any]) -> None:
    model = tiny(key, **extra).eval()
    assert model.causal
    mix = torch.randn(1, 1, 1000)
    changed = mix.clone()
    t = 500
    changed[..., t:] += torch.randn(1, 1, 1000 - t)
    segment_start = t // TINY["segment_length"] * TINY["segment_length"]
    with torch.no_grad():
        before, after = model(mix), model(changed)
    torch.testing.assert_close(after[..., :segment_start], before[..., :segment_start], atol=1e-6, rtol=0)
    assert not torch.allclose(after[..., segment_start:], before[..., segment_start:])


def test_bidirectional_models_see_the_future() -> None:
    model = tiny("ltl-1-trans-1", bidirectional=True).eval()
    assert not model.causal
    mix = torch.randn(1, 1, 1000)
    changed = mix.clone()
    changed[..., 500:] += 1.0
    with torch.no_grad():
        assert not torch.allclose(model(changed)[..., :496], model(mix)[..., :496])


@pytest.mark.parametrize("scheme", ["kaiming_normal", "kaiming_uniform", "xavier_normal", "xavier_uniform"])
def test_transformer_init_schemes(scheme: str) -> None:
    model = tiny("ltl-1-trans-1", init=scheme, ffn_dim=32)
    for layer in model.separator.transformer:
        attention = layer.attention
        assert torch.count_nonzero(attention.in_proj_bias) == 0
        assert torch.count_nonzero(layer.ffn[0].bias) == 0
        weight = attention.in_proj_weight.detach()  # [3d, d]: fan_in d, fan_out 3d
        fan_in, fan_out = weight.shape[1], weight.shape[0]
        kaiming = scheme.startswith("kaiming")
        std = math.sqrt(2 / fan_in) if kaiming else math.sqrt(2 / (fan_in + fan_out))
        bound = math.sqrt(3) * std
        assert weight.std().item() == pytest.approx(std, rel=0.25)
        if scheme.endswith("uniform"):
            assert weight.abs().max() <= bound + 1e-6
        else:
            assert weight.abs().max() > bound
    with torch.no_grad():
        assert torch.isfinite(model.eval()(torch.randn(1, 1, 100))).all()


def test_mpgtf_encoder_is_fixed_inside_tasnet() -> None:
    gated, fixed = tiny("tasnet"), tiny("tasnet", encoder="mpgtf")
    assert count_parameters(gated) - count_parameters(fixed) == 2 * 16 * 8
    assert "encoder.filters" in fixed.state_dict()
    assert fixed.encoder.filters.shape == (16, 1, 8)


@pytest.mark.parametrize(
    ("layout", "before", "after"),
    [("0_trans_0", 0, 0), ("1_trans_0", 1, 0), ("2_trans_1", 2, 1), ("0_trans_3", 0, 3), ("3-trans-2", 3, 2)],
)
def test_layout_parsing_and_separator_structure(layout: str, before: int, after: int) -> None:
    assert parse_layout(layout) == (before, after)
    bidirectional = after % 2 == 1
    model = tiny("ltl-1-trans-1", layout=layout, n_transformer_layers=1, bidirectional=bidirectional)
    separator = model.separator
    assert len(separator.before.lstms) == before and len(separator.after.lstms) == after
    assert len(separator.transformer) == 1
    width = (32 if bidirectional else 16) if before else TINY["n_filters"]
    assert separator.transformer[0].norm1.normalized_shape == (width,)
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 1, 77)).shape == (1, 2, 1, 77)


@pytest.mark.parametrize("layout", ["trans_1", "1_trans", "1_trans_0_extra", "a_trans_b", ""])
def test_bad_layouts_are_refused(layout: str) -> None:
    with pytest.raises(SeparateError):
        parse_layout(layout)


def test_long_window_frames_overlap_and_keep_the_scale() -> None:
    model = tiny("ltl-bi-window").eval()
    assert model.encoder.kernel_size == 32 and model.encoder.stride == TINY["segment_length"]
    mix = torch.randn(2, 1, 301)
    with torch.no_grad():
        est, louder = model(mix), model(4.0 * mix)
    torch.testing.assert_close(louder, 4.0 * est, atol=1e-5, rtol=1e-4)  # the RMS normalisation
    assert tiny("ltl-1-trans-1").encoder.kernel_size == TINY["segment_length"]


def test_invalid_configurations_are_refused() -> None:
    for window in (4, 12):
        with pytest.raises(SeparateError, match="window"):
            TasNet(window=window, **TINY)
    with pytest.raises(SeparateError, match="layout"):
        LTL(lstm_layers=2, **TINY)
    with pytest.raises(SeparateError, match="transformer layer"):
        LTL(n_transformer_layers=0, **TINY)
    with pytest.raises(SeparateError, match="at least one"):
        TasNet(lstm_layers=0, **TINY)
    with pytest.raises(SeparateError, match="heads"):
        LTL(heads=3, **TINY)
    with pytest.raises(SeparateError, match="encoder"):
        TasNet(encoder="free", **TINY)
    with pytest.raises(SeparateError, match="mask activation"):
        TasNet(mask_activation="tanh", **TINY)
    with pytest.raises(SeparateError, match="init"):
        LTL(init="orthogonal", **TINY)
    with pytest.raises(SeparateError, match="mono"):
        tiny("tasnet")(torch.randn(1, 2, 100))


def test_default_heads() -> None:
    assert default_heads(500) == 4 and default_heads(1000) == 8 and default_heads(16) == 8
    assert default_heads(6) == 2 and default_heads(7) == 1


def test_config_rebuilds_the_same_model() -> None:
    model = models.build("ltl-2-trans-0", **TINY, skip_connections=True).eval()
    rebuilt = models.build(model.architecture, **model.config).eval()
    rebuilt.load_state_dict(model.state_dict())
    mix = torch.randn(1, 1, 123)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(mix), model(mix))
    assert rebuilt.config == model.config
