"""Our torch BSSEval v4 against museval's reference implementation, and its edge cases."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy.signal import lfilter

from separate.errors import SeparateError
from separate.evaluation.bsseval import bss_eval, frame_count, projection

museval_metrics = pytest.importorskip("museval.metrics")

METRICS = ("sdr", "isr", "sir", "sar")


def music_like(n_src: int, n_chan: int, seconds: float, rate: int = 44100, seed: int = 0):
    """References and estimates that behave like separated music.

    References: coloured noise with different spectra per source, slow loudness envelopes, a
    silent second in source 1, quantised to 16 bits like a wav file. Estimates: the references
    with leakage from the other sources, a short filter and additive noise.
    Returns float64 ``[J, C, T]`` arrays (references, estimates).
    """
    rng = np.random.default_rng(seed)
    length = int(seconds * rate)
    refs = np.empty((n_src, n_chan, length))
    for j in range(n_src):
        pole = 0.5 + 0.45 * j / max(1, n_src - 1)
        refs[j] = lfilter([1.0], [1.0, -pole], rng.standard_normal((n_chan, length)), axis=-1)
        envelope = 0.6 + 0.4 * np.sin(2 * np.pi * (0.3 + 0.1 * j) * np.arange(length) / rate)
        refs[j] *= 0.1 * envelope / refs[j].std()
    if n_src > 1 and length > 3 * rate:
        refs[1, :, rate : 2 * rate] = 0.0
    refs = np.round(refs * 32767) / 32767
    leakage = np.eye(n_src) + 0.08 * rng.standard_normal((n_src, n_src))
    ests = np.einsum("ij,jct->ict", leakage, refs)
    ests = lfilter([1.0, 0.25, -0.1], [1.0], ests, axis=-1) + 0.003 * rng.standard_normal(ests.shape)
    return refs, ests


def museval_scores(
    refs: np.ndarray, ests: np.ndarray, window, hop, images: bool = True, filters_len: int = 512
):
    sdr, isr, sir, sar, _ = museval_metrics.bss_eval(
        refs.transpose(0, 2, 1),
        ests.transpose(0, 2, 1),
        window=np.inf if window is None else window,
        hop=np.inf if hop is None else hop,
        compute_permutation=False,
        filters_len=filters_len,
        framewise_filters=False,
        bsseval_sources_version=not images,
    )
    return {"sdr": sdr, "isr": isr, "sir": sir, "sar": sar}


def assert_close_to_museval(ours, reference, tolerance: float = 0.01) -> None:
    """Every frame and per-source median within ``tolerance`` dB, NaN and inf where museval has them."""
    for name in METRICS:
        mine = getattr(ours, name).numpy()
        theirs = np.asarray(reference[name], dtype=np.float64)
        np.testing.assert_allclose(mine, theirs, rtol=0, atol=tolerance, err_msg=name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows
            medians = np.nanmedian(mine, axis=1), np.nanmedian(theirs, axis=1)
        np.testing.assert_allclose(*medians, rtol=0, atol=tolerance, err_msg=name)


@pytest.mark.slow
def test_images_match_museval_on_a_stereo_four_stem_excerpt() -> None:
    refs, ests = music_like(n_src=4, n_chan=2, seconds=12.0)
    ests[2, :, 5 * 44100 : 6 * 44100] = 0.0  # a silent estimate frame -> NaN for every source there
    ours = bss_eval(refs, ests, window=44100, hop=44100)
    reference = museval_scores(refs, ests, 44100, 44100)
    assert ours.sdr.shape == (4, 12)
    assert torch.isnan(ours.sdr[:, 1]).all() and torch.isnan(ours.sdr[:, 5]).all()
    assert_close_to_museval(ours, reference)


def test_images_match_museval_with_overlapping_frames_and_three_channels() -> None:
    refs, ests = music_like(n_src=3, n_chan=3, seconds=1.3, rate=8000, seed=1)
    ests = ests.astype(np.float32)  # float32 inputs are upcast; museval gets the same values in float64
    ours = bss_eval(refs, ests, window=3000, hop=1700, filters_len=128)
    assert_close_to_museval(ours, museval_scores(refs, ests.astype(np.float64), 3000, 1700, filters_len=128))


def test_sources_mode_matches_museval_on_whole_mono_signals() -> None:
    refs, ests = music_like(n_src=2, n_chan=1, seconds=2.0, rate=8000, seed=2)
    ours = bss_eval(refs, ests, window=None, hop=None, images=False)
    assert ours.sdr.shape == (2, 1)
    assert torch.isnan(ours.isr).all()
    reference = museval_scores(refs, ests, None, None, images=False)
    reference["isr"] = np.full((2, 1), np.nan)
    assert_close_to_museval(ours, reference, tolerance=1e-6)


def test_one_source_has_no_interference() -> None:
    refs, ests = music_like(n_src=1, n_chan=2, seconds=0.5, rate=8000, seed=3)
    ours = bss_eval(refs, ests, window=1000, hop=1000)
    assert torch.isinf(ours.sir).all()
    assert_close_to_museval(ours, museval_scores(refs, ests, 1000, 1000))


def test_estimate_sets_share_the_references_work() -> None:
    refs, ests = music_like(n_src=2, n_chan=2, seconds=0.6, rate=8000, seed=4)
    other = ests[::-1].copy() + 0.01
    together = bss_eval(refs, np.stack([ests, other]), window=1500, hop=1500)
    for index, estimates in enumerate((ests, other)):
        alone = bss_eval(refs, estimates, window=1500, hop=1500)
        for name in METRICS:
            torch.testing.assert_close(getattr(together, name)[index], getattr(alone, name), equal_nan=True)


def test_results_do_not_depend_on_the_frame_batch() -> None:
    refs, ests = music_like(n_src=2, n_chan=2, seconds=0.9, rate=8000, seed=5)
    one = bss_eval(refs, ests, window=1000, hop=1000, frames_per_batch=1)
    many = bss_eval(refs, ests, window=1000, hop=1000, frames_per_batch=5)
    for name in METRICS:
        torch.testing.assert_close(getattr(one, name), getattr(many, name), equal_nan=True)


@pytest.mark.parametrize(("n_src", "n_chan", "n_sets"), [(2, 2, 1), (3, 2, 2), (1, 3, 1)])
def test_block_toeplitz_filters_equal_the_dense_gram_solve(n_src: int, n_chan: int, n_sets: int) -> None:
    refs, ests = music_like(n_src=n_src, n_chan=n_chan, seconds=1.0, rate=8000, seed=10 + n_src)
    references = torch.as_tensor(refs)
    estimate_sets = torch.as_tensor(np.stack([ests, 0.5 * ests[::-1] + 0.01][:n_sets]))
    basis = n_src * n_chan
    corr = projection.lagged_correlations(
        references.reshape(basis, -1),
        [references.reshape(basis, -1), estimate_sets.reshape(-1, refs.shape[-1])],
        95,
    )
    fast = projection.toeplitz_filters(corr, n_src, n_chan)
    assert fast is not None  # well-posed: the structured solve is accepted
    dense = projection.dense_filters(corr, n_src, n_chan, 96)
    assert fast.shape == dense.shape == (basis, 96, 2 * n_sets * basis)
    torch.testing.assert_close(fast, dense, rtol=0, atol=1e-9 * float(dense.abs().max()))


def test_an_inaccurate_structured_solve_falls_back_to_the_dense_one(monkeypatch: pytest.MonkeyPatch) -> None:
    refs, ests = music_like(n_src=2, n_chan=2, seconds=0.8, rate=8000, seed=12)
    fast = bss_eval(refs, ests, window=2000, hop=2000, filters_len=64)
    dense_calls = []
    dense_filters = projection.dense_filters
    monkeypatch.setattr(projection, "LEVINSON_TOLERANCE", 0.0)
    monkeypatch.setattr(
        projection, "dense_filters", lambda *args: dense_calls.append(1) or dense_filters(*args)
    )
    dense = bss_eval(refs, ests, window=2000, hop=2000, filters_len=64)
    assert dense_calls == [1]
    for name in METRICS:
        torch.testing.assert_close(
            getattr(fast, name), getattr(dense, name), atol=1e-9, rtol=0, equal_nan=True
        )


def test_a_perfect_estimate_has_infinite_sdr() -> None:
    refs, _ = music_like(n_src=2, n_chan=2, seconds=0.5, rate=8000, seed=6)
    scores = bss_eval(refs, refs.copy(), window=2000, hop=2000)
    assert torch.isinf(scores.sdr).all() and (scores.sdr > 0).all()
    assert (scores.isr > 60).all() and (scores.sar > 60).all()


@pytest.mark.parametrize(
    ("length", "window", "hop"), [(10, 4, 4), (44100 * 3 + 17, 44100, 44100), (9, 9, 9), (5, 8, 8)]
)
def test_frame_count_is_museval_framing(length: int, window: int, hop: int) -> None:
    assert frame_count(length, window, hop) == museval_metrics.Framing(window, hop, length).nwin


def test_silent_sources_and_bad_shapes_are_user_errors() -> None:
    refs, ests = music_like(n_src=2, n_chan=2, seconds=0.3, rate=8000, seed=7)
    silent = ests.copy()
    silent[1] = 0.0
    with pytest.raises(SeparateError, match="estimate source 1 is silent"):
        bss_eval(refs, silent)
    with pytest.raises(SeparateError, match="same shape"):
        bss_eval(refs, ests[:, :, :-1])
    with pytest.raises(SeparateError, match="unknown BSSEval backend"):
        bss_eval(refs, ests, backend="nope")


def test_museval_backend_is_selectable() -> None:
    refs, ests = music_like(n_src=2, n_chan=1, seconds=0.4, rate=8000, seed=8)
    ours = bss_eval(refs, ests, window=1000, hop=1000)
    theirs = bss_eval(refs, ests, window=1000, hop=1000, backend="museval")
    for name in METRICS:
        torch.testing.assert_close(
            getattr(ours, name), getattr(theirs, name), atol=1e-6, rtol=0, equal_nan=True
        )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    refs, ests = music_like(n_src=4, n_chan=2, seconds=3.0, seed=9)
    cpu = bss_eval(refs, ests)
    gpu = bss_eval(refs, ests, device="cuda")
    for name in METRICS:
        torch.testing.assert_close(getattr(cpu, name), getattr(gpu, name), atol=1e-6, rtol=0, equal_nan=True)
