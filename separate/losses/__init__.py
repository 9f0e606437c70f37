"""Training losses behind one interface: fixed-order, PIT (exhaustive/Hungarian), SinkPIT, AttentionPIT.

    >>> loss_module = build_loss("attn-sink", n_src=5, switch_epoch=20)
    >>> loss_module.set_epoch(epoch)          # at the start of every epoch
    >>> result = loss_module(est, tgt)        # est, tgt: [B, J, T]
    >>> result.loss.backward()

A loss module may own parameters (AttentionPIT's encoder g_phi): give ``loss_module.parameters()``
to the optimizer together with the model's, and save ``loss_module.state_dict()`` with the run.
In eval mode (``loss_module.eval()``) SinkPIT and AttentionPIT report the Hungarian PIT loss of the
estimates (the paper's validation criterion) unless built with ``hungarian_validation=False``.

Kernels (functions on tensors): :mod:`.sisnr` (losses and pairwise matrices over the measures of
:mod:`separate.measures`), :mod:`.pit` (exhaustive and Hungarian PIT), :mod:`.sinkpit`,
:mod:`.attentionpit`. Loss modules: :mod:`.base` (the interface), :mod:`.modules` (the losses by name).
"""

from separate.losses.base import LOSS_THRESHOLD, LossResult, SeparationLoss
from separate.losses.modules import (
    LOSS_NAMES,
    AttentionPITLoss,
    FixedOrderLoss,
    PITLoss,
    SinkPITLoss,
    build_loss,
)
from separate.losses.pit import best_permutation, reorder
from separate.losses.sisnr import mse, neg_si_snr, neg_snr, pairwise, si_snr, snr

__all__ = [
    "LOSS_NAMES",
    "LOSS_THRESHOLD",
    "AttentionPITLoss",
    "FixedOrderLoss",
    "LossResult",
    "PITLoss",
    "SeparationLoss",
    "SinkPITLoss",
    "best_permutation",
    "build_loss",
    "mse",
    "neg_si_snr",
    "neg_snr",
    "pairwise",
    "reorder",
    "si_snr",
    "snr",
]
