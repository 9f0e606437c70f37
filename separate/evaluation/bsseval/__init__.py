"""BSSEval v4 in torch: the metrics museval computes, vectorised over frames and sources.

What is computed (Vincent et al. 2006; Liutkus et al. 2018, SiSEC 2018), exactly as
``museval.metrics.bss_eval(..., compute_permutation=False, framewise_filters=False)``:

1. Distortion filters of ``filters_len`` taps are estimated once on the whole signals: each
   estimate channel is projected (least squares) onto the span of all delayed reference channels
   (``P_all``), and onto the delayed channels of its own reference only (``P_own``). The Gram
   matrix of the delayed references and the right-hand sides come from lagged cross-correlations,
   computed blockwise in the FFT domain and summed over blocks as one matrix product per frequency.
   The Gram matrix is block Toeplitz (one block per pair of taps), so a block Levinson recursion
   solves every estimate channel's system at once in O(L^2 P^3) for P reference channels instead
   of factorising the (L P)^2 matrix in O(L^3 P^3), the fixed cost that dominated short excerpts.
   Its normwise backward error is checked; where it is not at Cholesky's level (ill-posed systems,
   see below) the dense matrix is factorised instead (Cholesky, LU if that fails; museval solves
   once per source).
2. For every frame (``window`` samples every ``hop``) the frame's references are filtered with
   those filters (FFT convolution, a batch of frames and all sources at once), giving ``P_own`` and
   ``P_all`` of ``window + filters_len - 1`` samples, and the energy ratios follow:

   * images mode (BSSEval v4, SiSEC):   SDR = |s|^2 / |e - s|^2,  ISR = |s|^2 / |P_own - s|^2,
     SIR = |P_own|^2 / |P_all - P_own|^2,  SAR = |P_all|^2 / |e - P_all|^2
   * sources mode (``bss_eval_sources``): SDR = |P_own|^2 / |e - P_own|^2, no ISR, SIR and SAR as above.

   A frame where any reference or estimate is silent (its channel sum is zero throughout) is NaN
   for every source, and a zero denominator gives +inf, as in museval.

Everything runs in float64 on the device given (CPU or CUDA); inputs keep their own dtype and are
upcast chunk by chunk, so a 3-minute 4-stem track never needs float64 copies of itself.

Agreement with museval is ~1e-10 dB when the Gram matrix is reasonably conditioned, as it is for
recorded or 16-bit references (their noise floor fills every frequency band). References with exact
spectral holes at float precision (pure synthetic tones, a hard float32 low-pass) make the filters
ill-posed: ISR, SIR and SAR then depend on rounding, in museval as much as here, and differ between
any two implementations (SDR in images mode does not use the filters and is unaffected).

Modules: :mod:`.api` (``bss_eval``, checks, framing, the museval backend), :mod:`.projection` (the
distortion filters), :mod:`.framing` (per-frame projections and energy ratios), :mod:`.spectra`.
"""

from separate.evaluation.bsseval.api import BACKENDS, BSSEvalScores, bss_eval, frame_count

__all__ = ["BACKENDS", "BSSEvalScores", "bss_eval", "frame_count"]
