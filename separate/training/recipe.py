"""Recipes: TOML files (or a run's ``config.json``) describing one training run, resolved to a plain dict.

A recipe has these tables (see ``examples/recipes/tiny.toml``):

* ``[paper]``: free-form facts about the experiment row it reproduces (``name``, ``table``, ``row``,
  ``dataset``, ``expected = {si_snri = ...}``); recorded in the checkpoint, never used for training.
* ``[model]``: ``preset`` or ``architecture`` plus constructor options (``separate.models.build``).
* ``[loss]``: ``name`` plus options (``separate.losses.build_loss``; ``n_src`` comes from the model).
* ``[data]``: ``layout``, ``root``, batch sizes, loader workers, ``fraction`` of the items used,
  ``options`` shared by both splits, ``[data.train]`` / ``[data.valid]`` (``split`` and per-split
  options) and ``train_extra`` (more training corpora, concatenated).
* ``[train]``: optimiser, schedule (``[train.scheduler]``), clipping, epochs, early stopping, seed, AMP...;
  ``monitor`` (``loss`` or ``si_snri``) averaged over the last ``monitor_window`` epochs picks the best
  epoch (``model.safetensors``, ``state/best``) and drives early stopping.

A ``[debug]`` table (``nan_at_step``, a fault-injection hook that has been removed) may still stand in
recipes and run folders written before; it is read and ignored.

``--set KEY=VALUE`` overrides take dotted keys; VALUE is parsed as a TOML value (``5e-4``, ``true``,
``[1, 2]``, ``"text"``), a bare word is a string, and ``null`` / ``none`` sets None. Fixed tables
(``data`` top level, ``train``) reject unknown keys at once; pass-through tables (``model``,
``loss``, dataset options, ``train.scheduler``) are checked against the constructors they feed.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import tomllib

from separate.errors import SeparateError
from separate.training.schedules import schedule_options

SECTIONS = ("recipe", "paper", "model", "loss", "data", "train")
#: Tables older recipes and run folders may hold, accepted and ignored.
LEGACY_SECTIONS = ("debug",)
#: Tables whose keys are constructor options, checked where they are used.
PASS_THROUGH = {
    ("paper",),
    ("model",),
    ("loss",),
    ("data", "options"),
    ("data", "train"),
    ("data", "valid"),
    ("train", "scheduler"),
    ("recipe",),
}

_NUMBER = (int, float)
#: Fixed keys: (accepted types, default). A default of None means "optional".
SCHEMA: dict[str, dict[str, tuple[tuple[type, ...], Any]]] = {
    "data": {
        "layout": ((str,), None),
        "root": ((str,), None),
        "batch_size": ((int,), 4),
        "valid_batch_size": ((int,), None),
        "num_workers": ((int,), 0),
        "fraction": (_NUMBER, 1.0),
        "options": ((dict,), {}),
        "train": ((dict,), {}),
        "valid": ((dict,), {}),
        "train_extra": ((list,), []),
    },
    "train": {
        "seed": ((int,), 0),
        "epochs": ((int,), 100),
        "steps_per_epoch": ((int,), 0),
        "max_valid_batches": ((int,), 0),
        "optimizer": ((str,), "adam"),
        "lr": (_NUMBER, 1e-3),
        "betas": ((list,), [0.9, 0.999]),
        "eps": (_NUMBER, 1e-8),
        "weight_decay": (_NUMBER, 0.0),
        "clip_grad_norm": (_NUMBER, 0.0),
        "amp": ((bool,), True),
        "amp_dtype": ((str,), "float16"),
        "monitor": ((str,), "loss"),
        "monitor_window": ((int,), 1),
        "early_stop": ((int,), 0),
        "save_every_steps": ((int,), 0),
        "init": ((str,), ""),
        "loss_window": ((int,), 0),
        "scheduler": ((dict,), {"name": "none"}),
    },
}
OPTIMIZERS = ("adam", "adamw")
MONITORS = ("loss", "si_snri")
AMP_DTYPES = ("float16", "bfloat16")
#: Keys that may differ between a run's saved config and the recipe it is resumed with.
RESUMABLE_CHANGES = {
    ("recipe",),
    ("paper",),
    ("train", "epochs"),
    ("train", "save_every_steps"),
    ("train", "init"),  # the starting weights: a resumed run takes its weights from its state
    ("data", "num_workers"),
    ("debug",),  # a legacy table: runs started before it was dropped resume with recipes without it
}


def load_recipe(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The raw tables of a recipe file (``.toml``, or ``.json`` such as a run's ``config.json``)."""
    path = Path(path)
    if not path.is_file():
        raise SeparateError(f"recipe '{path}' does not exist")
    try:
        if path.suffix.lower() == ".json":
            raw = json.loads(path.read_text())
        else:
            raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as problem:
        raise SeparateError(
            f"recipe '{path}' is not valid {path.suffix.lstrip('.') or 'TOML'}: {problem}"
        ) from None
    if not isinstance(raw, dict):
        raise SeparateError(f"recipe '{path}' must hold tables at its top level")
    unknown = sorted(set(raw) - set(SECTIONS) - set(LEGACY_SECTIONS))
    if unknown:
        raise SeparateError(
            f"recipe '{path}' has unknown table(s) {', '.join(unknown)} (known: {', '.join(SECTIONS)})"
        )
    return raw


def parse_value(text: str) -> Any:
    """A ``--set`` value: TOML syntax, ``null``/``none`` for None, anything else a plain string."""
    if text.strip().lower() in ("null", "none"):
        return None
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def _is_pass_through(keys: tuple[str, ...]) -> bool:
    return any(keys[: len(prefix)] == prefix for prefix in PASS_THROUGH)


def apply_override(raw: dict[str, Any], assignment: str) -> None:
    """Apply one ``KEY=VALUE`` to the raw recipe in place."""
    key, sep, text = assignment.partition("=")
    keys = tuple(part.strip() for part in key.split("."))
    if not sep or not all(keys):
        raise SeparateError(
            f"--set expects KEY=VALUE with a dotted key such as train.lr=5e-4, got '{assignment}'"
        )
    if keys[0] not in SECTIONS or keys[0] == "recipe":
        raise SeparateError(f"unknown key '{key}' in --set: '{keys[0]}' is not a recipe table")
    if len(keys) == 1:
        raise SeparateError(f"--set {key}=... would replace the whole [{key}] table; set one of its keys")
    if not _is_pass_through(keys[:2]) and keys[1] not in SCHEMA[keys[0]]:
        raise SeparateError(
            f"unknown key '{key}' in --set (known in [{keys[0]}]: {', '.join(SCHEMA[keys[0]])})"
        )
    node = raw
    for depth, part in enumerate(keys[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise SeparateError(f"--set {key}: '{'.'.join(keys[: depth + 1])}' is not a table")
        node = child
    node[keys[-1]] = parse_value(text)


def _check_type(section: str, key: str, value: Any) -> None:
    types, _ = SCHEMA[section][key]
    if value is None:
        return
    if isinstance(value, bool) and bool not in types:
        ok = False
    else:
        ok = isinstance(value, types)
    if not ok:
        names = " or ".join(t.__name__ for t in types)
        raise SeparateError(f"{section}.{key} must be a {names}, got {value!r}")


def _merge_section(section: str, given: dict[str, Any]) -> dict[str, Any]:
    merged = {}
    unknown = sorted(set(given) - set(SCHEMA[section]))
    if unknown:
        raise SeparateError(
            f"unknown key(s) {', '.join(unknown)} in [{section}] (known: {', '.join(SCHEMA[section])})"
        )
    for key, (_, default) in SCHEMA[section].items():
        value = given.get(key)
        _check_type(section, key, value)
        merged[key] = copy.deepcopy(default) if value is None else value
    return merged


def resolve(raw: dict[str, Any], overrides: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """Apply ``overrides`` to a raw recipe, fill defaults, check every fixed key. Returns a new dict."""
    raw = copy.deepcopy(raw)
    for assignment in overrides:
        apply_override(raw, assignment)
    for section in SECTIONS:
        if raw.get(section) is not None and not isinstance(raw[section], dict):
            raise SeparateError(f"[{section}] must be a table")
    model = dict(raw.get("model") or {})
    if ("preset" in model) == ("architecture" in model):
        raise SeparateError("[model] needs exactly one of 'preset' (a named preset) or 'architecture'")
    loss = dict(raw.get("loss") or {})
    if not isinstance(loss.get("name"), str):
        raise SeparateError(
            "[loss] needs a 'name' (pit, hungarian, sinkpit, attentionpit, attn-sink, attn-hun, sisnr...)"
        )
    data = _merge_section("data", dict(raw.get("data") or {}))
    if not data["layout"]:
        raise SeparateError(
            "[data] needs a 'layout' (synthetic, wsj0mix, wham, lrs2mix, librimix, musdb, musdbhq, folder)"
        )
    for split in ("train", "valid"):
        data[split] = {"split": split, **data[split]}
    for index, extra in enumerate(data["train_extra"]):
        if not isinstance(extra, dict) or not isinstance(extra.get("layout"), str):
            raise SeparateError(f"data.train_extra[{index}] must be a table with a 'layout'")
    if data["batch_size"] < 1 or (data["valid_batch_size"] is not None and data["valid_batch_size"] < 1):
        raise SeparateError("batch sizes must be at least 1")
    if not 0.0 < data["fraction"] <= 1.0:
        raise SeparateError(f"data.fraction must be in (0, 1], got {data['fraction']}")
    train = _merge_section("train", dict(raw.get("train") or {}))
    _check_train(train)
    return {
        "recipe": dict(raw.get("recipe") or {}),
        "paper": dict(raw.get("paper") or {}),
        "model": model,
        "loss": loss,
        "data": data,
        "train": train,
    }


def _check_train(train: dict[str, Any]) -> None:
    if train["optimizer"] not in OPTIMIZERS:
        raise SeparateError(f"unknown optimizer '{train['optimizer']}' (known: {', '.join(OPTIMIZERS)})")
    if train["monitor"] not in MONITORS:
        raise SeparateError(f"train.monitor must be one of {', '.join(MONITORS)}, got '{train['monitor']}'")
    if train["amp_dtype"] not in AMP_DTYPES:
        raise SeparateError(f"train.amp_dtype must be one of {', '.join(AMP_DTYPES)}")
    if train["epochs"] < 1 or train["lr"] <= 0:
        raise SeparateError("train.epochs must be at least 1 and train.lr positive")
    if train["monitor_window"] < 1:
        raise SeparateError(f"train.monitor_window must be at least 1 epoch, got {train['monitor_window']}")
    for key in ("steps_per_epoch", "max_valid_batches", "early_stop", "save_every_steps", "loss_window"):
        if train[key] < 0:
            raise SeparateError(f"train.{key} must be >= 0 (0 turns it off)")
    if len(train["betas"]) != 2 or not all(isinstance(b, _NUMBER) for b in train["betas"]):
        raise SeparateError(f"train.betas must be two numbers, got {train['betas']}")
    scheduler = dict(train["scheduler"])
    name = scheduler.pop("name", "none")
    unknown = sorted(set(scheduler) - schedule_options(name))
    if unknown:
        raise SeparateError(f"the '{name}' schedule does not take {', '.join(unknown)}")


def model_spec(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(preset or architecture name, constructor overrides)`` of a resolved config."""
    spec = dict(config["model"])
    name = spec.pop("preset", None) or spec.pop("architecture")
    return name, spec


def differences(old: dict[str, Any], new: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[str]:
    """Dotted keys whose values differ between two resolved configs, except :data:`RESUMABLE_CHANGES`.

    A fixed key missing on one side counts as its default (configs saved before the key existed)."""
    if any(prefix[: len(allowed)] == allowed for allowed in RESUMABLE_CHANGES):
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        if len(prefix) == 1 and prefix[0] in SCHEMA:
            defaults = {key: default for key, (_, default) in SCHEMA[prefix[0]].items()}
            old, new = {**defaults, **old}, {**defaults, **new}
        found = []
        for key in sorted(set(old) | set(new)):
            found += differences(old.get(key), new.get(key), (*prefix, key))
        return found
    return [] if old == new else [".".join(prefix)]
