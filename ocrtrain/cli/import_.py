"""`ocrtrain import SOURCE --out DIR`: import labelled images (folder, labels file, LMDB or .zip)."""
from __future__ import annotations

import argparse
import sys

from ..config import add_config_arguments, config_from_args
from ..dataset import SplitConfig
from ..events import Event, Progress
from ..imports import ImportConfig, import_dataset

__all__ = ["register"]


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "import", help="import labelled text-line images into a dataset folder",
        description="Import a folder with labels.txt (name<TAB>text), an EasyOCR trainer folder "
                    "(labels.csv), a deep-text-recognition-benchmark LMDB, or a .zip of one of these. "
                    "Unusable samples are listed with their reason in DIR/rejected.csv.")
    parser.add_argument("source", metavar="SOURCE", help="folder, labels.txt/labels.csv file, LMDB folder or .zip")
    parser.add_argument("--out", required=True, metavar="DIR", help="new dataset folder to write")
    parser.add_argument("--config", metavar="FILE", help="YAML/JSON ImportConfig to start from")
    # Split options are flat on the command line (--val-fraction), nested in the config file (split:).
    add_config_arguments(parser, ImportConfig, skip=("split",))
    add_config_arguments(parser, SplitConfig)
    parser.set_defaults(func=run)


def _progress(event: Event) -> None:
    if isinstance(event, Progress) and event.total and event.done == event.total:
        print(f"read {event.done} of {event.total} samples", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    base = ImportConfig.from_file(args.config) if args.config else ImportConfig()
    split = config_from_args(SplitConfig, args, base=base.split)
    config = config_from_args(ImportConfig, args, base=base).replace(split=split)
    from ._progress import EventBars

    with EventBars(quiet_info=False) as bars:
        out = import_dataset(args.source, args.out, config, callback=lambda e: (bars(e), _progress(e)))
    from ..dataset import REJECTED, Dataset

    ds = Dataset(out)
    counts = ds.manifest.get("counts", {})
    rejected = ds.manifest.get("rejected", 0)
    print(f"imported {ds.manifest.get('total', 0)} samples into {out} ("
          + ", ".join(f"{s} {n}" for s, n in counts.items()) + f"); {rejected} rejected"
          + (f", see {out / REJECTED}" if rejected else ""))
    print(f"next: ocrtrain audit {out}")
    return 0
