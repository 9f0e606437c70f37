"""Training through the refinement: score the stems that ``separate audio --refine`` would make.

At inference a music model's stems, and a speech model's speakers, are first made to add up to the
mixture (:func:`separate.consistency.mixture_consistency`), then re-estimated from the mixture's
spectrogram (:mod:`separate.refinement`). A model trained on its raw stems never sees that step, so it
learns waveforms where the refinement only uses their magnitudes to share out each bin. With
``[loss] refine = { n_fft = 16384, power = 1.5 }`` a fixed-order or PIT loss scores the stems after
the same two steps: the mixture is the sum of the targets (a complete stem set, or every speaker),
the masks are ratio masks ``|E_j|^p / sum_k |E_k|^p`` of an ``n_fft``-sample STFT with a
quarter-window hop, per channel (for a mono example, the multichannel Wiener filter with stem powers
``|E_j|^p`` is exactly these masks; 8 kHz speech runs with ``n_fft = 2048, power = 1``).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from separate.consistency import mixture_consistency
from separate.errors import SeparateError
from separate.refinement import ratio_mask_refinement

REFINE_KEYS = ("n_fft", "power")


def refine_options(options: Any) -> tuple[int, float] | None:
    """``[loss] refine`` -> ``(n_fft, power)``, or None when absent; one clear error otherwise."""
    if options is None:
        return None
    usage = "loss refine must be a table { n_fft = <power of two, at least 16>, power = <positive number> }"
    if not isinstance(options, dict) or set(options) != set(REFINE_KEYS):
        raise SeparateError(f"{usage}, got {options!r}")
    n_fft, power = options["n_fft"], options["power"]
    whole = isinstance(n_fft, int) and not isinstance(n_fft, bool)
    good_fft = whole and n_fft >= 16 and n_fft & (n_fft - 1) == 0
    good_power = isinstance(power, int | float) and not isinstance(power, bool) and power > 0
    if not (good_fft and good_power):
        raise SeparateError(f"{usage}, got {options!r}")
    return n_fft, float(power)


def refined_estimates(est: Tensor, tgt: Tensor, refine: tuple[int, float] | None) -> Tensor:
    """``est, tgt: [B, J, T]`` or ``[B, J, C, T]`` -> ``est``'s shape: the stems made consistent with
    the mixture ``sum_j tgt_j`` (the residual shared equally), then re-estimated from it by ratio
    masks of ``refine = (n_fft, power)`` (:func:`refine_options`); ``est`` itself when ``refine`` is
    None. Differentiable; items shorter than half a window pass through consistent but unmasked."""
    if refine is None:
        return est
    n_fft, power = refine
    stems = est if est.dim() == 4 else est.unsqueeze(2)  # [B, J, C, T]
    mix = (tgt if tgt.dim() == 4 else tgt.unsqueeze(2)).sum(1).to(stems.dtype)  # [B, C, T]
    consistent = mixture_consistency(stems, mix)
    return ratio_mask_refinement(consistent, mix, n_fft, power).reshape(est.shape)
