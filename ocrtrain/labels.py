"""Reading labels files: ``labels.txt`` (``name<TAB>text``) and EasyOCR's ``labels.csv``.

``labels.csv`` is read the way EasyOCR's trainer reads it (``trainer/dataset.py``, ``OCRDataset``:
``pandas.read_csv(path, sep='^([^,]+),', engine='python', usecols=['filename', 'words'],
keep_default_na=False)``), so a file gives the same labels here and there:

- each line loses its surrounding whitespace and is split at its first comma: the filename is what
  comes before it, the words everything after, commas included (``a.png,Melk 12,50`` ->
  ``Melk 12,50``, a decimal comma);
- there is no CSV quoting: quotes are text (``a.png,"Melk 12,50"`` -> ``"Melk 12,50"``). A CSV
  writer adds such quotes, so a note names the rows whose words begin with one;
- the header is ``filename,words`` (``words,filename`` also works there); ``NA``/``null`` are text.

A row with no comma or an empty filename (which the trainer cannot use) is rejected on its own;
a header in another case or with spaces around the names, and a UTF-8 BOM, are accepted here
although the trainer would refuse the whole file.

>>> split_csv_line('a.png,Melk 12,50 ')
['a.png', 'Melk 12,50']
>>> split_csv_line(' a.png,"Tine" ost')
['a.png', '"Tine" ost']
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterator, Optional, Union

from .dataset import Rejected
from .errors import InputError

__all__ = ["Candidate", "Note", "ENCODINGS", "detect_encoding", "split_csv_line", "read_lines", "list_labels_txt", "list_labels_csv", "rel"]


@dataclass(frozen=True)
class Candidate:
    """A labelled image, not yet checked: a file named by a labels file, or bytes from an LMDB."""

    sample: str                 # image path relative to the input root, or "LMDB:image-000000001"
    label: str
    data: Union[Path, bytes]
    where: str                  # "labels.txt:12"


@dataclass(frozen=True)
class Note:
    """Something the user should know about a labels file that rejects no row."""

    text: str


def rel(path: Path, root: Path) -> str:
    """`path` relative to `root` as a POSIX string ("" for the root itself)."""
    try:
        return path.relative_to(root).as_posix() if path != root else ""
    except ValueError:
        return path.as_posix()


#: Encodings a labels file may be read in: "auto" tries UTF-8, then cp1252 (Windows Western, what
#: Excel and Notepad save as "ANSI"); never Latin-1, which accepts any bytes and so hides a mistake.
ENCODINGS = ("auto", "utf-8", "cp1252")


def detect_encoding(path: Path, wanted: str = "auto") -> str:
    """The encoding to read `path` in: `wanted`, or for "auto" utf-8 when the bytes are valid UTF-8
    (or some non-ASCII line is), else cp1252 when every byte is a cp1252 character, else utf-8
    (bad lines rejected)."""
    if wanted != "auto":
        return wanted
    raw = path.read_bytes()
    try:
        raw.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    # A UTF-8 file with a few bad lines stays UTF-8 (those lines are rejected): only a file whose
    # non-ASCII lines are all invalid UTF-8 is taken for cp1252.
    for line in raw.split(b"\n"):
        if not line.isascii():
            try:
                line.decode("utf-8")
                return "utf-8"
            except UnicodeDecodeError:
                continue
    try:
        raw.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "utf-8"


def read_lines(path: Path, encoding: str = "utf-8") -> list[tuple[int, str]]:
    """(line number, text) of `path`: BOM dropped, one trailing CR removed, undecodable bytes kept
    as surrogates so the line can be rejected on its own."""
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    text = raw.decode(encoding, errors="surrogateescape")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [(n, line[:-1] if line.endswith("\r") else line) for n, line in enumerate(lines, 1)]


#: EasyOCR's trainer's separator: the first comma, with at least one character before it.
_FIRST_COMMA = re.compile(r"^([^,]+),")


def split_csv_line(line: str) -> list[str]:
    """One labels.csv line as EasyOCR's trainer splits it: ``[before, after]`` the first comma of
    the stripped line, or ``[line]`` when it has none (or starts with one)."""
    parts = _FIRST_COMMA.split(line.strip(), maxsplit=1)
    return parts[1:] if len(parts) == 3 else parts


def _has_bad_bytes(text: str) -> bool:
    return any("\udc80" <= c <= "\udcff" for c in text)


def _bad_line(where: str, line: str, encoding: str = "utf-8") -> Rejected:
    shown = line.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    name = "UTF-8" if encoding == "utf-8" else encoding
    return Rejected(where, shown, f"{where} is not valid {name} text: save the file as UTF-8 "
                                  "(the bad bytes show as \ufffd)")


def _resolve_image(part_dir: Path, input_root: Path, name: str, where: str) -> tuple[Optional[Path], str]:
    """The file a labels line names, or (None, reason) when it is outside the input."""
    clean = name.replace("\\", "/")
    if clean.startswith("/") or re.match(r"^[A-Za-z]:", clean) or ".." in PurePosixPath(clean).parts:
        return None, (f"{where} names {name!r}, a path outside the dataset folder: "
                      "use a path relative to the labels file")
    path = part_dir / clean
    try:
        resolved = path.resolve()
    except OSError as exc:
        return None, f"{where} names {name!r}, which cannot be resolved ({exc}): fix the name"
    root = input_root.resolve()
    if resolved != root and root not in resolved.parents:
        return None, (f"{where} names {name!r}, which links outside the dataset folder: "
                      "copy the image into the folder")
    return path, ""


def _listed(part_dir: Path, input_root: Path, name: str, label: str, where: str,
            first_seen: dict[str, int], n: int) -> Iterator[Union[Candidate, Rejected]]:
    path, problem = _resolve_image(part_dir, input_root, name, where)
    sample = rel(path, input_root) if path is not None else name
    if path is None:
        yield Rejected(sample, label, problem)
        return
    key = str(path)
    if key in first_seen:
        yield Rejected(sample, label, f"{where} lists {name!r} again (first at line {first_seen[key]}): "
                                      "keep one line per image")
        return
    first_seen[key] = n
    yield Candidate(sample, label, path, where)


def list_labels_txt(labels_file: Path, part_dir: Path, input_root: Path, encoding: str = "utf-8",
                    named: Optional[set] = None) -> Iterator[Union[Candidate, Rejected]]:
    """Candidates of a ``labels.txt``: ``name<TAB>text``, or ``name text`` split at the first space.
    `named` collects the images of rows rejected for their label (so they are not "unlisted" too)."""
    rel_file = rel(labels_file, input_root) or labels_file.name
    first_seen: dict[str, int] = {}
    for n, line in read_lines(labels_file, encoding):
        where = f"{rel_file}:{n}"
        if not line.strip():
            continue
        sep = "\t" if "\t" in line else " "
        name, found, label = line.partition(sep)
        if _has_bad_bytes(line):
            if found and name and not _has_bad_bytes(name) and named is not None:
                named.add(part_dir / name.replace("\\", "/"))
            yield _bad_line(where, label if found else line, encoding=encoding)
            continue
        if not found or not name:
            yield Rejected(where, "", f"{where} has no separator: write `name<TAB>text` (or `name text`)")
            continue
        if not label.strip():
            if named is not None:
                named.add(part_dir / name.replace("\\", "/"))
            yield Rejected(where, label, f"{where}: image {name!r} has an empty label: "
                                         "write its text after the tab, or remove the line")
            continue
        yield from _listed(part_dir, input_root, name, label, where, first_seen, n)


def _csv_header(labels_file: Path, where: str, line: str) -> bool:
    """Whether the header is ``words,filename`` (else ``filename,words``; InputError otherwise)."""
    if _has_bad_bytes(line):
        raise InputError(f"{where}, the header of {labels_file}, is not valid UTF-8: save the file as UTF-8")
    header = [h.strip().lower() for h in split_csv_line(line)]
    if sorted(header) != ["filename", "words"]:
        raise InputError(f"{where}: {labels_file} must start with the header `filename,words` "
                         f"(EasyOCR trainer format: each row is split at its first comma, so there are no "
                         f"other columns), found {line!r}: make that the first line")
    return header[0] == "words"


def list_labels_csv(labels_file: Path, part_dir: Path, input_root: Path, encoding: str = "utf-8",
                    named: Optional[set] = None) -> Iterator[Union[Candidate, Rejected, Note]]:
    """Candidates of an EasyOCR ``labels.csv`` (see the module doc for the exact reading)."""
    rel_file = rel(labels_file, input_root) or labels_file.name
    words_first: Optional[bool] = None
    first_seen: dict[str, int] = {}
    quoted: list[str] = []
    for n, line in read_lines(labels_file, encoding):
        where = f"{rel_file}:{n}"
        if not line.strip():
            continue
        if words_first is None:
            words_first = _csv_header(labels_file, where, line)
            continue
        if _has_bad_bytes(line):
            yield _bad_line(where, line, encoding=encoding)
            continue
        fields = split_csv_line(line)
        if len(fields) == 1:
            empty = "empty words" if words_first else "an empty filename"
            problem = f"has {empty}" if line.strip().startswith(",") else "has no comma"
            yield Rejected(where, line, f"{where} {problem}: write `filename,words` (the filename, a comma, the text)")
            continue
        name, label = reversed(fields) if words_first else fields
        if not name.strip():
            yield Rejected(where, label, f"{where} has an empty filename: fill it in or remove the row")
            continue
        if not label.strip():
            if named is not None:
                named.add(part_dir / name.replace("\\", "/"))
            yield Rejected(where, label, f"{where}: image {name!r} has empty words: write its text, or remove the row")
            continue
        if label.startswith('"'):
            quoted.append(where)
        yield from _listed(part_dir, input_root, name, label, where, first_seen, n)
    if words_first is None:
        raise InputError(f"{labels_file} is empty: it must hold the header `filename,words` and one row per image")
    if quoted:
        yield Note(f"{len(quoted)} row(s) of {rel_file} have words that begin with a double quote (first: "
                   f"{quoted[0]}): kept with their quotes, as EasyOCR's trainer reads them (it splits a row at "
                   "its first comma and knows no CSV quoting); remove the quotes from the file if they are not "
                   "part of the text")
