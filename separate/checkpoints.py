"""Checkpoints: one safetensors file with the model's JSON config in its header; the model registry.

Nothing here unpickles: safetensors holds raw tensors and a string header, so loading a file,
downloaded or not, can never run code. Registry entries (``checkpoints.toml``) pin a sha256 that
every load checks.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import tomllib
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from separate.errors import SeparateError
from separate.fastpath import FastPath, from_table
from separate.models import build
from separate.models.base import SeparationModel
from separate.runtime import atomic_write

FORMAT_VERSION = 1
HEADER_KEY = "separate"
PICKLE_SUFFIXES = {".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin", ".tar"}
PACKAGE_DIR = Path(__file__).resolve().parent
#: The registry ships inside the package (a link to the top-level ``checkpoints.toml`` in a checkout).
DEFAULT_REGISTRY = PACKAGE_DIR / "checkpoints.toml"
HUB_KEYS = {"repo", "filename", "revision"}
#: Seconds to wait for a TCP connection to the Hub before working from the cache alone.
HUB_PROBE_SECONDS = 1.5


def save(model: SeparationModel, path: str | os.PathLike[str], half: bool = False, **metadata: Any) -> Path:
    """Write ``model`` to ``path`` (.safetensors), atomically. ``metadata`` goes into the JSON header
    (e.g. ``training={...}``, ``metrics={...}``). ``half=True`` stores floating weights as float16."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise SeparateError(f"checkpoint names must end in .safetensors, got '{path.name}'")
    header = {
        "format": FORMAT_VERSION,
        "architecture": type(model).architecture,
        "kwargs": model.config,
        "sample_rate": model.sample_rate,
        "sources": list(model.sources),
        "audio_channels": model.audio_channels,
        "causal": model.causal,
        **metadata,
    }
    tensors = {}
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().to("cpu").contiguous().clone()
        if half and tensor.is_floating_point():
            tensor = tensor.half()
        tensors[name] = tensor
    with atomic_write(path) as partial:
        save_file(tensors, str(partial), metadata={HEADER_KEY: json.dumps(header)})
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(partial, 0o666 & ~umask)  # safetensors writes 0600; checkpoints are for sharing
    return path


def read_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON header of a checkpoint, without loading its weights."""
    path = _checked_path(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            raw = (handle.metadata() or {}).get(HEADER_KEY)
    except (SafetensorError, OSError, ValueError) as problem:
        raise SeparateError(f"'{path}' is not a readable safetensors checkpoint ({problem})") from None
    if raw is None:
        raise SeparateError(f"'{path}' has no '{HEADER_KEY}' header: not a separate checkpoint")
    try:
        header = json.loads(raw)
    except json.JSONDecodeError:
        raise SeparateError(f"'{path}' has a corrupt '{HEADER_KEY}' header") from None
    if header.get("format") != FORMAT_VERSION:
        raise SeparateError(
            f"'{path}' has checkpoint format {header.get('format')}, expected {FORMAT_VERSION}"
        )
    return header


def load(path: str | os.PathLike[str], sha256: str | None = None) -> SeparationModel:
    """Rebuild the model stored at ``path`` in eval mode; check ``sha256`` when given."""
    path = _checked_path(path)
    if sha256 is not None:
        verify_sha256(path, sha256)
    header = read_header(path)
    try:
        model = build(header["architecture"], **header["kwargs"])
    except (KeyError, TypeError, ValueError) as problem:
        raise SeparateError(f"'{path}' has a header this version cannot build: {problem}") from None
    with safe_open(str(path), framework="pt") as handle:
        state = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    expected = model.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    wrong_shape = sorted(n for n in set(state) & set(expected) if state[n].shape != expected[n].shape)
    problems = [
        f"{label} {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}"
        for label, names in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong_shape))
        if names
    ]
    if problems:
        raise SeparateError(f"'{path}' does not match its own architecture: {'; '.join(problems)}")
    model.load_state_dict({name: tensor.to(expected[name].dtype) for name, tensor in state.items()})
    model.eval()
    model.checkpoint_header = header
    return model


def _checked_path(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise SeparateError(
            f"refusing '{path.name}': pickle checkpoints can run code when loaded; convert it to .safetensors"
        )
    if not path.exists():
        raise SeparateError(f"checkpoint '{path}' does not exist")
    if path.is_dir():
        raise SeparateError(f"checkpoint '{path}' is a directory")
    return path


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str) -> None:
    actual = file_sha256(path)
    if actual != expected.lower():
        raise SeparateError(
            f"sha256 mismatch for '{path.name}': expected {expected[:12]}…, got {actual[:12]}…"
        )


@dataclass
class RegistryEntry:
    """One named pretrained model of ``checkpoints.toml``."""

    name: str
    architecture: str
    task: str
    sources: list[str]
    sample_rate: int
    sha256: str
    bundled: str | None = None
    hub: dict[str, str] | None = None
    description: str = ""
    default: bool = False
    parameters: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    card: dict[str, Any] = field(default_factory=dict)
    #: The inference path measured fastest at equal quality: ``{precision, backend, compile}``.
    fast_path: dict[str, Any] = field(default_factory=dict)
    #: Ratio-mask refinement on by default (``separate audio --refine``), where it measured better.
    refine: bool = False
    #: Seconds per chunk by default (``separate audio --segment``), where it measured better than the
    #: model's own ``default_segment``; None keeps the model's.
    segment: float | None = None
    #: For a role name (``speech-2spk-8k``: the best two-speaker model): the entry whose file and
    #: figures it takes; such a table holds only ``same_as``, ``description`` and ``default``.
    same_as: str = ""

    @property
    def location(self) -> str:
        if self.bundled:
            return f"bundled:{self.bundled}"
        assert self.hub is not None
        return f"hf://{self.hub['repo']}/{self.hub['filename']}@{self.hub.get('revision', 'main')}"


def registry(path: str | os.PathLike[str] | None = None) -> dict[str, RegistryEntry]:
    """Named models from ``path`` (default: ``$SEPARATE_REGISTRY`` or the shipped ``checkpoints.toml``)."""
    path = Path(path or os.environ.get("SEPARATE_REGISTRY") or DEFAULT_REGISTRY)
    try:
        tables = tomllib.loads(path.read_text()).get("models", {})
    except (OSError, tomllib.TOMLDecodeError) as problem:
        raise SeparateError(f"cannot read the model registry '{path}': {problem}") from None
    entries = {}
    known = {f.name for f in fields(RegistryEntry)} - {"name"}
    required = {
        f.name for f in fields(RegistryEntry) if f.default is MISSING and f.default_factory is MISSING
    }
    aliases = {}
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise SeparateError(f"registry entry '{name}' in '{path}' is not a table")
        if "same_as" in table:
            aliases[name] = table
            continue
        if "bundled" not in table and "hub" not in table:
            raise SeparateError(f"registry entry '{name}' in '{path}' needs 'bundled' or 'hub'")
        hub = table.get("hub", {})
        if not isinstance(hub, dict):
            raise SeparateError(f"registry entry '{name}' in '{path}': 'hub' must be a table")
        unknown = sorted(set(table) - known) + [f"hub.{key}" for key in sorted(set(hub) - HUB_KEYS)]
        missing = sorted(required - {"name"} - set(table))
        if "hub" in table:
            missing += [f"hub.{key}" for key in ("repo", "filename") if key not in hub]
        if unknown or missing:
            problem = f"unknown key(s) {', '.join(unknown)}" if unknown else f"missing {', '.join(missing)}"
            raise SeparateError(f"registry entry '{name}' in '{path}': {problem}")
        entries[name] = RegistryEntry(name=name, **table)
        from_table(entries[name].fast_path, f"registry entry '{name}' in '{path}': fast_path")
    for name, table in aliases.items():
        entries[name] = _alias(name, table, entries, path)
    return {name: entries[name] for name in tables}


ALIAS_KEYS = {"same_as", "description", "default"}


def _alias(name: str, table: dict, entries: dict[str, RegistryEntry], path: Path) -> RegistryEntry:
    """A role name's entry: the target's file, architecture and figures under ``name``."""
    unknown = sorted(set(table) - ALIAS_KEYS)
    if unknown:
        raise SeparateError(
            f"registry entry '{name}' in '{path}': unknown key(s) {', '.join(unknown)} beside 'same_as'"
        )
    target = entries.get(table["same_as"])
    if target is None:
        raise SeparateError(
            f"registry entry '{name}' in '{path}': 'same_as' names no model entry ('{table['same_as']}')"
        )
    return replace(
        target,
        name=name,
        same_as=target.name,
        description=table.get("description", target.description),
        default=bool(table.get("default", False)),
    )


def fetch(entry: RegistryEntry) -> Path:
    """Local path of a registry entry's file, hash-checked: the copy bundled in the package when it
    is installed, else a download through the Hub cache (``HF_HUB_OFFLINE`` honoured)."""
    if entry.bundled and ((PACKAGE_DIR / entry.bundled).exists() or entry.hub is None):
        path = PACKAGE_DIR / entry.bundled
    else:
        assert entry.hub is not None
        path = hub_download(entry.hub["repo"], entry.hub["filename"], entry.hub.get("revision"))
    verify_sha256(_checked_path(path), entry.sha256)
    return path


def hub_download(repo: str, filename: str, revision: str | None = None) -> Path:
    """``huggingface_hub.hf_hub_download`` (its cache, ``HF_HUB_OFFLINE``, revisions); errors as one line."""
    if Path(filename).suffix.lower() in PICKLE_SUFFIXES:
        _checked_path(filename)
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    why = "offline: HF_HUB_OFFLINE is set" if _hub_offline() else None
    if why is None and not _hub_reachable():
        why = f"offline: no network connection to {_hub_address()[0]}"
    try:
        return Path(
            hf_hub_download(repo_id=repo, filename=filename, revision=revision, local_files_only=bool(why))
        )
    except LocalEntryNotFoundError:
        raise SeparateError(
            f"'{repo}/{filename}' is not in the Hugging Face cache and cannot be downloaded "
            f"({why or 'offline?'})"
        ) from None
    except (HfHubHTTPError, OSError, ValueError) as problem:
        raise SeparateError(f"cannot download '{repo}/{filename}': {str(problem).splitlines()[0]}") from None


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def _hub_address() -> tuple[str, int]:
    from urllib.parse import urlparse

    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    return endpoint.hostname or "huggingface.co", endpoint.port or (80 if endpoint.scheme == "http" else 443)


def _hub_reachable() -> bool:
    """Whether a TCP connection to the Hub opens within :data:`HUB_PROBE_SECONDS` (name lookup
    included, which a socket timeout does not bound, hence the thread)."""
    import socket
    import threading

    opened: list[bool] = []

    def connect() -> None:
        try:
            socket.create_connection(_hub_address(), timeout=HUB_PROBE_SECONDS).close()
            opened.append(True)
        except OSError:
            opened.append(False)

    probe = threading.Thread(target=connect, daemon=True)
    probe.start()
    probe.join(HUB_PROBE_SECONDS)
    return bool(opened and opened[0])


def parse_hf_url(url: str) -> tuple[str, str, str | None]:
    """``hf://org/repo/path/file.safetensors[@revision]`` -> (repo, filename, revision)."""
    rest = url.removeprefix("hf://")
    rest, _, revision = rest.partition("@")
    parts = rest.split("/")
    if len(parts) < 3 or not all(parts):
        raise SeparateError(f"'{url}' is not of the form hf://org/repo/file.safetensors[@revision]")
    return "/".join(parts[:2]), "/".join(parts[2:]), revision or None


def resolve(name: str) -> Path:
    """Path of the checkpoint a user named: registry name, local path or ``hf://`` URL."""
    if name.startswith("hf://"):
        return hub_download(*parse_hf_url(name))
    entries = registry()
    if name in entries:
        return fetch(entries[name])
    if Path(name).suffix or os.sep in name or Path(name).exists():
        return _checked_path(name)
    close = difflib.get_close_matches(name, sorted(entries), n=3, cutoff=0.5)
    if close:
        raise SeparateError(f"unknown model '{name}'; did you mean {' or '.join(close)}?")
    known = ", ".join(sorted(entries)) or "none registered"
    raise SeparateError(
        f"unknown model '{name}' (registered: {known}; or give a .safetensors path or hf:// URL)"
    )


def default_model_name() -> str:
    """The registry entry marked ``default = true`` (used when ``--model`` is not given)."""
    defaults = [entry.name for entry in registry().values() if entry.default]
    if not defaults:
        raise SeparateError("no --model given and the registry names no default model")
    return defaults[0]


def default_fast_path(name: str | os.PathLike[str]) -> FastPath | None:
    """The registry's ``fast_path`` for a model named by its registry name; None for paths and URLs."""
    entry = _named_entry(name)
    return from_table(entry.fast_path) if entry is not None else None


def _named_entry(name: object) -> RegistryEntry | None:
    """The registry entry of a registry name; None for anything else (paths, URLs, loaded models, None)."""
    return registry().get(os.fspath(name)) if isinstance(name, (str, os.PathLike)) else None


def default_refine(name: object) -> bool:
    """The registry's ``refine`` for a model named by its registry name; False for anything else."""
    entry = _named_entry(name)
    return bool(entry.refine) if entry is not None else False


def default_segment(name: object) -> float | None:
    """The registry's ``segment`` (seconds per chunk) for a model named by its registry name; None for
    anything else, or where the entry keeps the model's own."""
    entry = _named_entry(name)
    return entry.segment if entry is not None else None


def separator_defaults(name: object, refine: bool | None, segment: float | None) -> tuple[bool, float | None]:
    """``refine`` and ``segment`` as given; each one left None takes the registry entry's (see
    :func:`default_refine`, :func:`default_segment`)."""
    return (
        default_refine(name) if refine is None else refine,
        default_segment(name) if segment is None else segment,
    )


def load_model(name: str | os.PathLike[str]) -> SeparationModel:
    """Load a model by registry name, local ``.safetensors`` path or ``hf://org/repo/file[@rev]``."""
    return load(resolve(os.fspath(name)))
