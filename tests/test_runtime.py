"""Devices, torchrun ranks, atomic writes and seed mixing (separate.runtime)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from separate.errors import SeparateError
from separate.runtime import atomic_write, atomic_write_text, mix_seed, rank_and_world, select_device


def test_device_selection_on_cpu_machine() -> None:
    assert select_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        assert select_device("auto").type == "cpu"
        with pytest.raises(SeparateError, match="CUDA is not available"):
            select_device("cuda:0")


def test_rank_and_world_from_the_torchrun_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    assert rank_and_world() == (0, 1)
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    assert rank_and_world() == (3, 4)
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(SeparateError, match="outside WORLD_SIZE"):
        rank_and_world()


def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "result.json"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_write(target) as partial:
        partial.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert sorted(p.name for p in target.parent.iterdir()) == ["result.json"]


def test_mix_seed_gives_the_seeds_runs_in_flight_were_started_with() -> None:
    # The values of the three helpers it replaces (training seeds, dataset crops, synthetic splits),
    # so that a run resumed after the reorganisation draws the same random streams.
    assert mix_seed(0, 0) == 6375474604893067239
    assert mix_seed(3, 1, 2) == 3479375443970694476
    assert mix_seed(7, 2, 1) == 2276887994119216821
    assert mix_seed(0, 1, bits=32) == 3964924996
    assert mix_seed(42, 2, bits=32) == 955475868
    assert mix_seed(-1, 5) == mix_seed(0xFFFFFFFF, 5)
