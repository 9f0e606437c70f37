"""Songs of the music corpus: what plays (procedural or music21 note material, instruments, voices)
and the mix. :func:`make_song` returns rendered parts; :func:`mix_parts` turns them into stems
``[4, 2, T]`` (drums, bass, other, vocals)."""

from __future__ import annotations

import argparse
import zlib
from dataclasses import dataclass
from pathlib import Path

import music_parts as mp
import music_real as real
import music_render as mr
import music_vocals as mv
import numpy as np

STEMS = ("drums", "bass", "other", "vocals")
KITS_DIR = "usr/share/hydrogen/data/drumkits"
STYLES = {  # bpm range, beats per bar, grooves, bass patterns, comp styles
    "pop": (
        (88, 124),
        4,
        ("pop", "halftime", "four"),
        ("eighths", "root5", "sync"),
        ("block", "arp", "strum"),
    ),
    "rock": ((100, 160), 4, ("rock", "halftime"), ("eighths", "root5"), ("power", "strum", "block")),
    "ballad": ((60, 84), 4, ("ballad", "halftime"), ("whole", "root5"), ("arp", "block")),
    "funk": ((90, 118), 4, ("funk",), ("sync", "octave", "walk"), ("offbeat", "strum")),
    "dance": ((116, 132), 4, ("four",), ("octave", "sync", "eighths"), ("offbeat", "arp", "block")),
    "metal": ((120, 180), 4, ("metal", "rock"), ("eighths",), ("power",)),
    "waltz": ((84, 120), 3, ("waltz",), ("root5", "whole"), ("block", "arp")),
}
PROGRAMS = {  # GM programs per role, and the additive stand-in's timbre
    "bass": ((32, 33, 34, 35, 36, 37, 38, 39), "bass"),
    "guitar": ((24, 25, 26, 27, 28), "pluck"),
    "drive": ((29, 30), "lead"),
    "keys": ((0, 1, 2, 4, 5, 6, 7, 16, 17, 18, 19), "pluck"),
    "pad": ((48, 49, 50, 51, 61, 88, 89, 90, 91, 92, 94, 95), "pad"),
    "lead": ((11, 12, 40, 56, 57, 65, 66, 68, 71, 73, 80, 81, 82, 87), "lead"),
    "choir": ((52, 53), "choir"),
}
SCORES = {  # music21 corpus collection: (file suffix, quarter-note bpm range)
    "bach": (".mxl", (66, 100)),
    "monteverdi": (".mxl", (80, 130)),
    "palestrina": (".krn", (110, 170)),
    "ryansMammoth": (".abc", (60, 95)),
}


@dataclass
class Part:
    """One rendered part: ``audio [C, T]`` and how it sits in the mix."""

    stem: str
    name: str
    audio: np.ndarray
    level_db: float
    pan: float
    low_cut: float
    send: float
    compress: bool = False


@dataclass
class Sources:
    rate: int
    soundfonts: mr.Soundfonts | None
    kits: dict[str, dict[str, list[mr.KitInstrument]]]  # split -> kit name -> instruments
    voices: dict[str, list[str]]
    pool: Path
    scores: dict[str, list[str]]  # split -> music21 corpus paths
    score_fraction: float
    fof: list[real.FofSong]
    fof_test: set[str]
    festival: bool

    @classmethod
    def load(cls, args: argparse.Namespace) -> Sources:
        root = Path(args.system_root)
        fonts = [str(root / f) for f in args.soundfonts if f != "none" and (root / f).is_file()]
        kits: dict[str, dict[str, list[mr.KitInstrument]]] = {"train": {}, "test": {}}
        for xml in sorted((root / KITS_DIR).glob("*/drumkit.xml")):
            instruments = mr.read_kit(xml.parent)
            if mr.is_drum_kit(instruments):
                kits["test" if xml.parent.name in args.test_kits else "train"][xml.parent.name] = instruments
        if not kits["test"]:
            kits["test"] = kits["train"]
        voices = mv.read_voices(Path(args.speech_pool), Path(args.speakers))
        if not voices["valid"]:
            voices["valid"] = voices["train"]
        fof = real.find_fof(root)
        held = {s.name for s in fof if s.name in args.real_test} or (
            {fof[-1].name} if len(fof) > 1 else set()
        )
        return cls(
            args.rate,
            mr.Soundfonts(fonts, args.rate) if fonts else None,
            kits,
            voices,
            Path(args.speech_pool),
            find_scores() if args.score_fraction > 0 else {"train": [], "test": []},
            args.score_fraction,
            fof,
            held,
            args.festival and mv.festival_available(),
        )

    def summary(self) -> str:
        return (
            f"soundfonts={[Path(f).name for f in self.soundfonts.paths] if self.soundfonts else []} "
            f"kits={sorted(self.kits['train'])}/test={sorted(self.kits['test'])} "
            f"voices={ {k: len(v) for k, v in self.voices.items()} } "
            f"scores={ {k: len(v) for k, v in self.scores.items()} } "
            f"fof={len(self.fof)} festival={self.festival}"
        )

    # ------------------------------------------------------------------ instruments
    def instrument(
        self, rng: np.random.Generator, notes: list[mp.Note], role: str, seconds: float
    ) -> tuple[np.ndarray, str]:
        programs, timbre = PROGRAMS[role]
        program = int(programs[rng.integers(len(programs))])
        if self.soundfonts is None:
            return mr.synth_part(notes, timbre, seconds, self.rate), f"synth-{timbre}"
        font = int(rng.integers(len(self.soundfonts.paths)))
        return self.soundfonts.render(notes, program, seconds, font=font), f"gm{program}@{font}"

    def drums(
        self, rng: np.random.Generator, hits: list[mp.Hit], split: str, seconds: float
    ) -> tuple[np.ndarray, str]:
        kits = self.kits[split]
        if kits and (self.soundfonts is None or rng.random() < 0.7):
            name = sorted(kits)[rng.integers(len(kits))]
            return mr.render_kit(kits[name], hits, seconds, self.rate, rng), name
        kit = int(mr.GM_KITS[rng.integers(len(mr.GM_KITS))])
        font = int(rng.integers(len(self.soundfonts.paths)))
        return self.soundfonts.render_drums(hits, kit, seconds, font=font), f"gmkit{kit}@{font}"

    # ------------------------------------------------------------------ vocals
    def voice(
        self, rng: np.random.Generator, role: str, exclude: str | None = None
    ) -> tuple[str, mv.Analysis]:
        pool = [v for v in self.voices[role] if v != exclude] or self.voices[role]
        name = pool[rng.integers(len(pool))]
        audio, rate = mv.read_crop(self.pool / f"{name}.flac", 20.0, rng)
        return name, mv.analyse(audio, rate)

    def vocal_parts(
        self,
        rng: np.random.Generator,
        role: str,
        seconds: float,
        lead: list[mp.Note],
        harmonies: list[list[mp.Note]],
        allow_festival: bool,
    ) -> tuple[list[Part], dict]:
        """Lead sung by a ``role`` voice, then each harmony line by the same voice, a second voice,
        festival or a choir patch."""
        name, analysis = self.voice(rng, role)
        centre = mv.register(analysis) + rng.uniform(-2, 4)
        parts = [
            Part(
                "vocals",
                "lead",
                mv.sing(analysis, octave_to(lead, centre), seconds, self.rate, rng)[None],
                rng.uniform(-22, -14),
                rng.normal(0, 0.05),
                rng.uniform(80, 150),
                rng.uniform(0.1, 0.35),
                True,
            )
        ]
        meta = {"lead_voice": name, "backing": []}
        for line in harmonies:
            how = rng.choice(["same", "other", "festival", "choir"], p=[0.35, 0.35, 0.15, 0.15])
            if how == "festival" and not (allow_festival and self.festival):
                how = "other"
            if how == "choir":
                audio, what = self.instrument(rng, line, "choir", seconds)
            elif how == "festival":
                audio = mv.festival_sing(
                    octave_to(line, 55),
                    seconds,
                    self.rate,
                    rng,
                    ["kal_diphone", "ked_diphone"][rng.integers(2)],
                )[None]
                what = "festival"
            else:
                voice, backing = (name, analysis) if how == "same" else self.voice(rng, role, exclude=name)
                audio = mv.sing(backing, octave_to(line, mv.register(backing)), seconds, self.rate, rng)[None]
                what = voice
            parts.append(
                Part(
                    "vocals",
                    "backing",
                    audio,
                    rng.uniform(-31, -24),
                    rng.choice([-1, 1]) * rng.uniform(0.2, 0.7),
                    rng.uniform(100, 200),
                    rng.uniform(0.15, 0.4),
                    True,
                )
            )
            meta["backing"].append(what)
        return parts, meta

    def vocals(
        self, rng: np.random.Generator, form: mp.Form, role: str, seconds: float, allow_festival: bool
    ) -> tuple[np.ndarray, dict]:
        """A vocals stem ``[2, T]`` over ``form``: melody in verses/choruses/bridges, a chorus harmony."""
        lead = sung_melody(rng, form, 0.6)
        chorus = [n for n in lead if _section(form, n.start) == "chorus"]
        parts, meta = self.vocal_parts(
            rng, role, seconds, lead, [mp.harmony(form, chorus)] if chorus else [], allow_festival
        )
        return mix_parts(parts, rng, self.rate, seconds, master=False)[3], meta


def _section(form: mp.Form, time: float) -> str:
    for section in form.sections:
        if section.start <= time < section.start + section.bars * form.bar:
            return section.kind
    return ""


def sung_melody(rng: np.random.Generator, form: mp.Form, density: float) -> list[mp.Note]:
    """A vocal melody over verses, choruses and bridges (over every section when the song is too short)."""
    lead = mp.melody(rng, form, 62, ("verse", "chorus", "bridge"), density)
    return lead or mp.melody(rng, form, 62, ("intro", "verse", "chorus", "bridge", "break"), density, 1)


def octave_to(notes: list[mp.Note], centre: float) -> list[mp.Note]:
    """``notes`` moved by whole octaves so their median pitch is nearest ``centre``."""
    if not notes:
        return notes
    shift = 12 * round((centre - float(np.median([n.pitch for n in notes]))) / 12)
    return [mp.Note(n.pitch + shift, n.start, n.end, n.velocity) for n in notes]


def find_scores() -> dict[str, list[str]]:
    """music21 corpus paths per split; one composition in five (by name hash) is kept for test."""
    try:
        from music21 import corpus
    except ImportError:
        return {"train": [], "test": []}
    out: dict[str, list[str]] = {"train": [], "test": []}
    for path in sorted(str(p) for p in corpus.getCorePaths()):
        parts = Path(path).parts
        collection = next((c for c in SCORES if c in parts), None)
        if collection and path.endswith(SCORES[collection][0]):
            key = "/".join(parts[parts.index(collection) :])
            out["test" if zlib.crc32(key.encode()) % 5 == 0 else "train"].append(path)
    return out


# ----------------------------------------------------------------------------- note material
def procedural(rng: np.random.Generator, seconds: float) -> tuple[mp.Form, dict]:
    style = sorted(STYLES)[rng.integers(len(STYLES))]
    (low, high), beats, grooves, basses, comps = STYLES[style]
    form = mp.make_form(
        rng,
        seconds,
        float(rng.uniform(low, high)),
        beats,
        int(rng.integers(12)),
        bool(rng.random() < (0.8 if style == "metal" else 0.4)),
    )
    lead = sung_melody(rng, form, float(rng.uniform(0.4, 0.8)))
    chorus = [n for n in lead if _section(form, n.start) == "chorus"]
    lines = {
        "lead": lead,
        "harmonies": [mp.harmony(form, chorus, int(rng.choice([-2, 2, -5])))]
        if chorus and rng.random() < 0.6
        else [],
        "groove": grooves[rng.integers(len(grooves))],
        "bass": mp.bass_line(rng, form, basses[rng.integers(len(basses))]),
        "comps": [comps[rng.integers(len(comps))] for _ in range(int(rng.integers(1, 3)))],
        "inner": [],
        "pad": rng.random() < 0.6,
        "solo": rng.random() < 0.4,
        "drive": style in ("rock", "metal"),
    }
    return form, {"kind": "procedural", "style": style, "bpm": round(form.bpm, 1), **lines}


def from_score(rng: np.random.Generator, path: str, seconds: float) -> tuple[mp.Form, dict]:
    collection = next(c for c in SCORES if c in Path(path).parts)
    voices, beats = mp.score_voices(path)
    bpm = float(rng.uniform(*SCORES[collection][1]))
    quarter = 60.0 / bpm
    transpose = int(rng.integers(-5, 7))
    length = max(e[0] + e[1] for v in voices for e in v)
    need = seconds / quarter
    start = float(rng.integers(0, max(1, int((length - need) / beats)))) * beats if length > need else 0.0
    lines = []
    for events in voices:
        notes, loop = [], 0.0
        while start + need > loop and loop < 64 * length:
            notes += [
                mp.Note(p + transpose, (loop + o - start) * quarter, (loop + o + d - start) * quarter, 88)
                for o, d, p in events
                if 0 <= loop + o - start < need
            ]
            loop += length
        lines.append(notes)
    weights = np.zeros(12)
    for note in (n for line in lines for n in line):
        weights[note.pitch % 12] += note.end - note.start
    scores = [
        (np.corrcoef(weights, np.roll(p, t))[0, 1], t, m)
        for m, p in ((False, real.MAJOR_PROFILE), (True, real.MINOR_PROFILE))
        for t in range(12)
    ]
    _, tonic, minor = max(scores)
    form = mp.make_form(rng, seconds, bpm, beats if beats in (3, 4) else 4, tonic, minor)
    mp.fit_chords(form, [n for line in lines for n in line])
    groove = "waltz" if form.beats == 3 else ("ballad", "pop", "halftime", "rock")[rng.integers(4)]
    sung = int(rng.integers(0, min(2, max(0, len(lines) - 2)) + 1)) if len(lines) > 2 else 0
    own_bass = len(lines) > 1 and rng.random() < 0.7
    info = {
        "lead": lines[0],
        "harmonies": lines[1 : 1 + sung],
        "inner": lines[1 + sung : -1] if len(lines) > 1 else [],
        "groove": groove if rng.random() < 0.85 else None,
        "bass": octave_to(lines[-1], 38)
        if own_bass
        else mp.bass_line(rng, form, ("root5", "whole", "eighths")[rng.integers(3)]),
        "comps": [("block", "arp", "strum")[rng.integers(3)]] if rng.random() < 0.6 else [],
        "pad": rng.random() < 0.3,
        "solo": False,
        "drive": False,
    }
    return form, {
        "kind": "score",
        "style": collection,
        "piece": "/".join(Path(path).parts[-2:]),
        "bpm": round(bpm, 1),
        "transpose": transpose,
        **info,
    }


def make_song(src: Sources, rng: np.random.Generator, role: str, seconds: float) -> tuple[list[Part], dict]:
    """Every part of one song, rendered; ``role`` is train, valid or test."""
    split = "test" if role == "test" else "train"
    if src.scores[split] and rng.random() < src.score_fraction:
        form, info = from_score(rng, src.scores[split][rng.integers(len(src.scores[split]))], seconds)
    else:
        form, info = procedural(rng, seconds)
    if role == "test" and not info["groove"]:  # every test stem sounds, so every stem can be scored
        info["groove"] = "waltz" if form.beats == 3 else "ballad"
    parts: list[Part] = []
    meta = {k: v for k, v in info.items() if k in ("kind", "style", "piece", "bpm", "transpose", "groove")}
    meta.update(key=[form.tonic, form.minor], instruments={})
    if info["groove"]:
        audio, kit = src.drums(
            rng, mp.drum_hits(rng, form, info["groove"], float(rng.choice([0, 0, 0.1, 0.2]))), split, seconds
        )
        parts.append(
            Part("drums", "drums", audio, rng.uniform(-22, -17), 0.0, 30.0, rng.uniform(0.03, 0.2), True)
        )
        meta["instruments"]["drums"] = kit
    audio, what = src.instrument(rng, info["bass"], "bass", seconds)
    parts.append(Part("bass", "bass", audio, rng.uniform(-25, -19), 0.0, 30.0, rng.uniform(0, 0.05), True))
    meta["instruments"]["bass"] = what
    other = [
        (
            f"comp-{style}",
            mp.comp_part(rng, form, style, float(rng.uniform(56, 66))),
            "drive" if style == "power" and info["drive"] else ("guitar", "keys")[rng.integers(2)],
        )
        for style in info["comps"]
    ]
    other += [
        (f"inner{k}", line, ("pad", "keys", "guitar")[rng.integers(3)])
        for k, line in enumerate(info["inner"])
    ]
    if info["pad"] or not other:
        other.append(("pad", mp.pad_part(form, float(rng.uniform(55, 65))), "pad"))
    if info["solo"]:
        other.append(("lead", mp.melody(rng, form, 74, ("intro", "break", "bridge"), 0.7, 1), "lead"))
    for name, notes, group in other:
        audio, what = src.instrument(rng, notes, group, seconds)
        level = rng.uniform(-29, -24) if group == "pad" else rng.uniform(-27, -20)
        parts.append(
            Part(
                "other",
                name,
                audio,
                level,
                float(rng.uniform(-0.7, 0.7)),
                float(rng.uniform(80, 200)),
                float(rng.uniform(0.1, 0.4)),
                bool(rng.random() < 0.3),
            )
        )
        meta["instruments"][name] = what
    if role == "train" and rng.random() < 0.03:
        meta["vocals"] = "none"
    else:
        vocal, vocal_meta = src.vocal_parts(
            rng, role, seconds, info["lead"], info["harmonies"], role == "train"
        )
        parts += vocal
        meta.update(vocal_meta)
    return parts, meta


# ----------------------------------------------------------------------------- mix
def mix_parts(
    parts: list[Part], rng: np.random.Generator, rate: int, seconds: float, master: bool = True
) -> np.ndarray:
    """Stems ``[4, 2, T]``: each part EQ'd, levelled to its active RMS, compressed, panned and sent to
    one shared room (one reverb bus per stem); then one master gain puts the mixture at -16..-11 dBFS
    RMS with every peak under 0.95."""
    total = int(round(seconds * rate))
    impulse = mr.room_impulse(rng, rate, float(rng.uniform(0.4, 2.0)), float(rng.uniform(0.005, 0.04)))
    stems = np.zeros((len(STEMS), 2, total), np.float32)
    sends = np.zeros((len(STEMS), 2, total), np.float32)
    for part in parts:
        audio = part.audio[:, :total]
        rms = mr.active_rms(audio, rate)
        if rms <= 0:
            continue
        audio = mr.random_eq(audio, rate, rng, part.low_cut)
        audio = audio * (10 ** (part.level_db / 20) / max(mr.active_rms(audio, rate), 1e-9))
        if part.compress:
            audio = mr.compress(audio, rate, part.level_db + rng.uniform(0, 6), rng.uniform(1.5, 3.0))
        audio = mr.pan(audio, part.pan)
        stems[STEMS.index(part.stem), :, : audio.shape[1]] += audio
        sends[STEMS.index(part.stem), :, : audio.shape[1]] += part.send * audio
    for k in range(len(STEMS)):
        if sends[k].any():
            stems[k] += mr.reverb(sends[k], impulse)
    if not master:
        return stems
    mixture = stems.sum(0)
    gain = 10 ** (rng.uniform(-16, -11) / 20) / max(mr.active_rms(mixture, rate), 1e-9)
    peak = max(np.abs(mixture).max(), np.abs(stems).max()) * gain
    return stems * (gain * min(1.0, 0.95 / max(peak, 1e-9)))
