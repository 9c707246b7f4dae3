"""`ocrtrain synth`: render a synthetic dataset with trdg into train/val/test LMDBs."""
from __future__ import annotations

import argparse

from ..config import add_config_arguments, config_from_args
from ..degrade import PRESET_NAMES
from ..synth import SynthConfig, generate_dataset

__all__ = ["register", "run", "add_synth_options", "synth_config"]


def add_synth_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE.yaml", help="base SynthConfig (YAML/JSON); options override it")
    parser.add_argument("--preset", choices=(*PRESET_NAMES, "general"), default=None,
                        help="the look of the lines (same as --render-preset); 'general' writes the general "
                             "validation set instead (see `ocrtrain general`; --count and --seed apply)")
    add_config_arguments(parser, SynthConfig)


def synth_config(args: argparse.Namespace) -> SynthConfig:
    base = SynthConfig.from_file(args.config) if args.config else None
    preset = getattr(args, "preset", None)
    if preset == "general":
        from ..errors import InputError

        raise InputError("--preset general is a dataset of its own, not a look: write it with "
                         "`ocrtrain general --out DIR` (or `ocrtrain synth --preset general --out DIR`)")
    if preset and getattr(args, "render_preset", None) is None:
        args.render_preset = preset
    return config_from_args(SynthConfig, args, base)


def register(sub) -> None:
    p = sub.add_parser("synth", help="generate a synthetic line dataset with trdg",
                       description="Generate text lines from a corpus and templates, render them with trdg in "
                                   "parallel and write DIR/train, DIR/val, DIR/test LMDBs + manifest.json. "
                                   "With no options: the built-in Norwegian grocery corpus and default rendering.")
    p.add_argument("--out", required=True, metavar="DIR", help="dataset folder to create")
    p.add_argument("--overwrite", action="store_true", help="replace DIR if it exists")
    add_synth_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.preset == "general":
        from ..general import GENERAL_COUNT
        from .general import write_general

        return write_general(args.out, int(args.count or GENERAL_COUNT), int(args.seed or 0), int(args.workers or 0),
                             args.overwrite)
    config = synth_config(args)

    from ._progress import EventBars

    with EventBars() as bars:
        path = generate_dataset(config, args.out, callback=bars, overwrite=args.overwrite)
    from ..dataset import Dataset

    m = Dataset(path).manifest
    skipped = m.get("source", {}).get("skipped_rows", 0)
    note = f", {skipped} malformed source rows skipped" if skipped else ""
    print(f"wrote {path}: {m['total']} samples {m['counts']} ({m['rejected']} rejected{note}) "
          f"in {m['seconds']:.1f} s")
    return 0
