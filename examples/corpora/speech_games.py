"""Acted dialogue of the freeware talkie game *Flight of the Amazon Queen* as speaker clips.

Debian's ``flight-of-the-amazon-queen`` package installs the CD version's resource file
``queen.1c``, as rebuilt by ScummVM's compression tool. Its layout (big-endian):

- ``b"QTBL"``, a 5-byte game version (``CEM10`` for the English CD), a 4-byte compression code
  (1 MP3, 2 Ogg Vorbis, 3 FLAC) and a 2-byte entry count;
- one 21-byte entry per resource: a NUL-padded 12-byte file name, a bundle byte, then the absolute
  offset and the size of the resource (4 bytes each);
- the resources. Speech lines are ``*.SB`` resources, each a complete compressed stream.

The speech file names say who talks:

- ``NNxxxxJk.SB`` and ``JOE*.SB``: the hero, Joe;
- ``NNxxxxPk.SB``: the other person of dialogue ``NN`` (one character per dialogue file);
- ``CnnX_kkk.SB``: character ``X`` of cutscene ``nn``.

Every other speech file (Joe's object descriptions, the intro, the comic book) is left out. One
actor may voice several characters, so these ids are training voices only (``speech.py`` never
holds them out).
"""

from __future__ import annotations

import io
import re
import struct
from pathlib import Path

QUEEN_DATA = "/usr/share/scummvm/flight-of-the-amazon-queen/queen.1c"
QUEEN_MAGIC = b"QTBL"
QUEEN_HEADER = struct.Struct(">4s5sIH")
QUEEN_ENTRY = struct.Struct(">12sBII")
QUEEN_CODECS = {1: "mp3", 2: "ogg", 3: "flac"}
MEMBER_MARK = "::"


def read_queen_table(path: str | Path) -> dict[str, tuple[int, int]]:
    """``{resource name: (offset, size)}`` of a compressed ``queen.1c``; ``{}`` for any other file."""
    with open(path, "rb") as handle:
        head = handle.read(QUEEN_HEADER.size)
        if len(head) < QUEEN_HEADER.size:
            return {}
        magic, _version, codec, count = QUEEN_HEADER.unpack(head)
        if magic != QUEEN_MAGIC or codec not in QUEEN_CODECS:
            return {}
        table = handle.read(count * QUEEN_ENTRY.size)
    entries = {}
    for index in range(len(table) // QUEEN_ENTRY.size):
        raw_name, _bundle, offset, size = QUEEN_ENTRY.unpack_from(table, index * QUEEN_ENTRY.size)
        entries[raw_name.split(b"\0", 1)[0].decode("ascii", "replace")] = (offset, size)
    return entries


def queen_speaker(resource: str) -> str | None:
    """The speaker id of a speech resource name, or ``None`` when the name does not say who talks."""
    stem, _, extension = resource.upper().partition(".")
    if extension != "SB":
        return None
    if stem.startswith("JOE"):
        return "fotaq-joe"
    dialogue = re.fullmatch(r"(\d\d)[0-9A-Z]{4}([JP])\d", stem)
    if dialogue:
        return "fotaq-joe" if dialogue.group(2) == "J" else f"fotaq-talk{dialogue.group(1)}"
    cutscene = re.fullmatch(r"C(\d\d?)([A-Z])_+\d{3}", stem)
    if cutscene and len(stem) == 8:
        return f"fotaq-cut{int(cutscene.group(1)):02d}{cutscene.group(2).lower()}"
    return None


def find_queen_speakers(data_file: Path) -> dict[str, list[str]]:
    """``{speaker id: [member reference, ...]}`` in file order; ``{}`` when the file is absent."""
    if not data_file.is_file():
        return {}
    speakers: dict[str, list[str]] = {}
    for name, (offset, size) in sorted(read_queen_table(data_file).items(), key=lambda item: item[1][0]):
        speaker = queen_speaker(name)
        if speaker:
            speakers.setdefault(speaker, []).append(member_reference(data_file, offset, size))
    return speakers


def member_reference(data_file: Path, offset: int, size: int) -> str:
    """A clip stored inside an archive, spelled ``<file>::<offset>:<size>``."""
    return f"{data_file}{MEMBER_MARK}{offset}:{size}"


def open_clip(reference: str) -> str | io.BytesIO:
    """What ``soundfile`` reads for a clip: the path itself, or the archive member's bytes."""
    path, mark, span = reference.rpartition(MEMBER_MARK)
    if not mark or not re.fullmatch(r"\d+:\d+", span):
        return reference
    offset, size = (int(part) for part in span.split(":"))
    with open(path, "rb") as handle:
        handle.seek(offset)
        return io.BytesIO(handle.read(size))
