"""Inference paths (fp32, bf16, int8, compile, onnxruntime, onnxruntime-int8): each against eager
fp32, the fallback with one warning, the registry's ``fast_path``, option checking from the shell,
ONNX export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import registry_entry, run_cli, tiny_model, write_audio

from separate import checkpoints, fastpath, models
from separate.engine import Separator
from separate.errors import SeparateError
from separate.fastpath import BENCH_PATHS, FastPath

#: A small LTL (gated encoder, LSTM, transformer layer, LSTM): every layer type the paths touch.
TINY_LTL = dict(
    layout="1_trans_0",
    n_filters=32,
    segment_length=16,
    lstm_hidden=16,
    n_transformer_layers=1,
    ffn_dim=32,
    sources=["s1", "s2"],
    sample_rate=8000,
)

#: Smallest SNR (dB) of a path's stems against eager fp32's: float reordering (compile, onnxruntime)
#: keeps it near float precision; bf16 and int8 round weights or activations to 8 significant bits.
MIN_SNR_DB = {
    "fp32": 100.0,
    "compile": 60.0,
    "onnxruntime": 60.0,
    "bf16": 20.0,
    "int8": 20.0,
    "onnxruntime-int8": 20.0,
}


def _tiny_ltl() -> models.SeparationModel:
    torch.manual_seed(0)
    return models.build("ltl", **TINY_LTL).eval()


def _snr_db(estimate: torch.Tensor, reference: torch.Tensor) -> float:
    error = (estimate.double() - reference.double()).pow(2).sum()
    return float("inf") if error == 0 else float(10 * torch.log10(reference.double().pow(2).sum() / error))


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SEPARATE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.parametrize(
    "label",
    [
        *(label for label in BENCH_PATHS if label != "compile"),
        pytest.param("compile", marks=pytest.mark.slow),  # inductor compiles C++: minutes on 2 cores
    ],
)
def test_each_path_matches_eager_fp32(label: str, cache: Path) -> None:
    """The engine's output on each path against eager fp32 on 1.5 s (3 chunks + a shifted last one):
    SNR at least MIN_SNR_DB[path]. A path this machine or model cannot take is skipped with the reason."""
    model = _tiny_ltl()
    path = FastPath.parse(label)
    reason = fastpath.unavailable(model, path, torch.device("cpu"))
    if reason is not None:
        pytest.skip(f"{label}: {reason}")
    mix = 0.1 * torch.randn(1, 12000, generator=torch.Generator().manual_seed(1))
    expected = Separator(model, "cpu", segment=0.5, batch_size=2).separate_tensor(mix, 8000)
    got = Separator(model, "cpu", segment=0.5, batch_size=2, path=path).separate_tensor(mix, 8000)
    assert got.shape == expected.shape and got.dtype == torch.float32
    assert _snr_db(got, expected) >= MIN_SNR_DB[label], label


def test_onnxruntime_exports_the_chunk_length_only(cache: Path) -> None:
    """One graph, for the engine's chunk length, whatever the batch; an input shorter than one chunk runs
    eager (no graph per file length) and still gives the model's output."""
    pytest.importorskip(
        "onnxruntime", reason="onnxruntime is not installed (a dependency: pip install onnxruntime onnx)"
    )
    model = tiny_model()
    separator = Separator(model, "cpu", segment=0.25, batch_size=2, path=FastPath(backend="onnxruntime"))
    separator.separate_tensor(0.1 * torch.randn(1, 5000), 8000)  # 3 chunks of 2000: batches of 2 and 1
    short = 0.1 * torch.randn(1, 1000)
    got = separator.separate_tensor(short, 8000)  # one chunk of 1000
    separator.separate_tensor(0.1 * torch.randn(2, 5000), 8000)  # stereo on a mono model: batches of 4, 2
    graphs = sorted(path.name.rsplit("-", 1)[1] for path in (cache / "onnx").glob("*.onnx"))
    assert graphs == ["2000.onnx"]  # the batch stays free
    expected = Separator(model, "cpu", segment=0.25, batch_size=2).separate_tensor(short, 8000)
    torch.testing.assert_close(got, expected)
    assert separator.path_for(1000, 8000) == "fp32"  # what `separate audio --json` reports per file
    assert separator.path_for(5000, 8000) == separator.path_for(4000, 16000) == "onnxruntime"


def test_onnxruntime_int8_quantizes_the_lstm_and_matrix_products(cache: Path) -> None:
    """The int8 graph is cached beside the fp32 export; its LSTM and weight products are dynamically
    quantized, its wide convolutions (the encoder's) stay fp32."""
    pytest.importorskip(
        "onnxruntime", reason="onnxruntime is not installed (a dependency: pip install onnxruntime onnx)"
    )
    import onnx

    path = FastPath(precision="int8", backend="onnxruntime")
    assert path.label == "onnxruntime-int8" and FastPath.parse(path.label) == path
    Separator(_tiny_ltl(), "cpu", segment=0.25, path=path).separate_tensor(0.1 * torch.randn(1, 4000), 8000)
    graphs = sorted(p.name.split("-", 1)[1] for p in (cache / "onnx").glob("*.onnx"))
    assert graphs == ["2000-int8.onnx", "2000.onnx"]
    ops = {node.op_type for node in onnx.load(next((cache / "onnx").glob("*-int8.onnx"))).graph.node}
    assert {"DynamicQuantizeLSTM", "MatMulInteger"} <= ops and not {"LSTM", "Gemm"} & ops
    assert "Conv" in ops  # the encoder; attention's activation products stay MatMul


def test_onnx_export_turns_one_slope_prelus_into_leaky_relus(tmp_path: Path) -> None:
    """Conv-TasNet's PReLUs export as LeakyReLU (fused by onnxruntime) and compute the same stems."""
    pytest.importorskip(
        "onnxruntime", reason="onnxruntime is not installed (a dependency: pip install onnxruntime onnx)"
    )
    import onnx

    from separate.backends.onnx import check_export

    model = tiny_model()
    assert any(isinstance(module, torch.nn.PReLU) for module in model.modules())
    result = check_export(model, tmp_path / "m.onnx", 2000)
    ops = {node.op_type for node in onnx.load(tmp_path / "m.onnx").graph.node}
    assert "LeakyRelu" in ops and "PRelu" not in ops and result["max_abs_difference"] < 1e-5
    assert any(isinstance(module, torch.nn.PReLU) for module in model.modules())  # the model is unchanged


def test_onnxruntime_falls_back_where_the_export_fails(
    cache: Path, capfd: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model the exporter cannot write (here: an exporter that raises) runs eager, after one warning."""
    pytest.importorskip(
        "onnxruntime", reason="onnxruntime is not installed (a dependency: pip install onnxruntime onnx)"
    )

    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError(
            "Exporting the operator 'aten::frobnicate' to ONNX opset version 17 is not supported"
        )

    monkeypatch.setattr(torch.onnx, "export", refuse)
    model = tiny_model()
    mix = 0.1 * torch.randn(1, 5000, generator=torch.Generator().manual_seed(1))
    expected = Separator(model, "cpu", segment=0.25, batch_size=2).separate_tensor(mix, 8000)
    onnx = Separator(model, "cpu", segment=0.25, batch_size=2, path=FastPath(backend="onnxruntime"))
    torch.testing.assert_close(onnx.separate_tensor(mix, 8000), expected)
    warnings = capfd.readouterr().err.splitlines()
    assert len(warnings) == 1 and warnings[0].startswith("separate: warning: onnxruntime is not available")
    assert "aten::frobnicate" in warnings[0] and warnings[0].endswith("running eager fp32")
    assert onnx.run.failure is not None and not list(cache.glob("onnx/*.onnx"))


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("dprnn", dict(n_filters=16, chunk_size=20, n_blocks=1, hidden_size=16)),
        ("galr", dict(n_filters=16, chunk_size=20, n_blocks=1, hidden_size=16, bottleneck=16)),
        ("tdanet", dict(bottleneck_channels=16, hidden_channels=32, n_unfoldings=1, ffn_channels=32)),
    ],
)
def test_dual_path_and_tdanet_models_export(name: str, kwargs: dict, tmp_path: Path) -> None:
    """Dual-path segmentation (half-chunk reshapes) and TDANet's pooling export and match torch."""
    pytest.importorskip(
        "onnxruntime", reason="onnxruntime is not installed (a dependency: pip install onnxruntime onnx)"
    )
    from separate.backends.onnx import check_export

    torch.manual_seed(0)
    model = models.build(name, **kwargs).eval()
    assert check_export(model, tmp_path / f"{name}.onnx", 3001)["max_abs_difference"] < 1e-4


def test_unavailable_path_falls_back_to_fp32_with_one_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    warnings: list[str] = []
    conv_only = tiny_model()
    got = fastpath.choose(conv_only, torch.device("cpu"), precision="int8", warn=warnings.append)
    assert got == FastPath() and len(warnings) == 1
    assert "no LSTM or Linear layers" in warnings[0] and "eager fp32" in warnings[0]
    monkeypatch.setattr(fastpath, "cpu_has_bf16", lambda: False)
    warnings.clear()
    assert fastpath.choose(conv_only, torch.device("cpu"), "bf16", warn=warnings.append) == FastPath()
    assert len(warnings) == 1 and "BF16" in warnings[0]
    monkeypatch.setattr(fastpath, "c_compiler", lambda: None)
    warnings.clear()
    assert fastpath.choose(conv_only, torch.device("cpu"), compile=True, warn=warnings.append) == FastPath()
    assert len(warnings) == 1 and "C++ compiler" in warnings[0]


def test_registry_default_that_cannot_run_falls_back_quietly() -> None:
    """A default path from the registry (no option given) that this model cannot take: fp32, no line."""
    warnings: list[str] = []
    got = fastpath.choose(
        tiny_model(), torch.device("cpu"), default=FastPath(precision="int8"), warn=warnings.append
    )
    assert got == FastPath() and warnings == []


def test_options_override_the_registry_default() -> None:
    model, cpu = _tiny_ltl(), torch.device("cpu")
    default = FastPath(precision="int8")
    assert fastpath.choose(model, cpu, default=default) == default
    assert fastpath.choose(model, cpu, precision="fp32", default=default) == FastPath()
    assert FastPath.parse("onnxruntime") == FastPath(backend="onnxruntime")
    assert FastPath.parse("bf16+compile").label == "bf16+compile"
    assert "fp32 or int8 export" in fastpath.unavailable(model, FastPath.parse("onnxruntime-bf16"), cpu)
    with pytest.raises(SeparateError, match="unknown path 'fp16'"):
        FastPath.parse("fp16")


def test_registry_fast_path_is_read_and_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ckpt = checkpoints.save(tiny_model(), tmp_path / "m.safetensors")
    entry = "[models]\n" + registry_entry("m", ckpt, fast_path='{ backend = "onnxruntime" }')
    registry = tmp_path / "reg.toml"
    registry.write_text(entry)
    monkeypatch.setenv("SEPARATE_REGISTRY", str(registry))
    assert checkpoints.default_fast_path("m") == FastPath(backend="onnxruntime")
    assert checkpoints.default_fast_path(str(ckpt)) is None
    for bad, message in (
        ('{ precision = "fp16" }', "unknown precision 'fp16'"),
        ('{ speed = "max" }', "unknown key"),
        ('{ compile = "yes" }', "compile must be true or false"),
    ):
        registry.write_text(entry.replace('{ backend = "onnxruntime" }', bad))
        with pytest.raises(SeparateError, match=message):
            checkpoints.registry()


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--precision", "fp16"], "unknown precision 'fp16' (choose fp32 | bf16 | int8)"),
        (["--backend", "tensorrt"], "unknown backend 'tensorrt' (choose torch | onnxruntime)"),
    ],
)
def test_bad_path_options_are_one_line(
    tmp_path: Path, tiny_checkpoint: Path, option: list[str], message: str
) -> None:
    song = write_audio(tmp_path / "a.wav", 0.5)
    result = run_cli("audio", str(song), "-m", str(tiny_checkpoint), "-o", str(tmp_path / "o"), *option)
    stderr = result.stderr.decode()
    assert result.returncode == 1 and stderr == f"separate: error: {message}\n"
    assert not (tmp_path / "o").exists()


def test_audio_json_reports_the_path_each_file_ran_on(
    tmp_path: Path, tiny_checkpoint: Path, cache: Path
) -> None:
    """On the onnxruntime backend, a file shorter than one chunk runs eager: its entry says fp32."""
    pytest.importorskip(
        "onnxruntime", reason="onnxruntime is not installed (a dependency: pip install onnxruntime onnx)"
    )
    import json

    short, long = write_audio(tmp_path / "short.wav", 0.1), write_audio(tmp_path / "long.wav", 0.6)
    result = run_cli(
        "audio", str(short), str(long), "-m", str(tiny_checkpoint), "-o", str(tmp_path / "o"),
        "--backend", "onnxruntime", "--segment", "0.25", "--json",
        env={"SEPARATE_CACHE": str(cache)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    report = json.loads(result.stdout)
    assert report["path"] == "onnxruntime"
    assert [(Path(f["input"]).name, f["path"]) for f in report["files"]] == [
        ("short.wav", "fp32"),
        ("long.wav", "onnxruntime"),
    ]


def test_audio_falls_back_with_one_warning_line(tmp_path: Path, tiny_checkpoint: Path) -> None:
    song = write_audio(tmp_path / "a.wav", 0.5)
    result = run_cli(
        "audio", str(song), "-m", str(tiny_checkpoint), "-o", str(tmp_path / "o"), "--precision", "int8"
    )
    lines = result.stderr.decode().splitlines()
    assert result.returncode == 0, lines
    warnings = [line for line in lines if line.startswith("separate: warning:")]
    assert warnings == [
        "separate: warning: int8 is not available (the model has no LSTM or Linear layers to quantize); "
        "running eager fp32"
    ]


def test_export_onnx_from_the_shell(tmp_path: Path, tiny_checkpoint: Path) -> None:
    pytest.importorskip(
        "onnxruntime", reason="onnxruntime is not installed (a dependency: pip install onnxruntime onnx)"
    )
    import onnx
    import onnxruntime

    out = tmp_path / "tiny.onnx"
    result = run_cli("export", str(tiny_checkpoint), "--onnx", str(out), "--segment", "0.5")
    assert result.returncode == 0, result.stderr.decode()
    metadata = {entry.key: entry.value for entry in onnx.load(str(out)).metadata_props}
    assert metadata == {"sample_rate": "8000", "sources": "s1,s2", "audio_channels": "1", "chunk": "4000"}
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    mix = 0.1 * np.random.default_rng(0).standard_normal((3, 1, 4000)).astype(np.float32)
    with torch.inference_mode():
        expected = checkpoints.load(tiny_checkpoint)(torch.from_numpy(mix)).numpy()
    np.testing.assert_allclose(session.run(None, {"mix": mix})[0], expected, atol=1e-5)


def test_export_refuses_a_bad_name(tmp_path: Path, tiny_checkpoint: Path) -> None:
    result = run_cli("export", str(tiny_checkpoint), "--onnx", str(tmp_path / "x.bin"))
    assert result.returncode == 1
    assert (
        result.stderr.decode() == f"separate: error: --onnx names an .onnx file, got '{tmp_path / 'x.bin'}'\n"
    )
