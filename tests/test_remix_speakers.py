"""Speech remixing (Remix with any_slot=True) never pairs a speaker with itself where the corpus codes
its speakers in the file names (WSJ0-mix, WHAM!, LibriMix)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from separate.data import Remix, WsjMixDataset
from separate.data.librimix import librimix_speakers
from separate.data.wsjmix import wsj0_speakers
from separate.errors import SeparateError

#: Mixtures of three speakers (401, 402, 403), each pair twice with other utterances.
PAIRS = [("401", "402"), ("402", "403"), ("401", "403"), ("402", "401"), ("403", "402"), ("403", "401")]


def _write_wsj0mix(root: Path, coded_names: bool) -> None:
    """``root/tr/{mix,s1,s2}``; every file of speaker ``4ab`` is the constant ``ab / 100``."""
    for index, speakers in enumerate(PAIRS):
        utterances = [f"{speaker}c02{index:02d}" for speaker in speakers]  # WSJ0 ids: 8 characters
        name = f"{utterances[0]}_1.2_{utterances[1]}_-1.2" if coded_names else f"mixture{index}"
        parts = [np.full(800, int(speaker[1:]) / 100, dtype=np.float32) for speaker in speakers]
        for folder, audio in (("s1", parts[0]), ("s2", parts[1]), ("mix", parts[0] + parts[1])):
            (root / "tr" / folder).mkdir(parents=True, exist_ok=True)
            sf.write(root / "tr" / folder / f"{name}.wav", audio, 8000, subtype="FLOAT")


def _drawn_speakers(dataset: WsjMixDataset, draws: int) -> list[list[int]]:
    own = torch.zeros(2, 1, 400)
    remix = Remix(dataset, any_slot=True)
    drawn = []
    for seed in range(draws):
        components = remix(own, torch.Generator().manual_seed(seed))
        drawn.append(torch.round(components[:, 0, 0] * 100).int().tolist())
    return drawn


def test_speaker_ids_come_from_wsj0mix_and_librimix_names() -> None:
    assert wsj0_speakers("01aa010k_1.0127_20ga010m_-1.0127") == ("01a", "20g")
    assert wsj0_speakers("40na010x_0.3_01zo030l_-0.3_22ha010b_0") == ("40n", "01z", "22h")
    for other in ("syn3-000001", "0001_voiceA_voiceB", "6330311066473698535_00011_0.53_63393_00010_-0.53"):
        assert wsj0_speakers(other) is None
    assert librimix_speakers("1089-134686-0000_121-121726-0000") == ("1089", "121")
    assert librimix_speakers("syn2-000003") is None and librimix_speakers("a-b-c_d-e-f") is None


def test_speech_remixing_draws_distinct_speakers(tmp_path: Path) -> None:
    _write_wsj0mix(tmp_path / "coded", coded_names=True)
    coded = WsjMixDataset(tmp_path / "coded", "tr", segment=0.05)
    assert coded.knows_speakers
    drawn = _drawn_speakers(coded, 60)
    assert all(first != second for first, second in drawn), drawn
    assert {speaker for pair in drawn for speaker in pair} == {1, 2, 3}
    assert _drawn_speakers(coded, 5) == drawn[:5]  # still a function of the generator

    # The same audio under names that code nothing: items differ, speakers sometimes do not.
    _write_wsj0mix(tmp_path / "plain", coded_names=False)
    plain = WsjMixDataset(tmp_path / "plain", "tr", segment=0.05)
    assert not plain.knows_speakers
    assert any(first == second for first, second in _drawn_speakers(plain, 60))

    with pytest.raises(SeparateError, match="cannot draw 4 distinct speakers"):
        coded.random_components([0, 1, 0, 1], 400, torch.Generator().manual_seed(0))
