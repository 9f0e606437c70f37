"""``separate train``: tiny learns, its run folder is usable, resume is exact, NaNs stop it, DDP works."""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors import safe_open

from separate import checkpoints
from separate.cli import main as cli_main
from separate.data import write_synthetic_corpus
from separate.errors import SeparateError
from separate.training import TrainingDiverged, train
from separate.training import data as data_setup
from separate.training.components import load_initial_weights
from separate.training.objective import Objective
from separate.training.progress import epoch_records
from separate.training.schedules import DPTNetSchedule, EarlyStopping, PlateauSchedule, StepSchedule
from separate.training.state import is_training_state, load_state, save_state
from tests.conftest import run_cli, tiny_model, write_audio

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "examples" / "recipes" / "tiny.toml"
#: Four steps of 8 examples per epoch and 16 validation items: about half a second per epoch.
FAST = ["data.train.n_items=32", "data.valid.n_items=16", "train.epochs=2"]


def _sets(overrides: list[str]) -> list[str]:
    return [arg for item in overrides for arg in ("--set", item)]


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as handle:
        return {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118


def _assert_identical(a: Path, b: Path) -> None:
    first, second = _tensors(a), _tensors(b)
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


# ------------------------------------------------------------------ units


def test_state_files_round_trip_every_kind_of_value(tmp_path: Path) -> None:
    random.seed(3)
    np.random.seed(4)
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "optimizer": {
            "state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.randn(4)}},
            "groups": [{"betas": (0.9, 0.99)}],
        },
        "floats": [math.inf, -1.5, 1e-300],
        "none": None,
        "__tensor__": "a key that looks like a tag",
    }
    path = save_state(tmp_path / "s.safetensors", state)
    assert is_training_state(path) and not list(tmp_path.glob(".*partial"))
    back = load_state(path)
    random.setstate(back["python"])
    np.random.set_state(back["numpy"])
    assert isinstance(back["python"], tuple)
    assert torch.equal(back["torch"], state["torch"])
    assert list(back["optimizer"]["state"]) == [0]
    assert torch.equal(back["optimizer"]["state"][0]["exp_avg"], state["optimizer"]["state"][0]["exp_avg"])
    assert back["optimizer"]["groups"][0]["betas"] == (0.9, 0.99)
    assert back["floats"] == [math.inf, -1.5, 1e-300] and back["none"] is None
    assert back["__tensor__"] == "a key that looks like a tag"
    tiny_path = tmp_path / "model.safetensors"
    checkpoints.save(tiny_model(), tiny_path)
    assert not is_training_state(tiny_path)
    with pytest.raises(SeparateError, match="not a training state"):
        load_state(tiny_path)


def _optimizer(lr: float = 1.0) -> torch.optim.Optimizer:
    return torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def test_plateau_halves_after_patience_bad_epochs_and_resumes() -> None:
    optimizer = _optimizer()
    schedule = PlateauSchedule(optimizer, factor=0.5, patience=3)
    rates = []
    for value in [5.0, 4.0, 4.0, 4.5, 4.2, 4.1, 4.0, 4.0, 3.0]:
        schedule.after_epoch(value)
        rates.append(schedule.lr)
    assert rates == [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25]
    copy = PlateauSchedule(_optimizer(0.25), factor=0.5, patience=3)
    copy.load_state_dict(schedule.state_dict())
    for value in (3.5, 3.5, 3.5):
        schedule.after_epoch(value)
        copy.after_epoch(value)
    assert schedule.lr == copy.lr == 0.125


def test_step_and_dptnet_schedules_follow_the_papers() -> None:
    optimizer = _optimizer(1e-3)
    step = StepSchedule(optimizer, step_size=2, gamma=0.96)
    optimizer.step()
    rates = []
    for _ in range(5):
        rates.append(step.lr)
        step.after_epoch(0.0)
    assert rates == pytest.approx([1e-3, 1e-3, 0.96e-3, 0.96e-3, 0.96**2 * 1e-3])
    optimizer = _optimizer()
    dptnet = DPTNetSchedule(optimizer, d_model=64, warmup_steps=4000)
    dptnet.before_step(epoch=0)
    assert dptnet.lr == pytest.approx(64**-0.5 * 4000**-1.5)
    assert dptnet.rate(4000, 0) == pytest.approx(64**-0.5 * 4000**-0.5)
    assert dptnet.rate(4001, 0) == dptnet.rate(9000, 1) == pytest.approx(4e-4)
    assert dptnet.rate(9000, 2) == dptnet.rate(9000, 3) == pytest.approx(4e-4 * 0.98)
    early = EarlyStopping(patience=2)
    assert [early.update(v, e) for e, v in enumerate([3.0, 2.0, 2.0, 2.5])] == [True, True, False, False]
    assert early.should_stop and early.best_epoch == 1


def test_epoch_sampler_shards_draws_fixed_counts_and_skips() -> None:
    dataset = list(range(10))
    shards = [data_setup.EpochSampler(dataset, 2, rank, seed=7) for rank in (0, 1)]
    for sampler in shards:
        sampler.set_epoch(3)
    first, second = (list(sampler) for sampler in shards)
    assert len(first) == len(second) == 5 and sorted(first + second) == list(range(10))
    fixed = data_setup.EpochSampler(dataset, 1, 0, seed=7, examples_per_epoch=25)
    fixed.set_epoch(1)
    drawn = list(fixed)
    assert len(drawn) == 25 and sorted(drawn[:10]) == list(range(10))
    fixed.start = 20
    assert list(fixed) == drawn[20:] and len(fixed) == 5
    fixed.set_epoch(2)
    fixed.start = 0
    assert list(fixed) != drawn


def test_channels_fold_into_the_batch_and_sources_follow_the_model() -> None:
    mix, sources = torch.randn(3, 2, 50), torch.randn(3, 4, 2, 50)
    lengths = torch.tensor([50, 40, 30])
    folded_mix, folded_sources, folded_lengths = data_setup.fit_channels(mix, sources, lengths, 1)
    assert folded_mix.shape == (6, 1, 50) and folded_sources.shape == (6, 4, 1, 50)
    assert torch.equal(folded_sources[3, :, 0], sources[1, :, 1]) and torch.equal(folded_mix[3, 0], mix[1, 1])
    assert folded_lengths.tolist() == [50, 50, 40, 40, 30, 30]
    with pytest.raises(SeparateError, match="2-channel"):
        data_setup.fit_channels(mix[:, :1], sources[:, :, :1], lengths, 2)
    assert data_setup.source_order(
        ["drums", "bass", "other", "vocals"], ["vocals", "bass", "drums", "other"]
    ) == [
        3,
        1,
        0,
        2,
    ]
    assert data_setup.source_order(["s1", "s2"], ["s1", "s2"]) is None
    assert data_setup.source_order(["source-02", "source-01"], ["vocals", "accompaniment"]) is None
    with pytest.raises(SeparateError, match="3 sources"):
        data_setup.source_order(["a", "b", "c"], ["s1", "s2"])


def test_validation_si_snri_matches_the_evaluation_metric() -> None:
    from separate.evaluation import speech_scores
    from separate.training.objective import si_snr_improvement

    generator = torch.Generator().manual_seed(5)
    sources = torch.randn(2, 3, 1, 400, generator=generator)
    mix = sources.sum(1)
    est = sources[:, [2, 0, 1]] + 0.3 * torch.randn(2, 3, 1, 400, generator=generator)
    ours = si_snr_improvement(est, sources, mix, torch.tensor([400, 400]), permute=True)
    theirs = [speech_scores(est[b], sources[b], mix[b], with_sdr=False).si_snri for b in range(2)]
    assert ours.tolist() == pytest.approx(theirs, abs=1e-4)
    fixed = si_snr_improvement(est, sources, mix, torch.tensor([400, 400]), permute=False)
    assert (fixed < ours).all()


# ------------------------------------------------------------------ training runs


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The tiny recipe for 4 full epochs (64 steps of 8 half-second mixtures)."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("runs") / "tiny"
    started = time.perf_counter()
    summary = train(TINY, ["train.epochs=4"], out=out, device="cpu")
    summary["wall"] = time.perf_counter() - started
    return out, summary


def test_tiny_recipe_learns_to_separate(tiny_run: tuple[Path, dict]) -> None:
    run, summary = tiny_run
    records = epoch_records(_records(run))
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]
    assert summary["best"]["valid_si_snri"] > 0.5, summary
    assert records[-1]["valid_si_snri"] > records[0]["valid_si_snri"]
    assert records[-1]["train_loss"] < records[0]["train_loss"]
    for record in records:
        assert {"train_loss", "valid_loss", "valid_si_snri", "lr", "seconds", "steps"} <= set(record)
        assert record["steps"] == 16


def test_run_folder_holds_config_states_and_a_release_checkpoint(
    tiny_run: tuple[Path, dict], tmp_path: Path
) -> None:
    run, summary = tiny_run
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["epochs"] == 4 and config["recipe"]["name"] == "tiny"
    last, best = (
        load_state(run / "state" / "last.safetensors"),
        load_state(run / "state" / "best.safetensors"),
    )
    assert last["epoch"] == 4 and best["epoch"] == summary["best_epoch"]
    model = checkpoints.load(run / "model.safetensors")
    header = checkpoints.read_header(run / "model.safetensors")
    assert header["training"]["epoch"] == summary["best_epoch"] and header["training"]["recipe"] == "tiny"
    assert header["metrics"]["valid_si_snri"] == pytest.approx(summary["best"]["valid_si_snri"])
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, best["model"][name])
    song = write_audio(tmp_path / "mix.wav", 0.7)
    result = run_cli(
        "audio", str(song), "--model", str(run / "model.safetensors"), "--out", str(tmp_path / "sep")
    )
    assert result.returncode == 0, result.stderr.decode()
    stems = sorted((tmp_path / "sep" / "mix").glob("*.wav"))
    assert [p.stem for p in stems] == ["s1", "s2"] and sf.info(stems[0]).frames == 5600
    fresh = tiny_model(n_filters=32, kernel_size=16, stride=8, bottleneck=16, hidden=32, skip=16, blocks=3)
    load_initial_weights(fresh, str(run / "state" / "last.safetensors"))
    assert torch.equal(fresh.state_dict()["encoder.conv.weight"], last["model"]["encoder.conv.weight"])
    load_initial_weights(fresh, str(run / "model.safetensors"))
    assert torch.equal(fresh.state_dict()["encoder.conv.weight"], best["model"]["encoder.conv.weight"])
    tuned = train(
        TINY,
        ["train.epochs=1", "train.lr=1e-12", f"train.init={run / 'model.safetensors'}"],
        out=tmp_path / "ft",
    )
    assert tuned["best"]["valid_si_snri"] == pytest.approx(summary["best"]["valid_si_snri"], abs=0.01)
    assert (
        checkpoints.read_header(tmp_path / "ft" / "model.safetensors")["training"]["init"]
        == "model.safetensors"
    )


def test_cli_refuses_bad_input_with_one_line(
    tiny_run: tuple[Path, dict], capsys: pytest.CaptureFixture
) -> None:
    run, _ = tiny_run
    for args, message in (
        (["train", "no/such/recipe.toml"], "does not exist"),
        (
            ["train", str(TINY), "--set", "train.learning_rate=1", "--check"],
            "unknown key 'train.learning_rate'",
        ),
        (["train", str(TINY), "--out", str(run)], "already holds a run; pass --resume"),
        (
            ["train", str(TINY), "--out", str(run), "--resume", "--set", "train.lr=0.1"],
            "differs from its config.json in train.lr",
        ),
    ):
        assert cli_main(args) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("separate: error: ") and message in err, err
    assert cli_main(["train", str(TINY), "--check", "--json"]) == 0
    checked = json.loads(capsys.readouterr().out)
    assert checked["architecture"] == "convtasnet" and checked["config"]["loss"]["name"] == "pit"


@pytest.mark.parametrize(
    "mid_epoch", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["epoch", "mid-epoch"]
)
def test_a_killed_run_resumes_to_the_same_weights(tmp_path: Path, mid_epoch: bool) -> None:
    overrides = [*FAST, "train.epochs=4", *(["train.save_every_steps=3"] if mid_epoch else [])]
    reference = tmp_path / "reference"
    train(TINY, overrides, out=reference, device="cpu")
    run = tmp_path / "killed"
    command = [
        sys.executable,
        "-m",
        "separate",
        "train",
        str(TINY),
        "--out",
        str(run),
        "--device",
        "cpu",
        *_sets(overrides),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not (run / "state" / "last.safetensors").exists():
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "no state was written"
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    interrupted = load_state(run / "state" / "last.safetensors")
    assert interrupted["epoch"] < 4
    if mid_epoch:
        assert (interrupted["epoch"], interrupted["step_in_epoch"]) == (0, 3)
    result = run_cli(
        "train", str(TINY), "--out", str(run), "--resume", "--device", "cpu", "--json", *_sets(overrides)
    )
    assert result.returncode == 0, result.stderr.decode()
    summary = json.loads(result.stdout)
    assert summary["epochs"] == 4 and summary["steps"] == 16
    _assert_identical(reference / "model.safetensors", run / "model.safetensors")
    _assert_identical(reference / "state" / "last.safetensors", run / "state" / "last.safetensors")
    drop = ("seconds", "train_seconds")
    resumed = [{k: v for k, v in r.items() if k not in drop} for r in epoch_records(_records(run))]
    expected = [{k: v for k, v in r.items() if k not in drop} for r in epoch_records(_records(reference))]
    assert resumed == expected


def test_a_nan_loss_stops_with_one_line_and_keeps_the_last_good_state(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = 0
    forward = Objective.forward

    def nan_at_step_6(self: Objective, *batch: torch.Tensor) -> tuple[torch.Tensor, dict]:
        nonlocal steps
        steps += 1
        loss, metrics = forward(self, *batch)
        return (loss * float("nan") if steps == 6 else loss), metrics

    monkeypatch.setattr(Objective, "forward", nan_at_step_6)  # every training step goes through it
    run = tmp_path / "nan"
    overrides = [*FAST, "train.epochs=3"]
    command = ["train", str(TINY), "--out", str(run), "--device", "cpu", "--progress-every", "0"]
    assert cli_main([*command, *_sets(overrides)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and err[0].startswith("epoch 1:"), err  # the epoch line, then the error
    assert err[1].startswith(
        "separate: error: training diverged: the training loss is nan at epoch 2, step 2"
    )
    state = load_state(run / "state" / "last.safetensors")
    assert (state["epoch"], state["step_in_epoch"], state["global_step"]) == (1, 0, 4)
    assert [r["epoch"] for r in epoch_records(_records(run))] == [1]
    assert checkpoints.load(run / "model.safetensors") is not None
    with pytest.raises(TrainingDiverged, match="no state had been saved yet"):
        train(
            TINY, [*FAST, "train.lr=1e30", "train.clip_grad_norm=0"], out=tmp_path / "overflow", device="cpu"
        )


def test_runs_whose_config_holds_the_removed_debug_table_still_resume(tmp_path: Path) -> None:
    run = tmp_path / "legacy"
    train(TINY, FAST, out=run, device="cpu")
    config = json.loads((run / "config.json").read_text())
    assert "debug" not in config
    config["debug"] = {"nan_at_step": 0}  # what runs started before the hook was removed hold
    (run / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    summary = train(TINY, [*FAST, "train.epochs=3"], out=run, resume=True, device="cpu")
    assert summary["epochs"] == 3
    summary = train(run / "config.json", ["train.epochs=4"], out=run, resume=True, device="cpu")
    assert summary["epochs"] == 4


def test_a_run_started_from_init_weights_resumes_after_the_file_is_gone(
    tiny_run: tuple[Path, dict], tmp_path: Path
) -> None:
    start = tmp_path / "start.safetensors"
    shutil.copyfile(tiny_run[0] / "model.safetensors", start)
    run = tmp_path / "tuned"
    train(TINY, [*FAST, f"train.init={start}"], out=run, device="cpu")
    start.unlink()
    for init in (f"train.init={start}", "train.init="):  # the recipe as it was, or without the file
        summary = train(TINY, [*FAST, "train.epochs=3", init], out=run, resume=True, device="cpu")
    assert summary["epochs"] == 3


def test_early_stopping_ends_a_run_that_stops_improving(tmp_path: Path) -> None:
    frozen = [*FAST, "train.epochs=6", "train.lr=1e-30", "train.early_stop=2"]  # weights never move
    summary = train(TINY, frozen, out=tmp_path / "frozen", device="cpu")
    assert summary["stopped"] == "early_stop" and summary["epochs"] == 3 and summary["best_epoch"] == 1
    losses = [r["valid_loss"] for r in epoch_records(_records(tmp_path / "frozen"))]
    assert losses[0] == losses[1] == losses[2]


def test_attentionpit_encoder_trains_with_the_model_but_ships_only_in_the_state(tmp_path: Path) -> None:
    run = tmp_path / "attention"
    train(TINY, [*FAST, "train.epochs=1", "loss.name=attentionpit", "loss.lam=0.5"], out=run, device="cpu")
    state = load_state(run / "state" / "last.safetensors")
    encoder = {name: t for name, t in state["loss"].items() if t.is_floating_point()}
    assert encoder and all(name.startswith("attention.") for name in encoder)
    torch.manual_seed(0)
    from separate.losses import build_loss

    fresh = build_loss("attentionpit", 2).state_dict()
    assert any(not torch.equal(encoder[name], fresh[name]) for name in encoder)  # it was trained
    assert not any(name.startswith("attention") for name in _tensors(run / "model.safetensors"))
    params = state["optimizer"]["param_groups"][0]["params"]
    model = checkpoints.load(run / "model.safetensors")
    assert len(params) == len(list(model.parameters())) + len(encoder)  # one optimizer, model + g_phi


def test_stereo_music_is_folded_and_reordered_for_a_mono_model(tmp_path: Path) -> None:
    overrides = [
        *FAST,
        "train.epochs=1",
        'model.sources=["vocals", "bass", "drums", "other"]',
        "data.options.kind=music",
        "data.options.channels=2",
        "loss.name=sisnr",
    ]
    summary = train(TINY, overrides, out=tmp_path / "music", device="cpu")
    assert math.isfinite(summary["best"]["valid_loss"])
    header = checkpoints.read_header(tmp_path / "music" / "model.safetensors")
    assert header["sources"] == ["vocals", "bass", "drums", "other"] and header["audio_channels"] == 1


def test_file_corpora_with_whole_utterances_a_fraction_and_an_extra_corpus(tmp_path: Path) -> None:
    write_synthetic_corpus(tmp_path / "wsj", "wsj0mix", n_items=12, seed=1, duration=(0.6, 1.2))
    write_synthetic_corpus(tmp_path / "libri", "librimix", n_items=8, seed=2, duration=(0.6, 1.2))
    extra = f'[{{layout = "librimix", root = "{tmp_path / "libri"}", split = "train", segment = 0.5}}]'
    overrides = [
        "train.epochs=1",
        "data.layout=wsj0mix",
        f"data.root={tmp_path / 'wsj'}",
        "data.options={}",
        "data.train.n_items=null",
        "data.valid.n_items=null",
        "data.train.segment=0.5",
        "data.valid_batch_size=2",
        "data.fraction=0.5",
        f"data.train_extra={extra}",
    ]
    summary = train(TINY, overrides, out=tmp_path / "run", device="cpu")
    assert summary["steps"] == 2  # half of 12 + half of 8 = 10 crops in batches of 8
    record = epoch_records(_records(tmp_path / "run"))[0]
    assert math.isfinite(record["valid_loss"]) and math.isfinite(record["valid_si_snri"])


@pytest.mark.slow
def test_two_process_ddp_on_gloo_writes_a_usable_checkpoint(tmp_path: Path) -> None:
    run = tmp_path / "ddp"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "separate",
        "train",
        str(TINY),
        "--out",
        str(run),
        "--device",
        "cpu",
        "--json",
        *_sets(FAST),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    summary = json.loads(result.stdout)
    assert summary["world_size"] == 2 and summary["epochs"] == 2
    assert summary["steps"] == 4  # 32 items / (2 processes x batch 8) per epoch
    assert [r["epoch"] for r in epoch_records(_records(run))] == [1, 2]
    model = checkpoints.load(run / "model.safetensors")
    with torch.no_grad():
        assert model(torch.randn(1, 1, 801)).shape == (1, 2, 1, 801)
    assert len(load_state(run / "state" / "last.safetensors")["rng"]) == 2
