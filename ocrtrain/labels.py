"""Reading labels files: ``labels.txt`` (``name<TAB>text``) and EasyOCR's ``labels.csv``.

``labels.csv`` is read the way EasyOCR's trainer reads it (``trainer/dataset.py``:
``pandas.read_csv(path, usecols=['filename', 'words'], keep_default_na=False)``):

- the columns are found by the header's names (any order; other columns are ignored);
- a field that starts with ``"`` is quoted: commas inside are text, ``""`` is one quote, and
  text after the closing quote is kept (``"Tine" ost`` -> ``Tine ost``); a quote inside an
  unquoted field is an ordinary character (``5" skjerm``);
- spaces around a field are kept, and ``NA``/``null`` are text, not missing values.

One deliberate difference: in a row with more commas than the header (``a.png,Melk 12,50``,
a decimal comma), pandas keeps only ``Melk 12`` and silently drops ``,50``. Here the words
are everything after the comma that ends the filename (``Melk 12,50``), when ``words`` is the
last column and the rest holds no quote; a warning says how many rows that was, since
EasyOCR's own trainer would read them shortened (quote the field to be read the same by both).
Each physical line is one row: a label never holds a newline, so an unclosed quote rejects its
row only (pandas would fail the whole file).

>>> split_csv_line('a.png,"Melk 12,50"')
(['a.png', 'Melk 12,50'], [0, 6], False)
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


def split_csv_line(line: str) -> tuple[list[str], list[int], bool]:
    """Fields of one CSV line as pandas' C parser reads them, each field's start offset, and
    whether a quoted field is left open at the end of the line."""
    fields, starts = [], []
    i, n = 0, len(line)
    while True:
        starts.append(i)
        if i < n and line[i] == '"':
            i += 1
            buf = []
            while True:
                if i >= n:
                    fields.append("".join(buf))
                    return fields, starts, True
                if line[i] == '"':
                    if i + 1 < n and line[i + 1] == '"':
                        buf.append('"')
                        i += 2
                        continue
                    i += 1
                    break
                buf.append(line[i])
                i += 1
            end = line.find(",", i)
            fields.append("".join(buf) + (line[i:] if end < 0 else line[i:end]))
        else:
            end = line.find(",", i)
            fields.append(line[i:] if end < 0 else line[i:end])
        if end < 0:
            return fields, starts, False
        i = end + 1


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


def _csv_header(labels_file: Path, where: str, line: str) -> tuple[int, int, int]:
    """(index of filename, index of words, number of columns) from the header line."""
    if _has_bad_bytes(line):
        raise InputError(f"{where}, the header of {labels_file}, is not valid UTF-8: save the file as UTF-8")
    fields, _, unclosed = split_csv_line(line)
    header = [h.strip().lower() for h in fields]
    if unclosed or "filename" not in header or "words" not in header:
        raise InputError(f"{where}: {labels_file} must start with the header `filename,words` "
                         f"(EasyOCR trainer format), found {line!r}: add that header line")
    return header.index("filename"), header.index("words"), len(header)


def _csv_row(line: str, where: str, i_name: int, i_words: int, width: int) -> Union[tuple[str, str, bool], Rejected]:
    """(filename, words, whether the words held unquoted commas) of one row, or its Rejected."""
    fields, starts, unclosed = split_csv_line(line)
    if unclosed:
        return Rejected(where, line, f"{where} has a quote that is never closed: close it (\"...\") and "
                                     "double any quote inside the words (\"\")")
    widened = False
    if len(fields) > width:
        rest = line[starts[i_words]:] if i_words < len(starts) else ""
        if i_words != width - 1 or '"' in rest:
            return Rejected(where, line, f"{where} has {len(fields)} fields but the header has {width}: "
                                         "quote the words field if it contains commas")
        fields = fields[:i_words] + [rest]
        widened = True
    fields += [""] * (width - len(fields))  # missing trailing fields are empty, as in pandas
    return fields[i_name], fields[i_words], widened


def list_labels_csv(labels_file: Path, part_dir: Path, input_root: Path, encoding: str = "utf-8",
                    named: Optional[set] = None) -> Iterator[Union[Candidate, Rejected, Note]]:
    """Candidates of an EasyOCR ``labels.csv`` (see the module doc for the exact reading)."""
    rel_file = rel(labels_file, input_root) or labels_file.name
    header: Optional[tuple[int, int, int]] = None
    first_seen: dict[str, int] = {}
    widened: list[str] = []
    for n, line in read_lines(labels_file, encoding):
        where = f"{rel_file}:{n}"
        if not line.strip():
            continue
        if header is None:
            header = _csv_header(labels_file, where, line)
            continue
        if _has_bad_bytes(line):
            yield _bad_line(where, line, encoding=encoding)
            continue
        row = _csv_row(line, where, *header)
        if isinstance(row, Rejected):
            yield row
            continue
        name, label, wide = row
        if not name:
            yield Rejected(where, label, f"{where} has an empty filename: fill it in or remove the row")
            continue
        if not label.strip():
            if named is not None:
                named.add(part_dir / name.replace("\\", "/"))
            yield Rejected(where, label, f"{where}: image {name!r} has empty words: write its text, or remove the row")
            continue
        if wide:
            widened.append(where)
        yield from _listed(part_dir, input_root, name, label, where, first_seen, n)
    if header is None:
        raise InputError(f"{labels_file} is empty: it must hold the header `filename,words` and one row per image")
    if widened:
        yield Note(f"{len(widened)} row(s) of {rel_file} have unquoted commas in the words (first: {widened[0]}): "
                   "kept all the text after the filename's comma; EasyOCR's trainer (pandas) would read only "
                   "up to the next comma, so quote the words field (\"...\") if the file is also used there")
