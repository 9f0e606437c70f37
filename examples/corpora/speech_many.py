"""Fixed J-speaker validation and test mixtures over a built speech corpus, for many-speaker models.

    python examples/corpora/speech_many.py --corpus ../data/speech --out ../data/speech-5spk --n-src 5

The new folder shares the corpus's voice pools (a symbolic link to ``pool/``) and its training voices,
so ``separate train`` with the ``dynamic`` layout and ``n_src = J`` draws J-voice training mixtures
from it, and writes the WSJ0-mix layout ``wav8k/min/{cv,tt}/{mix,s1..sJ}`` (and the LibriMix CSVs) for
validation and test. Test mixtures hold J distinct test voices. The validation split has too few
main voices for J = 5, so it also takes the fillets minor characters of a validation voice's language:
the two-speaker build leaves them out of every split (``unused``) because one actor may voice several
characters of a language, which matters for a held-out test but not for choosing epochs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus_cli import log  # noqa: E402
from speech import Speaker, is_minor, write_mixtures  # noqa: E402


def many_speaker_splits(speakers: dict[str, dict]) -> dict[str, dict]:
    """``speakers.json``'s voices with the unused minor characters of validation languages in ``valid``."""
    valid_languages = {
        name.split("-")[1]
        for name, info in speakers.items()
        if info["split"] == "valid" and info.get("origin") == "fillets"
    }
    relabelled = {}
    for name, info in speakers.items():
        info = dict(info)
        speaker = Speaker(name, str(info.get("origin", "")), bool(info.get("real")))
        if info["split"] == "unused" and is_minor(speaker) and name.split("-")[1] in valid_languages:
            info["split"] = "valid"
        relabelled[name] = info
    return relabelled


def build(corpus: Path, out: Path, n_src: int, seed: int, valid_count: int, test_count: int) -> dict:
    manifest = json.loads((corpus / "speakers.json").read_text())
    manifest["speakers"] = many_speaker_splits(manifest["speakers"])
    manifest["n_src"] = n_src
    out.mkdir(parents=True, exist_ok=True)
    pool = out / "pool"
    if not pool.exists():
        pool.symlink_to((corpus / "pool").resolve(), target_is_directory=True)
    speakers = [
        Speaker(
            name,
            str(info.get("origin", "")),
            bool(info.get("real")),
            split=info["split"],
            seconds=float(info.get("seconds", 0.0)),
        )
        for name, info in manifest["speakers"].items()
    ]
    rates = [int(rate) for rate in manifest["rates"]]
    for split, count, seconds in (("valid", valid_count, (4.0, 4.0)), ("test", test_count, (3.0, 6.0))):
        voices = sorted(s.id for s in speakers if s.split == split)
        log(f"{split}: {count} mixtures of {n_src} of {len(voices)} voices ({', '.join(voices)})")
        write_mixtures(out, speakers, split, count, n_src, seed, seconds, rates)
    partial = out / ".speakers.json.partial"
    partial.write_text(json.dumps(manifest, indent=1))
    os.replace(partial, out / "speakers.json")
    return manifest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", required=True, help="a corpus built by speech.py")
    parser.add_argument("--out", required=True, help="the new corpus folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-src", type=int, default=5)
    parser.add_argument("--valid-mixtures", type=int, default=200)
    parser.add_argument("--test-mixtures", type=int, default=300)
    args = parser.parse_args(argv)
    if args.n_src < 2:
        raise SystemExit("--n-src must be at least 2")
    build(Path(args.corpus), Path(args.out), args.n_src, args.seed, args.valid_mixtures, args.test_mixtures)


if __name__ == "__main__":
    main()
