"""What the corpus builders (``speech.py``, ``music.py``) share: progress lines and their options' head."""

from __future__ import annotations

import argparse
import sys


def log(text: str) -> None:
    """One progress line on stderr, flushed at once (builds run for hours, often in the background)."""
    print(text, file=sys.stderr, flush=True)


def parser(doc: str) -> argparse.ArgumentParser:
    """A parser described by ``doc``'s first paragraph, with the options every builder takes."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="corpus folder")
    parser.add_argument("--system-root", default="/", help="folder laid out like / holding the packages")
    parser.add_argument("--seed", type=int, default=0)
    return parser
