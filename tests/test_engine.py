"""Separator: chunking, overlap-add, batching, resampling, channel folding, speaker continuity."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from conftest import tiny_model

from separate.engine import Separator, triangular_window
from separate.errors import SeparateError
from separate.models.base import SeparationModel


def _direct(model: SeparationModel, mix: torch.Tensor) -> torch.Tensor:
    """mix [C, T] through one model call with channels folded: -> [S, C, T]."""
    with torch.no_grad():
        return model(mix.unsqueeze(1)).squeeze(2).transpose(0, 1)


def _blocks(array: np.ndarray, size: int):
    return (array[:, start : start + size] for start in range(0, array.shape[1], size))


def test_one_chunk_equals_one_model_call() -> None:
    model = tiny_model().eval()
    mix = 0.1 * torch.randn(2, 8000 * 3)
    out = Separator(model, consistency=False, segment=10.0).separate_tensor(mix, 8000)
    assert out.shape == (2, 2, 24000)
    torch.testing.assert_close(out, _direct(model, mix), rtol=0, atol=1e-6)


def test_chunked_result_close_to_direct_and_exact_length() -> None:
    model = tiny_model().eval()
    # Not a whole number of hops; the last chunk (moved back to end at the input's end) still starts
    # on the encoder's 4-sample stride: an untrained strided model is far from shift-equivariant.
    mix = 0.1 * torch.randn(1, 8000 * 3 + 16)
    out = Separator(model, consistency=False, segment=0.5, overlap=0.25, batch_size=3).separate_tensor(
        mix, 8000
    )
    assert out.shape == (2, 1, mix.shape[1])
    direct = _direct(model, mix)
    error = (out - direct).pow(2).mean() / direct.pow(2).mean()
    assert error < 0.05


@pytest.mark.parametrize("batch_size", [1, 3])
def test_bit_identical_whatever_the_block_size(batch_size: int) -> None:
    separator = Separator(tiny_model(), segment=0.3, overlap=0.25, batch_size=batch_size)
    mix = (0.1 * np.random.default_rng(0).standard_normal((2, 8000 * 2 + 5))).astype(np.float32)
    results = [
        np.concatenate([out for out, _ in separator.stream(_blocks(mix, size), 8000, 2, mix.shape[1])], -1)
        for size in (97, 4096, mix.shape[1])
    ]
    assert np.array_equal(results[0], results[1]) and np.array_equal(results[1], results[2])


@pytest.mark.parametrize("overlap", [0.0, 0.1, 0.25])
def test_last_chunk_is_full_of_real_audio(overlap: float) -> None:
    """2.5 chunks: the last chunk ends at the input's end, so where only it covers the output, the
    result is one model call on its span (gLN sees no zero padding)."""
    model = tiny_model().eval()
    chunk = 4000
    mix = 0.1 * torch.randn(1, chunk * 5 // 2, generator=torch.Generator().manual_seed(1))
    separator = Separator(model, consistency=False, segment=chunk / 8000, overlap=overlap, batch_size=2)
    _, hop, n_chunks = separator.plan(mix.shape[1])
    out = separator.separate_tensor(mix, 8000)
    last = mix.shape[1] - chunk
    only_last = (n_chunks - 2) * hop + chunk  # where the chunk before the last one ends
    assert last < only_last < mix.shape[1]
    direct = _direct(model, mix[:, last:])[..., only_last - last :]
    torch.testing.assert_close(out[..., only_last:], direct, rtol=1e-4, atol=1e-6)


def test_input_shorter_than_a_chunk_is_one_unpadded_chunk() -> None:
    model = tiny_model().eval()
    mix = 0.1 * torch.randn(1, 3001)
    separator = Separator(model, consistency=False, segment=0.5, overlap=0.1)
    assert separator.plan(3001) == (3001, 3001, 1)
    torch.testing.assert_close(separator.separate_tensor(mix, 8000), _direct(model, mix), rtol=0, atol=1e-6)


def test_batching_does_not_change_the_result_much() -> None:
    model = tiny_model()
    mix = 0.1 * torch.randn(1, 8000 * 3)
    one = Separator(model, consistency=False, segment=0.4, batch_size=1).separate_tensor(mix, 8000)
    many = Separator(model, consistency=False, segment=0.4, batch_size=8).separate_tensor(mix, 8000)
    torch.testing.assert_close(one, many, rtol=1e-4, atol=1e-5)


def test_resampling_round_trip_keeps_length_and_rate() -> None:
    model = tiny_model()
    mix = 0.1 * torch.randn(2, 44100 + 3)
    out = Separator(model, consistency=False, segment=0.5).separate_tensor(mix, 44100)
    assert out.shape == (2, 2, 44103)


def test_stereo_model_takes_mono_and_mono_model_takes_stereo() -> None:
    class StereoIdentity(SeparationModel):
        architecture = "stereo-identity"

        def __init__(self) -> None:
            super().__init__(sample_rate=8000, sources=["a", "b"], audio_channels=2)
            self.gain = torch.nn.Parameter(torch.tensor([1.0, 0.5]))

        def forward(self, mix: torch.Tensor) -> torch.Tensor:
            return mix.unsqueeze(1) * self.gain.view(1, 2, 1, 1)

    out = Separator(StereoIdentity()).separate_tensor(torch.ones(1, 100), 8000)
    assert out.shape == (2, 1, 100)
    torch.testing.assert_close(out[:, 0, 0], torch.tensor([1.0, 0.5]))
    with pytest.raises(SeparateError, match="channels"):
        Separator(tiny_model()).separate_tensor(torch.ones(3, 100), 8000)


class SwappingOracle(SeparationModel):
    """Splits a low and a high tone exactly, but returns them in a random order per chunk (like PIT)."""

    architecture = "swapping-oracle"
    permutation_invariant = True

    def __init__(self) -> None:
        super().__init__(sample_rate=8000, sources=2)
        self.generator = torch.Generator().manual_seed(0)

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        spectrum = torch.fft.rfft(mix)
        cut = spectrum.shape[-1] // 4
        low, high = spectrum.clone(), spectrum.clone()
        low[..., cut:] = 0
        high[..., :cut] = 0
        parts = torch.stack([torch.fft.irfft(low, mix.shape[-1]), torch.fft.irfft(high, mix.shape[-1])], 1)
        flip = torch.rand(mix.shape[0], generator=self.generator) < 0.5
        parts[flip] = parts[flip].flip(1)
        return parts


def test_speakers_never_swap_between_chunks() -> None:
    t = torch.arange(8000 * 4) / 8000
    low, high = torch.sin(2 * torch.pi * 220 * t), 0.5 * torch.sin(2 * torch.pi * 3000 * t)
    out = Separator(SwappingOracle(), segment=0.5, overlap=0.25, batch_size=4).separate_tensor(
        (low + high).unsqueeze(0), 8000
    )
    first = 0 if torch.dot(out[0, 0], low) > torch.dot(out[1, 0], low) else 1
    track = out[first, 0]
    for start in range(0, t.numel() - 2000, 2000):
        window = slice(start + 500, start + 1500)
        assert torch.nn.functional.cosine_similarity(track[window], low[window], dim=0) > 0.9


def test_shifted_passes_are_realigned_before_they_are_averaged() -> None:
    """Each pass of a PIT-like model comes in a random order; averaged as they come, the low track
    would hold the high tone too (cosine about 0.89)."""
    t = torch.arange(8000 * 2) / 8000
    low, high = torch.sin(2 * torch.pi * 220 * t), 0.5 * torch.sin(2 * torch.pi * 3000 * t)
    mix = (low + high).unsqueeze(0)
    for shifts in (1, 4):
        out = Separator(SwappingOracle(), segment=10.0, shifts=shifts).separate_tensor(mix, 8000)
        track = out[0, 0] if torch.dot(out[0, 0], low) > torch.dot(out[1, 0], low) else out[1, 0]
        assert torch.nn.functional.cosine_similarity(track, low, dim=0) > 0.99, shifts
        torch.testing.assert_close(out.sum(0), mix, rtol=0, atol=1e-4)


def test_shifts_leave_a_time_invariant_model_unchanged_and_cover_every_sample() -> None:
    class Gains(SeparationModel):
        architecture = "gains"

        def __init__(self) -> None:
            super().__init__(sample_rate=8000, sources=["a", "b"])

        def forward(self, mix: torch.Tensor) -> torch.Tensor:
            return mix.unsqueeze(1) * torch.tensor([0.7, 0.3]).view(1, 2, 1, 1)

    mix = torch.randn(2, 8000 * 3 + 5)
    one = Separator(Gains(), segment=1.0, consistency=False).separate_tensor(mix, 8000)
    three = Separator(Gains(), segment=1.0, consistency=False, shifts=3).separate_tensor(mix, 8000)
    torch.testing.assert_close(three, one, rtol=0, atol=1e-6)
    short = torch.randn(1, 500)  # shorter than the 0.1 s delay: one pass
    torch.testing.assert_close(
        Separator(Gains(), shifts=2, consistency=False).separate_tensor(short, 8000)[0], 0.7 * short
    )


def test_window_never_zero() -> None:
    window = triangular_window(7)
    assert window.min() > 0 and len(window) == 7


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"overlap": 1.0}, "overlap"),
        ({"batch_size": 0}, "batch size"),
        ({"segment": -1.0}, "segment"),
        ({"half": True, "device": "cpu"}, "half"),
        ({"device": "tpu"}, "device"),
        ({"shifts": 0}, "shifts"),
    ],
)
def test_bad_options(kwargs: dict, message: str) -> None:
    with pytest.raises(SeparateError, match=message):
        Separator(tiny_model(), **kwargs)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_cpu_separator_keeps_large_blocks_in_the_heap() -> None:
    from separate import runtime

    Separator(tiny_model(), device="cpu")
    assert runtime._tuned and runtime.keep_large_blocks()


def test_mixture_consistency_makes_stems_add_up_to_the_input() -> None:
    """A masking speech model's stems sum to the input (on by default for complete source sets)."""
    from separate.engine import sources_add_up
    from separate.models import build

    torch.manual_seed(0)
    model = build("convtasnet", n_filters=16, bottleneck=8, hidden=16, skip=8, blocks=2, repeats=1)
    assert sources_add_up(model)
    mix = 0.1 * torch.randn(1, 8000 * 3)
    stems = Separator(model, segment=1.0).separate_tensor(mix, 8000)
    torch.testing.assert_close(stems.sum(0), mix, rtol=0, atol=1e-4)
    raw = Separator(model, segment=1.0, consistency=False).separate_tensor(mix, 8000)
    assert (raw.sum(0) - mix).abs().max() > 1e-3


def test_mixture_consistency_turns_upside_down_stems_the_right_way() -> None:
    """SI-SNR ignores a stem's sign; a stem returned upside down is flipped, not zeroed by its gain."""
    from separate.consistency import mixture_consistency

    torch.manual_seed(0)
    sources = torch.randn(1, 2, 1, 800)
    mix = sources.sum(1)
    estimates = sources * torch.tensor([-0.5, 2.0]).view(1, 2, 1, 1)  # source 1 inverted and rescaled
    torch.testing.assert_close(mixture_consistency(estimates, mix), sources, rtol=0, atol=1e-5)
    torch.testing.assert_close(mixture_consistency(-estimates, mix), sources, rtol=0, atol=1e-5)


def test_remainder_stem_takes_the_whole_residual() -> None:
    """With a remainder stem, the other stems are only rescaled; shared, every stem moves equally."""
    from separate.consistency import mixture_consistency

    torch.manual_seed(0)
    estimates, mix = torch.randn(2, 3, 2, 400), torch.randn(2, 2, 400)
    shared = mixture_consistency(estimates, mix)
    to_last = mixture_consistency(estimates, mix, remainder=2)
    for out in (shared, to_last):
        torch.testing.assert_close(out.sum(1), mix, rtol=0, atol=1e-5)
    ratio = to_last[:, :2] / estimates[:, :2]  # [B, 2, C, T]: one gain per stem and channel
    torch.testing.assert_close(ratio, ratio[..., :1].expand_as(ratio), rtol=1e-4, atol=1e-4)
    moved = shared - to_last
    torch.testing.assert_close(moved[:, 0] - moved[:, 1], torch.zeros(2, 2, 400), rtol=0, atol=1e-6)


def test_music_stems_add_up_to_the_full_band_input() -> None:
    """A 16 kHz vocals/accompaniment model on 44.1 kHz input: the band above 8 kHz, which the
    model never sees, goes to the accompaniment; vocals are what they were without it."""
    from separate.engine import remainder_stem

    model = tiny_model(sources=["vocals", "accompaniment"], sample_rate=16000).eval()
    assert remainder_stem(model) == "accompaniment"
    assert remainder_stem(tiny_model(sources=["drums", "bass", "other", "vocals"])) == "other"
    assert remainder_stem(tiny_model()) is None
    rng = np.random.default_rng(0)
    mix = torch.from_numpy((0.1 * rng.standard_normal((2, 44100 * 2))).astype(np.float32))
    stems = Separator(model, segment=0.5).separate_tensor(mix, 44100)
    torch.testing.assert_close(stems.sum(0), mix, rtol=0, atol=1e-5)
    high = np.fft.rfftfreq(mix.shape[1], 1 / 44100) > 9000
    vocals_high = np.abs(np.fft.rfft(stems[0].numpy(), axis=-1)[:, high]).mean()
    mix_high = np.abs(np.fft.rfft(mix.numpy(), axis=-1)[:, high]).mean()
    assert vocals_high < 0.01 * mix_high
    without = Separator(model, segment=0.5, consistency=False).separate_tensor(mix, 44100)
    assert (without.sum(0) - mix).abs().max() > 1e-2


def test_speaker_stems_keep_their_band() -> None:
    """Speech models give no talker the band they never heard."""
    model = tiny_model(sample_rate=8000).eval()
    mix = 0.1 * torch.randn(1, 16000 * 2)
    stems = Separator(model, segment=0.5).separate_tensor(mix, 16000)
    high = np.fft.rfftfreq(mix.shape[1], 1 / 16000) > 4500
    spectrum = np.abs(np.fft.rfft(stems.numpy(), axis=-1))[..., high].mean()
    assert spectrum < 0.01 * np.abs(np.fft.rfft(mix.numpy(), axis=-1))[..., high].mean()
