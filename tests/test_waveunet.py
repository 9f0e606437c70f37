"""Wave-U-Net and the lightweight Wave-U-Net: parameter counts, shapes, alignment, outputs, gradients."""

from __future__ import annotations

import pytest
import torch

from separate import models
from separate.bench.complexity import count_parameters
from separate.errors import SeparateError
from separate.models.waveunet import Upsample, WaveUNet, depth_to_time, time_to_depth
from separate.models.waveunet_lite import WaveUNetLite

FOUR_STEMS = ["vocals", "bass", "drums", "other"]
TINY_WAVEUNET = {"levels": 3, "base_filters": 4}
TINY_LITE = {"base_filters": 4}


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


# Paper figures are rounded: "0.85 M" may be up to 0.855 M (892 847 is 5.04 % above 0.85 M exactly).
@pytest.mark.parametrize(
    ("name", "overrides", "expected", "paper"),
    [
        ("waveunet", {}, 10_263_002, 10.2e6),
        ("waveunet-stereo", {}, 10_263_390, None),
        ("waveunet-stereo-learned", {}, 10_265_550, None),
        ("waveunet-lite", {}, 892_847, 0.855e6),
        ("waveunet-lite-4stem", {}, 894_189, 0.855e6),
        ("waveunet-lite-upsample", {}, 644_537, None),
        ("waveunet-lite-upsample", {"base_filters": 28}, 876_501, None),
    ],
)
def test_parameter_counts_match_spec(name: str, overrides: dict, expected: int, paper: float | None) -> None:
    count = count_parameters(models.build(name, **overrides))
    assert count == expected
    if paper is not None:
        assert abs(count / paper - 1) < 0.05


def test_waveunet_shape_check_and_receptive_field() -> None:
    model = models.build("waveunet")
    assert model.valid_lengths(16384) == (147_443, 16_389)
    assert model.receptive_field == 139_245
    for length in (1, 5, 6, 16389, 16390, 50_000):
        input_length, output_length = model.valid_lengths(length)
        assert length <= output_length < length + 2**12
        assert input_length - output_length == 131_054


def test_presets_use_the_documented_sources() -> None:
    assert models.PRESETS["waveunet"]["sources"] == ["accompaniment", "vocals"]
    assert models.build("waveunet-lite").sources == ["vocals", "accompaniment"]
    assert models.build("waveunet-lite-4stem").sources == FOUR_STEMS
    lite = models.build("waveunet-lite")
    assert lite.receptive_field is None
    assert round(lite.default_segment * lite.sample_rate) == 16384


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"context": False},
        {"upsampling": "learned", "audio_channels": 2},
        {"context": False, "upsampling": "learned", "output_type": "direct"},
    ],
)
@pytest.mark.parametrize("length", [1, 2, 7, 333])
def test_waveunet_returns_exactly_t_samples(overrides: dict, length: int) -> None:
    model = WaveUNet(**TINY_WAVEUNET, **overrides)
    mix = torch.randn(2, model.audio_channels, length)
    assert model(mix).shape == (2, 2, model.audio_channels, length)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"decoder": "upsample"},
        {"sources": FOUR_STEMS, "temporal_attention": False},
        {"stride_kernel": 12, "aspp_rates": [3, 6]},
    ],
)
@pytest.mark.parametrize("length", [1, 15, 17, 333])
def test_lite_returns_exactly_t_samples(overrides: dict, length: int) -> None:
    model = WaveUNetLite(**TINY_LITE, **overrides)
    assert model(torch.randn(2, 1, length)).shape == (2, model.n_src, 1, length)


def test_lite_preset_on_its_native_window() -> None:
    model = models.build("waveunet-lite").eval()
    with torch.no_grad():
        est = model(0.1 * torch.randn(2, 1, 16384))
    assert est.shape == (2, 2, 1, 16384)
    assert est.isfinite().all()


@pytest.mark.parametrize(
    "model",
    [
        lambda: WaveUNet(**TINY_WAVEUNET),
        lambda: WaveUNet(**TINY_WAVEUNET, context=False, audio_channels=2),
        lambda: WaveUNetLite(**TINY_LITE, sources=FOUR_STEMS),
        lambda: WaveUNetLite(**TINY_LITE, decoder="upsample", output_activation="linear"),
    ],
)
def test_difference_output_makes_sources_sum_to_the_mixture(model) -> None:
    model = model().eval()
    mix = torch.randn(2, model.audio_channels, 301)
    with torch.no_grad():
        est = model(mix)
    torch.testing.assert_close(est.sum(1), mix, atol=1e-5, rtol=0)


def test_direct_output_has_no_difference_source() -> None:
    model = WaveUNet(**TINY_WAVEUNET, output_type="direct").eval()
    assert model.output_conv.out_channels == 2
    mix = torch.randn(1, 1, 301)
    with torch.no_grad():
        est = model(mix)
    assert (est.sum(1) - mix).abs().max() > 1e-3
    assert est.abs().max() < 1


def test_linear_output_clips_explicit_sources_only_in_eval() -> None:
    model = WaveUNetLite(**TINY_LITE, output_activation="linear")
    mix = 50 * torch.randn(1, 1, 256)
    with torch.no_grad():
        assert model.train()(mix)[:, 0].abs().max() > 1
        assert model.eval()(mix)[:, 0].abs().max() <= 1


@pytest.mark.parametrize(
    "model",
    [
        lambda: WaveUNet(**TINY_WAVEUNET, upsampling="learned", audio_channels=2),
        lambda: WaveUNet(**TINY_WAVEUNET, context=False, output_type="direct"),
        lambda: WaveUNetLite(**TINY_LITE, sources=FOUR_STEMS),
        lambda: WaveUNetLite(**TINY_LITE, decoder="upsample"),
    ],
)
def test_gradients_reach_every_parameter(model) -> None:
    model = model()
    est = model(torch.randn(2, model.audio_channels, 200))
    est.pow(2).mean().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_context_window_is_centred_and_bounded_by_the_receptive_field() -> None:
    model = WaveUNet(**TINY_WAVEUNET).eval()
    half = (model.receptive_field - 1) // 2
    mix = torch.randn(1, 1, 1001, requires_grad=True)
    est = model(mix)
    offsets = []
    for position in range(500, 500 + 2**model.levels):  # every decimation phase
        (grad,) = torch.autograd.grad(est[0, 0, 0, position], mix, retain_graph=True)
        support = grad[0, 0].nonzero().flatten() - position
        offsets += [support.min().item(), support.max().item()]
    assert min(offsets) == -half and max(offsets) == half


def test_context_model_output_does_not_depend_on_the_chunk_length() -> None:
    model = WaveUNet(**TINY_WAVEUNET).eval()
    mix = torch.randn(1, 1, 301)
    shift = 2**model.levels
    with torch.no_grad():
        est = model(mix)
        longer = model(torch.cat([mix, torch.zeros(1, 1, 4000)], dim=-1))
        shifted = model(torch.cat([torch.zeros(1, 1, shift), mix], dim=-1))
    torch.testing.assert_close(longer[..., :301], est)
    torch.testing.assert_close(shifted[..., shift:], est)


def test_time_to_depth_layout_and_inverse() -> None:
    signal = torch.arange(8.0).reshape(1, 1, 8)
    folded = time_to_depth(signal, 4)
    assert folded.tolist() == [[[0.0, 4.0], [1.0, 5.0], [2.0, 6.0], [3.0, 7.0]]]
    features = torch.randn(2, 3, 64)
    torch.testing.assert_close(depth_to_time(time_to_depth(features, 16), 16), features)


def test_upsampling_inserts_midpoints() -> None:
    frames = torch.tensor([[[0.0, 2.0, 6.0]]])
    assert Upsample(same=False)(frames).tolist() == [[[0.0, 1.0, 2.0, 4.0, 6.0]]]
    assert Upsample(same=True)(frames).tolist() == [[[0.0, 1.0, 2.0, 4.0, 6.0, 6.0]]]
    torch.testing.assert_close(Upsample(same=False, learned_channels=1)(frames), Upsample(same=False)(frames))


def test_config_rebuilds_the_model() -> None:
    model = models.build("waveunet-lite-4stem", decoder="upsample")
    rebuilt = type(model)(**model.config)
    rebuilt.load_state_dict(model.state_dict())
    assert rebuilt.config == model.config and rebuilt.sources == FOUR_STEMS


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: WaveUNetLite(decoder="transposed"), "decoder"),
        (lambda: WaveUNet(up_kernel=4), "up_kernel"),
        (lambda: WaveUNet(sources=["vocals"]), "two sources"),
        (lambda: WaveUNet(upsampling="cubic"), "upsampling"),
    ],
)
def test_bad_options_raise_separate_error(build, message: str) -> None:
    with pytest.raises(SeparateError, match=message):
        build()


def test_wrong_channel_count_raises_separate_error() -> None:
    with pytest.raises(SeparateError, match="batch, 1, samples"):
        WaveUNetLite(**TINY_LITE)(torch.randn(1, 2, 100))
