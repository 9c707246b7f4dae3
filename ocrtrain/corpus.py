"""Text sources for synthetic lines: the built-in corpus, a word-list file, or a CSV/TSV column.

>>> entries = load_builtin()
>>> any("ø" in e for e in entries)
True
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Union

from .errors import InputError

__all__ = ["TextSource", "load_builtin", "load_wordlist", "load_csv_column", "BUILTIN"]

BUILTIN = "builtin"


@dataclass(frozen=True)
class TextSource:
    """Entries read from a source, plus what was skipped (never silently)."""

    entries: tuple[str, ...]
    origin: str
    skipped: tuple[str, ...] = ()


def _clean(lines, where: str) -> TextSource:
    entries, skipped = [], []
    for lineno, line in lines:
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if "\t" in text or "\n" in text:
            text = " ".join(text.split())
        entries.append(text)
    if not entries:
        raise InputError(f"{where} holds no text entries: put one entry per line")
    return TextSource(tuple(entries), where, tuple(skipped))


def load_builtin() -> list[str]:
    """The shipped Norwegian grocery names (æ/ø/å included)."""
    text = resources.files("ocrtrain").joinpath("data/no_grocery.txt").read_text(encoding="utf-8")
    return list(_clean(enumerate(text.splitlines(), 1), "built-in corpus").entries)


def load_wordlist(path: Union[str, Path]) -> TextSource:
    """One entry per line (UTF-8, BOM tolerated); blank lines and `#` comments are ignored."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"word list {path} does not exist: check the path")
    raw = path.read_bytes()
    lines = []
    for lineno, line in enumerate(raw.split(b"\n"), 1):
        try:
            lines.append((lineno, line.decode("utf-8-sig" if lineno == 1 else "utf-8")))
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{path}:{lineno} is not UTF-8 ({exc.reason} at byte {exc.start}): "
                "save the word list as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)"
            ) from None
    return _clean(lines, str(path))


def load_csv_column(path: Union[str, Path], column: str, sep: str = "auto",
                    max_rows: int = 0) -> TextSource:
    """Entries from one column of a CSV/TSV; malformed rows are skipped and counted."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise InputError(f"CSV file {path} does not exist: check the path")
    try:
        with open(path, encoding="utf-8", errors="strict") as fh:
            head = fh.read(65536)
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 ({exc.reason} at byte {exc.start}): re-save it as UTF-8") from None
    if sep == "auto":
        first = head.splitlines()[0] if head else ""
        sep = "\t" if first.count("\t") >= max(1, first.count(",")) else (";" if first.count(";") > first.count(",") else ",")
    bad: list[str] = []

    def on_bad(fields):
        bad.append(sep.join(fields)[:80])
        return None

    try:
        frame = pd.read_csv(path, sep=sep, dtype=str, engine="python", on_bad_lines=on_bad,
                            quoting=csv.QUOTE_MINIMAL, nrows=max_rows or None, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{path} cannot be read as CSV ({exc}): check the separator and quoting") from None
    if column not in frame.columns:
        cols = ", ".join(map(str, frame.columns[:30]))
        raise InputError(f"{path} has no column {column!r}; available columns: {cols}: pick one of those")
    values = [(i + 2, v) for i, v in enumerate(frame[column].tolist()) if isinstance(v, str)]
    source = _clean(values, f"{path}[{column}]")
    return TextSource(source.entries, source.origin, tuple(bad))
