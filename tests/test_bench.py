"""`separate bench`: the model table, the engine benchmarks, failed measurements and bad input."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch
from conftest import TINY_CONVTASNET, run_cli
from safetensors.torch import save_file

from separate import bench, checkpoints, models
from separate.bench.complexity import count_parameters
from separate.bench.measure import measure_engine
from separate.cli import main
from separate.engine import Separator

MODEL_COLUMNS = {
    "model",
    "parameters",
    "macs_per_second",
    "forward_rtf",
    "train_rtf",
    "forward_peak_mb",
    "train_peak_mb",
    "forward_seconds",
    "train_seconds",
    "sample_rate",
    "samples",
    "batch",
    "device",
    "threads",
}


def _one_line_error(capsys: pytest.CaptureFixture[str], *fragments: str) -> None:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("separate: error:"), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err


def test_model_rows_have_every_column(tiny_checkpoint: Path, capsys) -> None:
    code = main(
        [
            "bench",
            "--model",
            str(tiny_checkpoint),
            "--presets",
            "waveunet-lite",
            "--seconds",
            "0.1",
            "--repeats",
            "2",
            "--threads",
            "1",
            "--device",
            "cpu",
            "--json",
        ]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["machine"]["threads"] == 1 and report["machine"]["cpu_count"] >= 1
    rows = {row["model"]: row for row in report["models"]}
    assert set(rows) == {str(tiny_checkpoint), "waveunet-lite"}
    expected_parameters = {
        str(tiny_checkpoint): count_parameters(checkpoints.load(tiny_checkpoint)),
        "waveunet-lite": count_parameters(models.build("waveunet-lite")),
    }
    for name, row in rows.items():
        assert MODEL_COLUMNS <= set(row), MODEL_COLUMNS - set(row)
        assert row["parameters"] == expected_parameters[name]
        assert row["macs_per_second"] > 0
        assert 0 < row["forward_seconds"] < row["train_seconds"] * 10
        audio_seconds = row["samples"] / row["sample_rate"]
        assert row["forward_rtf"] == pytest.approx(row["forward_seconds"] / audio_seconds)
        assert row["train_rtf"] > 0 and row["threads"] == 1 and row["device"] == "cpu"
        assert row["samples"] == round(0.1 * row["sample_rate"])
        assert row["forward_baseline_mb"] <= row["forward_peak_mb"] <= row["process_peak_rss_mb"] + 1
        assert 50 < row["train_peak_mb"] <= row["process_peak_rss_mb"] + 1
    assert rows["waveunet-lite"]["sample_rate"] == 22050 and rows[str(tiny_checkpoint)]["sample_rate"] == 8000
    # Conv-TasNet's MACs grow linearly with the input: the 10 k-parameter model costs about 10 MMAC/s.
    assert 1e6 < rows[str(tiny_checkpoint)]["macs_per_second"] < 1e8


@pytest.mark.slow
def test_engine_batching_memory_flags() -> None:
    result = run_cli(
        "bench",
        "--engine",
        "--engine-seconds",
        "3",
        "--segment",
        "0.5",
        "--batching",
        "--batching-seconds",
        "2",
        "--batching-size",
        "3",
        "--memory",
        "--memory-seconds",
        "6",
        "--memory-base-seconds",
        "1",
        "--threads",
        "1",
        "--device",
        "cpu",
        "--json",
    )
    assert result.returncode == 0, result.stderr.decode()
    report = json.loads(result.stdout)
    assert "models" not in report
    [engine], [batching], [memory] = report["engine"], report["batching"], report["memory"]
    assert engine["model"] == batching["model"] == bench.ENGINE_TARGET.label
    assert (engine["chunk"], engine["hop"], engine["n_chunks"]) == (4000, 3000, 8)
    assert engine["forward_calls"] == math.ceil(engine["n_chunks"] / engine["batch_size"]) == 2
    assert engine["ratio"] == pytest.approx(engine["engine_seconds"] / engine["forward_seconds"])
    assert engine["ratio"] > 0 and engine["input_seconds"] == 3
    assert batching["batch_size"] == 3 and batching["speedup"] > 0
    assert batching["speedup"] == pytest.approx(batching["batch1_seconds"] / batching["batched_seconds"])
    assert memory["model"] == bench.MEMORY_TARGET.label
    assert (memory["short_seconds"], memory["long_seconds"]) == (1, 6)
    assert memory["ratio"] == pytest.approx(memory["long_peak_rss_mb"] / memory["short_peak_rss_mb"])
    assert 0.5 < memory["ratio"] < 2 and memory["short_peak_rss_mb"] > 50


def test_measure_engine_in_process_matches_the_plan() -> None:
    target = bench.Target("tiny", "preset", "convtasnet", TINY_CONVTASNET)
    result = measure_engine(target.spec(), "cpu", input_seconds=2.5, batch_size=2, segment=0.4, overlap=0.5)
    plan = Separator(models.build("convtasnet", **TINY_CONVTASNET), "cpu", 0.4, 0.5, 2).plan(20000)
    assert (result["chunk"], result["hop"], result["n_chunks"]) == plan
    assert result["forward_calls"] == math.ceil(plan[2] / 2)
    assert result["ratio"] > 0 and result["engine_rtf"] > 0


def test_failed_measurement_is_a_row_and_exit_1(tmp_path: Path, tiny_checkpoint: Path, capsys) -> None:
    broken = tmp_path / "broken.safetensors"
    header = checkpoints.read_header(tiny_checkpoint)
    save_file({"unrelated": torch.zeros(1)}, str(broken), metadata={"separate": json.dumps(header)})
    code = main(["bench", "--model", str(broken), "--seconds", "0.1", "--repeats", "1", "--threads", "1"])
    assert code == 1
    captured = capsys.readouterr()
    err = captured.err
    assert f"| {broken} " in captured.out and "failed" in captured.out  # labelled as the user named it
    assert f"{broken}: error: '{broken}' does not match its own architecture" in err
    assert err.strip().splitlines()[-1].startswith("separate: error: 1 measurement(s) failed")


def test_losses_table(capsys) -> None:
    code = main(
        [
            "bench",
            "--losses",
            "--seconds",
            "0.01",
            "--repeats",
            "1",
            "--batch",
            "2",
            "--device",
            "cpu",
            "--json",
        ]
    )
    assert code == 0
    rows = json.loads(capsys.readouterr().out)["losses"]
    assert {row["method"] for row in rows} == {"exhaustive", "hungarian", "sinkpit", "attentionpit"}
    assert all(row["batch"] == 2 and row["samples"] == 80 and row["iters_per_s"] > 0 for row in rows)


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--presets", "convtasnet,nonesuch"], ["unknown preset", "nonesuch", "convtasnet"]),
        (["--presets", " , "], ["--presets needs"]),
        (["--presets", "convtasnet", "--device", "tpu"], ["unknown device 'tpu'"]),
        (["--model", "missing.safetensors"], ["does not exist"]),
        (["--presets", "convtasnet", "--seconds", "0"], ["seconds must be positive"]),
        (["--engine", "--engine-seconds", "-1"], ["engine-seconds must be positive"]),
        (["--paths", "--path-list", "fp32,fp16"], ["unknown path 'fp16'", "onnxruntime"]),
        (["--paths", "--paths-seconds", "0"], ["paths-seconds must be positive"]),
        (["--against", "spleeter"], ["--against knows only 'demucs'"]),
        ([], ["nothing to measure"]),
    ],
)
def test_bad_input_is_one_line_and_exit_1(args: list[str], fragments: list[str], capsys) -> None:
    assert main(["bench", *args]) == 1
    _one_line_error(capsys, *fragments)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_one_line_error(capsys) -> None:
    assert main(["bench", "--presets", "convtasnet", "--device", "cuda"]) == 1
    _one_line_error(capsys, "CUDA is not available")


def test_not_a_checkpoint_fails_before_measuring(tmp_path: Path, capsys) -> None:
    fake = tmp_path / "fake.safetensors"
    fake.write_bytes(b"not a checkpoint")
    assert main(["bench", "--model", str(fake)]) == 1
    _one_line_error(capsys, "not a readable safetensors checkpoint")


def test_bsseval_rows_compare_with_museval(capsys) -> None:
    pytest.importorskip("museval")
    code = main(["bench", "--bsseval", "--bsseval-seconds", "1", "--threads", "1", "--json"])
    assert code == 0
    rows = json.loads(capsys.readouterr().out)["bsseval"]
    assert [(row["excerpt"], row["sources"], row["channels"]) for row in rows] == [
        ("1 s, 2 sources", 2, 2),
        ("1 s, 4 sources", 4, 2),
    ]
    for row in rows:
        assert row["frames"] == 1 and row["threads"] == 1
        assert row["ours_cpu_seconds"] > 0 and row["museval_cpu_seconds"] > 0 and row["ratio_cpu"] > 0
        assert row["max_abs_difference_db"] < 1e-6


def test_bsseval_table(capsys) -> None:
    from separate.cli.bench import _print_report

    row = {"excerpt": "30 s, 2 sources", "frames": 30, "ours_cpu_seconds": 0.5, "museval_cpu_seconds": 5.0}
    row |= {"ratio_cpu": 10.0, "max_abs_difference_db": 0.0}
    machine = {"cpu": "cpu", "cpu_count": 2, "device": "cpu", "threads": 1, "torch": "2"}
    _print_report({"machine": machine, "bsseval": [row]})
    out = capsys.readouterr().out  # tables go to stdout
    assert "ours over museval" in out
    assert "| 30 s, 2 sources |     30 |  0.500 |      5.00 |  10.0 |     0.0e+00 |" in out


def test_bsseval_bad_length_is_one_line_error(capsys) -> None:
    assert main(["bench", "--bsseval", "--bsseval-seconds", "0"]) == 1
    _one_line_error(capsys, "bsseval-seconds must be positive")


def test_bsseval_without_museval_is_one_line_error(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *args: None if name == "museval" else find_spec(name, *args)
    )
    assert main(["bench", "--bsseval"]) == 1
    _one_line_error(capsys, "museval", "pip install")


def test_bsseval_difference_counts_nan_on_one_side_as_infinite() -> None:
    from separate.bench.bsseval import largest_difference

    nan, inf = math.nan, math.inf
    mine = torch.tensor([[1.0, nan, inf, 2.0]])
    assert largest_difference([mine], [torch.tensor([[1.5, nan, inf, 2.0]])]) == 0.5
    assert largest_difference([mine], [torch.tensor([[1.0, 3.0, inf, 2.0]])]) == inf


def test_paths_table_rows_per_path(tiny_checkpoint: Path) -> None:
    """fp32 against itself, int8 (unavailable on a Conv-TasNet: a reason, not a number) and onnxruntime."""
    result = run_cli(
        "bench",
        "--paths",
        "--model",
        str(tiny_checkpoint),
        "--path-list",
        "fp32,int8,onnxruntime",
        "--paths-seconds",
        "2",
        "--segment",
        "0.5",
        "--threads",
        "1",
        "--json",
    )
    assert result.returncode == 0, result.stderr.decode()
    rows = {row["path"]: row for row in json.loads(result.stdout)["paths"]}
    assert list(rows) == ["fp32", "int8", "onnxruntime"]
    fp32 = rows["fp32"]
    assert fp32["quality_delta"] == 0 and fp32["snr_vs_fp32"] is None  # identical stems: inf -> null
    assert fp32["speedup"] == pytest.approx(fp32["fp32_seconds"] / fp32["path_seconds"])
    assert fp32["quality_mixtures"] == 3 and fp32["quality_metric"] == "SI-SNRi"
    assert rows["int8"] == {**rows["int8"], "reason": "the model has no LSTM or Linear layers to quantize"}
    if importlib.util.find_spec("onnxruntime") is None:
        assert "onnxruntime is not installed" in rows["onnxruntime"]["reason"]
    else:
        assert abs(rows["onnxruntime"]["quality_delta"]) < 0.01 and rows["onnxruntime"]["snr_vs_fp32"] > 60


def test_against_demucs_without_demucs_says_why(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "demucs" else real(name, *a)
    )
    assert main(["bench", "--against", "demucs", "--threads", "1"]) == 1
    err = capsys.readouterr().err
    assert "demucs is not installed: pip install 'separate[demucs]'" in err
    assert err.strip().splitlines()[-1].startswith("separate: error: 1 measurement(s) failed")


def test_against_demucs_same_model_and_chunks() -> None:
    pytest.importorskip("demucs.apply", reason="demucs is not installed (pip install 'separate[demucs]')")
    from separate.bench.paths import measure_against_demucs

    target = bench.Target("tiny", "preset", "convtasnet", TINY_CONVTASNET)
    result = measure_against_demucs(target.spec(), "cpu", input_seconds=2.0, segment=0.5)
    assert result["path"] == "fp32" and result["segment"] == 0.5
    assert all(len(runs) == 2 for runs in result["runs"].values())
    assert result["ratio"] == pytest.approx(result["demucs_seconds"] / result["path_seconds"])
