"""DPRNN, DPTNet and GALR: parameter counts (SPEC §9.2), MACs, shapes, gradients, causality."""

from __future__ import annotations

import pytest
import torch

from separate import checkpoints, models
from separate.bench.complexity import count_macs, count_parameters
from separate.errors import SeparateError
from separate.models.dualpath import DPRNN, GALR, DPTNet, from_sequences, to_sequences

TINY = {
    "dprnn": dict(n_filters=8, kernel_size=4, chunk_size=6, n_blocks=2, hidden_size=8),
    "dprnn-causal": dict(n_filters=8, kernel_size=4, chunk_size=6, n_blocks=2, hidden_size=8, causal=True),
    "dptnet": dict(n_filters=8, kernel_size=4, chunk_size=6, n_blocks=2, n_heads=2, ff_hidden=8),
    "galr": dict(n_filters=16, kernel_size=4, chunk_size=6, n_blocks=2, hidden_size=8, low_dim_size=3),
    "galr-full": dict(n_filters=16, kernel_size=4, chunk_size=6, n_blocks=2, hidden_size=8, low_dim=False),
}


def tiny(name: str, **overrides) -> torch.nn.Module:
    architecture = name.split("-")[0]
    return models.build(architecture, **{**TINY[name], **overrides})


@pytest.mark.parametrize(
    ("preset", "ours", "paper"),
    [
        ("dprnn", 2_609_857, 2.6e6),
        ("dptnet", 2_806_977, 2.8e6),
        ("galr", 1_448_613, 1.5e6),
        ("galr-large", 2_314_469, 2.3e6),
    ],
)
def test_preset_parameter_counts(preset: str, ours: int, paper: float) -> None:
    model = models.build(preset)
    assert count_parameters(model) == ours
    assert abs(ours - paper) / paper < 0.05


@pytest.mark.parametrize(
    ("preset", "expected"),
    [("dprnn", 2_605_569), ("dptnet", 2_802_689), ("galr", 1_444_325), ("galr-large", 2_297_701)],
)
def test_counts_without_bottleneck_match_spec_rows(preset: str, expected: int) -> None:
    # SPEC §9.2's GALR and DPTNet rows leave out the gLN + 1x1 bottleneck (128 + 4 160 at D = 64).
    assert count_parameters(models.build(preset, bottleneck=False)) == expected


def test_counts_follow_structure() -> None:
    base = count_parameters(models.build("dprnn"))
    # Third source: the 2-D conv grows by D*D + D.
    assert count_parameters(models.build("dprnn", sources=3)) == base + 64 * 64 + 64
    # Causal: inter LSTM unidirectional (one direction of 4H(D+H) + 8H) and a Linear(H -> D) per block.
    per_block = 4 * 128 * (64 + 128) + 8 * 128 + 128 * 64
    assert count_parameters(models.build("dprnn", causal=True)) == base - 6 * per_block
    # GALR without the low-dimension trick drops C_map (Q x (K+1)) and C_inv (K x (Q+1)) in every block.
    galr = count_parameters(models.build("galr"))
    assert count_parameters(models.build("galr", low_dim=False)) == galr - 6 * (16 * 151 + 150 * 17)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("preset", "spec_gmacs"), [("dprnn", 5.67), ("dptnet", 6.30), ("galr", 5.56), ("galr-large", 8.07)]
)
def test_macs_per_second_near_spec(preset: str, spec_gmacs: float) -> None:
    torch.manual_seed(0)
    macs = count_macs(models.build(preset), seconds=1.0)
    assert abs(macs / 1e9 - spec_gmacs) / spec_gmacs < 0.10


@pytest.mark.parametrize("name", list(TINY))
@pytest.mark.parametrize("length", [1, 7, 33, 161])
def test_forward_returns_exactly_t_samples(name: str, length: int) -> None:
    torch.manual_seed(0)
    model = tiny(name).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, length))
    assert out.shape == (2, 2, 1, length)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(("kind", "extra"), [("free", 0), ("gated", 8 * 4), ("mpgtf", -8 * 4)])
def test_encoder_kinds(kind: str, extra: int) -> None:
    # gated: a second D x M basis; mpgtf: a fixed buffer instead of the learned D x M basis.
    model = tiny("dprnn", encoder=kind).eval()
    assert count_parameters(model) == count_parameters(tiny("dprnn")) + extra
    with torch.no_grad():
        assert model(torch.randn(2, 1, 45)).shape == (2, 2, 1, 45)


def test_any_number_of_named_sources() -> None:
    model = tiny("galr", sources=["a", "b", "c"]).eval()
    assert model.sources == ["a", "b", "c"]
    with torch.no_grad():
        assert model(torch.randn(2, 1, 50)).shape == (2, 3, 1, 50)


@pytest.mark.parametrize("name", list(TINY))
def test_gradients_reach_every_parameter(name: str) -> None:
    torch.manual_seed(0)
    model = tiny(name).train()
    model(torch.randn(2, 1, 97)).pow(2).mean().backward()
    for param_name, param in model.named_parameters():
        assert param.grad is not None, param_name
        assert torch.isfinite(param.grad).all(), param_name
        assert param.grad.abs().sum() > 0, param_name


def test_causal_dprnn_sees_only_its_lookahead() -> None:
    # float64 so that float32 round-off (~1e-8) cannot hide or fake the small (~1e-6) look-ahead effect.
    torch.manual_seed(0)
    model = tiny("dprnn-causal").double().eval()
    stride, hop = 2, 3  # kernel_size / 2, chunk_size / 2
    assert model.lookahead == (6 - 1) * stride + 4 - 1
    mix = torch.randn(1, 1, 120, dtype=torch.float64)
    with torch.no_grad():
        reference = model(mix)
        for cut in (20, 44, 77, 100):
            perturbed = mix.clone()
            perturbed[..., cut:] += 10 * torch.randn(120 - cut, dtype=torch.float64)
            out = model(perturbed)
            kept = cut - model.lookahead
            torch.testing.assert_close(out[..., :kept], reference[..., :kept], rtol=0, atol=1e-12)
            assert (out[..., kept:] - reference[..., kept:]).abs().max() > 1e-9
        # The bound is tight: output sample t = f * stride with f a multiple of hop sees exactly
        # ``lookahead`` samples ahead, through the intra-chunk BiLSTM of the chunk that ends there.
        t = 5 * hop * stride
        perturbed = mix.clone()
        perturbed[..., t + model.lookahead :] += 10
        assert (model(perturbed)[..., t] - reference[..., t]).abs().max() > 1e-9


def test_non_causal_models_see_the_future() -> None:
    torch.manual_seed(0)
    mix = torch.randn(1, 1, 120)
    perturbed = mix.clone()
    perturbed[..., 100:] += 10
    for name in ("dprnn", "dptnet", "galr"):
        model = tiny(name).eval()
        assert model.receptive_field is None
        with torch.no_grad():
            assert not torch.allclose(model(perturbed)[..., :10], model(mix)[..., :10], atol=1e-5), name


@pytest.mark.parametrize("path", ["intra", "inter"])
def test_sequence_layout_round_trip(path: str) -> None:
    chunks = torch.randn(2, 3, 4, 5)  # [B, D, K, S]
    sequences = to_sequences(chunks, path)
    if path == "intra":  # one sequence per (batch, chunk), running along K
        assert sequences.shape == (2 * 5, 4, 3)
        torch.testing.assert_close(sequences[1 * 5 + 2], chunks[1, :, :, 2].T)
    else:  # one sequence per (batch, position in chunk), running along S
        assert sequences.shape == (2 * 4, 5, 3)
        torch.testing.assert_close(sequences[1 * 4 + 3], chunks[1, :, 3, :].T)
    assert torch.equal(from_sequences(sequences, chunks.shape, path), chunks)


def test_presets_registered_and_config_rebuilds() -> None:
    for name, cls in (("dprnn", DPRNN), ("dptnet", DPTNet), ("galr", GALR), ("galr-large", GALR)):
        assert name in models.PRESETS
        model = models.build(name)
        assert isinstance(model, cls)
        assert model.permutation_invariant and model.default_segment == 4.0
        assert model.sample_rate == 8000 and model.sources == ["s1", "s2"]
        rebuilt = models.build(model.architecture, **model.config)
        assert count_parameters(rebuilt) == count_parameters(model)
    assert models.build("galr-large").config["n_filters"] == 128


@pytest.mark.parametrize("name", ["dprnn-causal", "dptnet", "galr"])
def test_checkpoint_round_trip(name: str, tmp_path) -> None:
    torch.manual_seed(0)
    model = tiny(name).eval()
    path = checkpoints.save(model, tmp_path / "model.safetensors")
    loaded = checkpoints.load(path).eval()
    mix = torch.randn(1, 1, 77)
    with torch.no_grad():
        torch.testing.assert_close(loaded(mix), model(mix), rtol=0, atol=0)


def test_user_errors() -> None:
    with pytest.raises(SeparateError):
        DPRNN(kernel_size=15)
    with pytest.raises(SeparateError):
        GALR(chunk_size=151)
    with pytest.raises(SeparateError):
        GALR(n_filters=60)
    with pytest.raises(SeparateError):
        GALR(chunk_size=10, low_dim_size=16)
    with pytest.raises(SeparateError):
        DPTNet(encoder="stft")
    with pytest.raises(SeparateError):
        tiny("dprnn")(torch.randn(1, 2, 50))
