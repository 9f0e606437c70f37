"""Every recipe in examples/recipes resolves, builds its model and loss, and has a valid data config."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

from separate.bench.complexity import count_parameters
from separate.checkpoints import fetch, registry
from separate.errors import SeparateError
from separate.training import check_recipe, resolve_recipe
from separate.training import recipe as recipe_module
from separate.training.components import build_loss_module, build_model, load_initial_weights
from separate.training.data import check_data_config

RECIPE_FOLDER = Path(__file__).resolve().parents[1] / "examples" / "recipes"
RECIPES = sorted(RECIPE_FOLDER.glob("*.toml"))
PAPER_KEYS = ("name", "table", "row", "dataset", "expected")


def test_the_recipe_folder_covers_every_paper() -> None:
    names = {path.stem for path in RECIPES}
    assert "tiny" in names
    for prefix, count in (
        ("ltl-1_trans_0-", 8),
        ("ltl-2_trans_0-", 8),
        ("ltl-3_trans_0-bi", 1),
        ("attentionpit-libri", 20),
        ("galr-wsj0-2mix", 6),
        ("dprnn-wsj0-2mix", 3),
        ("dptnet-wsj0-2mix", 2),
        ("tdanet-large-", 3),
        ("lightweight-", 8),
        ("waveunet-m", 6),
    ):
        assert sum(name.startswith(prefix) for name in names) == count, prefix


@functools.cache
def _built(model_json: str) -> tuple[object, int]:
    """The model of a [model] table and its parameter count (cached: many recipes share one model)."""
    model = build_model({"model": json.loads(model_json)})
    return model, count_parameters(model)


@pytest.mark.parametrize("path", RECIPES, ids=[path.stem for path in RECIPES])
def test_recipe_resolves_and_builds(path: Path) -> None:
    config = resolve_recipe(path)
    paper = config["paper"]
    for key in PAPER_KEYS:
        assert key in paper, f"{path.name}: [paper] lacks {key}"
    assert isinstance(paper["expected"], dict)
    assert all(isinstance(v, (int, float)) for v in paper["expected"].values())
    if not paper["expected"]:
        assert paper.get("notes"), f"{path.name}: an empty 'expected' needs notes saying why"
    check_data_config(config["data"])
    if config["data"]["layout"] != "synthetic":
        assert config["data"]["root"]
    model, parameters = _built(json.dumps(config["model"], sort_keys=True))
    loss = build_loss_module(config, model)
    assert loss.n_src == model.n_src
    if "params_m" in paper["expected"]:
        assert parameters == pytest.approx(paper["expected"]["params_m"] * 1e6, rel=0.1)


def test_overrides_parse_toml_values_and_reject_unknown_keys(tmp_path: Path) -> None:
    tiny = next(path for path in RECIPES if path.stem == "tiny")
    config = resolve_recipe(
        tiny,
        [
            "train.lr=5e-4",
            "train.amp=false",
            "model.blocks=2",
            "data.train.segment=null",
            "data.root=/x/y",
            "train.scheduler.patience=7",
            "train.betas=[0.8, 0.9]",
        ],
    )
    assert config["train"]["lr"] == 5e-4 and config["train"]["amp"] is False
    assert config["model"]["blocks"] == 2
    assert config["data"]["train"]["segment"] is None
    assert config["data"]["root"] == "/x/y"
    assert config["train"]["scheduler"] == {"name": "plateau", "factor": 0.5, "patience": 7}
    assert config["train"]["betas"] == [0.8, 0.9]
    assert config["recipe"]["overrides"][0] == "train.lr=5e-4"
    for bad, message in (
        ("train.learning_rate=1", "unknown key 'train.learning_rate'"),
        ("optimiser.lr=1", "not a recipe table"),
        ("train.lr", "KEY=VALUE"),
        ("train.epochs=ten", "train.epochs must be a int"),
        ("train.amp=1", "train.amp must be a bool"),
        ("train.scheduler.gamma=0.5", "does not take gamma"),
        ("train.monitor=accuracy", "train.monitor must be one of"),
        ("data.fraction=0", "data.fraction"),
    ):
        with pytest.raises(SeparateError, match=message):
            resolve_recipe(tiny, [bad])
    with pytest.raises(SeparateError, match="does not accept"):
        check_recipe(tiny, ["model.no_such_option=3"])
    with pytest.raises(SeparateError, match="does not take"):
        check_recipe(tiny, ["loss.no_such_option=3"])
    with pytest.raises(SeparateError, match="does not take n_itemz"):
        check_recipe(tiny, ["data.train.n_itemz=3"])
    broken = tmp_path / "broken.toml"
    broken.write_text("[model]\narchitecture = \n")
    with pytest.raises(SeparateError, match="not valid"):
        resolve_recipe(broken)
    with pytest.raises(SeparateError, match="does not exist"):
        resolve_recipe(tmp_path / "missing.toml")


def test_a_file_corpus_needs_a_root_but_not_its_data() -> None:
    galr = next(path for path in RECIPES if path.stem.startswith("galr-"))
    check_recipe(galr)  # data/wsj0-mix does not exist here: only the configuration is checked
    with pytest.raises(SeparateError, match="needs data.root"):
        check_recipe(galr, ["data.root=null"])
    with pytest.raises(SeparateError, match="does not take n_items"):
        check_recipe(galr, ["data.options.n_items=4"])


def test_differences_ignore_what_a_resume_may_change() -> None:
    tiny = next(path for path in RECIPES if path.stem == "tiny")
    old = resolve_recipe(tiny)
    new = resolve_recipe(tiny, ["train.epochs=99", "data.num_workers=2", "train.lr=1e-4", "model.blocks=2"])
    assert recipe_module.differences(old, new) == ["model.blocks", "train.lr"]


SHIPPED = {name: entry for name, entry in registry().items() if not entry.same_as}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_a_shipped_file_fits_the_recipe_of_its_card(name: str) -> None:
    """So that ``--set train.init=separate/pretrained/NAME.safetensors`` fine-tunes it."""
    entry = SHIPPED[name]
    recipe = RECIPE_FOLDER.parents[1] / entry.card["recipe"].split()[0]
    model = build_model(resolve_recipe(recipe))
    load_initial_weights(model, str(fetch(entry)))
    assert all(bool(parameter.isfinite().all()) for parameter in model.parameters())
