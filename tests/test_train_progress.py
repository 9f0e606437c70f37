"""``separate train`` for a person: progress records and lines, totals across resumes, SIGTERM/Ctrl-C
saving the state, ``--export``, a smoothed best epoch, ``--check`` telling the truth about AMP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from separate import checkpoints
from separate.cli import main as cli_main
from separate.training import resolve_recipe, train
from separate.training.progress import epoch_records, progress_line
from separate.training.recipe import differences
from separate.training.schedules import EarlyStopping
from separate.training.state import load_state
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "examples" / "recipes" / "tiny.toml"
#: Four steps of 8 examples per epoch and 16 validation items: about half a second per epoch.
FAST = ["data.train.n_items=32", "data.valid.n_items=16", "train.epochs=2"]
PROGRESS_FIELDS = {
    "event",
    "epoch",
    "epochs",
    "step",
    "steps",
    "loss",
    "examples_per_second",
    "elapsed",
    "eta",
    "train_seconds",
    "global_step",
    "examples",
}


def _sets(overrides: list[str]) -> list[str]:
    return [arg for item in overrides for arg in ("--set", item)]


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as handle:
        return {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118


@pytest.fixture(scope="module")
def fast_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two epochs of four steps, a progress record after every step."""
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("runs") / "fast"
    train(TINY, FAST, out=run, device="cpu", progress_every=1e-9)
    return run


def test_progress_records_sit_between_epoch_records_and_totals_survive_a_resume(
    fast_run: Path, tmp_path: Path
) -> None:
    records = _records(fast_run)
    progress = [r for r in records if r["event"] == "progress"]
    assert [r["event"] for r in records] == (["progress"] * 4 + ["epoch"]) * 2
    assert all(set(r) == PROGRESS_FIELDS for r in progress)
    assert [(r["epoch"], r["step"], r["steps"], r["global_step"]) for r in progress] == [
        (e, k, 4, 4 * (e - 1) + k) for e in (1, 2) for k in (1, 2, 3, 4)
    ]
    assert [r["examples"] for r in progress] == [8 * k for k in range(1, 9)]
    assert all(r["eta"] >= 0 and r["examples_per_second"] > 0 and r["epochs"] == 2 for r in progress)
    assert progress[3]["eta"] == 0
    epochs = epoch_records(records)
    assert [(r["epoch"], r["examples"], r["global_step"]) for r in epochs] == [(1, 32, 4), (2, 64, 8)]
    assert 0 < epochs[0]["train_seconds"] < epochs[1]["train_seconds"]
    line = progress_line(progress[1])
    assert line.startswith("epoch 1/2  step 2/4  loss ") and "ex/s" in line and "ETA" in line

    header = checkpoints.read_header(fast_run / "model.safetensors")
    best = next(r for r in epochs if r["epoch"] == header["training"]["epoch"])
    assert header["training"]["examples"] == best["examples"]
    assert header["training"]["train_seconds"] >= best["train_seconds"] > 0

    # A resumed run counts from the start of the run; the log keeps what its state had seen.
    run = tmp_path / "resumed"
    train(TINY, FAST, out=run, device="cpu", progress_every=0)
    first = load_state(run / "state" / "last.safetensors")
    with open(run / "log.jsonl", "a") as handle:  # written after the last state by a killed run
        handle.write(json.dumps({**progress[0], "epoch": 3, "global_step": 9}) + "\n")
    summary = train(TINY, [*FAST, "train.epochs=3"], out=run, resume=True, device="cpu", progress_every=1e-9)
    records = _records(run)
    assert [r["event"] for r in records] == ["epoch", "epoch", *["progress"] * 4, "epoch"]
    assert [r["global_step"] for r in records[2:6]] == [9, 10, 11, 12]
    assert [r["examples"] for r in records[2:6]] == [72, 80, 88, 96]
    assert records[2]["train_seconds"] > first["elapsed"]
    assert summary["steps"] == 12 and summary["examples"] == 96 and summary["seconds"] > first["elapsed"]
    assert load_state(run / "state" / "last.safetensors")["examples"] == 96


@pytest.mark.parametrize(
    ("name", "code"),
    [("SIGTERM", 143), pytest.param("SIGINT", 130, marks=pytest.mark.slow)],
)
def test_a_signal_saves_the_state_and_resume_finishes_the_run(tmp_path: Path, name: str, code: int) -> None:
    overrides = [*FAST, "train.epochs=4"]  # 16 steps: the signal lands in the first epoch
    reference = tmp_path / "reference"
    train(TINY, overrides, out=reference, device="cpu", progress_every=0)
    run = tmp_path / "stopped"
    command = [sys.executable, "-m", "separate", "train", str(TINY), "--out", str(run), "--device", "cpu"]
    command += ["--progress-every", "0.01", *_sets(overrides)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = process.stderr.readline()
    assert first.startswith("epoch 1/4  step 1/4  loss "), first + process.communicate()[1]
    process.send_signal(getattr(signal, name))
    _, err = process.communicate(timeout=240)
    assert process.returncode == code, err
    state_path = run / "state" / "last.safetensors"
    lines = err.strip().splitlines()
    assert lines[-1] == f"interrupted: state saved to {state_path}; continue with --resume", err
    assert "Traceback" not in err
    stopped = load_state(state_path)
    assert stopped["global_step"] < 16 and stopped["examples"] == 8 * stopped["global_step"]

    result = run_cli("train", str(TINY), "--out", str(run), "--resume", "--device", "cpu", *_sets(overrides))
    assert result.returncode == 0, result.stderr.decode()
    done = result.stderr.decode().splitlines()[-1]  # longer than 80 columns: not wrapped in a pipe
    assert done.startswith("done: 4 epochs") and done.endswith(f"model: {run / 'model.safetensors'}"), done
    for file in ("model.safetensors", "state/last.safetensors"):
        first_run, second_run = _tensors(reference / file), _tensors(run / file)
        assert all(torch.equal(first_run[key], second_run[key]) for key in first_run), file


def test_export_turns_a_state_into_a_release_checkpoint(
    fast_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    best = tmp_path / "best.safetensors"
    assert cli_main(["train", "--export", str(fast_run), "-o", str(best)]) == 0
    assert f"wrote {best}: convtasnet" in capsys.readouterr().err
    release = fast_run / "model.safetensors"
    header = checkpoints.read_header(best)
    assert header == checkpoints.read_header(release)
    root = header["training"]["data"]["root"]
    assert root is None or "/" not in root  # a folder name, not the training machine's path
    ours, theirs = _tensors(best), _tensors(release)
    assert all(torch.equal(ours[key], theirs[key]) for key in theirs)

    half = tmp_path / "last-half.safetensors"
    args = ["train", "--export", str(fast_run), "--state", "last", "-o", str(half), "--half", "--json"]
    assert cli_main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["state"] == "last" and summary["epoch"] == 2 and summary["steps"] == 8
    assert summary["examples"] == 64 and summary["half"] and summary["bytes"] == half.stat().st_size
    assert set(summary["metrics"]) == {"valid_loss", "valid_si_snri"}
    last = load_state(fast_run / "state" / "last.safetensors")["model"]
    exported = _tensors(half)
    assert all(t.dtype == torch.float16 for t in exported.values() if t.is_floating_point())
    assert torch.equal(exported["encoder.conv.weight"], last["encoder.conv.weight"].half())
    assert checkpoints.load(half) is not None

    for args, message in (
        (["train", "--export", str(fast_run)], "--export needs -o"),
        (["train", str(TINY), "--export", str(fast_run), "-o", str(best)], "takes no RECIPE"),
        (["train", "--export", str(tmp_path / "none"), "-o", str(best)], "does not exist"),
        (["train", "--export", str(fast_run), "--state", "first", "-o", str(best)], "--state must be one of"),
        (["train", str(TINY), "--half"], "--state and --half go with --export"),
    ):
        assert cli_main(args) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err


def test_a_monitor_window_picks_the_best_smoothed_epoch() -> None:
    noisy = [5.0, 1.0, 6.0, 3.0, 2.5, 2.5]  # one lucky epoch (1), then a steady improvement
    single, smoothed = EarlyStopping(), EarlyStopping(window=3)
    for epoch, value in enumerate(noisy):
        single.update(value, epoch)
        smoothed.update(value, epoch)
    assert single.best_epoch == 1
    assert smoothed.best_epoch == 5 and smoothed.best == pytest.approx(8.0 / 3)
    resumed = EarlyStopping(window=3)
    resumed.load_state_dict(smoothed.state_dict())
    assert resumed.update(2.0, 6) and resumed.best == pytest.approx(7.0 / 3)
    legacy = EarlyStopping()
    legacy.load_state_dict({"best": 1.0, "best_epoch": 1, "bad_epochs": 0})  # states before the window
    assert legacy.recent == [] and not legacy.update(2.0, 2)


def test_monitor_window_trains_and_old_configs_without_it_still_resume(tmp_path: Path) -> None:
    run = tmp_path / "smooth"
    train(TINY, [*FAST, "train.monitor_window=2", "train.monitor=si_snri"], out=run, progress_every=0)
    records = epoch_records(_records(run))
    assert records[1]["smoothed_valid_si_snri"] == pytest.approx(
        (records[0]["valid_si_snri"] + records[1]["valid_si_snri"]) / 2
    )
    header = checkpoints.read_header(run / "model.safetensors")
    assert "smoothed_valid_si_snri" in header["metrics"]

    legacy = tmp_path / "legacy"
    train(TINY, FAST, out=legacy, progress_every=0)
    config = json.loads((legacy / "config.json").read_text())
    del config["train"]["monitor_window"]  # as written before the key existed
    (legacy / "config.json").write_text(json.dumps(config))
    assert differences(config, resolve_recipe(TINY, FAST)) == []
    assert differences(config, resolve_recipe(TINY, [*FAST, "train.monitor_window=3"])) == [
        "train.monitor_window"
    ]
    summary = train(TINY, [*FAST, "train.epochs=3"], out=legacy, resume=True, progress_every=0)
    assert summary["epochs"] == 3


def test_check_says_amp_runs_only_on_cuda(capsys: pytest.CaptureFixture) -> None:
    assert cli_main(["train", str(TINY), "--check", "--device", "cpu"]) == 0
    out = capsys.readouterr().err
    assert "amp: off (train.amp is used only on CUDA" in out and "'amp'" not in out
    assert cli_main(["train", str(TINY), "--check", "--device", "cpu", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["amp"].startswith("off")
    assert cli_main(["train"]) == 2  # no arguments: the help
