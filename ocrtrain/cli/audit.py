"""`ocrtrain audit DIR`: counts, characters outside the base model, image sizes, misfit labels."""
from __future__ import annotations

import argparse
import json

from ..audit import MAX_IMAGES, MODEL_HEIGHT, audit_dataset
from ..originspec import ENGLISH_G2

__all__ = ["register"]


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "audit", help="check a dataset against the base model before training",
        description="Report split counts, characters the base model cannot emit, label lengths, "
                    "image sizes, labels too long for their image and the samples rejected at import.")
    parser.add_argument("path", metavar="DIR", help="dataset folder (or a bare LMDB folder)")
    parser.add_argument("--json", action="store_true", help="print the full report as JSON")
    parser.add_argument("--base", default=ENGLISH_G2, metavar="CHARSET",
                        help=f"base model charset: {ENGLISH_G2!r} or the characters themselves (default: {ENGLISH_G2})")
    parser.add_argument("--max-label-length", type=int, default=None, metavar="N",
                        help="also flag labels longer than N characters (default: off)")
    parser.add_argument("--max-images", type=int, default=MAX_IMAGES, metavar="N",
                        help=f"image headers read per split, evenly spaced (default: {MAX_IMAGES})")
    parser.add_argument("--height", type=int, default=MODEL_HEIGHT, metavar="PX",
                        help=f"model input height used to estimate CTC time steps (default: {MODEL_HEIGHT})")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    report = audit_dataset(args.path, base_charset=args.base, max_label_length=args.max_label_length,
                           max_images=args.max_images, model_height=args.height)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(report.summary())
    return 0
