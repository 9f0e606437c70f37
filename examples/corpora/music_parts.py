"""Note material for the music corpus: song forms, chord progressions, drum grooves, bass lines,
comping, pads, leads and sung melodies, all as plain note lists in seconds.

Procedural songs are drawn from a ``numpy.random.Generator``; real compositions come from the
``music21`` corpus (:func:`score_voices`) and are re-voiced by ``music.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
QUALITIES = {
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "7": (0, 4, 7, 10),
    "maj7": (0, 4, 7, 11),
    "min7": (0, 3, 7, 10),
    "sus4": (0, 5, 7),
}
MAJOR_PROGRESSIONS = (
    ((0, "maj"), (7, "maj"), (9, "min"), (5, "maj")),
    ((0, "maj"), (9, "min"), (5, "maj"), (7, "maj")),
    ((9, "min"), (5, "maj"), (0, "maj"), (7, "maj")),
    ((0, "maj"), (5, "maj"), (7, "maj"), (5, "maj")),
    ((2, "min7"), (7, "7"), (0, "maj7"), (0, "maj7")),
    ((0, "maj"), (10, "maj"), (5, "maj"), (0, "maj")),
    ((0, "maj"), (4, "min"), (5, "maj"), (7, "sus4")),
    ((5, "maj7"), (7, "maj"), (4, "min7"), (9, "min")),
)
MINOR_PROGRESSIONS = (
    ((0, "min"), (8, "maj"), (3, "maj"), (10, "maj")),
    ((0, "min"), (5, "min"), (7, "min"), (0, "min")),
    ((0, "min"), (10, "maj"), (8, "maj"), (10, "maj")),
    ((0, "min"), (5, "min"), (10, "maj"), (3, "maj")),
    ((0, "min7"), (8, "maj7"), (5, "min7"), (7, "7")),
)
#: 16-step (4/4) or 12-step (3/4) patterns per drum role; "x" accent, "o" soft hit.
GROOVES: dict[str, dict[str, str]] = {
    "rock": {"kick": "x.......x.x.....", "snare": "....x.......x...", "hat_closed": "x.x.x.x.x.x.x.x."},
    "pop": {"kick": "x.....x...x.....", "snare": "....x.......x...", "hat_closed": "xoxoxoxoxoxoxoxo"},
    "four": {
        "kick": "x...x...x...x...",
        "clap": "....x.......x...",
        "hat_closed": "x.o.x.o.x.o.x.o.",
        "hat_open": "..x...x...x...x.",
    },
    "funk": {"kick": "x..x..x...x..x..", "snare": "....x..o.o..x..o", "hat_closed": "xoxoxoxoxoxoxoxo"},
    "halftime": {"kick": "x.........x.....", "snare": "........x.......", "hat_closed": "x.x.x.x.x.x.x.x."},
    "ballad": {"kick": "x.......x.......", "stick": "....x.......x...", "ride": "x.x.x.x.x.x.x.x."},
    "metal": {"kick": "xxxxxxxxxxxxxxxx", "snare": "....x.......x...", "ride": "x.x.x.x.x.x.x.x."},
    "waltz": {"kick": "x...........", "snare": "....o...o...", "hat_closed": "x.o.x.o.x.o."},
}
BASS_PATTERNS = ("eighths", "root5", "sync", "whole", "octave", "walk")
COMP_STYLES = ("block", "arp", "strum", "power", "offbeat")


@dataclass
class Note:
    pitch: int
    start: float
    end: float
    velocity: int = 90


@dataclass
class Hit:
    role: str
    time: float
    velocity: int


@dataclass
class Section:
    kind: str
    start: float
    bars: int
    chords: list[tuple[int, str]]


@dataclass
class Form:
    """A song's time grid: tempo, meter, key and sections (one chord per bar, relative to the key)."""

    bpm: float
    beats: int
    tonic: int
    minor: bool
    sections: list[Section] = field(default_factory=list)

    @property
    def beat(self) -> float:
        return 60.0 / self.bpm

    @property
    def bar(self) -> float:
        return self.beats * self.beat

    @property
    def scale(self) -> tuple[int, ...]:
        return MINOR if self.minor else MAJOR

    def chord_at(self, time: float) -> tuple[int, str]:
        for section in self.sections:
            if section.start <= time < section.start + section.bars * self.bar:
                return section.chords[min(int((time - section.start) / self.bar), section.bars - 1)]
        return self.sections[-1].chords[-1]


def make_form(
    rng: np.random.Generator, seconds: float, bpm: float, beats: int, tonic: int, minor: bool
) -> Form:
    """Sections (intro, verse, chorus, bridge, break) covering ``seconds``, from a random point of a form."""
    form = Form(bpm, beats, tonic, minor)
    progressions = MINOR_PROGRESSIONS if minor else MAJOR_PROGRESSIONS
    picks = rng.choice(len(progressions), size=3, replace=len(progressions) < 3)
    verse, chorus, bridge = (list(progressions[i]) for i in picks)
    plan = [
        ("intro", 4, chorus),
        ("verse", 8, verse),
        ("chorus", 8, chorus),
        ("verse", 8, verse),
        ("chorus", 8, chorus),
        ("break", 2, bridge[:2]),
        ("bridge", 4, bridge),
        ("chorus", 8, chorus),
    ]
    first = int(rng.choice([0, 0, 1, 2, 3]))
    bars_needed = math.ceil(seconds / form.bar) + 1
    time, index = 0.0, first
    while time < seconds:
        kind, bars, chords = plan[index % len(plan)]
        bars = min(bars, max(2, bars_needed))
        form.sections.append(Section(kind, time, bars, [chords[k % len(chords)] for k in range(bars)]))
        time += bars * form.bar
        index += 1
    return form


def chord_pitches(form: Form, chord: tuple[int, str]) -> tuple[int, list[int]]:
    """(root pitch class, chord pitch classes) of a key-relative chord."""
    root = (form.tonic + chord[0]) % 12
    return root, [(root + i) % 12 for i in QUALITIES[chord[1]]]


def nearest(pitch_class: int, around: float) -> int:
    """The MIDI pitch of ``pitch_class`` closest to ``around``."""
    base = int(round(around)) - 6
    return base + (pitch_class - base) % 12


def drum_hits(rng: np.random.Generator, form: Form, style: str, swing: float = 0.0) -> list[Hit]:
    """A groove over every section with crashes on section starts, fills at section ends and
    humanised timing (+-4 ms) and velocity. Intros thin the groove; breaks drop the drums."""
    groove = GROOVES[style]
    steps = len(next(iter(groove.values())))
    step = form.bar / steps
    hits: list[Hit] = []
    for section in form.sections:
        if section.kind == "break" and rng.random() < 0.7:
            continue
        roles = dict(groove)
        if section.kind == "chorus" and "hat_closed" in roles and rng.random() < 0.4:
            roles["ride"] = roles.pop("hat_closed")
        if section.kind == "intro":
            roles = {k: v for k, v in roles.items() if k.startswith(("hat", "ride", "kick"))}
        for bar in range(section.bars):
            bar_start = section.start + bar * form.bar
            fill = bar == section.bars - 1 and section.bars >= 4 and rng.random() < 0.6
            for role, pattern in roles.items():
                for k, mark in enumerate(pattern):
                    if mark == "." or (fill and k >= steps // 2 and role != "kick"):
                        continue
                    offset = step * k + (swing * step if k % 2 else 0.0)
                    velocity = (110 if mark == "x" else 70) + rng.integers(-12, 12)
                    hits.append(Hit(role, bar_start + offset + rng.normal(0, 0.004), int(velocity)))
            if fill:
                toms = ["tom_hi", "tom_hi", "tom_mid", "tom_mid", "tom_low", "tom_low", "snare", "snare"]
                for k in range(steps // 2, steps):
                    role = toms[(k - steps // 2) * len(toms) // (steps - steps // 2)]
                    hits.append(Hit(role, bar_start + step * k, int(95 + rng.integers(-10, 15))))
        if section.kind != "intro" or rng.random() < 0.3:
            hits.append(Hit("crash", section.start, 115))
    return [h for h in hits if h.time >= 0]


def bass_line(rng: np.random.Generator, form: Form, pattern: str, low: int = 28) -> list[Note]:
    """Bass following the chords: roots, fifths, octaves and approach notes in one of BASS_PATTERNS."""
    notes: list[Note] = []
    for section in form.sections:
        if section.kind == "intro" and rng.random() < 0.5:
            continue
        for bar, chord in enumerate(section.chords):
            t0 = section.start + bar * form.bar
            root_pc, pcs = chord_pitches(form, chord)
            root = low + (root_pc - low) % 12
            fifth = root + 7
            if pattern == "whole":
                notes.append(Note(root, t0, t0 + form.bar * 0.95, 90))
            elif pattern == "root5":
                half = form.bar / 2
                notes += [
                    Note(root, t0, t0 + half * 0.9, 100),
                    Note(fifth, t0 + half, t0 + form.bar * 0.9, 90),
                ]
            elif pattern == "walk":
                tones = [
                    root,
                    root + (pcs[1] - root_pc) % 12,
                    fifth,
                    root + 12 if rng.random() < 0.5 else fifth + 2,
                ]
                notes += [
                    Note(tones[k % 4], t0 + k * form.beat, t0 + (k + 0.9) * form.beat, 95)
                    for k in range(form.beats)
                ]
            else:
                grid = {"eighths": "xxxxxxxx", "octave": "xoxoxoxo", "sync": "x..x..x.x.x..x.."}[pattern]
                unit = form.bar / len(grid) * (form.beats / 4)
                for k, mark in enumerate(grid):
                    if mark == "." or k * unit >= form.bar:
                        continue
                    pitch = (
                        root + 12 if mark == "o" else (root + 12 if pattern == "sync" and k == 8 else root)
                    )
                    length = unit * (0.9 if pattern != "sync" else 1.6)
                    notes.append(
                        Note(pitch, t0 + k * unit, t0 + k * unit + length, int(95 + rng.integers(-10, 10)))
                    )
    return notes


def voicing(pcs: list[int], around: float, previous: list[int] | None = None) -> list[int]:
    """Close voicing of ``pcs`` near ``around``, keeping common tones with ``previous``."""
    centre = float(np.mean(previous)) if previous else around
    return sorted(nearest(pc, centre) for pc in pcs)


def comp_part(rng: np.random.Generator, form: Form, style: str, around: float = 62) -> list[Note]:
    """Chord comping (COMP_STYLES): block chords, arpeggios, strummed or power chords, offbeat stabs."""
    notes: list[Note] = []
    previous: list[int] | None = None
    pattern = ["x...x...x...x...", "x..x..x...x.x...", "x.......x.......", "x.x.x.x.x.x.x.x."][
        rng.integers(4)
    ]
    for section in form.sections:
        if section.kind == "break" and rng.random() < 0.4:
            continue
        for bar, chord in enumerate(section.chords):
            t0 = section.start + bar * form.bar
            root_pc, pcs = chord_pitches(form, chord)
            chord_notes = voicing(pcs, around, previous)
            previous = chord_notes
            sixteenth = form.beat / 4
            steps = form.beats * 4
            if style == "arp":
                tones = chord_notes + [p + 12 for p in chord_notes]
                order = tones + tones[-2:0:-1]
                for k in range(0, steps, 2):
                    start = t0 + k * sixteenth
                    notes.append(Note(order[(k // 2) % len(order)], start, start + 3 * sixteenth, 80))
                continue
            if style == "power":
                root = nearest(root_pc, around - 12)
                chord_notes = [root, root + 7, root + 12]
                pattern = "x.x.x.x.x.x.x.x."
            if style == "offbeat":
                pattern = "..x...x...x...x."
            for k in range(steps):
                if pattern[k % len(pattern)] != "x":
                    continue
                start = t0 + k * sixteenth
                length = sixteenth * (1.5 if style in ("power", "offbeat") else 3.5)
                down = style != "strum" or k % 4 == 0
                spread = 0.012 if style == "strum" else 0.0
                ordered = chord_notes if down else chord_notes[::-1]
                for j, pitch in enumerate(ordered):
                    velocity = int((95 if down else 70) + rng.integers(-8, 8))
                    notes.append(Note(pitch, start + j * spread, start + length, velocity))
    return notes


def pad_part(form: Form, around: float = 60) -> list[Note]:
    """Sustained chords (one per bar) everywhere but breaks."""
    notes: list[Note] = []
    previous: list[int] | None = None
    for section in form.sections:
        if section.kind == "break":
            continue
        for bar, chord in enumerate(section.chords):
            t0 = section.start + bar * form.bar
            previous = voicing(chord_pitches(form, chord)[1], around, previous)
            notes += [Note(p, t0, t0 + form.bar * 0.98, 70) for p in previous]
    return notes


def melody(
    rng: np.random.Generator,
    form: Form,
    centre: int,
    kinds: tuple[str, ...],
    density: float = 0.6,
    phrase_bars: int = 2,
) -> list[Note]:
    """A singable melody over the sections of ``kinds``: 2-bar phrases of chord tones on strong beats and
    scale steps between, a rest closing each phrase, choruses a few semitones higher."""
    notes: list[Note] = []
    scale = [(form.tonic + s) % 12 for s in form.scale]
    eighth = form.beat / 2
    rhythm_cache: dict[str, list[tuple[int, int]]] = {}
    for section in form.sections:
        if section.kind not in kinds:
            continue
        lift = 3 if section.kind == "chorus" else 0
        slots = phrase_bars * form.beats * 2
        if section.kind not in rhythm_cache:
            rhythm_cache[section.kind] = _rhythm(rng, slots, density)
        pitch = nearest(chord_pitches(form, section.chords[0])[1][0], centre + lift)
        for phrase in range(section.bars // phrase_bars):
            t0 = section.start + phrase * phrase_bars * form.bar
            rhythm = rhythm_cache[section.kind] if rng.random() < 0.7 else _rhythm(rng, slots, density)
            for onset, length in rhythm:
                start = t0 + onset * eighth
                chord_pcs = chord_pitches(form, form.chord_at(start + 1e-6))[1]
                strong = onset % 4 == 0 or length >= 3
                pitch = _next_pitch(rng, pitch, chord_pcs if strong else scale, scale, centre + lift)
                notes.append(Note(pitch, start, start + length * eighth, int(90 + rng.integers(-10, 10))))
    return notes


def _rhythm(rng: np.random.Generator, slots: int, density: float) -> list[tuple[int, int]]:
    """(onset, length) in eighths for one phrase; the last 2-4 eighths rest."""
    usable = slots - int(rng.integers(2, 5))
    out, position = [], int(rng.integers(0, 2))
    while position < usable:
        length = int(
            rng.choice([1, 1, 2, 2, 3, 4], p=None if density >= 0.5 else [0.05, 0.05, 0.3, 0.2, 0.2, 0.2])
        )
        length = min(length, usable - position)
        out.append((position, length))
        position += length + (1 if rng.random() > density else 0)
    return out


def _next_pitch(
    rng: np.random.Generator, pitch: int, targets: list[int], scale: list[int], centre: float
) -> int:
    """A step or small leap from ``pitch`` to a pitch class in ``targets``, pulled back toward ``centre``."""
    candidates = [p for p in range(pitch - 7, pitch + 8) if p % 12 in targets]
    if not candidates:
        candidates = [p for p in range(pitch - 7, pitch + 8) if p % 12 in scale]
    weights = np.array([math.exp(-abs(p - pitch) / 2.5 - abs(p - centre) / 6.0) for p in candidates])
    return int(candidates[rng.choice(len(candidates), p=weights / weights.sum())])


def harmony(form: Form, lead: list[Note], steps: int = -2) -> list[Note]:
    """A diatonic harmony line ``steps`` scale degrees from the lead (-2: a third below)."""
    scale = sorted((form.tonic + s) % 12 for s in form.scale)
    out = []
    for note in lead:
        pitch = note.pitch
        moved = 0
        while moved != steps:
            pitch += 1 if steps > 0 else -1
            if pitch % 12 in scale:
                moved += 1 if steps > 0 else -1
        out.append(Note(pitch, note.start, note.end, note.velocity - 10))
    return out


def fit_chords(form: Form, line: list[Note]) -> None:
    """Replace each bar's chord by the diatonic triad that best covers the line's notes in that bar."""
    options = [(d, q) for d, q in ((0, "maj"), (5, "maj"), (7, "maj"), (9, "min"), (2, "min"), (4, "min"))]
    if form.minor:
        options = [(0, "min"), (5, "min"), (7, "maj"), (8, "maj"), (3, "maj"), (10, "maj")]
    for section in form.sections:
        for bar in range(section.bars):
            t0 = section.start + bar * form.bar
            weight = np.zeros(12)
            for note in line:
                overlap = min(note.end, t0 + form.bar) - max(note.start, t0)
                if overlap > 0:
                    weight[note.pitch % 12] += overlap
            if weight.sum() > 0:
                scores = [
                    sum(weight[pc] for pc in chord_pitches(form, c)[1]) + (0.01 if c[0] == 0 else 0)
                    for c in options
                ]
                section.chords[bar] = options[int(np.argmax(scores))]


def score_voices(path: str, max_parts: int = 6) -> tuple[list[list[tuple[float, float, int]]], int]:
    """The parts of a ``music21`` corpus score as ``(onset, length, midi)`` lists in quarter notes,
    highest part first, and the beats per bar. Chords keep their top note."""
    from music21 import corpus

    score = corpus.parse(path)
    parts = []
    for part in list(score.parts)[:max_parts]:
        events = []
        for element in part.stripTies().flatten().notes:
            pitch = max(p.midi for p in element.pitches)
            events.append((float(element.offset), float(element.quarterLength), int(pitch)))
        if events:
            parts.append(events)
    signatures = score.flatten().getElementsByClass("TimeSignature")
    beats = int(signatures[0].numerator) if signatures else 4
    parts.sort(key=lambda events: -float(np.mean([e[2] for e in events])))
    return parts, beats if beats in (2, 3, 4, 6) else 4
