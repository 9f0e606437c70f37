"""``separate eval speech --oracle irm|ibm`` scores the oracle masks through the report path;
``--no-sdr`` leaves the SDR metrics out instead of printing NaN."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from separate.cli import main
from separate.data import make_dataset, write_synthetic_corpus
from separate.evaluation.oracle import oracle_estimates
from separate.measures import si_snr


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A WSJ0-2mix layout of generated speech-like mixtures (3 test utterances of 1-1.5 s)."""
    return write_synthetic_corpus(tmp_path_factory.mktemp("wsj0-2mix"), "wsj0mix", n_items=12, seed=4)


def _eval(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = main(["eval", "speech", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _direct_si_snri(root: Path, kind: str) -> dict[str, float]:
    """Mean SI-SNRi per utterance of the oracle estimates, computed here with the project's measure."""
    dataset = make_dataset("wsj0mix", root, "tt", segment=None, random_crops=False)
    scores = {}
    for index in range(len(dataset)):
        mix, sources = dataset[index]
        estimates = oracle_estimates(mix, sources, dataset.sample_rate, kind)
        flat = sources.reshape(len(sources), -1).double()
        improvement = si_snr(estimates.reshape(len(sources), -1).double(), flat) - si_snr(
            mix.reshape(1, -1).double().expand_as(flat), flat
        )
        scores[dataset.item_name(index)] = float(improvement.mean())
    return scores


@pytest.mark.parametrize("kind", ["irm", "ibm"])
def test_oracle_scores_equal_a_direct_computation(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture, kind: str
) -> None:
    out = tmp_path / kind
    args = ("--root", str(corpus), "--layout", "wsj0mix", "--oracle", kind, "--out", str(out), "--json")
    code, stdout, stderr = _eval(capsys, *args)
    assert code == 0, stderr
    with open(out / "utterances.csv", newline="") as handle:
        rows = {row["utterance"]: row for row in csv.DictReader(handle)}
    direct = _direct_si_snri(corpus, kind)
    assert sorted(rows) == sorted(direct) and len(rows) == 3
    for name, value in direct.items():
        assert float(rows[name]["si_snri"]) == pytest.approx(value, abs=1e-6)
        assert rows[name]["assignment"] == "0 1"
    summary = json.loads(stdout)["summary"]
    assert summary["si_snri"]["mean"] == pytest.approx(sum(direct.values()) / 3, abs=1e-6)
    assert summary["si_snri"]["mean"] > 8.0 and summary["sdri"]["mean"] > 8.0
    assert json.loads((out / "summary.json").read_text())["summary"]["si_snri"] == pytest.approx(
        summary["si_snri"]
    )


def test_no_sdr_prints_no_nan_and_oracle_excludes_models(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    base = ("--root", str(corpus), "--layout", "wsj0mix", "--oracle", "irm", "--no-sdr")
    code, table, _ = _eval(capsys, *base, "--out", str(tmp_path / "scores"))
    assert code == 0 and "oracle ideal ratio mask, 3 utterances" in table
    assert "si_snri" in table and "sdr" not in table and "nan" not in table.lower()
    with open(tmp_path / "scores" / "utterances.csv", newline="") as handle:
        header = next(csv.reader(handle))
    assert header == ["utterance", "si_snr", "si_snri", "input_si_snr", "assignment"]
    code, stdout, _ = _eval(capsys, *base, "--json")
    assert code == 0 and "NaN" not in stdout
    assert sorted(json.loads(stdout)["summary"]) == ["si_snr", "si_snri"]

    code, _, stderr = _eval(capsys, *base, "--estimates", str(tmp_path))
    assert code == 1 and stderr.count("\n") == 1
    assert "give exactly one of --model, --estimates and --oracle (got --estimates and --oracle)" in stderr
    code, _, stderr = _eval(capsys, "--root", str(corpus), "--layout", "wsj0mix", "--oracle", "wiener")
    assert code == 1 and "unknown oracle 'wiener' (known: irm, ibm)" in stderr


def test_oracle_masks_handle_short_and_multichannel_signals() -> None:
    sources = torch.randn(3, 2, 40)
    for kind in ("irm", "ibm"):
        estimates = oracle_estimates(sources.sum(0), sources, 8000, kind)
        assert estimates.shape == sources.shape
        assert torch.allclose(estimates.sum(0), sources.sum(0), atol=1e-5)


def test_scores_per_speaker_pair_when_the_names_code_the_speakers(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Mixtures named as examples/corpora/speech.py names them: the report gives SI-SNRi per speaker
    pair (the mean of that pair's utterances) and the spread of those means."""
    import shutil

    names = ["0000_ann_bob", "0001_bob_ann", "0002_ann_cy"]
    root = tmp_path / "named"
    for folder in ("mix", "s1", "s2"):
        files = sorted((corpus / "tt" / folder).glob("*.wav"))
        (root / "tt" / folder).mkdir(parents=True)
        for file, name in zip(files, names, strict=True):
            shutil.copy(file, root / "tt" / folder / f"{name}.wav")
    assert make_dataset("wsj0mix", root, "tt", segment=None).items[2].speakers == ("ann", "cy")
    out = tmp_path / "scores"
    args = ("--root", str(root), "--layout", "wsj0mix", "--oracle", "irm", "--out", str(out), "--json")
    code, stdout, stderr = _eval(capsys, *args)
    assert code == 0, stderr
    with open(out / "utterances.csv", newline="") as handle:
        scores = {row["utterance"]: float(row["si_snri"]) for row in csv.DictReader(handle)}
    pairs = json.loads(stdout)["speaker_pairs"]
    expected = {
        "ann+bob": (scores["0000_ann_bob"] + scores["0001_bob_ann"]) / 2,
        "ann+cy": scores["0002_ann_cy"],
    }
    assert {group: value["count"] for group, value in pairs["groups"].items()} == {"ann+bob": 2, "ann+cy": 1}
    for group, mean in expected.items():
        assert pairs["groups"][group]["mean"] == pytest.approx(mean, abs=1e-9)
    assert {pairs["lowest"]["group"], pairs["highest"]["group"]} == set(expected)
    assert pairs["lowest"]["mean"] == pytest.approx(min(expected.values()), abs=1e-9)

    code, stdout, _ = _eval(capsys, "--root", str(root), "--layout", "wsj0mix", "--oracle", "irm")
    assert code == 0 and "per speaker pair (2 pairs): si_snri means from" in stdout
    code, stdout, _ = _eval(capsys, "--root", str(corpus), "--layout", "wsj0mix", "--oracle", "irm", "--json")
    assert code == 0 and "speaker_pairs" not in json.loads(stdout)  # names that code no speakers
