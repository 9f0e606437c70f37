"""The one-call API ``separate.separate(audio, sample_rate, model=...)`` and the files-to-stems run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_model

import separate
from separate.errors import SeparateError
from separate.inference import select_stems


def test_separate_returns_named_stems_like_the_engine(tiny_checkpoint: Path) -> None:
    mix = (0.1 * np.random.default_rng(0).standard_normal((2, 12000))).astype(np.float32)
    stems = separate.separate(mix, 8000, model=str(tiny_checkpoint), device="cpu")
    assert list(stems) == ["s1", "s2"]
    assert all(isinstance(s, np.ndarray) and s.shape == (2, 12000) for s in stems.values())
    engine = separate.Separator(separate.load_model(tiny_checkpoint), device="cpu")
    expected = engine.separate_tensor(torch.from_numpy(mix), 8000)
    assert np.array_equal(stems["s1"], expected[0].numpy()) and np.array_equal(
        stems["s2"], expected[1].numpy()
    )


def test_separate_keeps_the_input_shape_and_type_and_takes_a_loaded_model() -> None:
    model = tiny_model()
    mono = 0.1 * torch.randn(4000, generator=torch.Generator().manual_seed(1))
    stems = separate.separate(mono, 16000, model=model, device="cpu")  # resampled to 8 kHz and back
    assert all(isinstance(s, torch.Tensor) and s.shape == (4000,) for s in stems.values())


def test_separate_without_a_model_uses_the_registry_default(monkeypatch, tmp_path: Path) -> None:
    registry = tmp_path / "registry.toml"
    registry.write_text("[models]\n")
    monkeypatch.setenv("SEPARATE_REGISTRY", str(registry))
    with pytest.raises(SeparateError, match="names no default model"):
        separate.separate(np.zeros(800, np.float32), 8000)


def test_stem_selection() -> None:
    assert select_stems(["s1", "s2"], None, None) == ["s1", "s2"]
    assert select_stems(["vocals", "accompaniment"], None, "vocals") == ["vocals", "no_vocals"]
    assert select_stems(["s1", "s2"], " s2 ,", None) == ["s2"]
    with pytest.raises(SeparateError, match="unknown stem"):
        select_stems(["s1", "s2"], "s3", None)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_the_api_refuses_nan_and_infinite_samples(bad: float) -> None:
    mix = np.zeros((1, 8000), np.float32)
    mix[0, 4000] = bad
    with pytest.raises(SeparateError, match=r"NaN or infinite samples \(first at 0.500 s\)"):
        separate.separate(mix, 8000, model=tiny_model(), device="cpu")
    with pytest.raises(SeparateError, match="NaN or infinite"):
        separate.Separator(tiny_model(), device="cpu").separate_tensor(torch.from_numpy(mix), 8000)


@pytest.mark.parametrize("segment", [float("nan"), float("inf"), 0.001])
def test_the_api_refuses_unusable_segments(segment: float) -> None:
    with pytest.raises(SeparateError, match="segment"):
        separate.Separator(tiny_model(), device="cpu", segment=segment)
    with pytest.raises(SeparateError, match="segment"):
        separate.separate(np.zeros(800, np.float32), 8000, model=tiny_model(), segment=segment)


def test_float_stems_of_a_masking_model_add_up_to_the_input(tiny_checkpoint: Path, tmp_path: Path) -> None:
    import soundfile as sf

    from separate.inference import separate_files

    mix = (0.3 * np.random.default_rng(2).standard_normal((20000, 2))).astype(np.float32)
    sf.write(tmp_path / "mix.wav", mix, 8000, subtype="FLOAT")
    for consistency, folder in ((None, "on"), (False, "off")):
        separate_files(
            [str(tmp_path / "mix.wav")],
            str(tiny_checkpoint),
            out=str(tmp_path / folder),
            bits=32,
            device="cpu",
            segment=0.5,
            consistency=consistency,
        )
    total = {
        folder: sum(sf.read(tmp_path / folder / "mix" / f"{stem}.wav")[0] for stem in ("s1", "s2"))
        for folder in ("on", "off")
    }
    assert np.abs(total["on"] - mix).max() < 1e-4
    assert np.abs(total["off"] - mix).max() > 1e-2  # the option is what makes them add up
