"""`ocrtrain general --out DIR`: write the reproducible general validation set (ocrtrain.general)."""
from __future__ import annotations

import argparse

from ..general import GENERAL_COUNT

__all__ = ["register", "run", "write_general"]


def register(sub) -> None:
    p = sub.add_parser("general", help="write the general validation set (forgetting guard)",
                       description="Render ordinary Latin text lines that english_g2 already reads (English and "
                                   "Norwegian words, numbers, punctuation, mixed case; not receipts) into DIR/val and "
                                   "DIR/test. The same --seed and --count give the same content hash on any machine "
                                   "with the same packages.")
    p.add_argument("--out", required=True, metavar="DIR", help="dataset folder to create")
    p.add_argument("--count", type=int, default=GENERAL_COUNT,
                   help=f"number of lines, split evenly into val and test (default: {GENERAL_COUNT})")
    p.add_argument("--seed", type=int, default=0, help="seed of the lines and their rendering (default: 0)")
    p.add_argument("--workers", type=int, default=0, help="render processes (0 = one per CPU core)")
    p.add_argument("--overwrite", action="store_true", help="replace DIR if it exists")
    p.set_defaults(func=run)


def write_general(out: str, count: int, seed: int, workers: int, overwrite: bool) -> int:
    from ..dataset import Dataset
    from ..general import generate_general_set

    from ._progress import EventBars

    with EventBars() as bars:
        path = generate_general_set(out, count=count, seed=seed, workers=workers, overwrite=overwrite, callback=bars)
    m = Dataset(path).manifest
    print(f"wrote general set {path}: {m['counts']} ({m['rejected']} rejected), content hash {m['content_hash']}")
    return 0


def run(args: argparse.Namespace) -> int:
    return write_general(args.out, args.count, args.seed, args.workers, args.overwrite)
