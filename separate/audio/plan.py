"""Where every stem goes, decided and checked before any audio is read.

A ``--filename`` template is filled per input and stem with these fields:

* ``{track}``: the input's name up to its first dot (``take.1.wav`` -> ``take``; stdin: ``stdin``);
* ``{name}``: the input's whole file name (``take.1.wav``);
* ``{parent}``: the name of the input's folder (``a/song.wav`` -> ``a``; stdin: ``stdin``);
* ``{stem}``, ``{stem_index}`` (its position among the stems written, from 1), ``{ext}``, ``{model}``.

Two outputs with one path (two inputs named alike, or a template without ``{stem}``) are refused
in one line naming both inputs, as is a template that leaves ``-o`` through ``..``; an absolute
template is a place the user asked for and is kept as given.
"""

from __future__ import annotations

import os
import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from separate.audio.inputs import STDIO, track_name
from separate.errors import SeparateError
from separate.runtime import check_writable_folder

FIELDS = ("track", "name", "parent", "stem", "stem_index", "ext", "model")


@dataclass(frozen=True)
class TrackPlan:
    """One input and the path of each of its stems (``-`` for stdout)."""

    spec: str
    track: str
    outputs: dict[str, str]


def plan_outputs(
    inputs: Sequence[str], stems: Sequence[str], out: str, template: str, ext: str, model: str
) -> list[TrackPlan]:
    """Fill ``template`` for every input and stem; refuse clashes, escapes, inputs as outputs and
    folders that cannot be written, each in one line, before anything is separated."""
    if out == STDIO:
        return [TrackPlan(spec, track_name(spec), dict.fromkeys(stems, STDIO)) for spec in inputs]
    _check_template(template)
    model_name = Path(model).stem if not model.startswith("hf://") else Path(model.split("@")[0]).stem
    plans = []
    for spec in inputs:
        fields = _input_fields(spec)
        outputs = {}
        for index, stem in enumerate(stems, start=1):
            try:
                relative = template.format(**fields, stem=stem, stem_index=index, ext=ext, model=model_name)
            except (KeyError, IndexError, ValueError) as problem:
                raise SeparateError(f"bad --filename template '{template}': {problem}") from None
            if ".." in Path(relative).parts:
                raise SeparateError(f"--filename '{template}' gives '{relative}', outside -o '{out}'")
            outputs[stem] = str(Path(out) / relative)
        plans.append(TrackPlan(spec, fields["track"], outputs))
    _check_clashes(plans, template)
    _check_targets(plans, {Path(spec).resolve() for spec in inputs if spec != STDIO})
    return plans


def _input_fields(spec: str) -> dict[str, str]:
    if spec == STDIO:
        return {"track": "stdin", "name": "stdin", "parent": "stdin"}
    path = Path(spec)
    return {"track": track_name(spec), "name": path.name, "parent": path.resolve().parent.name or "root"}


def _check_template(template: str) -> None:
    try:
        names = [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]
    except ValueError as problem:
        raise SeparateError(f"bad --filename template '{template}': {problem}") from None
    unknown = [name for name in names if name not in FIELDS]
    if unknown or "" in names:
        shown = unknown[0] if unknown else ""
        raise SeparateError(
            f"bad --filename template '{template}': unknown field {{{shown}}} "
            f"(known: {', '.join('{' + f + '}' for f in FIELDS)})"
        )
    if ".." in Path(template).parts:
        raise SeparateError(
            f"--filename '{template}' leaves the output folder through '..'; write inside -o, "
            "or give an absolute path"
        )


def _check_clashes(plans: list[TrackPlan], template: str) -> None:
    seen: dict[Path, tuple[TrackPlan, str]] = {}
    for plan in plans:
        for stem, path in plan.outputs.items():
            key = Path(os.path.normcase(os.path.abspath(path)))
            if key in seen:
                other, other_stem = seen[key]
                if other is plan:
                    raise SeparateError(
                        f"--filename '{template}' writes stems {other_stem} and {stem} of '{plan.spec}' "
                        f"to the same file '{path}'; add {{stem}} to it"
                    )
                hint = "{name}" if Path(other.spec).parent == Path(plan.spec).parent else "{parent}"
                raise SeparateError(
                    f"inputs '{other.spec}' and '{plan.spec}' would both write '{path}'; "
                    f"add {hint} to --filename (e.g. '{hint}/{{stem}}.{{ext}}') or rename one"
                )
            seen[key] = (plan, stem)


def _check_targets(plans: list[TrackPlan], inputs: set[Path]) -> None:
    folders: set[Path] = set()
    for plan in plans:
        for path in plan.outputs.values():
            target = Path(path)
            if target.resolve() in inputs:
                raise SeparateError(f"output '{path}' would overwrite an input; choose another -o/--filename")
            if target.is_dir():
                raise SeparateError(f"output '{path}' is a folder; choose another -o/--filename")
            folders.add(target.parent)
    for folder in sorted(folders):
        check_writable_folder(folder)
