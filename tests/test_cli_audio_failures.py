"""`separate audio` never loses a result: batches with bad files, disk full, Ctrl-C, broken pipes,
unwritable folders as an unprivileged user, and inputs decoded by ffmpeg."""

from __future__ import annotations

import errno
import functools
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import write_audio

from separate.audio import ffmpeg
from separate.cli import main


def _outputs(folder: Path) -> list[str]:
    return (
        sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        if folder.exists()
        else []
    )


def test_a_bad_file_in_the_middle_fails_alone(capsys, tiny_checkpoint: Path, tmp_path: Path) -> None:
    first, last = write_audio(tmp_path / "a.wav", 0.5), write_audio(tmp_path / "c.wav", 0.5)
    (tmp_path / "b.wav").write_text("not audio\n" * 20)
    nan = np.zeros((4000, 1), np.float32)
    nan[3000] = np.nan  # passes the checks made before the run, fails while separated
    sf.write(tmp_path / "n.wav", nan, 8000, subtype="FLOAT")
    inputs = [str(first), str(tmp_path / "b.wav"), str(tmp_path / "n.wav"), str(last)]
    out = tmp_path / "o"
    code = main(["audio", *inputs, "-m", str(tiny_checkpoint), "-o", str(out), "--json"])
    captured = capsys.readouterr()
    assert code == 1
    assert _outputs(out) == ["a/s1.wav", "a/s2.wav", "c/s1.wav", "c/s2.wav"]
    report = json.loads(captured.out)
    assert [f["status"] for f in report["files"]] == ["ok", "failed", "failed", "ok"] and report[
        "failed"
    ] == 2
    assert "not a readable audio file" in report["files"][1]["error"] and report["files"][2]["outputs"] == {}
    lines = captured.err.splitlines()
    assert len(lines) == 3 and "b.wav" in lines[0] and "NaN" in lines[1]
    assert lines[2] == "separate: error: 2 of 4 files failed" and "Traceback" not in captured.err

    code = main(["audio", *inputs, "-m", str(tiny_checkpoint), "-o", str(tmp_path / "ff"), "--fail-fast"])
    assert code == 1 and not (tmp_path / "ff").exists()  # the bad file is found before any work


def test_disk_full_while_writing(capsys, tiny_checkpoint: Path, tmp_path: Path, monkeypatch) -> None:
    song = write_audio(tmp_path / "a.wav", 1.0)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()

    def full(self: sf.SoundFile, data: np.ndarray) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sf.SoundFile, "write", full)
    monkeypatch.setattr(sys, "stdin", _Stdin(song.read_bytes()))
    out = tmp_path / "o"
    for source in (str(song), "-"):
        code = main(["audio", source, "-m", str(tiny_checkpoint), "-o", str(out), "--bits", "32"])
        err = capsys.readouterr().err
        assert code == 1 and err.count("\n") == 1, err
        track = "a" if source != "-" else "stdin"
        assert f"no space left on device while writing {out / track / 's1.wav'}" in err
        assert _outputs(out) == [] and _outputs(tmp_path / "tmp") == []  # no stem, no stdin spool


def test_disk_full_while_spooling_stdin(capsys, tiny_checkpoint: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copyfileobj", full)
    monkeypatch.setattr(sys, "stdin", _Stdin(b"RIFF"))
    code = main(["audio", "-", "-m", str(tiny_checkpoint), "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "no space left on device while writing" in err
    assert not list(tmp_path.glob("separate-stdin-*"))


class _Stdin:
    def __init__(self, data: bytes) -> None:
        import io

        self.buffer = io.BytesIO(data)

    def isatty(self) -> bool:
        return False


def _start(args: list[str], tmp: Path, **popen: object) -> subprocess.Popen:
    """``separate ARGS`` in a child that takes Ctrl-C, even when this suite runs as a background job
    (whose shell ignores SIGINT, which children would inherit)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp)}
    return subprocess.Popen(
        [sys.executable, "-m", "separate", *args],
        env=env,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        **popen,
    )


def _wait_for(condition, process: subprocess.Popen, seconds: float = 240.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_ctrl_c_during_a_run_leaves_nothing(tiny_checkpoint: Path, tmp_path: Path) -> None:
    (tmp_path / "tmp").mkdir()
    song = write_audio(tmp_path / "long.wav", 1200.0)
    out = tmp_path / "o"
    args = ["audio", "-", "-m", str(tiny_checkpoint), "-o", str(out), "--batch-size", "1", "--segment", "0.5"]
    with open(song, "rb") as stdin:
        process = _start(args, tmp_path / "tmp", stdin=stdin)
        _wait_for(lambda: any(p.name.endswith(".partial") for p in out.rglob("*")), process)
        process.send_signal(signal.SIGINT)
        err = process.communicate(timeout=120)[1].decode()
    assert process.returncode == 130
    assert err == "separate: error: interrupted; no partial output left\n"
    assert _outputs(out) == [] and _outputs(tmp_path / "tmp") == []


def test_ctrl_c_while_spooling_stdin_removes_the_spool(tiny_checkpoint: Path, tmp_path: Path) -> None:
    process = _start(
        ["audio", "-", "-m", str(tiny_checkpoint), "-o", str(tmp_path / "o")], tmp_path, stdin=subprocess.PIPE
    )
    assert process.stdin is not None
    process.stdin.write(write_audio(tmp_path / "a.wav", 1.0).read_bytes()[:4000])
    process.stdin.flush()
    _wait_for(lambda: bool(list(tmp_path.glob("separate-stdin-*"))), process)
    time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    err = process.communicate(timeout=120)[1].decode()
    assert process.returncode == 130 and err.count("\n") == 1 and "interrupted" in err, err
    assert not list(tmp_path.glob("separate-stdin-*"))


def test_broken_pipe_is_quiet(tiny_checkpoint: Path, tmp_path: Path) -> None:
    song = write_audio(tmp_path / "a.wav", 20.0)
    args = ["audio", str(song), "-m", str(tiny_checkpoint), "-o", "-", "--stems", "s1"]
    process = _start(args, tmp_path, stdout=subprocess.PIPE)
    assert process.stdout is not None
    assert len(process.stdout.read(100)) == 100  # what `| head -c 100` reads before it exits
    process.stdout.close()
    err = process.communicate(timeout=240)[1].decode()
    assert process.returncode in (0, 141) and err == "", err


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_a_full_device_under_stdout(tiny_checkpoint: Path, tmp_path: Path) -> None:
    song = write_audio(tmp_path / "a.wav", 2.0)
    args = ["audio", str(song), "-m", str(tiny_checkpoint), "-o", "-", "--stems", "s1"]
    with open("/dev/full", "wb") as full:
        process = _start(args, tmp_path, stdout=full)
        err = process.communicate(timeout=240)[1].decode()
    assert process.returncode == 1
    assert err == "separate: error: no space left on device while writing stdout\n"
    assert not list(tmp_path.glob("separate-*"))


@functools.cache
def _unprivileged(cwd: Path) -> Callable[[list[str]], list[str]] | None:
    """How to run a command without the right to write where its owner cannot: as ``nobody``
    (setpriv or su), or as root without the capabilities that bypass file permissions."""
    if os.geteuid() != 0:
        return lambda command: command
    setpriv = shutil.which("setpriv")
    ways: list[Callable[[list[str]], list[str]]] = []
    if setpriv:
        for group in ("nogroup", "nobody"):
            ways.append(lambda c, g=group: [setpriv, "--reuid=nobody", f"--regid={g}", "--clear-groups", *c])
    if shutil.which("su"):
        ways.append(lambda c: ["su", "-p", "nobody", "-s", "/bin/sh", "-c", shlex.join(c)])
    if setpriv:
        ways.append(
            lambda c: [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all", *c]
        )
    for way in ways:
        probe = [sys.executable, "-c", "import torch, separate.cli"]
        if subprocess.run(way(probe), capture_output=True, cwd=cwd).returncode == 0:
            return way
    return None


@pytest.mark.parametrize("command", ["audio", "train"])
def test_unwritable_folder_as_an_unprivileged_user(tiny_checkpoint: Path, command: str) -> None:
    root = Path(__file__).resolve().parents[1]
    unprivileged = _unprivileged(root)
    if unprivileged is None:
        pytest.skip("running as root, and neither setpriv nor su can run this Python as another user here")
    shared = Path(tempfile.mkdtemp(prefix="separate-unprivileged-"))  # readable by nobody too
    try:
        shared.chmod(0o755)
        model = Path(shutil.copy(tiny_checkpoint, shared / "tiny.safetensors"))
        model.chmod(0o644)
        song = write_audio(shared / "a.wav", 0.2)
        song.chmod(0o644)
        locked = shared / "locked"
        locked.mkdir(mode=0o555)
        args = {
            "audio": ["audio", str(song), "-m", str(model), "-o", str(locked / "x")],
            "train": ["train", "examples/recipes/tiny.toml", "--out", str(locked / "run")],
        }[command]
        result = subprocess.run(
            unprivileged([sys.executable, "-m", "separate", *args]),
            capture_output=True,
            text=True,
            cwd=root,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
            timeout=300,
        )
    finally:
        shutil.rmtree(shared)
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "cannot write to" in result.stderr and "permission denied" in result.stderr


@pytest.mark.skipif(not ffmpeg.available(), reason="ffmpeg and ffprobe are not installed")
@pytest.mark.parametrize("suffix, codec", [(".m4a", "aac"), (".opus", "libopus")])
def test_ffmpeg_inputs_stream_in_blocks(
    tiny_checkpoint: Path, tmp_path: Path, suffix: str, codec: str
) -> None:
    song = write_audio(tmp_path / "a.wav", 3.0, sample_rate=16000, channels=2)
    encoded = tmp_path / f"song{suffix}"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(song), "-c:a", codec, str(encoded)], check=True)
    assert main(["audio", str(encoded), "-m", str(tiny_checkpoint), "-o", str(tmp_path / "o")]) == 0
    rate = 16000  # the rate ffprobe reports (opus decodes at 48 kHz but records the input's rate)
    for stem in ("s1", "s2"):
        data, got = sf.read(tmp_path / "o" / "song" / f"{stem}.wav", always_2d=True)
        assert got == rate and data.shape[1] == 2 and abs(data.shape[0] - 3 * rate) < 0.05 * rate
    from separate.audio import open_input

    with open_input(str(encoded)) as source:
        blocks = list(source.blocks(block_frames=4096))
    assert max(b.shape[1] for b in blocks) == 4096 and sum(b.shape[1] for b in blocks) == source.frames


def test_missing_ffmpeg_says_how_to_install_it(
    capsys, tiny_checkpoint: Path, tmp_path: Path, monkeypatch
) -> None:
    (tmp_path / "song.m4a").write_bytes(b"\0\0\0\x20ftypM4A " + bytes(200))
    monkeypatch.setattr(shutil, "which", lambda name: None)
    code = main(["audio", str(tmp_path / "song.m4a"), "-m", str(tiny_checkpoint), "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "needs ffmpeg" in err and "apt-get install ffmpeg" in err
