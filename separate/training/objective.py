"""What one batch costs: the model and its loss as one module, and the validation metric.

:class:`Objective` holds the separator and the loss module together so that DDP synchronises both
(AttentionPIT's encoder g_phi is trained with the model) and one optimizer sees all parameters.
Audio channels are folded into the batch before the loss (``[B, S, C, T] -> [B*C, S, T]``).
Items of different lengths (``segment = None``) are scored one by one on their own samples.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import Tensor, nn

from separate.losses import SeparationLoss, best_permutation, reorder, si_snr


def fold_channels(signals: Tensor) -> Tensor:
    """``[B, S, C, T] -> [B*C, S, T]``."""
    batch, n_src, channels, length = signals.shape
    return signals.transpose(1, 2).reshape(batch * channels, n_src, length)


def center_window(signals: Tensor, window: int) -> Tensor:
    """The central ``window`` samples of the last axis (all of it when ``window`` is 0 or too long)."""
    length = signals.shape[-1]
    if window <= 0 or window >= length:
        return signals
    start = (length - window) // 2
    return signals[..., start : start + window]


def per_item(lengths: Tensor, *signals: Tensor) -> list[tuple[Tensor, ...]]:
    """The items of a zero-padded batch, each cut to its own length: for item ``i``, the tuple of
    ``x[i : i + 1, ..., : lengths[i]]`` over ``signals`` (every one ``[B, ..., T]``)."""
    return [tuple(x[i : i + 1, ..., :n] for x in signals) for i, n in enumerate(lengths.tolist())]


def _mean_metrics(all_metrics: list[dict[str, float]]) -> dict[str, float]:
    keys = set().union(*all_metrics) if all_metrics else set()
    return {key: sum(m.get(key, 0.0) for m in all_metrics) / len(all_metrics) for key in sorted(keys)}


class Objective(nn.Module):
    """Separator + loss. ``forward(mix, sources, lengths) -> (loss, metrics)``.

    Args:
        model: maps ``mix: [B, C, T]`` to ``[B, S, C, T]``.
        loss: a :class:`separate.losses.SeparationLoss` over ``[N, S, T]``.
        autocast_dtype: float16/bfloat16 runs the model under ``torch.autocast`` (CUDA only); None
            runs it in float32. The loss is always computed in float32.
        loss_window: score only the central samples of each example (Wave-U-Net's context: the
            model sees the whole input, the loss its middle); 0 scores everything.
    """

    def __init__(
        self,
        model: nn.Module,
        loss: SeparationLoss,
        autocast_dtype: torch.dtype | None = None,
        loss_window: int = 0,
    ) -> None:
        super().__init__()
        self.model = model
        self.loss = loss
        self.autocast_dtype = autocast_dtype
        self.loss_window = loss_window

    def separate(self, mix: Tensor) -> Tensor:
        """``mix: [B, C, T] -> est: [B, S, C, T]`` in float32."""
        context = (
            torch.autocast(device_type=mix.device.type, dtype=self.autocast_dtype)
            if self.autocast_dtype is not None
            else contextlib.nullcontext()
        )
        with context:
            est = self.model(mix)
        return est.float()

    def score(self, est: Tensor, sources: Tensor, lengths: Tensor) -> tuple[Tensor, dict[str, float]]:
        """Loss of ``est: [B, S, C, T]`` against ``sources`` (same shape); item b is ``lengths[b]`` long."""
        channels = est.shape[2]
        est_f = center_window(fold_channels(est), self.loss_window)
        tgt_f = center_window(fold_channels(sources), self.loss_window)
        lengths = lengths.repeat_interleave(channels) if channels > 1 else lengths
        if self.loss_window or bool((lengths >= est_f.shape[-1]).all()):
            result = self.loss(est_f, tgt_f)
            return result.loss, dict(result.metrics)
        results = [self.loss(e, t) for e, t in per_item(lengths, est_f, tgt_f)]
        return torch.stack([r.loss for r in results]).mean(), _mean_metrics([r.metrics for r in results])

    def forward(self, mix: Tensor, sources: Tensor, lengths: Tensor) -> tuple[Tensor, dict[str, Any]]:
        """``mix: [B, C, T]``, ``sources: [B, S, C, T]``, ``lengths: [B]`` -> (scalar loss, metrics)."""
        return self.score(self.separate(mix), sources, lengths)


@torch.no_grad()
def si_snr_improvement(
    est: Tensor, sources: Tensor, mix: Tensor, lengths: Tensor, permute: bool, window: int = 0
) -> Tensor:
    """SI-SNRi per (channel-folded) item, averaged over sources: ``[B*C]`` dB.

    ``est, sources: [B, S, C, T]``, ``mix: [B, C, T]``. With ``permute`` the estimates are first
    reordered by the Hungarian assignment on -SI-SNR (speakers); music stems keep their order.
    """
    channels = est.shape[2]
    est_f = center_window(fold_channels(est), window)
    tgt_f = center_window(fold_channels(sources), window)
    mix_f = center_window(mix.reshape(-1, 1, mix.shape[-1]), window)
    lengths = lengths.repeat_interleave(channels) if channels > 1 else lengths
    if window or bool((lengths >= est_f.shape[-1]).all()):
        groups = [(est_f, tgt_f, mix_f)]
    else:
        groups = per_item(lengths, est_f, tgt_f, mix_f)
    improvements = []
    for e, t, m in groups:
        if permute:
            e = reorder(e, best_permutation(e, t))
        improvements.append((si_snr(e, t) - si_snr(m.expand_as(t), t)).mean(1))
    return torch.cat(improvements)
