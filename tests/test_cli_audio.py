"""`separate audio` from the shell: outputs, pipelines, rank splitting, and every bad input."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import run_cli, write_audio

from separate import checkpoints
from separate.cli import main


def _no_partials(folder: Path) -> bool:
    return not any(p.name.endswith(".partial") for p in folder.rglob("*")) if folder.exists() else True


def test_separates_a_file_into_every_stem(tmp_path: Path, tiny_checkpoint: Path) -> None:
    song = write_audio(tmp_path / "song.wav", 2.0, channels=2)
    out = tmp_path / "out"
    result = run_cli("audio", str(song), "--model", str(tiny_checkpoint), "-o", str(out), "--json")
    assert result.returncode == 0, result.stderr.decode()
    report = json.loads(result.stdout)
    assert set(report["files"][0]["outputs"]) == {"s1", "s2"}
    for stem in ("s1", "s2"):
        data, rate = sf.read(out / "song" / f"{stem}.wav", always_2d=True)
        assert data.shape == (16000, 2) and rate == 8000
    assert _no_partials(out)


def test_options_template_format_stems(tmp_path: Path, tiny_checkpoint: Path, capsys) -> None:
    song = write_audio(tmp_path / "a.wav", 1.0)
    code = main(
        [
            "audio",
            str(song),
            "-m",
            str(tiny_checkpoint),
            "-o",
            str(tmp_path / "o"),
            "--filename",
            "{model}-{track}-{stem}.{ext}",
            "--format",
            "flac",
            "--bits",
            "16",
            "--stems",
            "s2",
            "--segment",
            "0.3",
            "--overlap",
            "0.5",
            "--batch-size",
            "2",
            "--threads",
            "1",
        ]
    )
    assert code == 0
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["tiny-a-s2.flac"]
    assert sf.info(tmp_path / "o" / "tiny-a-s2.flac").subtype == "PCM_16"


def test_two_stems_rest_is_mixture_minus_stem(tmp_path: Path, tiny_checkpoint: Path) -> None:
    song = write_audio(tmp_path / "a.wav", 1.0)
    assert (
        main(
            [
                "audio",
                str(song),
                "-m",
                str(tiny_checkpoint),
                "-o",
                str(tmp_path),
                "--two-stems",
                "s1",
                "--bits",
                "32",
                "--json",
            ]
        )
        == 0
    )
    mix = sf.read(song)[0]
    stem, rest = sf.read(tmp_path / "a" / "s1.wav")[0], sf.read(tmp_path / "a" / "no_s1.wav")[0]
    np.testing.assert_allclose(stem + rest, mix, atol=1e-6)


def test_pipeline_stdin_to_stdout(tmp_path: Path, tiny_checkpoint: Path) -> None:
    song = write_audio(tmp_path / "a.wav", 1.5, channels=2)
    result = run_cli(
        "audio", "-", "-m", str(tiny_checkpoint), "-o", "-", "--stems", "s1", stdin=song.read_bytes()
    )
    assert result.returncode == 0, result.stderr.decode()
    data, rate = sf.read(io.BytesIO(result.stdout), always_2d=True)
    assert data.shape == (12000, 2) and rate == 8000


def test_many_inputs_split_across_ranks(tmp_path: Path, tiny_checkpoint: Path, monkeypatch) -> None:
    songs = [str(write_audio(tmp_path / f"t{i}.wav", 0.5, seed=i)) for i in range(3)]
    seen = []
    for rank in (0, 1):
        monkeypatch.setenv("WORLD_SIZE", "2")
        monkeypatch.setenv("RANK", str(rank))
        assert main(["audio", *songs, "-m", str(tiny_checkpoint), "-o", str(tmp_path / "o"), "--json"]) == 0
        seen.append(sorted(p.name for p in (tmp_path / "o").iterdir()))
    assert seen == [["t0", "t2"], ["t0", "t1", "t2"]]


def _fails(capsys, *argv: str) -> str:
    code = main(list(argv))
    err = capsys.readouterr().err
    assert code != 0
    assert err.count("\n") == 1 and err.startswith("separate: error:"), err
    assert "Traceback" not in err
    return err


def test_missing_path(capsys, tiny_checkpoint: Path, tmp_path: Path) -> None:
    assert "does not exist" in _fails(capsys, "audio", str(tmp_path / "nope.wav"), "-m", str(tiny_checkpoint))


def test_directory(capsys, tiny_checkpoint: Path, tmp_path: Path) -> None:
    assert "directory" in _fails(capsys, "audio", str(tmp_path), "-m", str(tiny_checkpoint))


def test_empty_file(capsys, tiny_checkpoint: Path, tmp_path: Path) -> None:
    (tmp_path / "e.wav").write_bytes(b"")
    assert "empty" in _fails(capsys, "audio", str(tmp_path / "e.wav"), "-m", str(tiny_checkpoint))


def test_non_audio_file(capsys, tiny_checkpoint: Path, tmp_path: Path) -> None:
    (tmp_path / "notes.wav").write_text("this is text, not sound\n" * 20)
    assert "not a readable audio" in _fails(
        capsys, "audio", str(tmp_path / "notes.wav"), "-m", str(tiny_checkpoint)
    )


def test_truncated_wav(capsys, tiny_checkpoint: Path, tmp_path: Path) -> None:
    song = write_audio(tmp_path / "full.wav", 1.0)
    data = song.read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: len(data) // 2])
    out = tmp_path / "o"
    assert "truncated" in _fails(
        capsys, "audio", str(tmp_path / "cut.wav"), "-m", str(tiny_checkpoint), "-o", str(out)
    )
    assert not out.exists()


def test_zero_length_audio(capsys, tiny_checkpoint: Path, tmp_path: Path) -> None:
    sf.write(tmp_path / "z.wav", np.zeros((0, 1), np.float32), 8000)
    assert "no audio" in _fails(capsys, "audio", str(tmp_path / "z.wav"), "-m", str(tiny_checkpoint))


def _fails_at_two_seconds(capsys, checkpoint: Path, tmp_path: Path, out: Path, bad: float = np.nan) -> str:
    """Separate 3 s of 8 kHz audio whose sample at 2.001 s is ``bad`` into ``out``; stderr's line."""
    data = np.zeros((8000 * 3, 1), np.float32)
    data[8000 * 2 + 7] = bad
    sf.write(tmp_path / "n.wav", data, 8000, subtype="FLOAT")
    args = ["audio", str(tmp_path / "n.wav"), "-m", str(checkpoint), "-o", str(out), "--segment", "0.5"]
    return _fails(capsys, *args)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_samples_leave_nothing_behind(
    capsys, tiny_checkpoint: Path, tmp_path: Path, bad: float
) -> None:
    err = _fails_at_two_seconds(capsys, tiny_checkpoint, tmp_path, tmp_path / "o" / "deeper", bad)
    assert "NaN or infinite" in err and "2.001 s" in err and str(tmp_path / "n.wav") in err
    assert not (tmp_path / "o").exists()  # nor the folders made for the stems


def test_a_failed_track_keeps_the_folders_that_were_there(
    capsys, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    (tmp_path / "o" / "n").mkdir(parents=True)
    assert "NaN" in _fails_at_two_seconds(capsys, tiny_checkpoint, tmp_path, tmp_path / "o")
    assert (tmp_path / "o" / "n").is_dir() and not any((tmp_path / "o" / "n").iterdir())


def test_too_many_channels(capsys, tiny_checkpoint: Path, tmp_path: Path) -> None:
    song = write_audio(tmp_path / "six.wav", 0.2, channels=6)
    assert "6 channels" in _fails(capsys, "audio", str(song), "-m", str(tiny_checkpoint))


def test_unknown_model(capsys, tmp_path: Path) -> None:
    song = write_audio(tmp_path / "a.wav", 0.2)
    assert "unknown model" in _fails(capsys, "audio", str(song), "-m", "no-such-model")


def test_checkpoint_with_bad_hash(capsys, tmp_path: Path, tiny_checkpoint: Path, monkeypatch) -> None:
    registry = tmp_path / "reg.toml"
    registry.write_text(
        f'[models.bad]\narchitecture = "convtasnet"\ntask = "speech"\nsources = ["s1", "s2"]\n'
        f'sample_rate = 8000\nbundled = "{tiny_checkpoint}"\nsha256 = "{"0" * 64}"\n'
    )
    monkeypatch.setenv("SEPARATE_REGISTRY", str(registry))
    song = write_audio(tmp_path / "a.wav", 0.2)
    assert "sha256 mismatch" in _fails(capsys, "audio", str(song), "-m", "bad")


def test_pickle_checkpoint(capsys, tmp_path: Path) -> None:
    torch.save({"state": 1}, tmp_path / "evil.pt")
    song = write_audio(tmp_path / "a.wav", 0.2)
    assert "pickle" in _fails(capsys, "audio", str(song), "-m", str(tmp_path / "evil.pt"))


def test_unwritable_output_folder(capsys, tiny_checkpoint: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("x")
    song = write_audio(tmp_path / "a.wav", 0.2)
    assert "cannot write" in _fails(
        capsys, "audio", str(song), "-m", str(tiny_checkpoint), "-o", str(blocker / "o")
    )


def test_output_path_equal_to_input(capsys, tiny_checkpoint: Path, tmp_path: Path) -> None:
    song = write_audio(tmp_path / "s1.wav", 0.2)
    before = song.read_bytes()
    err = _fails(
        capsys,
        "audio",
        str(song),
        "-m",
        str(tiny_checkpoint),
        "-o",
        str(tmp_path),
        "--filename",
        "{stem}.{ext}",
    )
    assert "overwrite an input" in err
    assert song.read_bytes() == before


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--bits", "12"], "unsupported output format"),
        (["--format", "wma"], "--format"),
        (["--clip-mode", "wrap"], "--clip-mode"),
        (["--segment", "nan"], "segment must be a positive number"),
        (["--segment", "inf"], "segment must be a positive number"),
        (["--segment", "0.002"], "receptive field"),
        (["--segment", "0.01", "--overlap", "0.9"], "ms per chunk"),
        (["--stems", "guitar"], "unknown stem"),
        (["--two-stems", "guitar"], "two-stems"),
        (["--overlap", "1.5"], "overlap"),
        (["--bogus"], "No such option"),
        (["--batch-size", "x"], "batch-size"),
        (["--shifts", "0"], "--shifts"),
    ],
)
def test_bad_options(capsys, tiny_checkpoint: Path, tmp_path: Path, argv: list[str], message: str) -> None:
    song = write_audio(tmp_path / "a.wav", 0.2)
    assert message in _fails(
        capsys, "audio", str(song), "-m", str(tiny_checkpoint), "-o", str(tmp_path / "o"), *argv
    )


def test_stdout_needs_a_single_stem(capsys, tiny_checkpoint: Path, tmp_path: Path) -> None:
    song = write_audio(tmp_path / "a.wav", 0.2)
    assert "one stem" in _fails(capsys, "audio", str(song), "-m", str(tiny_checkpoint), "-o", "-")


def test_help_is_fast_and_imports_no_torch() -> None:
    result = run_cli("--help")
    assert result.returncode == 0 and b"audio" in result.stdout
    probe = run_cli_python("import sys, separate.cli; print('torch' in sys.modules)")
    assert probe.strip() == "False"


def run_cli_python(code: str) -> str:
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def test_models_list_json(capsys) -> None:
    assert main(["models", "list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert "convtasnet" in listing["presets"]


def test_checkpoint_saved_and_loaded_via_cli(tmp_path: Path, tiny_checkpoint: Path, capsys) -> None:
    assert main(["models", "info", str(tiny_checkpoint), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["parameters"] == sum(p.numel() for p in checkpoints.load(tiny_checkpoint).parameters())


def test_no_consistency_option(tiny_checkpoint: Path, tmp_path: Path) -> None:
    mix = (0.3 * np.random.default_rng(3).standard_normal((8000, 1))).astype(np.float32)
    sf.write(tmp_path / "m.wav", mix, 8000, subtype="FLOAT")
    sums = []
    for extra in ([], ["--no-consistency"]):
        out = tmp_path / ("off" if extra else "on")
        argv = ["audio", str(tmp_path / "m.wav"), "-m", str(tiny_checkpoint), "-o", str(out), "--bits", "32"]
        assert main([*argv, *extra]) == 0
        sums.append(sum(sf.read(out / "m" / f"{s}.wav", always_2d=True)[0] for s in ("s1", "s2")))
    assert np.abs(sums[0] - mix).max() < 1e-4 < np.abs(sums[1] - mix).max()


def test_loud_integer_output_is_rescaled_with_one_warning(
    capsys, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    loud = (4.0 * np.sin(np.linspace(0, 800 * np.pi, 8000)))[:, None].astype(np.float32)
    sf.write(tmp_path / "loud.wav", loud, 8000, subtype="FLOAT")
    argv = [
        "audio",
        str(tmp_path / "loud.wav"),
        "-m",
        str(tiny_checkpoint),
        "-o",
        str(tmp_path / "o"),
        "--json",
    ]
    assert main([*argv, "--bits", "16"]) == 0
    captured = capsys.readouterr()
    levels = json.loads(captured.out)["files"][0]["levels"]
    assert levels["mode"] == "rescale" and levels["peak"] > 1.0 and levels["gain_db"] < 0.0
    assert captured.err.count("\n") == 1 and captured.err.startswith("separate: warning: loud: stems peak at")
    stems = [sf.read(tmp_path / "o" / "loud" / f"{s}.wav")[0] for s in ("s1", "s2")]
    np.testing.assert_allclose(stems[0] + stems[1], loud[:, 0] * 10 ** (levels["gain_db"] / 20), atol=2e-4)
    assert main([*argv, "--bits", "32"]) == 0  # float output keeps the values
    assert json.loads(capsys.readouterr().out)["files"][0]["levels"]["mode"] == "none"
    assert max(np.abs(sf.read(tmp_path / "o" / "loud" / f"{s}.wav")[0]).max() for s in ("s1", "s2")) > 1.0


def test_json_is_strict(capsys) -> None:
    from separate.cli.common import emit_json

    emit_json({"sdr": float("nan"), "rows": [float("inf"), 1.5], "value": np.float32("nan")})

    def refuse(constant: str) -> None:
        raise ValueError(constant)

    assert json.loads(capsys.readouterr().out, parse_constant=refuse) == {
        "sdr": None,
        "rows": [None, 1.5],
        "value": None,
    }


def test_models_tables_go_to_stdout(capsys) -> None:
    assert main(["models", "list"]) == 0
    captured = capsys.readouterr()
    assert (
        "Registered checkpoints" in captured.out and "speech-2spk-8k" in captured.out and captured.err == ""
    )
    assert main(["models", "info", "galr"]) == 0
    captured = capsys.readouterr()
    assert "architecture: galr" in captured.out and captured.err == ""
    assert main(["models", "info", "ltl-bilstm"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "metrics:" in lines and "sources: vocals, accompaniment" in lines  # a block per table, no dicts
    assert any(line.startswith("  vocals_sdr: ") for line in lines) and not any("{" in line for line in lines)
    assert main(["models", "info", "galr", "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["parameters"] == 1448613 and card["sources"] == ["s1", "s2"] and card["sample_rate"] == 8000
