"""Speech scores, aggregations and museval's track format."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy import stats

from separate.errors import SeparateError
from separate.evaluation.music import (
    aggregate_music,
    musdb_frames,
    musdb_json,
    museval_groups,
    read_musdb_json,
    track_medians,
)
from separate.evaluation.speech import best_assignment, speech_scores, summarize

museval = pytest.importorskip("museval")


def noise_sources(n_src: int, n_chan: int, length: int, seed: int = 0) -> torch.Tensor:
    """``[J, C, T]`` float64 coloured noise, one spectrum per source."""
    generator = torch.Generator().manual_seed(seed)
    white = torch.randn(n_src, n_chan, length + 64, generator=generator, dtype=torch.float64)
    kernels = torch.rand(n_src, 1, 64, generator=generator, dtype=torch.float64)
    coloured = torch.stack(
        [
            torch.nn.functional.conv1d(white[j], kernels[j : j + 1].expand(n_chan, 1, 64), groups=n_chan)
            for j in range(n_src)
        ]
    )
    return 0.1 * coloured[..., :length] / coloured.std()


def test_assignment_recovers_a_permutation() -> None:
    refs = noise_sources(4, 1, 4000)
    order = [2, 0, 3, 1]
    ests = refs[order] + 0.05 * noise_sources(4, 1, 4000, seed=1)
    perm = best_assignment(ests[:, 0], refs[:, 0])
    assert [order[int(i)] for i in perm] == [0, 1, 2, 3]


def test_speech_scores_improvements_and_sdr_against_museval() -> None:
    refs = noise_sources(2, 1, 8000)
    mixture = refs.sum(dim=0)
    ests = refs.flip(0) + 0.1 * noise_sources(2, 1, 8000, seed=2)
    scores = speech_scores(ests, refs, mixture)
    assert scores.assignment == (1, 0)
    per = scores.per_source
    for j in range(2):
        assert per["si_snri"][j] == pytest.approx(per["si_snr"][j] - per["input_si_snr"][j])
        assert per["sdri"][j] == pytest.approx(per["sdr"][j] - per["input_sdr"][j])
    assert scores.si_snri == pytest.approx(np.mean(per["si_snri"]))
    # SDR is mir_eval / museval bss_eval_sources with 512-tap filters on the whole utterance.
    reference, *_ = museval.metrics.bss_eval(
        refs.permute(0, 2, 1).numpy(),
        ests.flip(0).permute(0, 2, 1).numpy(),
        window=np.inf,
        hop=np.inf,
        bsseval_sources_version=True,
    )
    np.testing.assert_allclose(per["sdr"], reference[:, 0], atol=1e-6)
    assert scores.sdr > scores.si_snr - 1.0  # the distortion filter can only explain more of the estimate


def test_speech_scores_without_sdr_and_shape_errors() -> None:
    refs = noise_sources(3, 2, 500)
    scores = speech_scores(refs + 0.01, refs, refs.sum(0), with_sdr=False)
    assert math.isnan(scores.sdr) and scores.si_snr > 20
    with pytest.raises(SeparateError, match="one shape"):
        speech_scores(refs[:2], refs, refs.sum(0))
    with pytest.raises(SeparateError, match="mixture"):
        speech_scores(refs, refs, refs.sum(0)[:, :-1])


def test_summary_is_a_t_interval_of_the_mean() -> None:
    values = [1.0, 2.0, 4.0, float("nan"), 7.0]
    summary = summarize(values)
    data = np.array([1.0, 2.0, 4.0, 7.0])
    low, high = stats.t.interval(0.95, len(data) - 1, loc=data.mean(), scale=stats.sem(data))
    assert summary["count"] == 4
    assert summary["mean"] == pytest.approx(3.5) and summary["median"] == pytest.approx(3.0)
    assert summary["ci_low"] == pytest.approx(low) and summary["ci_high"] == pytest.approx(high)
    assert math.isnan(summarize([5.0])["ci_low"]) and summarize([])["count"] == 0


def test_both_music_aggregations() -> None:
    nan = float("nan")
    tracks = {
        "a": {"vocals": {"SDR": [1.0, 2.0, 9.0], "SIR": [0.0] * 3, "ISR": [0.0] * 3, "SAR": [0.0] * 3}},
        "b": {"vocals": {"SDR": [4.0, nan, 5.0, 6.0], "SIR": [1.0] * 4, "ISR": [1.0] * 4, "SAR": [1.0] * 4}},
        "c": {"vocals": {"SDR": [nan, nan], "SIR": [2.0] * 2, "ISR": [2.0] * 2, "SAR": [2.0] * 2}},
    }
    assert track_medians(tracks["b"])["vocals"]["SDR"] == 5.0
    result = aggregate_music(tracks)
    assert result["sisec18"]["vocals"]["SDR"] == pytest.approx(3.5)  # median of 2, 5 (track c is all NaN)
    assert result["pooled"]["vocals"]["SDR"] == pytest.approx(4.5)  # median of 1 2 9 4 5 6
    assert result["sisec18"]["vocals"]["SIR"] == pytest.approx(1.0)


def test_target_groups_follow_museval() -> None:
    four = ["drums", "bass", "other", "vocals"]
    assert museval_groups(four) == [(four, set(four))]
    assert museval_groups(["vocals", "accompaniment"]) == [
        (["vocals", "accompaniment"], {"vocals", "accompaniment"})
    ]
    assert museval_groups(["vocals", "drums", "accompaniment"]) == [
        (["vocals", "drums"], {"drums"}),
        (["vocals", "accompaniment"], {"vocals", "accompaniment"}),
    ]
    assert museval_groups(["vocals"]) == []


def test_track_frames_and_json_equal_musevals_own(tmp_path: Path) -> None:
    rate, targets = 8000, ["vocals", "drums", "accompaniment"]
    refs = noise_sources(3, 2, int(3.5 * rate), seed=3)
    ests = refs + 0.2 * noise_sources(3, 2, refs.shape[-1], seed=4)
    ours = musdb_frames(refs.numpy(), ests.numpy(), targets, rate)
    track = SimpleNamespace(
        name="Artist - Title",
        subset="test",
        rate=rate,
        targets={name: SimpleNamespace(audio=refs[j].T.numpy()) for j, name in enumerate(targets)},
    )
    estimates = {name: ests[j].T.numpy() for j, name in enumerate(targets)}
    store = museval.eval_mus_track(track, estimates, output_dir=str(tmp_path))
    theirs = json.loads(store.json)
    mine = musdb_json(ours, "test")
    assert [t["name"] for t in mine["targets"]] == [t["name"] for t in theirs["targets"]]
    for a, b in zip(mine["targets"], theirs["targets"], strict=True):
        assert [f["time"] for f in a["frames"]] == [f["time"] for f in b["frames"]]
        for fa, fb in zip(a["frames"], b["frames"], strict=True):
            for metric in ("SDR", "SIR", "ISR", "SAR"):
                assert fa["metrics"][metric] == pytest.approx(float(fb["metrics"][metric]), abs=2e-5)
    # Our file reads back, validates against museval's schema and loads into museval's EvalStore.
    path = tmp_path / "ours" / "test" / "Artist - Title.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(mine, allow_nan=True))
    assert read_musdb_json(path)["frames"]["drums"]["SDR"] == ours["drums"]["SDR"]
    import jsonschema

    schema = json.loads((Path(museval.__file__).parent / "musdb.schema.json").read_text())
    jsonschema.validate(mine, schema)
    evaluation = museval.EvalStore()
    evaluation.add_eval_dir(tmp_path / "ours")
    medians = evaluation.agg_frames_tracks_scores()
    assert medians.loc[("vocals", "SDR")] == pytest.approx(track_medians(ours)["vocals"]["SDR"])


def test_a_silent_estimate_is_named() -> None:
    refs = noise_sources(2, 2, 3000).numpy()
    ests = refs.copy()
    ests[1] = 0.0
    with pytest.raises(SeparateError, match="the bass estimate is silent"):
        musdb_frames(refs, ests, ["vocals", "bass"], 1000)
