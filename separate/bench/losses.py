"""Speed of the permutation-invariant losses: forward + backward iterations per second.

Times the loss alone (no separator) on random ``est, tgt: [batch, J, seconds * sample_rate]``,
in the spirit of Table 1 of the AttentionPIT paper (which timed whole Conv-TasNet iterations).
From the shell: ``separate bench --losses`` (J = 2, 5, 10, 20).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import torch

from separate.bench.measure import synchronize
from separate.losses import build_loss
from separate.losses.pit import MAX_EXHAUSTIVE_SOURCES

#: Table column -> (loss name, build options).
METHODS: dict[str, tuple[str, dict[str, Any]]] = {
    "exhaustive": ("pit", {"solver": "exhaustive"}),
    "hungarian": ("hungarian", {}),
    "sinkpit": ("sinkpit", {}),
    "attentionpit": ("attentionpit", {}),
}


def time_loss(
    name: str,
    options: dict[str, Any],
    n_src: int,
    batch: int,
    length: int,
    repeats: int,
    device: torch.device,
    seed: int = 0,
) -> float:
    """Mean seconds of one forward + backward pass of loss ``name`` (after one warm-up pass)."""
    generator = torch.Generator().manual_seed(seed)
    loss_module = build_loss(name, n_src, **options).to(device)
    est = torch.randn(batch, n_src, length, generator=generator).to(device).requires_grad_()
    tgt = torch.randn(batch, n_src, length, generator=generator).to(device)

    def step() -> None:
        est.grad = None
        loss_module.zero_grad(set_to_none=True)
        loss_module(est, tgt).loss.backward()

    step()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    synchronize(device)
    return (time.perf_counter() - start) / repeats


def benchmark_pit_losses(
    js: Sequence[int] = (2, 5, 10, 20),
    batch: int = 8,
    seconds: float = 1.0,
    sample_rate: int = 8000,
    repeats: int = 5,
    device: str = "cpu",
    methods: Sequence[str] = tuple(METHODS),
) -> list[dict[str, Any]]:
    """Time each loss for each number of sources J.

    Exhaustive PIT is skipped where J exceeds ``MAX_EXHAUSTIVE_SOURCES`` (J! permutations).

    Returns:
        One dict per (method, J): ``method, n_src, batch, samples, seconds_per_iter, iters_per_s``.
    """
    torch_device = torch.device(device)
    length = max(int(round(seconds * sample_rate)), 1)
    rows: list[dict[str, Any]] = []
    for n_src in js:
        for method in methods:
            if method == "exhaustive" and n_src > MAX_EXHAUSTIVE_SOURCES:
                continue
            name, options = METHODS[method]
            per_iter = time_loss(name, options, n_src, batch, length, repeats, torch_device)
            rows.append(
                {
                    "method": method,
                    "n_src": n_src,
                    "batch": batch,
                    "samples": length,
                    "seconds_per_iter": per_iter,
                    "iters_per_s": 1.0 / per_iter,
                }
            )
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """Plain-text table: one line per J, iterations per second per method ("-" where not run)."""
    methods = [m for m in METHODS if any(row["method"] == m for row in rows)]
    by_key = {(row["n_src"], row["method"]): row["iters_per_s"] for row in rows}
    header = f"{'J':>4} " + " ".join(f"{m:>13}" for m in methods)
    lines = [header, "-" * len(header)]
    for n_src in sorted({row["n_src"] for row in rows}):
        cells = []
        for method in methods:
            value = by_key.get((n_src, method))
            cells.append(f"{'-':>13}" if value is None or math.isnan(value) else f"{value:13.1f}")
        lines.append(f"{n_src:>4} " + " ".join(cells))
    return "\n".join(lines)
