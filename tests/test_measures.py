"""The measures shared by training, evaluation and the engine (separate.measures)."""

from __future__ import annotations

import numpy as np
import torch

from separate.measures import hungarian, pairwise_si_snr, si_snr


def test_hungarian_assigns_each_matrix_of_a_batch() -> None:
    cost = np.array([[[0.0, 1.0, 2.0], [1.0, 2.0, 0.0], [2.0, 0.0, 1.0]], [[5.0, 0.0, 5.0]] * 3])
    cost[1] = [[5.0, 0.0, 5.0], [0.0, 5.0, 5.0], [5.0, 5.0, 0.0]]
    assert hungarian(cost).tolist() == [[0, 2, 1], [1, 0, 2]]
    assert hungarian(cost[0]).tolist() == [0, 2, 1]


def test_hungarian_takes_non_finite_costs_as_large() -> None:
    cost = np.array([[np.nan, 0.0], [0.0, np.inf]])
    assert hungarian(cost).tolist() == [1, 0]


def test_pairwise_si_snr_is_si_snr_of_every_pair() -> None:
    est, tgt = torch.randn(2, 3, 400), torch.randn(2, 3, 400)
    matrix = pairwise_si_snr(est, tgt)
    direct = si_snr(est.unsqueeze(2), tgt.unsqueeze(1))
    assert matrix.dtype == torch.float32 and torch.allclose(matrix, direct, atol=1e-4)
