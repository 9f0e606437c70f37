"""Every preset round-trips through a checkpoint bit-exactly and separates through `separate audio`."""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf
import torch
from conftest import write_audio

from separate import checkpoints, models
from separate.cli import main


@pytest.mark.slow
@pytest.mark.parametrize("preset", sorted(models.PRESETS))
def test_preset_checkpoint_round_trip_and_cli(preset: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = models.build(preset).eval()
    path = checkpoints.save(model, tmp_path / f"{preset}.safetensors")
    loaded = checkpoints.load(path)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name
    song = write_audio(tmp_path / "clip.wav", 0.5, sample_rate=model.sample_rate, channels=2)
    out = tmp_path / "out"
    assert main(["audio", str(song), "-m", str(path), "-o", str(out), "--json", "--threads", "1"]) == 0
    for stem in model.sources:
        data, rate = sf.read(out / "clip" / f"{stem}.wav", always_2d=True)
        assert data.shape == (model.sample_rate // 2, 2) and rate == model.sample_rate
