"""Refinement (separate.refinement): stems re-estimated from the mixture's spectrogram, by ratio masks
(mono) or the multichannel Wiener filter (stereo)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import registry_entry, tiny_model

from separate import checkpoints
from separate.engine import Separator
from separate.inference import build_separator
from separate.refinement import refine, refine_with_ratio_masks, refine_with_wiener, refinement_fft_size


def _tones(rate: int, seconds: float) -> torch.Tensor:
    """Two sources that own disjoint frequency bands: ``[2, T]``."""
    t = torch.arange(int(rate * seconds)) / rate
    return torch.stack([0.3 * torch.sin(2 * torch.pi * 300 * t), 0.2 * torch.sin(2 * torch.pi * 2500 * t)])


def test_fft_size_is_the_nearest_power_of_two() -> None:
    assert refinement_fft_size(16000) == 4096 and refinement_fft_size(8000) == 2048
    assert refinement_fft_size(44100, 0.128) == 4096 and refinement_fft_size(100) == 32


def test_refined_stems_add_up_and_lose_what_the_mixture_does_not_hold() -> None:
    """Estimates with broadband artifacts (noise the mixture does not hold): every sample of the
    refined stems comes from the mixture, so the artifacts go and each tone stays with its owner."""
    sources = _tones(8000, 2.0)
    mix = sources.sum(0).view(1, 1, -1)
    noise = 0.05 * torch.randn(2, sources.shape[1], generator=torch.Generator().manual_seed(0))
    leaky = (sources + noise).view(1, 2, 1, -1)
    refined = refine_with_ratio_masks(leaky, mix, 8000)
    assert refined.shape == leaky.shape
    torch.testing.assert_close(refined.sum(1), mix, rtol=0, atol=1e-5)
    core = slice(2000, -2000)
    for j in range(2):
        before = (leaky[0, j, 0, core] - sources[j, core]).pow(2).mean()
        after = (refined[0, j, 0, core] - sources[j, core]).pow(2).mean()
        assert after < 0.05 * before


def test_silent_estimates_share_the_mixture_and_short_chunks_pass() -> None:
    mix = 0.1 * torch.randn(2, 2, 4000)
    silent = refine_with_ratio_masks(torch.zeros(2, 3, 2, 4000), mix, 8000)
    torch.testing.assert_close(silent, mix.unsqueeze(1).expand(2, 3, 2, 4000) / 3, rtol=0, atol=1e-5)
    short = torch.randn(1, 2, 1, 100)
    assert torch.equal(refine_with_ratio_masks(short, short.sum(1), 8000), short)


def test_wiener_filter_separates_by_stereo_position_where_masks_cannot() -> None:
    """Two noises over the same bins, one panned left and one right; each estimate holds 30 % of the
    other source. Masks channel by channel keep that leak; the spatial covariances undo most of it."""
    generator = torch.Generator().manual_seed(0)
    left, right = (0.1 * torch.randn(32000, generator=generator) for _ in range(2))
    sources = torch.stack([torch.stack([left, 0.2 * left]), torch.stack([0.2 * right, right])]).unsqueeze(0)
    mix = sources.sum(1)
    first, second = sources[0]
    leaky = torch.stack([0.7 * first + 0.3 * second, 0.3 * first + 0.7 * second]).unsqueeze(0)
    core = slice(4000, -4000)

    def error(estimates: torch.Tensor) -> float:
        return float((estimates - sources)[..., core].pow(2).mean() / sources[..., core].pow(2).mean())

    wiener = refine(leaky, mix, 16000)
    torch.testing.assert_close(wiener, refine_with_wiener(leaky, mix, 16000))
    torch.testing.assert_close(wiener.sum(1), mix, rtol=0, atol=1e-5)
    assert error(wiener) < 0.4 * error(leaky)
    assert error(refine_with_ratio_masks(leaky, mix, 16000)) > 0.9 * error(leaky)


def test_mono_input_keeps_ratio_masks_and_silence_is_shared() -> None:
    mono = 0.1 * torch.randn(1, 1, 8000)
    estimates = torch.stack([0.6 * mono, 0.4 * mono], 1) + 0.01 * torch.randn(1, 2, 1, 8000)
    assert torch.equal(refine(estimates, mono, 16000), refine_with_ratio_masks(estimates, mono, 16000))
    mix = 0.1 * torch.randn(1, 2, 16000)
    shared = refine_with_wiener(torch.zeros(1, 2, 2, 16000), mix, 16000)
    torch.testing.assert_close(shared, mix.unsqueeze(1).expand(1, 2, 2, 16000) / 2, rtol=0, atol=1e-5)


def test_separator_refines_each_chunk_and_keeps_the_sum() -> None:
    model = tiny_model(sources=["vocals", "accompaniment"], sample_rate=16000).eval()
    mix = 0.1 * torch.randn(2, 44100 * 2, generator=torch.Generator().manual_seed(1))
    plain = Separator(model, segment=1.0).separate_tensor(mix, 44100)
    refined = Separator(model, segment=1.0, refine=True).separate_tensor(mix, 44100)
    torch.testing.assert_close(refined.sum(0), mix, rtol=0, atol=1e-4)
    assert (refined - plain).abs().max() > 1e-3


#: build_separator's arguments after the model and its name: device, segment, overlap, batch size,
#: half, consistency, path options.
SEPARATOR_OPTIONS = ("cpu", None, 0.25, 4, False, None, (None, None, None))


def _registered_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **entry: str) -> Path:
    """A tiny model file registered as ``m`` with the ``entry`` keys (TOML literals); its path."""
    ckpt = checkpoints.save(tiny_model(), tmp_path / "m.safetensors")
    registry = tmp_path / "reg.toml"
    registry.write_text("[models]\n" + registry_entry("m", ckpt, **entry))
    monkeypatch.setenv("SEPARATE_REGISTRY", str(registry))
    return ckpt


def test_registry_segment_is_the_default_and_options_override_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ckpt = _registered_model(tmp_path, monkeypatch, segment="0.75")
    assert checkpoints.default_segment("m") == 0.75 and checkpoints.default_segment(str(ckpt)) is None
    model = checkpoints.load_model("m")
    options = SEPARATOR_OPTIONS
    assert build_separator(model, "m", *options).segment == 0.75
    assert build_separator(model, "m", "cpu", 0.5, *options[2:]).segment == 0.5
    assert build_separator(model, str(ckpt), *options).segment == model.default_segment


def test_registry_refine_is_the_default_and_options_override_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ckpt = _registered_model(tmp_path, monkeypatch, refine="true")
    assert checkpoints.default_refine("m") and not checkpoints.default_refine(str(ckpt))
    model = checkpoints.load_model("m")
    options = SEPARATOR_OPTIONS
    assert build_separator(model, "m", *options).refine
    assert not build_separator(model, "m", *options, refine=False).refine
    assert not build_separator(model, str(ckpt), *options).refine
    assert torch.isfinite(
        build_separator(model, "m", *options).separate_tensor(torch.randn(1, 800), 8000)
    ).all()


def test_audio_refine_option_changes_the_stems_and_keeps_their_sum(
    tmp_path: Path, tiny_checkpoint: Path
) -> None:
    import soundfile as sf
    from conftest import write_audio

    from separate.cli import main

    song = write_audio(tmp_path / "a.wav", 1.0)
    stems = {}
    for flag in ("--refine", "--no-refine"):
        out = tmp_path / flag.strip("-")
        assert (
            main(["audio", str(song), "-m", str(tiny_checkpoint), "-o", str(out), "--bits", "32", flag]) == 0
        )
        stems[flag] = [sf.read(str(next(out.rglob(f"{name}.wav"))))[0] for name in ("s1", "s2")]
    mix = sf.read(str(song))[0]
    np.testing.assert_allclose(stems["--refine"][0] + stems["--refine"][1], mix, atol=1e-4)
    assert np.abs(stems["--refine"][0] - stems["--no-refine"][0]).max() > 1e-4
