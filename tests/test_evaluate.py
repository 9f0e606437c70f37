"""``separate eval musdb|speech`` on tiny corpora written here (noise stems, 16-bit wav files)."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import tiny_model
from scipy.signal import lfilter

from separate import checkpoints
from separate.cli import main
from separate.data import write_synthetic_corpus
from separate.evaluation import evaluate_musdb, evaluate_speech

museval = pytest.importorskip("museval")

STEMS = ("drums", "bass", "other", "vocals")
TRACKS = ("Artist A - Song One", "Artist B - Song Two")


def coloured_noise(rng: np.random.Generator, channels: int, length: int, pole: float) -> np.ndarray:
    """``[T, C]`` noise with a one-pole spectrum, peak near 0.3."""
    audio = lfilter([1.0], [1.0, -pole], rng.standard_normal((length, channels)), axis=0)
    return 0.3 * audio / np.abs(audio).max()


def write_musdbhq(root: Path, seconds: float = 2.5, rate: int = 44100) -> dict[str, dict[str, np.ndarray]]:
    """``root/test/<track>/{mixture,drums,bass,other,vocals}.wav``; returns the stems as written."""
    rng = np.random.default_rng(0)
    written = {}
    for track in TRACKS:
        folder = root / "test" / track
        folder.mkdir(parents=True)
        stems = {stem: coloured_noise(rng, 2, int(seconds * rate), 0.2 * k) for k, stem in enumerate(STEMS)}
        for stem, audio in {**stems, "mixture": sum(stems.values()) / 2}.items():
            sf.write(folder / f"{stem}.wav", audio, rate, subtype="PCM_16")
        written[track] = {stem: sf.read(folder / f"{stem}.wav", dtype="float32")[0] for stem in STEMS}
    return written


def write_music_estimates(base: Path, stems: dict[str, dict[str, np.ndarray]], targets: list[str]) -> None:
    """Estimates = reference + 5 % of another stem + noise, in museval's ``base/test/<track>/`` layout."""
    rng = np.random.default_rng(1)
    for track, audio in stems.items():
        audio = {**audio, "accompaniment": audio["drums"] + audio["bass"] + audio["other"]}
        folder = base / "test" / track
        folder.mkdir(parents=True)
        for k, target in enumerate(targets):
            other = audio[targets[(k + 1) % len(targets)]]
            estimate = audio[target] + 0.05 * other + 0.01 * rng.standard_normal(other.shape)
            sf.write(folder / f"{target}.wav", estimate.astype(np.float32), 44100, subtype="FLOAT")


@pytest.fixture(scope="module")
def musdb_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, np.ndarray]]]:
    root = tmp_path_factory.mktemp("musdb18hq")
    return root, write_musdbhq(root)


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["eval", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_musdb_estimates_give_museval_files_and_both_aggregations(musdb_root, tmp_path, capsys) -> None:
    root, stems = musdb_root
    write_music_estimates(tmp_path / "est", stems, list(STEMS))
    out = tmp_path / "scores"
    code, stdout, _ = run_cli(
        capsys,
        "musdb",
        "--root",
        str(root),
        "--estimates",
        str(tmp_path / "est"),
        "--out",
        str(out),
        "--json",
    )
    assert code == 0
    report = json.loads(stdout)
    assert sorted(report["tracks"]) == sorted(TRACKS)
    assert sorted(report["sisec18"]) == sorted(STEMS) and sorted(report["pooled"]) == sorted(STEMS)
    assert all(10 < report["sisec18"][stem]["SDR"] < 40 for stem in STEMS)
    assert json.loads((out / "summary.json").read_text())["sisec18"] == report["sisec18"]
    # museval reads our per-track files and aggregates them to the same SiSEC numbers.
    store = museval.EvalStore()
    store.add_eval_dir(out)
    theirs = store.agg_frames_tracks_scores()
    for stem in STEMS:
        for metric in ("SDR", "SIR", "ISR", "SAR"):
            assert theirs.loc[(stem, metric)] == pytest.approx(report["sisec18"][stem][metric], abs=1e-9)


def test_musdb_torch_backend_equals_museval_backend(musdb_root, tmp_path) -> None:
    root, stems = musdb_root
    write_music_estimates(tmp_path / "est", stems, ["vocals", "accompaniment"])
    ours = evaluate_musdb(root, estimates=tmp_path / "est", device="cpu")
    theirs = evaluate_musdb(root, estimates=tmp_path / "est", backend="museval")
    for aggregation in ("sisec18", "pooled"):
        for target in ("vocals", "accompaniment"):
            for metric, value in theirs.aggregate[aggregation][target].items():
                assert ours.aggregate[aggregation][target][metric] == pytest.approx(value, abs=0.01)


def test_musdb_with_a_model_checkpoint(musdb_root, tmp_path, capsys) -> None:
    root, _ = musdb_root
    path = tmp_path / "vocals.safetensors"
    checkpoints.save(tiny_model(sources=["vocals", "accompaniment"]), path)
    code, _, stderr = run_cli(
        capsys,
        "musdb",
        "--root",
        str(root),
        "--model",
        str(path),
        "--out",
        str(tmp_path / "o"),
        "--device",
        "cpu",
    )
    assert code == 0, stderr
    for track in TRACKS:
        document = json.loads((tmp_path / "o" / "test" / f"{track}.json").read_text())
        assert [t["name"] for t in document["targets"]] == ["vocals", "accompaniment"]
        assert len(document["targets"][0]["frames"]) == 2  # 2.5 s: whole 1 s frames only


def test_musdb_user_errors_are_one_line(musdb_root, tmp_path, capsys) -> None:
    root, stems = musdb_root
    code, _, stderr = run_cli(capsys, "musdb", "--root", str(tmp_path), "--estimates", str(tmp_path))
    assert code == 1 and "is not a MUSDB18 folder" in stderr and stderr.count("\n") == 1

    write_music_estimates(tmp_path / "short", stems, ["vocals", "drums"])
    path = tmp_path / "short" / "test" / TRACKS[1] / "drums.wav"
    sf.write(path, sf.read(path)[0][:-5], 44100)
    code, _, stderr = run_cli(capsys, "musdb", "--root", str(root), "--estimates", str(tmp_path / "short"))
    assert code == 1 and "samples but the reference has" in stderr

    (tmp_path / "short" / "test" / TRACKS[1] / "drums.wav").unlink()
    code, _, stderr = run_cli(capsys, "musdb", "--root", str(root), "--estimates", str(tmp_path / "short"))
    assert code == 1 and "holds estimates ['vocals']" in stderr

    speech_model = tmp_path / "speech.safetensors"
    checkpoints.save(tiny_model(), speech_model)
    code, _, stderr = run_cli(capsys, "musdb", "--root", str(root), "--model", str(speech_model))
    assert code == 1 and "do not match the MUSDB18 targets" in stderr

    code, _, stderr = run_cli(
        capsys, "musdb", "--root", str(root), "--model", str(speech_model), "--estimates", str(tmp_path)
    )
    assert code == 1 and "exactly one of --model and --estimates" in stderr


def write_wsj0mix(root: Path, count: int = 3, rate: int = 8000) -> None:
    """``root/tt/{mix,s1,s2}/<utt>.wav``, 1 s each."""
    rng = np.random.default_rng(2)
    for k in range(count):
        sources = [coloured_noise(rng, 1, rate, pole)[:, 0] for pole in (0.1, 0.8)]
        for folder, audio in (("s1", sources[0]), ("s2", sources[1]), ("mix", sources[0] + sources[1])):
            (root / "tt" / folder).mkdir(parents=True, exist_ok=True)
            sf.write(root / "tt" / folder / f"utt{k}.wav", audio, rate, subtype="PCM_16")


def write_speech_estimates(root: Path, base: Path, per_source_folders: bool) -> None:
    """Swapped sources plus noise, as ``base/<utt>/{a,b}.wav`` or ``base/{s1,s2}/<utt>.wav``."""
    rng = np.random.default_rng(3)
    for mixture in sorted((root / "tt" / "mix").iterdir()):
        for index, source in enumerate(("s2", "s1")):
            audio, rate = sf.read(root / "tt" / source / mixture.name)
            estimate = audio + 0.02 * rng.standard_normal(audio.shape)
            path = (
                base / f"s{index + 1}" / mixture.name
                if per_source_folders
                else base / mixture.stem / f"{'ab'[index]}.wav"
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, estimate, rate, subtype="FLOAT")


@pytest.fixture(scope="module")
def wsj_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wsj0-2mix")
    write_wsj0mix(root)
    return root


def test_speech_estimates_csv_and_summary(wsj_root, tmp_path, capsys) -> None:
    write_speech_estimates(wsj_root, tmp_path / "est", per_source_folders=False)
    out = tmp_path / "scores"
    code, stdout, _ = run_cli(
        capsys,
        "speech",
        "--root",
        str(wsj_root),
        "--layout",
        "wsj0mix",
        "--estimates",
        str(tmp_path / "est"),
        "--out",
        str(out),
        "--json",
    )
    assert code == 0
    summary = json.loads(stdout)["summary"]
    assert summary["si_snri"]["count"] == 3
    assert summary["si_snri"]["ci_low"] < summary["si_snri"]["mean"] < summary["si_snri"]["ci_high"]
    with open(out / "utterances.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["utterance"] for row in rows] == ["utt0", "utt1", "utt2"]
    assert all(row["assignment"] == "1 0" and float(row["si_snri"]) > 10 for row in rows)
    assert all(float(row["sdri"]) > 10 for row in rows)


def test_speech_per_source_folders_jobs_and_no_sdr(wsj_root, tmp_path) -> None:
    write_speech_estimates(wsj_root, tmp_path / "est", per_source_folders=True)
    alone = evaluate_speech(wsj_root, "wsj0mix", estimates=tmp_path / "est", with_sdr=False)
    pooled = evaluate_speech(wsj_root, "wsj0mix", estimates=tmp_path / "est", with_sdr=False, jobs=2)
    assert [row["si_snr"] for row in alone.rows] == [row["si_snr"] for row in pooled.rows]
    assert all("sdr" not in row and "sdri" not in row for row in alone.rows)
    assert sorted(alone.summary) == ["si_snr", "si_snri"]


def test_speech_model_on_librimix(tmp_path) -> None:
    root = write_synthetic_corpus(tmp_path / "Libri2Mix", "librimix", n_items=4, duration=(1.0, 1.5))
    report = evaluate_speech(root, "librimix", model=tiny_model(), device="cpu")
    assert report.summary["si_snri"]["count"] == len(report.rows) == 1
    assert np.isfinite(report.rows[0]["sdri"])


def test_speech_user_errors(wsj_root, tmp_path, capsys) -> None:
    write_speech_estimates(wsj_root, tmp_path / "est", per_source_folders=False)
    sf.write(tmp_path / "est" / "utt1" / "c.wav", np.zeros(8000), 8000)
    code, _, stderr = run_cli(
        capsys, "speech", "--root", str(wsj_root), "--layout", "wsj0mix", "--estimates", str(tmp_path / "est")
    )
    assert code == 1 and "holds 3 estimate file(s) but the mixtures have 2 sources" in stderr

    checkpoints.save(tiny_model(sources=3), tmp_path / "three.safetensors")
    code, _, stderr = run_cli(
        capsys,
        "speech",
        "--root",
        str(wsj_root),
        "--layout",
        "wsj0mix",
        "--model",
        str(tmp_path / "three.safetensors"),
    )
    assert code == 1 and "separates 3 sources" in stderr

    code, _, stderr = run_cli(
        capsys, "speech", "--root", str(wsj_root), "--layout", "nope", "--estimates", str(tmp_path)
    )
    assert code == 1 and "unknown speech layout" in stderr


def test_speech_path_option_scores_that_path(wsj_root, tmp_path, capsys) -> None:
    """--path runs the engine on that inference path: onnxruntime scores as eager fp32 does (to float
    precision); a path that cannot run here, or an unknown one, is one line and exit 1."""
    model = tmp_path / "m.safetensors"
    checkpoints.save(tiny_model(), model)
    common = ("speech", "--root", str(wsj_root), "--layout", "wsj0mix", "--model", str(model), "--no-sdr")
    scores = {}
    labels = ["fp32"] + (["onnxruntime"] if importlib.util.find_spec("onnxruntime") else [])
    for label in labels:
        code, stdout, stderr = run_cli(capsys, *common, "--path", label, "--json")
        assert code == 0, stderr
        scores[label] = json.loads(stdout)["summary"]["si_snri"]["mean"]
    assert scores.get("onnxruntime", scores["fp32"]) == pytest.approx(scores["fp32"], abs=1e-3)

    code, _, stderr = run_cli(capsys, *common, "--path", "int8")
    assert code == 1 and stderr.strip().endswith("the model has no LSTM or Linear layers to quantize")
    code, _, stderr = run_cli(capsys, *common, "--path", "fp16")
    assert code == 1 and "unknown path 'fp16'" in stderr and len(stderr.strip().splitlines()) == 1


def test_speech_shifts_option_reaches_the_engine(wsj_root, tmp_path, capsys) -> None:
    """--shifts N averages N delayed passes: an untrained model, far from time-invariant, scores
    differently with two passes than with one; 0 is one line and a usage error."""
    model = tmp_path / "m.safetensors"
    checkpoints.save(tiny_model(), model)
    common = ("speech", "--root", str(wsj_root), "--layout", "wsj0mix", "--model", str(model), "--no-sdr")
    scores = []
    for shifts in ("1", "2"):
        code, stdout, stderr = run_cli(capsys, *common, "--shifts", shifts, "--json")
        assert code == 0, stderr
        scores.append(json.loads(stdout)["summary"]["si_snri"]["mean"])
    assert math.isfinite(scores[1]) and abs(scores[1] - scores[0]) > 1e-4, scores
    code, _, stderr = run_cli(capsys, *common, "--shifts", "0")
    assert code == 2 and "--shifts" in stderr and len(stderr.strip().splitlines()) == 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_ranks_split_utterances_and_rank0_merges(wsj_root, tmp_path) -> None:
    write_speech_estimates(wsj_root, tmp_path / "est", per_source_folders=False)
    out = tmp_path / "scores"
    command = [
        sys.executable,
        "-m",
        "separate",
        "eval",
        "speech",
        "--root",
        str(wsj_root),
        "--layout",
        "wsj0mix",
    ]
    command += ["--estimates", str(tmp_path / "est"), "--out", str(out), "--json", "--no-sdr"]
    port = free_port()
    processes = []
    for rank in range(2):
        env = {**os.environ, "WORLD_SIZE": "2", "RANK": str(rank), "LOCAL_RANK": str(rank)}
        env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1")
        processes.append(
            subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )
    outputs = [process.communicate(timeout=120) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    assert json.loads(outputs[0][0])["utterances"] == 3 and outputs[1][0] == ""
    with open(out / "utterances.csv", newline="") as handle:
        assert [row["utterance"] for row in csv.DictReader(handle)] == ["utt0", "utt1", "utt2"]
    assert (out / "utterances.rank0-of-2.csv").exists() and (out / "utterances.rank1-of-2.csv").exists()
