"""Encoders and decoders of TasNet-style models: free, gated, MP-GTF (SPEC §2.1, §2.4)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from separate.errors import SeparateError
from separate.models.filterbanks import (
    ConvDecoder,
    ConvEncoder,
    GatedEncoder,
    MultiPhaseGammatoneEncoder,
    gammatone_centre_frequencies,
    make_encoder,
    multiphase_gammatone_filters,
    normalise_segments,
)


def reference_centres(sample_rate: float, count: int | None) -> list[float]:
    """1-ERB steps from 100 Hz, written out from the ERB-number formulas of SPEC §2.4."""
    to_erb = lambda f: 9.265 * np.log(1 + f / (24.7 * 9.265))  # noqa: E731
    to_hz = lambda e: (np.exp(e / 9.265) - 1) * 24.7 * 9.265  # noqa: E731
    centres = []
    erb = to_erb(100.0)
    while (count is None and to_hz(erb) < sample_rate / 2) or (count is not None and len(centres) < count):
        centres.append(float(to_hz(erb)))
        erb += 1
    return centres


def reference_gammatone(centre: float, phase: float, length: int, sample_rate: float) -> np.ndarray:
    t = np.linspace(1 / sample_rate, length / sample_rate, length)
    b = (24.7 + 0.108 * centre) / (np.pi * 2 * 0.25)  # order 2: pi (2p-2)! 2^-(2p-2) / ((p-1)!)^2 = pi / 2
    return t * np.exp(-2 * np.pi * b * t) * np.cos(2 * np.pi * centre * t + phase)


def unit_rms(x: np.ndarray) -> np.ndarray:
    return x / np.sqrt(np.mean(x**2))


def test_mpgtf_reference_layout_128_filters_8khz() -> None:
    n_filters, length, rate, n_centres = 128, 16, 8000, 24
    bank = multiphase_gammatone_filters(n_filters, length, rate, n_centres).numpy()
    assert bank.shape == (n_filters, length)

    pairs = n_filters // 2 // n_centres  # 2
    extra = (n_filters - 2 * n_centres * pairs) // 2  # 16 centres get a third pair
    layout = [pairs + 1] * extra + [pairs] * (n_centres - extra)
    assert layout == [3] * 16 + [2] * 8 and 2 * sum(layout) == n_filters

    centres = reference_centres(rate, n_centres)
    assert centres[0] == pytest.approx(100.0) and centres[-1] == pytest.approx(3707.66, abs=0.05)
    row = 0
    for centre, count in zip(centres, layout, strict=True):
        for k in range(count):
            expected = unit_rms(reference_gammatone(centre, k * np.pi / count, length, rate))
            np.testing.assert_allclose(unit_rms(bank[row + k]), expected, atol=1e-9)
            np.testing.assert_allclose(bank[row + count + k], -bank[row + k], atol=0)
        row += 2 * count
    assert row == n_filters


def test_mpgtf_filters_share_one_rms_and_keep_the_largest() -> None:
    bank = multiphase_gammatone_filters(128, 16, 8000, 24).numpy()
    rms = np.sqrt(np.mean(bank**2, axis=1))
    np.testing.assert_allclose(rms, rms[0], rtol=1e-12)
    raw_rms = [
        np.sqrt(np.mean(reference_gammatone(c, 0.0, 16, 8000) ** 2)) for c in reference_centres(8000, 24)
    ]
    assert rms[0] >= max(raw_rms) * (1 - 1e-9)


@pytest.mark.parametrize(("rate", "expected_centres"), [(8000, 24), (16000, 30), (44100, 40)])
def test_default_centres_are_every_erb_step_below_nyquist(rate: int, expected_centres: int) -> None:
    centres = gammatone_centre_frequencies(rate)
    assert len(centres) == expected_centres == len(reference_centres(rate, None))
    np.testing.assert_allclose(centres, reference_centres(rate, None), rtol=1e-12)
    assert centres[-1] < rate / 2


def test_ltl_music_bank_has_40_centres_with_six_or_seven_pairs() -> None:
    bank = multiphase_gammatone_filters(500, 220, 44100).numpy()
    assert bank.shape == (500, 220)
    row = 0
    for index, centre in enumerate(reference_centres(44100, None)):
        count = 7 if index < 10 else 6
        first = unit_rms(reference_gammatone(centre, 0.0, 220, 44100))
        np.testing.assert_allclose(unit_rms(bank[row]), first, atol=1e-8)
        np.testing.assert_allclose(bank[row + count : row + 2 * count], -bank[row : row + count])
        row += 2 * count
    assert row == 500


def test_mpgtf_encoder_is_not_trainable() -> None:
    encoder = MultiPhaseGammatoneEncoder(128, 16, 8, 8000, n_center_freqs=24)
    assert list(encoder.parameters()) == []
    assert "filters" in encoder.state_dict() and not encoder.filters.requires_grad
    wav = torch.randn(2, 1, 100, requires_grad=True)
    frames = encoder(wav)
    assert frames.shape == (2, 128, (104 - 16) // 8 + 1) and frames.min() >= 0
    frames.sum().backward()
    assert wav.grad is not None and encoder.filters.grad is None


def test_mpgtf_refuses_centres_above_nyquist_and_odd_filter_counts() -> None:
    with pytest.raises(SeparateError, match="Nyquist"):
        gammatone_centre_frequencies(8000, 30)
    with pytest.raises(SeparateError, match="even"):
        multiphase_gammatone_filters(127, 16, 8000, 24)


def test_gated_encoder_matches_the_formula_on_segments() -> None:
    torch.manual_seed(0)
    encoder = GatedEncoder(6, 5)
    assert encoder.stride == 5 and encoder.conv.bias is None
    wav = torch.randn(2, 1, 23)
    frames = encoder(wav)
    segments = torch.nn.functional.pad(wav, (0, 2)).view(2, 5, 5)  # [B, K, L]
    u, v = encoder.conv.weight.squeeze(1).chunk(2)
    expected = torch.relu(segments @ u.T) * torch.sigmoid(segments @ v.T)  # [B, K, N]
    torch.testing.assert_close(frames, expected.transpose(1, 2))
    assert sum(p.numel() for p in encoder.parameters()) == 2 * 6 * 5


def test_normalise_segments_gives_unit_segments_and_their_norms() -> None:
    wav = torch.cat([torch.randn(1, 1, 12), torch.zeros(1, 1, 4)], dim=-1)
    normalised, norms = normalise_segments(wav, 4)
    assert normalised.shape == wav.shape and norms.shape == (1, 1, 4)
    segment_norms = torch.linalg.vector_norm(normalised.view(4, 4), dim=-1)
    torch.testing.assert_close(segment_norms[:3], torch.ones(3), rtol=1e-5, atol=1e-6)
    assert segment_norms[3] == 0 and norms[0, 0, 3] == 0
    torch.testing.assert_close(norms[0, 0, 0], wav[0, 0, :4].norm())
    with pytest.raises(ValueError):
        normalise_segments(torch.randn(1, 1, 10), 4)


@pytest.mark.parametrize("kind", ["free", "gated", "mpgtf"])
@pytest.mark.parametrize("length", [1, 15, 16, 57])
def test_make_encoder_kinds_cover_every_sample(kind: str, length: int) -> None:
    encoder = make_encoder(kind, 16, 8, 4, 8000, n_center_freqs=None if kind != "mpgtf" else 8)
    frames = encoder(torch.randn(2, 1, length))
    expected_frames = max(0, math.ceil((length - 8) / 4)) + 1
    assert frames.shape == (2, 16, expected_frames)
    decoded = ConvDecoder(16, 8, 4)(frames.unsqueeze(1), length)
    assert decoded.shape == (2, 1, length)


def test_make_encoder_kinds_and_unknown_kind() -> None:
    assert isinstance(make_encoder("free", 8, 4, 2, 8000), ConvEncoder)
    assert make_encoder("free", 8, 4, 2, 8000, relu=True)(torch.randn(1, 1, 30)).min() >= 0
    assert isinstance(make_encoder("gated", 8, 4, 4, 8000), GatedEncoder)
    assert isinstance(make_encoder("mpgtf", 8, 4, 4, 8000, n_center_freqs=4), MultiPhaseGammatoneEncoder)
    with pytest.raises(SeparateError, match="unknown encoder"):
        make_encoder("stft", 8, 4, 2, 8000)
