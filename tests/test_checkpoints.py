"""Checkpoint format, registry, Hub cache and the refusals."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
from conftest import run_cli, tiny_model
from safetensors import safe_open
from safetensors.torch import load_file

from separate import checkpoints
from separate.errors import SeparateError

#: Checkpoints saved by the code of commit 14f910f (before the package was reorganised into one folder
#: per pipeline), with each model's output on one fixed input (``outputs.safetensors``).
PRE_REORG = Path(__file__).parent / "fixtures" / "pre_reorg"


@pytest.mark.parametrize("name", ["convtasnet", "ltl", "galr", "tdanet", "tdanet-mixing"])
def test_checkpoints_saved_before_the_reorganisation_load_and_separate_alike(name: str) -> None:
    path = PRE_REORG / f"{name}.safetensors"
    with safe_open(str(path), framework="pt") as handle:
        stored = sorted(handle.keys())
    model = checkpoints.load(path)
    assert sorted(model.state_dict()) == stored  # parameter names unchanged
    reference = load_file(str(PRE_REORG / "outputs.safetensors"))
    with torch.no_grad():
        output = model(reference["mix"])
    # Identical up to the float rounding of the CPU's kernels (bit-identical on the machine that saved them).
    expected = reference[name]
    torch.testing.assert_close(output, expected, rtol=1e-5, atol=1e-6 * float(expected.abs().max()))


def test_round_trip_is_bit_exact(tmp_path: Path) -> None:
    model = tiny_model(sources=3).eval()
    path = checkpoints.save(model, tmp_path / "m.safetensors", training={"epochs": 1})
    loaded = checkpoints.load(path)
    mix = torch.randn(2, 1, 333)
    with torch.no_grad():
        assert torch.equal(model(mix), loaded(mix))
    assert loaded.sources == ["s1", "s2", "s3"]
    header = checkpoints.read_header(path)
    assert header["architecture"] == "convtasnet" and header["training"] == {"epochs": 1}


def test_header_is_json_under_separate_key(tmp_path: Path) -> None:
    path = checkpoints.save(tiny_model(), tmp_path / "m.safetensors")
    with safe_open(str(path), framework="pt") as handle:
        header = json.loads(handle.metadata()["separate"])
    assert header["format"] == 1 and header["sample_rate"] == 8000 and header["kwargs"]["n_filters"] == 16


def test_half_checkpoint_loads_as_float32(tmp_path: Path) -> None:
    path = checkpoints.save(tiny_model(), tmp_path / "m.safetensors", half=True)
    model = checkpoints.load(path)
    assert all(p.dtype == torch.float32 for p in model.parameters())


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".ckpt"])
def test_pickle_checkpoints_are_refused(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"model{suffix}"
    torch.save({"x": torch.zeros(1)}, path)
    with pytest.raises(SeparateError, match="pickle"):
        checkpoints.load(path)


def test_bad_hash_is_refused(tmp_path: Path) -> None:
    path = checkpoints.save(tiny_model(), tmp_path / "m.safetensors")
    with pytest.raises(SeparateError, match="sha256 mismatch"):
        checkpoints.load(path, sha256="0" * 64)
    assert checkpoints.load(path, sha256=checkpoints.file_sha256(path)) is not None


def test_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "junk.safetensors"
    path.write_bytes(b"definitely not safetensors")
    with pytest.raises(SeparateError, match="not a readable"):
        checkpoints.load(path)


def _write_registry(path: Path, body: str) -> Path:
    path.write_text("[models]\n" + body)
    return path


def test_registry_bundled_entry_and_bad_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ckpt = checkpoints.save(tiny_model(), tmp_path / "m.safetensors")
    digest = checkpoints.file_sha256(ckpt)
    entry = f"""
[models.good]
architecture = "convtasnet"
task = "speech"
sources = ["s1", "s2"]
sample_rate = 8000
bundled = "{ckpt}"
sha256 = "{digest}"
default = true

[models.tampered]
architecture = "convtasnet"
task = "speech"
sources = ["s1", "s2"]
sample_rate = 8000
bundled = "{ckpt}"
sha256 = "{"f" * 64}"
"""
    monkeypatch.setenv("SEPARATE_REGISTRY", str(_write_registry(tmp_path / "reg.toml", entry)))
    assert checkpoints.load_model("good").sources == ["s1", "s2"]
    assert checkpoints.default_model_name() == "good"
    with pytest.raises(SeparateError, match="sha256 mismatch"):
        checkpoints.load_model("tampered")
    with pytest.raises(SeparateError, match="unknown model 'nope'"):
        checkpoints.load_model("nope")


def test_registry_role_name_takes_its_targets_file_and_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ckpt = checkpoints.save(tiny_model(), tmp_path / "m.safetensors")
    target = f"""
[models.family-2spk]
architecture = "convtasnet"
task = "speech"
sources = ["s1", "s2"]
sample_rate = 8000
bundled = "{ckpt}"
sha256 = "{checkpoints.file_sha256(ckpt)}"
refine = true
metrics = {{ si_snri = 3.5 }}
"""
    role = '[models.role-2spk]\nsame_as = "family-2spk"\ndescription = "the best"\ndefault = true\n'
    monkeypatch.setenv("SEPARATE_REGISTRY", str(_write_registry(tmp_path / "reg.toml", role + target)))
    entries = checkpoints.registry()
    assert list(entries) == ["role-2spk", "family-2spk"]
    role_entry, family = entries["role-2spk"], entries["family-2spk"]
    assert role_entry.same_as == "family-2spk" and role_entry.description == "the best"
    assert (role_entry.sha256, role_entry.metrics, role_entry.refine) == (
        family.sha256,
        {"si_snri": 3.5},
        True,
    )
    assert role_entry.default and not family.default
    assert checkpoints.default_model_name() == "role-2spk" and checkpoints.default_refine("role-2spk")
    assert checkpoints.load_model("role-2spk").sources == ["s1", "s2"]
    listing = run_cli("models", "list", env={"SEPARATE_REGISTRY": str(tmp_path / "reg.toml")})
    assert "role-2spk (= family-2spk)" in listing.stdout.decode()

    for body, problem in (
        ('[models.role]\nsame_as = "nope"\n', "names no model entry"),
        ('[models.role]\nsame_as = "family-2spk"\nsha256 = "0"\n' + target, "unknown key"),
    ):
        monkeypatch.setenv("SEPARATE_REGISTRY", str(_write_registry(tmp_path / "bad.toml", body)))
        with pytest.raises(SeparateError, match=problem):
            checkpoints.registry()


def _fake_hub_cache(cache: Path, repo: str, filename: str, source: Path, commit: str) -> None:
    """The on-disk layout huggingface_hub reads: models--org--name/{refs/main, snapshots/<commit>/file}."""
    root = cache / f"models--{repo.replace('/', '--')}"
    snapshot = root / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / filename).write_bytes(source.read_bytes())
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(commit)


def test_hub_download_offline_from_cache(tmp_path: Path) -> None:
    ckpt = checkpoints.save(tiny_model(), tmp_path / "m.safetensors")
    cache = tmp_path / "hub"
    commit = "a" * 40
    _fake_hub_cache(cache, "acme/tiny", "tiny.safetensors", ckpt, commit)
    digest = checkpoints.file_sha256(ckpt)
    registry = _write_registry(
        tmp_path / "reg.toml",
        f"""
[models.hubbed]
architecture = "convtasnet"
task = "speech"
sources = ["s1", "s2"]
sample_rate = 8000
hub = {{ repo = "acme/tiny", filename = "tiny.safetensors", revision = "{commit}" }}
sha256 = "{digest}"
""",
    )
    env = {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache), "SEPARATE_REGISTRY": str(registry)}
    by_url = run_cli("models", "info", "hf://acme/tiny/tiny.safetensors", "--json", env=env)
    assert by_url.returncode == 0, by_url.stderr.decode()
    assert json.loads(by_url.stdout)["architecture"] == "convtasnet"
    by_revision = run_cli("models", "download", f"hf://acme/tiny/tiny.safetensors@{commit}", env=env)
    assert by_revision.returncode == 0 and commit in by_revision.stdout.decode()
    by_name = run_cli("models", "download", "hubbed", "--json", env=env)
    assert by_name.returncode == 0, by_name.stderr.decode()
    missing = run_cli("models", "download", "hf://acme/other/x.safetensors", env=env)
    assert missing.returncode == 1
    assert missing.stderr.decode().count("\n") == 1 and "offline" in missing.stderr.decode()


def test_hf_url_parsing() -> None:
    assert checkpoints.parse_hf_url("hf://a/b/c/d.safetensors@v1") == ("a/b", "c/d.safetensors", "v1")
    with pytest.raises(SeparateError):
        checkpoints.parse_hf_url("hf://a/b")


def test_weights_that_do_not_match_the_header_are_named(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    model = tiny_model()
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    state.pop("decoder.deconv.weight")
    state["extra.weight"] = torch.zeros(2)
    header = json.dumps({"format": 1, "architecture": "convtasnet", "kwargs": model.config})
    save_file(state, str(tmp_path / "bad.safetensors"), metadata={"separate": header})
    with pytest.raises(SeparateError, match="missing decoder.deconv.weight; unexpected extra.weight"):
        checkpoints.load(tmp_path / "bad.safetensors")


@pytest.mark.parametrize(
    "body, message",
    [
        (
            'architecture = "convtasnet"\ntask = "speech"\nsources = ["s1"]\nbundled = "x.safetensors"\n',
            "missing",
        ),
        ('sample_rate = 8000\nsha256 = "0"\ncolour = "red"\n', "unknown key(s) colour"),
        ('hub = { repo = "a/b" }\n', "missing hub.filename"),
        ('hub = { repo = "a/b", filename = "m.safetensors", branch = "x" }\n', "unknown key(s) hub.branch"),
    ],
)
def test_registry_entries_with_missing_or_unknown_keys(
    tmp_path: Path, monkeypatch, capsys, body: str, message: str
) -> None:
    from separate.cli import main

    base = (
        'architecture = "convtasnet"\ntask = "speech"\nsources = ["s1"]\nsample_rate = 8000\nsha256 = "0"\n'
    )
    text = body if "bundled" in body else base + body
    if "bundled" not in text and "hub" not in text:
        text += 'bundled = "x.safetensors"\n'
    text = "[models.broken]\n" + "\n".join(dict.fromkeys(text.splitlines())) + "\n"
    registry = tmp_path / "reg.toml"
    registry.write_text(text)
    monkeypatch.setenv("SEPARATE_REGISTRY", str(registry))
    assert main(["models", "list"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "registry entry 'broken'" in err and message in err, err


@pytest.mark.parametrize("env", [{"HF_HUB_OFFLINE": "1"}, {"HF_ENDPOINT": "http://127.0.0.1:9"}])
def test_hub_offline_fails_fast_in_one_line(tmp_path: Path, monkeypatch, env: dict[str, str]) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    start = time.monotonic()
    with pytest.raises(SeparateError, match=r"not in the Hugging Face cache .*\(offline: ") as raised:
        checkpoints.resolve("hf://acme/missing/model.safetensors")
    assert time.monotonic() - start < 2.0
    assert "\n" not in str(raised.value)
