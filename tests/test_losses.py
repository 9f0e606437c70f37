"""Losses: SI-SNR, pairwise matrices, PIT solvers, SinkPIT, AttentionPIT and the training interface."""

from __future__ import annotations

import math

import pytest
import torch

from separate.bench.complexity import count_parameters
from separate.bench.losses import benchmark_pit_losses, format_table
from separate.consistency import mixture_consistency
from separate.errors import SeparateError
from separate.losses import (
    LOSS_NAMES,
    best_permutation,
    build_loss,
    mse,
    neg_si_snr,
    pairwise,
    reorder,
    si_snr,
    snr,
)
from separate.losses.attentionpit import (
    AttentionEncoder,
    AttentionPIT,
    attention_matrix,
    attention_reconstruct,
    hoyer_penalty,
    lambda_schedule,
    orthogonality_penalty,
)
from separate.losses.pit import exhaustive_pit, hungarian_pit, permutations
from separate.losses.sinkpit import beta_schedule, sinkpit
from separate.refinement import refine_with_ratio_masks, refinement_fft_size


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _permuted_mixture(batch: int, n_src: int, length: int, noise: float, seed: int = 0):
    """Targets, estimates = targets shuffled per item + noise, and the shuffle (estimate index per target)."""
    gen = _generator(seed)
    tgt = torch.randn(batch, n_src, length, generator=gen)
    shuffle = torch.stack([torch.randperm(n_src, generator=gen) for _ in range(batch)])
    est = torch.empty_like(tgt)
    est.scatter_(1, shuffle.unsqueeze(-1).expand(-1, -1, length), tgt)
    est = est + noise * torch.randn(batch, n_src, length, generator=gen)
    return est, tgt, shuffle


# --- SI-SNR / SNR / MSE ---------------------------------------------------------------------------


def test_si_snr_is_invariant_to_scale_and_offset():
    gen = _generator()
    tgt = torch.randn(3, 4, 500, generator=gen)
    est = tgt + 0.3 * torch.randn(3, 4, 500, generator=gen)
    reference = si_snr(est, tgt)
    changes = [(7.0 * est, tgt), (0.01 * est, tgt), (est, 3.0 * tgt), (est + 2.0, tgt - 1.0)]
    for changed_est, changed_tgt in changes:
        torch.testing.assert_close(si_snr(changed_est, changed_tgt), reference, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(snr(3.0 * est, tgt), snr(est, tgt))


def test_known_values_of_si_snr_snr_and_mse():
    gen = _generator(1)
    tgt = torch.randn(2000, generator=gen, dtype=torch.float64)
    tgt = tgt - tgt.mean()
    noise = torch.randn(2000, generator=gen, dtype=torch.float64)
    noise = noise - noise.mean()
    noise = noise - (noise @ tgt) / (tgt @ tgt) * tgt
    noise = noise * (tgt.norm() / noise.norm()) / 10  # 20 dB below the target
    assert si_snr(0.5 * (tgt + noise), tgt).item() == pytest.approx(20.0, abs=1e-6)
    assert snr(tgt + noise, tgt).item() == pytest.approx(20.0, abs=1e-6)
    assert mse(tgt + noise, tgt).item() == pytest.approx(noise.pow(2).mean().item())
    assert neg_si_snr(tgt + noise, tgt).item() == pytest.approx(-20.0, abs=1e-6)


@pytest.mark.parametrize("loss", ["sisnr", "snr", "mse", lambda e, t: (e - t).abs().mean(-1)])
def test_pairwise_equals_the_double_loop(loss):
    gen = _generator(2)
    tgt = torch.randn(2, 4, 300, generator=gen)
    est = 0.5 * tgt.flip(1) + torch.randn(2, 4, 300, generator=gen)
    matrix = pairwise(loss, est, tgt)
    single = {"sisnr": neg_si_snr, "snr": lambda e, t: -snr(e, t), "mse": mse}.get(loss, loss)
    loop = torch.tensor(
        [[[float(single(est[b, i], tgt[b, j])) for j in range(4)] for i in range(4)] for b in range(2)]
    )
    assert matrix.shape == (2, 4, 4)
    torch.testing.assert_close(matrix, loop, rtol=1e-4, atol=1e-4)


def test_pairwise_stays_accurate_at_high_snr():
    est, tgt, _ = _permuted_mixture(2, 3, 4000, noise=0.0)
    est = tgt + 1e-4 * torch.randn(tgt.shape, generator=_generator(3))
    diagonal = pairwise("sisnr", est, tgt).diagonal(dim1=1, dim2=2)
    exact = neg_si_snr(est.double(), tgt.double())
    assert exact.max() < -75
    torch.testing.assert_close(diagonal.double(), exact, rtol=0, atol=0.01)


# --- PIT ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_src", [2, 3, 4, 5, 6])
def test_hungarian_equals_exhaustive(n_src):
    gen = _generator(n_src)
    est = torch.randn(16, n_src, 200, generator=gen)
    tgt = torch.randn(16, n_src, 200, generator=gen)
    matrix = pairwise("sisnr", est, tgt)
    loss_exhaustive, perm_exhaustive = exhaustive_pit(matrix)
    loss_hungarian, perm_hungarian = hungarian_pit(matrix)
    torch.testing.assert_close(loss_hungarian, loss_exhaustive)
    assert torch.equal(perm_hungarian, perm_exhaustive)
    assert permutations(n_src).shape == (math.factorial(n_src), n_src)


@pytest.mark.parametrize("name", ["pit", "hungarian"])
def test_pit_recovers_the_shuffle(name):
    est, tgt, shuffle = _permuted_mixture(4, 4, 400, noise=0.1)
    result = build_loss(name, 4)(est, tgt)
    assert torch.equal(result.perm, shuffle)
    assert torch.equal(best_permutation(est, tgt), shuffle)
    torch.testing.assert_close(reorder(est, result.perm), tgt, atol=0.5, rtol=0)
    assert result.loss.item() < -15


def test_hungarian_gradient_flows_through_chosen_entries_only():
    gen = _generator(4)
    matrix = torch.randn(3, 5, 5, generator=gen, requires_grad=True)
    loss, perm = hungarian_pit(matrix)
    loss.mean().backward()
    chosen = torch.zeros(3, 5, 5)
    chosen.scatter_(1, perm.unsqueeze(1), 1.0)
    torch.testing.assert_close(matrix.grad, chosen / (3 * 5))


def test_exhaustive_pit_refuses_too_many_sources():
    with pytest.raises(SeparateError):
        exhaustive_pit(torch.zeros(1, 9, 9))


# --- SinkPIT --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("beta", "n_iter"), [(0.5, 200), (1.0, 200), (10.0, 2000)])
def test_sinkpit_is_at_most_pit_at_convergence(beta, n_iter):
    est, tgt, _ = _permuted_mixture(8, 4, 300, noise=1.0, seed=5)
    matrix = pairwise("sisnr", est, tgt).double()
    sink, perm = sinkpit(matrix, beta=beta, n_iter=n_iter)
    pit, pit_perm = hungarian_pit(matrix)
    assert torch.all(sink <= pit + 1e-9)
    assert torch.equal(perm, pit_perm)


def test_sinkpit_tends_to_pit_as_beta_grows():
    est, tgt, _ = _permuted_mixture(8, 5, 300, noise=1.0, seed=6)
    matrix = pairwise("sisnr", est, tgt)
    sink, _ = sinkpit(matrix, beta=100.0, n_iter=2000)
    pit, _ = hungarian_pit(matrix)
    torch.testing.assert_close(sink, pit, rtol=1e-3, atol=0)


def test_beta_schedule_and_sinkpit_module():
    assert beta_schedule(0) == 1.0
    assert beta_schedule(20) == pytest.approx(1.02**20)
    assert beta_schedule(200) == 10.0
    loss_module = build_loss("sinkpit", 3)
    loss_module.set_epoch(20)
    assert loss_module.beta == pytest.approx(1.4859, abs=1e-4)
    assert build_loss("sinkpit", 3, beta=4.0).beta == 4.0
    with pytest.raises(SeparateError):
        build_loss("sinkpit", 3, n_iter=7)


# --- AttentionPIT ---------------------------------------------------------------------------------


def test_attention_columns_sum_to_one():
    gen = _generator(7)
    est, tgt = torch.randn(2, 2, 3, 100, generator=gen)
    encoder = AttentionEncoder(3)
    attention = attention_matrix(encoder(est), encoder(tgt))
    assert attention.shape == (2, 3, 3)
    torch.testing.assert_close(attention.sum(dim=1), torch.ones(2, 3))
    assert not torch.allclose(attention.sum(dim=2), torch.ones(2, 3))
    output = AttentionPIT(3)(est, tgt)
    torch.testing.assert_close(output.attention.sum(dim=1), torch.ones(2, 3))


def test_reconstruction_with_a_permutation_attention_reorders_estimates():
    est, tgt, shuffle = _permuted_mixture(2, 4, 50, noise=0.0)
    attention = torch.zeros(2, 4, 4).scatter_(1, shuffle.unsqueeze(1), 1.0)
    torch.testing.assert_close(attention_reconstruct(attention, est), tgt)


def test_regularisers_vanish_on_their_targets():
    permutation = torch.eye(4)[[2, 0, 3, 1]].unsqueeze(0)
    assert orthogonality_penalty(permutation).item() == 0.0
    one_hot_rows = torch.zeros(1, 4, 4)
    one_hot_rows[0, :, 1] = 1.0  # every row one non-zero, not a permutation
    assert hoyer_penalty(one_hot_rows).item() == pytest.approx(0.0, abs=1e-6)
    assert orthogonality_penalty(one_hot_rows).item() > 0.5
    uniform = torch.full((1, 4, 4), 0.25)
    assert hoyer_penalty(uniform).item() == pytest.approx(1.0, abs=1e-6)
    assert orthogonality_penalty(uniform).item() == pytest.approx(0.75 * 4 / 16 + 0.25 * 12 / 16)


def test_lambda_schedule():
    assert lambda_schedule(0) == 0.0
    assert lambda_schedule(20) == pytest.approx(1.6533, abs=1e-4)
    assert lambda_schedule(80) == pytest.approx(48.561, abs=1e-3)
    assert lambda_schedule(81) == 50.0
    loss_module = build_loss("attentionpit", 2)
    loss_module.set_epoch(20)
    assert loss_module.lam == pytest.approx(1.6533, abs=1e-4)
    assert build_loss("attentionpit", 2, lam=3.0).lam == 3.0


@pytest.mark.parametrize(("n_src", "expected"), [(2, 136), (5, 820), (10, 3240), (15, 7260), (20, 12880)])
def test_encoder_parameter_count(n_src, expected):
    assert count_parameters(AttentionEncoder(n_src)) == expected == 4 * (8 * n_src**2 + n_src)
    assert count_parameters(build_loss("attentionpit", n_src)) == expected
    width = n_src
    shared = (8 * width + width) + 2 * (8 * width**2 + width) + (8 * width + 1)
    assert count_parameters(AttentionEncoder(n_src, mode="shared")) == shared


@pytest.mark.parametrize("mode", ["literal", "shared"])
@pytest.mark.parametrize("length", [1, 15, 16, 33, 160])
def test_encoder_output_length(mode, length):
    features = AttentionEncoder(3, mode=mode)(torch.randn(2, 3, length))
    assert features.shape == (2, 3, max(math.ceil(length / 16), 1))


def test_shared_encoder_is_permutation_equivariant():
    signals = torch.randn(1, 4, 64, generator=_generator(8))
    encoder = AttentionEncoder(4, mode="shared")
    order = torch.tensor([3, 1, 0, 2])
    torch.testing.assert_close(encoder(signals[:, order]), encoder(signals)[:, order])


# --- the training interface -----------------------------------------------------------------------


@pytest.mark.parametrize("name", list(LOSS_NAMES))
def test_every_loss_runs_forward_and_backward_at_20_sources(name):
    est, tgt, _ = _permuted_mixture(2, 20, 320, noise=0.5, seed=9)
    est.requires_grad_()
    loss_module = build_loss(name, 20)
    result = loss_module(est, tgt)
    result.loss.backward()
    assert result.loss.dim() == 0 and torch.isfinite(result.loss)
    assert torch.isfinite(est.grad).all() and est.grad.abs().sum() > 0
    if loss_module.permutation_invariant:
        assert torch.equal(result.perm.sort(dim=1).values, torch.arange(20).expand(2, 20))
    else:
        assert result.perm is None
    if name.startswith("att"):
        assert all(p.grad is not None for p in loss_module.parameters())


@pytest.mark.parametrize(("name", "after"), [("attn-sink", "beta"), ("attn-hun", None)])
def test_attention_switches_at_switch_epoch(name, after):
    est, tgt, _ = _permuted_mixture(2, 3, 160, noise=0.5, seed=10)
    est.requires_grad_()
    loss_module = build_loss(name, 3, switch_epoch=4)
    loss_module.set_epoch(3)
    before = loss_module(est, tgt)
    before.loss.backward()
    assert before.metrics["switched"] == 0.0 and "lambda" in before.metrics
    assert all(p.grad is not None for p in loss_module.parameters())
    loss_module.zero_grad(set_to_none=True)
    loss_module.set_epoch(4)
    switched = loss_module(est, tgt)
    switched.loss.backward()
    assert switched.metrics["switched"] == 1.0
    assert all(p.grad is None for p in loss_module.parameters())
    if after == "beta":
        assert switched.metrics["beta"] == pytest.approx(1.02**4)
    else:
        expected, perm = hungarian_pit(pairwise("sisnr", est, tgt))
        torch.testing.assert_close(switched.loss, expected.mean())
        assert torch.equal(switched.perm, perm)


@pytest.mark.parametrize("name", ["sinkpit", "attentionpit"])
def test_eval_mode_reports_the_hungarian_loss(name):
    est, tgt, _ = _permuted_mixture(2, 3, 160, noise=0.5, seed=11)
    loss_module = build_loss(name, 3).eval()
    expected, perm = hungarian_pit(pairwise("sisnr", est, tgt))
    result = loss_module(est, tgt)
    torch.testing.assert_close(result.loss, expected.mean())
    assert torch.equal(result.perm, perm)


def test_threshold_byloss_drops_items_above_30_db():
    est, tgt, _ = _permuted_mixture(2, 2, 400, noise=0.0, seed=12)
    est = tgt.clone()
    est[0] += 1e-3 * torch.randn(2, 400, generator=_generator(13))  # ~60 dB: dropped
    est[1] += 0.5 * torch.randn(2, 400, generator=_generator(14))
    per_item, _ = hungarian_pit(pairwise("snr", est, tgt))
    result = build_loss("pit", 2, signal_loss="snr", threshold_byloss=True)(est, tgt)
    torch.testing.assert_close(result.loss, per_item[1])
    assert result.metrics["kept_fraction"] == 0.5
    everything_good = build_loss("pit", 2, threshold_byloss=True)(tgt, tgt)
    assert everything_good.loss.item() < -30


def test_multichannel_estimates_share_one_permutation():
    est, tgt, shuffle = _permuted_mixture(3, 3, 2 * 200, noise=0.2, seed=15)
    est, tgt = est.view(3, 3, 2, 200), tgt.view(3, 3, 2, 200)
    result = build_loss("pit", 3)(est, tgt)
    assert torch.equal(result.perm, shuffle)
    per_channel = [pairwise("sisnr", est[:, :, c], tgt[:, :, c]) for c in range(2)]
    expected, _ = exhaustive_pit((per_channel[0] + per_channel[1]) / 2)
    torch.testing.assert_close(result.loss, expected.mean())


def test_fixed_order_losses_keep_the_order():
    est, tgt, _ = _permuted_mixture(2, 3, 200, noise=0.3, seed=16)
    torch.testing.assert_close(build_loss("sisnr", 3)(est, tgt).loss, neg_si_snr(est, tgt).mean())
    torch.testing.assert_close(build_loss("mse", 3)(est, tgt).loss, mse(est, tgt).mean())
    assert not build_loss("snr", 3).permutation_invariant


def test_fixed_order_loss_weights_sources():
    est, tgt, _ = _permuted_mixture(2, 2, 2 * 200, noise=0.3, seed=17)
    est, tgt = est.view(2, 2, 2, 200), tgt.view(2, 2, 2, 200)
    per_source = neg_si_snr(est, tgt).mean(2)  # [B, J]: channels averaged
    weighted = build_loss("sisnr", 2, weights=[1.0, 3.0])(est, tgt).loss
    torch.testing.assert_close(weighted, (0.25 * per_source[:, 0] + 0.75 * per_source[:, 1]).mean())
    torch.testing.assert_close(build_loss("sisnr", 2, weights=[2, 2])(est, tgt).loss, per_source.mean())
    for bad in ([1.0], [1.0, 0.0], [1.0, -2.0], 3.0, [True, 1.0]):
        with pytest.raises(SeparateError, match="weights"):
            build_loss("sisnr", 2, weights=bad)


def test_fixed_order_loss_can_score_the_refined_stems():
    """``refine`` scores what the engine's consistency + ratio-mask refinement make of the stems."""
    est, tgt, _ = _permuted_mixture(2, 2, 4096, noise=0.5, seed=18)
    est = est * torch.tensor([0.3, 2.0]).view(1, 2, 1)  # stems at the arbitrary scales SI-SNR allows
    mix = tgt.sum(1, keepdim=True)  # [B, 1, T]
    engine = refine_with_ratio_masks(mixture_consistency(est.unsqueeze(2), mix), mix, 4000, power=1.5)
    assert refinement_fft_size(4000) == 1024
    refined = build_loss("sisnr", 2, refine={"n_fft": 1024, "power": 1.5})
    torch.testing.assert_close(refined(est, tgt).loss, neg_si_snr(engine.squeeze(2), tgt).mean())
    assert not torch.allclose(refined(est, tgt).loss, build_loss("sisnr", 2)(est, tgt).loss)
    leaf = est.clone().requires_grad_(True)
    refined(leaf, tgt).loss.backward()
    assert leaf.grad is not None and leaf.grad.isfinite().all() and leaf.grad.abs().sum() > 0
    for bad in ({"n_fft": 1000, "power": 1.5}, {"n_fft": 1024}, {"n_fft": 1024, "power": 0}, 1024):
        with pytest.raises(SeparateError, match="loss refine"):
            build_loss("sisnr", 2, refine=bad)


def test_pit_loss_can_score_the_refined_speakers():
    """A PIT loss with ``refine`` finds the assignment over the engine's refined estimates."""
    est, tgt, shuffle = _permuted_mixture(3, 2, 4096, noise=0.4, seed=19)
    mix = tgt.sum(1, keepdim=True)  # [B, 1, T]
    engine = refine_with_ratio_masks(mixture_consistency(est.unsqueeze(2), mix), mix, 8000).squeeze(2)
    assert refinement_fft_size(8000) == 2048
    refined = build_loss("pit", 2, refine={"n_fft": 2048, "power": 1.0})
    result = refined(est, tgt)
    assert torch.equal(result.perm, shuffle)
    ordered = torch.gather(engine, 1, shuffle.unsqueeze(-1).expand_as(engine))
    torch.testing.assert_close(result.loss, neg_si_snr(ordered, tgt).mean())
    assert not torch.allclose(result.loss, build_loss("pit", 2)(est, tgt).loss)


def test_loss_state_and_config():
    attention = build_loss("attn-hun", 5, reg="hoyer", g_mode="shared")
    assert attention.config == {"name": "attn-hun", "n_src": 5, "reg": "hoyer", "g_mode": "shared"}
    assert any(key.startswith("attention.encoder.") for key in attention.state_dict())
    assert build_loss("sinkpit", 5).state_dict() == {}


def test_user_errors_are_separate_errors():
    with pytest.raises(SeparateError):
        build_loss("nope", 2)
    with pytest.raises(SeparateError):
        build_loss("hungarian", 2, solver="exhaustive")
    with pytest.raises(SeparateError):
        build_loss("pit", 2, beta=3.0)
    with pytest.raises(SeparateError):
        build_loss("attentionpit", 2, reg="l2")
    with pytest.raises(SeparateError):
        build_loss("pit", 2)(torch.zeros(1, 3, 10), torch.zeros(1, 3, 10))
    with pytest.raises(SeparateError):
        build_loss("pit", 2, signal_loss="sdr")
    with pytest.raises(SeparateError, match="once"):
        build_loss("pit", 2, signal_loss="snr", pit_loss="snr")


def test_pit_loss_is_read_as_signal_loss():
    """Recipes and saved runs from before the rename keep working; the config records the new name."""
    est, tgt, _ = _permuted_mixture(2, 2, 400, noise=0.3, seed=17)
    old = build_loss("sinkpit", 2, pit_loss="snr")
    new = build_loss("sinkpit", 2, signal_loss="snr")
    assert old.signal_loss == new.signal_loss == "snr"
    assert old.config == {"name": "sinkpit", "n_src": 2, "signal_loss": "snr"}
    torch.testing.assert_close(old(est, tgt).loss, new(est, tgt).loss)


def test_benchmark_smoke():
    rows = benchmark_pit_losses(js=(2, 9), batch=1, seconds=0.004, sample_rate=8000, repeats=1)
    assert {(row["method"], row["n_src"]) for row in rows} == {
        ("exhaustive", 2),
        ("hungarian", 2),
        ("sinkpit", 2),
        ("attentionpit", 2),
        ("hungarian", 9),
        ("sinkpit", 9),
        ("attentionpit", 9),
    }
    assert all(row["iters_per_s"] > 0 for row in rows)
    table = format_table(rows)
    assert "attentionpit" in table and table.splitlines()[-1].split()[1] == "-"
