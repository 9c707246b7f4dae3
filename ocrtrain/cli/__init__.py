"""`ocrtrain` command line: one module per command in this package, each with `register(sub)`.

A command module defines ``register(subparsers)`` which adds its parser and sets
``func=callable(args) -> int``. Commands are discovered, so adding one touches no other file.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys
from typing import Optional, Sequence

from .. import __version__
from ..errors import OcrtrainError

__all__ = ["main", "entry", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ocrtrain",
        description="Fine-tune EasyOCR-compatible text recognizers on your own documents.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages to stderr")
    parser.add_argument("--version", action="version", version=f"ocrtrain {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except OcrtrainError as exc:
        print(f"ocrtrain {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"ocrtrain {args.command}: interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    """The ``ocrtrain`` command and ``python -m ocrtrain``: main(), then exit with its code."""
    code = main()
    from ..distributed import launched_by_torchrun

    if launched_by_torchrun():
        # The process group is already destroyed, but gloo's worker threads can still abort the
        # interpreter's teardown (SIGABRT, which torchrun reports as a crash of a finished run):
        # everything is written and flushed, so leave without the teardown.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
