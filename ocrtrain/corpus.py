"""Text sources for synthetic lines: the built-in corpus, a word-list file, or a CSV/TSV column.

>>> entries = load_builtin()
>>> any("ø" in e for e in entries)
True
"""
from __future__ import annotations

import csv
import random
import unicodedata
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Union

from .errors import InputError

__all__ = ["TextSource", "load_builtin", "load_wordlist", "load_csv_column", "load_source",
           "detect_separator", "rich_entries", "BUILTIN", "CSV_SUFFIXES"]

BUILTIN = "builtin"
#: File suffixes read as CSV/TSV rather than as a word list.
CSV_SUFFIXES = (".csv", ".tsv", ".tab")


@dataclass(frozen=True)
class TextSource:
    """Entries read from a source, plus what was skipped (never silently)."""

    entries: tuple[str, ...]
    origin: str
    skipped: tuple[str, ...] = ()  # malformed rows left out ("line N: why"), reported, never silent

    def summary(self) -> dict:
        """JSON-ready facts for a manifest: origin, entry count, skipped rows (first few)."""
        return {"origin": self.origin, "entries": len(self.entries), "skipped_rows": len(self.skipped),
                "skipped_examples": list(self.skipped[:5])}


def _clean(lines, where: str) -> TextSource:
    entries, skipped = [], []
    for lineno, line in lines:
        # NFC: a file saved on macOS may spell "å" as "a" + combining ring (two code points).
        text = unicodedata.normalize("NFC", line).strip()
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


def _utf8_error(path: Path, what: str) -> InputError:
    """InputError naming the first line of `path` that is not UTF-8 (read line by line)."""
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                return InputError(
                    f"{path}:{lineno} is not UTF-8 ({exc.reason} at byte {exc.start} of the line): "
                    f"save the {what} as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)")
    return InputError(f"{path} is not UTF-8: save the {what} as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)")


def detect_separator(header: str) -> str:
    """The most frequent of tab, semicolon, comma and pipe in a header line (comma if none)."""
    counts = {sep: header.count(sep) for sep in ("\t", ";", ",", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def load_csv_column(path: Union[str, Path], column: str, sep: str = "auto",
                    max_rows: int = 0) -> TextSource:
    """Entries from one column of a CSV/TSV; malformed rows are skipped and counted.

    The separator is detected from the header (tab, semicolon, comma or pipe). Rows with the
    wrong number of fields, as found in Openfoodfacts exports, are skipped and listed in
    ``skipped`` ("line N: ..."); a tab-separated file is read without quote handling, because
    such exports contain stray quotes that would otherwise swallow the rows after them.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise InputError(f"CSV file {path} does not exist: check the path")
    with open(path, "rb") as fh:
        first = fh.readline(1 << 20)
    try:
        header = first.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError:
        raise _utf8_error(path, "CSV file") from None
    if not header.strip():
        raise InputError(f"CSV file {path} has no header row: the first line must name the columns")
    if sep == "auto":
        sep = detect_separator(header)
    options = dict(sep=sep, dtype=str, keep_default_na=False, encoding="utf-8-sig", engine="c",
                   quoting=csv.QUOTE_NONE if sep == "\t" else csv.QUOTE_MINIMAL, on_bad_lines="warn")
    try:
        columns = [str(c) for c in pd.read_csv(path, nrows=0, **options).columns]
    except UnicodeDecodeError:  # the C parser decodes a whole buffer, not just the header
        raise _utf8_error(path, "CSV file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{path} cannot be read as CSV ({exc}): check the separator and quoting") from None
    if column not in columns:
        cols = ", ".join(map(repr, columns[:40])) + (" ..." if len(columns) > 40 else "")
        raise InputError(f"{path} has no column {column!r} (separator {sep!r}); available columns: {cols}: "
                         "pick one of those")
    values: list = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            # All columns are parsed: with usecols the parser no longer notices rows with too
            # many fields, and those are exactly the broken ones.
            for chunk in pd.read_csv(path, chunksize=100_000, nrows=max_rows or None, **options):
                values.extend(chunk[column].tolist())
    except UnicodeDecodeError:
        raise _utf8_error(path, "CSV file") from None
    except pd.errors.ParserError as exc:
        raise InputError(f"{path} cannot be read as CSV ({exc}): check the separator and quoting") from None
    bad = tuple(line.strip().replace("Skipping line", "line", 1)
                for w in caught if issubclass(w.category, pd.errors.ParserWarning)
                for line in str(w.message).splitlines() if line.startswith("Skipping line"))
    numbered = [(i + 2, v) for i, v in enumerate(values) if isinstance(v, str)]
    source = _clean(numbered, f"{path}[{column}]")
    return TextSource(source.entries, source.origin, bad)


def load_source(source: str = BUILTIN, column: str = "") -> TextSource:
    """`builtin`, a word-list path, or a CSV/TSV path read at `column`."""
    if source == BUILTIN:
        return TextSource(tuple(load_builtin()), "builtin:no_grocery.txt")
    if column or Path(source).suffix.lower() in CSV_SUFFIXES:
        if not column:
            raise InputError(f"{source} is a CSV/TSV file: name the column holding the text (e.g. product_name)")
        return load_csv_column(source, column)
    return load_wordlist(source)


def _put_in(word: str, char: str, rng: random.Random) -> str:
    """`word` with `char` in it: replacing a letter it decorates (e for è) or inserted."""
    base = unicodedata.normalize("NFD", char)[0]
    spots = [i for i, c in enumerate(word) if c == base and c != char]
    if spots:
        i = rng.choice(spots)
        return word[:i] + char + word[i + 1:]
    i = rng.randrange(len(word) + 1)
    return word[:i] + char + word[i:]


def rich_entries(entries, chars: str, count: int, seed: int = 0) -> list[str]:
    """`count` entries each holding at least one of `chars`, spread evenly over the characters.

    Entries of the source that already contain a character are used first (real words); the
    rest are source entries with the character put in (``Melk`` -> ``Mèlk``, or inserted where
    the word has no letter it decorates), so every character gets about ``count / len(chars)``
    entries whatever the corpus holds.

    >>> rich_entries(["Melk", "Crème"], "è", 3, seed=1)
    ['Mèlk', 'Mèlk', 'Crèmè']
    """
    wanted = [c for c in dict.fromkeys(chars) if not c.isspace()]
    if not wanted:
        raise InputError("rich_in names no characters: give the rare characters, e.g. 'èîôü'")
    pool = [e for e in entries if e.strip()]
    if not pool:
        raise InputError("the text source holds no entries to put the rare characters into")
    rng = random.Random(f"rich/{seed}/{''.join(wanted)}")
    natural = {c: [e for e in pool if c in e] for c in wanted}
    out = []
    for k in range(count):
        c = wanted[k % len(wanted)]
        if natural[c] and rng.random() < 0.5:
            out.append(rng.choice(natural[c]))
        else:
            words = rng.choice(pool).split(" ")
            j = rng.randrange(len(words))
            words[j] = _put_in(words[j], c, rng)
            out.append(" ".join(words))
    return out
