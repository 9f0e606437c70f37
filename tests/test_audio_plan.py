"""Output planning and committing: collisions, template fields and escapes, all stems or none, modes."""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import write_audio

from separate.audio import StemWriter, TrackWriter, commit_stems, inputs, plan_outputs, tracks
from separate.cli import main
from separate.errors import SeparateError


def _one_line(capsys, *argv: str) -> str:
    code = main(list(argv))
    err = capsys.readouterr().err
    assert code != 0 and err.count("\n") == 1 and err.startswith("separate: error:"), err
    return err


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    "names, template, fragment",
    [
        (["take.1.wav", "take.2.wav"], None, "add {name}"),
        (["a/song.wav", "b/song.wav"], None, "add {parent}"),
        (["song.wav", "song.flac"], None, "add {name}"),
        (["song.wav"], "{track}.{ext}", "stems s1 and s2 of"),
    ],
)
def test_collisions_are_refused_before_any_work(
    capsys, tiny_checkpoint: Path, tmp_path: Path, names: list[str], template: str | None, fragment: str
) -> None:
    inputs = []
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        inputs.append(str(write_audio(tmp_path / name, 0.2)))
        if name.endswith(".flac"):
            sf.write(inputs[-1], np.zeros((800, 1), np.float32), 8000, format="FLAC")
    out = tmp_path / "out"
    extra = ["--filename", template] if template else []
    err = _one_line(capsys, "audio", *inputs, "-m", str(tiny_checkpoint), "-o", str(out), *extra)
    assert fragment in err
    if len(names) == 2:
        assert f"'{inputs[0]}' and '{inputs[1]}'" in err
    assert not out.exists()


def test_fields_make_outputs_unique(tmp_path: Path) -> None:
    inputs = [
        str(tmp_path / "a" / "song.wav"),
        str(tmp_path / "b" / "song.wav"),
        str(tmp_path / "a" / "x.1.wav"),
    ]
    plans = plan_outputs(
        inputs,
        ["s1", "s2"],
        str(tmp_path / "o"),
        "{parent}/{name}/{stem_index}-{stem}.{ext}",
        "wav",
        "m.safetensors",
    )
    paths = [path for plan in plans for path in plan.outputs.values()]
    assert len(set(paths)) == 6
    assert paths[0] == str(tmp_path / "o" / "a" / "song.wav" / "1-s1.wav")
    assert plans[2].track == "x" and plans[2].outputs["s2"].endswith("a/x.1.wav/2-s2.wav")


def test_templates_that_escape_the_output_folder(tmp_path: Path) -> None:
    song = str(tmp_path / "song.wav")
    for template in ("../{track}/{stem}.{ext}", "{track}/../../{stem}.{ext}", "/tmp/../{stem}.{ext}"):
        with pytest.raises(SeparateError, match="outside|leaves the output folder"):
            plan_outputs([song], ["s1"], str(tmp_path / "o"), template, "wav", "m")
    with pytest.raises(SeparateError, match="unknown field"):
        plan_outputs([song], ["s1"], str(tmp_path / "o"), "{song}/{stem}.{ext}", "wav", "m")
    absolute = str(tmp_path / "elsewhere" / "{track}-{stem}.{ext}")
    [plan] = plan_outputs([song], ["s1"], str(tmp_path / "o"), absolute, "wav", "m")
    assert plan.outputs["s1"] == str(tmp_path / "elsewhere" / "song-s1.wav")


def _writer(path: Path, value: float) -> StemWriter:
    writer = StemWriter(str(path), 8000, 1, "wav", "FLOAT")
    writer.write(np.full((1, 100), value, np.float32))
    return writer


def test_a_folder_in_the_way_commits_no_stem(tmp_path: Path) -> None:
    (tmp_path / "s1.wav").write_bytes(b"previous s1")
    (tmp_path / "s2.wav").mkdir()
    writers = [_writer(tmp_path / "s1.wav", 0.1), _writer(tmp_path / "s2.wav", 0.2)]
    with pytest.raises(SeparateError, match="s2.wav: a folder of that name is in the way"):
        commit_stems(writers)
    for writer in writers:
        writer.abort()
    assert (tmp_path / "s1.wav").read_bytes() == b"previous s1"
    assert _files(tmp_path) == ["s1.wav"]


def test_a_failed_rename_rolls_back_the_stems_already_in_place(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "s1.wav").write_bytes(b"previous s1")
    writers = [_writer(tmp_path / "s1.wav", 0.1), _writer(tmp_path / "s2.wav", 0.2)]
    real_replace = os.replace

    def failing(source: str | Path, target: str | Path) -> None:
        if Path(target).name == "s2.wav":
            raise PermissionError(13, "Permission denied")
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(SeparateError, match="cannot write .*s2.wav: Permission denied"):
        commit_stems(writers)
    monkeypatch.setattr(os, "replace", real_replace)
    for writer in writers:
        writer.abort()
    assert (tmp_path / "s1.wav").read_bytes() == b"previous s1"
    assert _files(tmp_path) == ["s1.wav"]


@pytest.mark.parametrize("mask", [0o022, 0o002])
def test_stems_honour_the_umask(tmp_path: Path, mask: int) -> None:
    previous = os.umask(mask)
    try:
        with TrackWriter({"s1": str(tmp_path / "s1.wav")}, 8000, 1, "wav", "PCM_16") as track:
            track.write("s1", np.zeros((1, 10), np.float32))
            track.commit()
    finally:
        os.umask(previous)
    assert (tmp_path / "s1.wav").stat().st_mode & 0o777 == 0o666 & ~mask


def _track(tmp_path: Path, subtype: str, clip_mode: str, fmt: str = "wav") -> dict:
    outputs = {name: str(tmp_path / f"{name}.{fmt}") for name in ("a", "b")}
    with TrackWriter(outputs, 8000, 1, fmt, subtype, clip_mode) as track:
        for _ in range(3):
            track.write("a", np.full((1, 1000), 0.5, np.float32))
            track.write("b", np.linspace(-2.0, 1.0, 1000, dtype=np.float32)[None])
        track.commit()
    return track.levels


def test_integer_output_is_scaled_per_track_to_fit(tmp_path: Path) -> None:
    levels = _track(tmp_path, "PCM_24", "rescale")
    assert levels["mode"] == "rescale" and levels["peak"] == 2.0
    assert levels["gain_db"] == pytest.approx(-6.0206, abs=1e-3) and levels["clipped"] == 0
    a, b = sf.read(tmp_path / "a.wav")[0], sf.read(tmp_path / "b.wav")[0]
    assert a.max() == pytest.approx(0.25, abs=1e-6) and b.min() == pytest.approx(-1.0, abs=1e-6)
    assert np.count_nonzero(np.abs(b) >= 1.0) == 3  # only the peak itself reaches full scale
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_clamp_counts_and_float_keeps_values(tmp_path: Path) -> None:
    (tmp_path / "clamp").mkdir()
    levels = _track(tmp_path / "clamp", "PCM_16", "clamp")
    over = np.count_nonzero(np.abs(np.linspace(-2.0, 1.0, 1000, dtype=np.float32)) > 1.0)
    assert levels["mode"] == "clamp" and levels["clipped"] == 3 * over and levels["gain_db"] == 0.0
    assert sf.read(tmp_path / "clamp" / "b.wav")[0].min() == -1.0
    (tmp_path / "float").mkdir()
    levels = _track(tmp_path / "float", "FLOAT", "rescale")
    assert levels["mode"] == "none"
    assert sf.read(tmp_path / "float" / "b.wav")[0].min() == pytest.approx(-2.0)


@pytest.mark.parametrize("fmt, subtype", [("mp3", "MPEG_LAYER_III"), ("ogg", "VORBIS")])
def test_lossy_formats(tmp_path: Path, tiny_checkpoint: Path, fmt: str, subtype: str) -> None:
    song = write_audio(tmp_path / "a.wav", 1.0)
    code = main(["audio", str(song), "-m", str(tiny_checkpoint), "-o", str(tmp_path / "o"), "--format", fmt])
    assert code == 0
    info = sf.info(tmp_path / "o" / "a" / f"s1.{fmt}")
    assert info.subtype == subtype and info.samplerate == 8000


def test_a_libsndfile_system_error_on_a_full_disk_is_named(tmp_path: Path, monkeypatch) -> None:
    import shutil

    from separate.audio.ioerrors import write_error

    problem = sf.LibsndfileError(2, "System error")
    assert str(write_error(problem, tmp_path / "s1.wav")).startswith(f"cannot write {tmp_path / 's1.wav'}")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(100, 100, 0))
    message = str(write_error(problem, tmp_path / "s1.wav"))
    assert message == f"no space left on device while writing {tmp_path / 's1.wav'}"


@contextlib.contextmanager
def _interrupt_held_until_the_end():
    """Stands in for ``interrupts_deferred`` when a Ctrl-C arrived during the deferred block."""
    yield
    raise KeyboardInterrupt


def test_a_ctrl_c_held_while_the_stems_are_opened_leaves_no_file(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(tracks, "interrupts_deferred", _interrupt_held_until_the_end)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    outputs = {"s1": str(tmp_path / "out" / "s1.wav"), "s2": str(tmp_path / "out" / "s2.wav")}
    with pytest.raises(KeyboardInterrupt):
        TrackWriter(outputs, 8000, 1, "wav", "PCM_16")
    assert _files(tmp_path) == []


def test_a_ctrl_c_held_while_the_stdin_spool_is_opened_leaves_no_file(monkeypatch, tmp_path: Path) -> None:
    class _Stdin:
        buffer = io.BytesIO(b"RIFF")

        def isatty(self) -> bool:
            return False

    monkeypatch.setattr(inputs, "interrupts_deferred", _interrupt_held_until_the_end)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(sys, "stdin", _Stdin())
    with pytest.raises(KeyboardInterrupt):
        inputs.open_input("-")
    assert _files(tmp_path) == []
