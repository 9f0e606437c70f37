"""Audio I/O helpers (separate.audio): the one resampled-length rule."""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from separate.audio import read_span, resample_blocks, resampled_length

RATES = [(44100, 22050), (22050, 44100), (16000, 8000), (44100, 8000), (8000, 44100)]


@pytest.mark.parametrize("rates", RATES)
def test_resampled_length_is_what_soxr_produces(rates: tuple[int, int]) -> None:
    rate_in, rate_out = rates
    rng = np.random.default_rng(0)
    for frames in (1, 2, 3, 5, 9, 100, 101, 1001):
        produced = soxr.resample(rng.standard_normal((frames, 1)).astype(np.float32), rate_in, rate_out)
        assert resampled_length(frames, rate_in, rate_out) == produced.shape[0], frames
    assert resampled_length(12345, 8000, 8000) == 12345


def test_streamed_blocks_and_file_spans_agree_on_the_length(tmp_path) -> None:
    import soundfile as sf

    frames, rate_in, rate_out = 44101, 44100, 22050  # an odd length at 2:1, where rounding rules differ
    audio = (0.1 * np.random.default_rng(1).standard_normal((1, frames))).astype(np.float32)
    path = tmp_path / "odd.wav"
    sf.write(path, audio.T, rate_in, subtype="FLOAT")
    length = resampled_length(frames, rate_in, rate_out)
    streamed = np.concatenate(list(resample_blocks([audio], rate_in, rate_out, length)), axis=1)
    span = read_span(path, 0, length, frames=frames, file_rate=rate_in, target_rate=rate_out)
    assert streamed.shape == span.shape == (1, 22051)
    assert np.abs(span[:, -1]).max() > 0  # the last sample is real audio, not padding
