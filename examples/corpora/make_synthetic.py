"""Write a synthetic corpus in one of the on-disk layouts the loaders read.

    python examples/corpora/make_synthetic.py --layout wsj0mix --out data/synth-2mix --n 2000 --seed 0
    python examples/corpora/make_synthetic.py --layout librimix --out data/synth-libri3mix --n 500 --n-src 3
    python examples/corpora/make_synthetic.py --layout musdbhq --out data/synth-musdbhq --n 40

The training split gets N mixtures, the validation and test splits N // 4 each (at least 1).
The same seed always writes the same audio.
"""

from __future__ import annotations

import argparse
import sys

from separate.data.synthetic import LAYOUTS, write_synthetic_corpus
from separate.errors import SeparateError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layout", required=True, choices=LAYOUTS)
    parser.add_argument("--out", required=True, help="output folder (created)")
    parser.add_argument("--n", type=int, default=100, help="training mixtures (default 100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-src", type=int, default=None, help="speakers (speech layouts; default 2)")
    parser.add_argument("--sample-rate", type=int, default=None, help="default 8000 (speech), 44100 (music)")
    parser.add_argument(
        "--duration", type=float, nargs=2, metavar=("MIN", "MAX"), default=None, help="seconds per mixture"
    )
    parser.add_argument("--channels", type=int, choices=(1, 2), default=None)
    parser.add_argument("--pcm16", action="store_true", help="16-bit PCM files instead of float")
    parser.add_argument("--relative-paths", action="store_true", help="LibriMix CSVs with relative paths")
    args = parser.parse_args(argv)
    try:
        out = write_synthetic_corpus(
            args.out,
            args.layout,
            n_items=args.n,
            seed=args.seed,
            n_src=args.n_src,
            sample_rate=args.sample_rate,
            duration=tuple(args.duration) if args.duration else None,
            channels=args.channels,
            subtype="PCM_16" if args.pcm16 else "FLOAT",
            relative_paths=args.relative_paths,
        )
    except SeparateError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote a synthetic {args.layout} corpus to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
