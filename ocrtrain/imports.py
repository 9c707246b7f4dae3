"""Importing labelled text-line images (labels.txt, EasyOCR labels.csv, DTRB LMDB, .zip) into a dataset.

Supported sources (detected automatically, or named with ``ImportConfig.format``):

- ``labels``: a folder of images and ``labels.txt`` with ``name<TAB>text`` lines (or
  ``name text``, split at the first space, as the EasyOCR tutorials write it);
- ``easyocr``: an EasyOCR trainer folder, images and ``labels.csv`` with header ``filename,words``;
- ``lmdb``: a deep-text-recognition-benchmark LMDB (a folder with ``data.mdb``);
- ``zip``: a .zip of any of these, extracted safely into a temporary folder first.

A folder whose subfolders are such sources (``train/``, ``val/``, ``en_train_filtered/`` ...)
keeps the splits their names give. Every sample that cannot be used becomes a row of the
dataset's ``rejected.csv`` with the reason and the fix; the good samples are kept. If nothing is
usable, InputError is raised and no dataset folder is left behind.

>>> # import_dataset("receipts.zip", "data/receipts", ImportConfig(split=SplitConfig(split_seed=1)))
"""
from __future__ import annotations

import csv
import os
import random
import re
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterator, Optional, Union

from .config import Config, check
from .dataset import DatasetWriter, Rejected, SplitConfig
from .errors import DatasetError, InputError
from .events import Callback, Message, Progress, emit
from .images import decode_image, encode_png
from .lmdb_io import LmdbReader

__all__ = ["FORMATS", "IMAGE_SUFFIXES", "ImportConfig", "import_dataset", "detect_format",
           "extract_zip_safely", "split_from_name"]

FORMATS = ("auto", "labels", "easyocr", "lmdb", "zip")
#: File suffixes treated as images when looking for images without a label.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp")
#: The file each folder format is recognised by.
MARKERS = {"lmdb": "data.mdb", "easyocr": "labels.csv", "labels": "labels.txt"}
#: Formats the stored bytes are kept in; anything else is re-encoded as PNG.
_KEPT_FORMATS = ("PNG", "JPEG")
_PROGRESS_EVERY = 200


@dataclass(frozen=True)
class ImportConfig(Config):
    """How to read a source and split it into a dataset."""

    format: str = field(default="auto", metadata={
        "help": "source format: auto, labels (labels.txt), easyocr (labels.csv), lmdb (data.mdb) or zip",
        "choices": FORMATS})
    split: SplitConfig = field(default_factory=SplitConfig, metadata={"help": "train/val/test split"})
    keep_splits: bool = field(default=True, metadata={
        "help": "keep the train/val/test division a source's subfolders give (else split by fractions)"})
    reencode: bool = field(default=False, metadata={
        "help": "re-encode every image as PNG (else PNG/JPEG bytes are kept as they are)"})
    min_side: int = field(default=4, metadata={"help": "reject images narrower or lower than this (pixels)"})
    max_image_bytes: int = field(default=50_000_000, metadata={"help": "reject image files larger than this"})
    max_zip_bytes: int = field(default=4_000_000_000, metadata={
        "help": "refuse a zip whose files add up to more than this many bytes uncompressed"})
    max_zip_entries: int = field(default=1_000_000, metadata={"help": "refuse a zip with more entries than this"})
    overwrite: bool = field(default=False, metadata={"help": "replace an existing output folder"})

    def validate(self) -> None:
        check(self.min_side >= 1, f"min_side must be at least 1, got {self.min_side}")
        check(self.max_image_bytes > 0, f"max_image_bytes must be positive, got {self.max_image_bytes}")
        check(self.max_zip_bytes > 0, f"max_zip_bytes must be positive, got {self.max_zip_bytes}")
        check(self.max_zip_entries > 0, f"max_zip_entries must be positive, got {self.max_zip_entries}")


# --------------------------------------------------------------------------------------------
# Detection


@dataclass(frozen=True)
class _Part:
    """One labelled source inside the input: a folder (or labels file) of one format."""

    path: Path          # folder holding the marker file (or the LMDB folder)
    fmt: str            # labels | easyocr | lmdb
    split: Optional[str]
    name: str           # path relative to the input root, for messages ("" = the root)
    labels_file: Optional[Path] = None


_SPLIT_WORDS = {
    "train": {"train", "training", "trn"},
    "val": {"val", "valid", "validation", "dev"},
    "test": {"test", "testing", "evaluation", "eval"},
}


def split_from_name(name: str) -> Optional[str]:
    """The split a folder name stands for (``en_train_filtered`` -> train), or None.

    >>> split_from_name("en_val"), split_from_name("MJ")
    ('val', None)
    """
    tokens = set(re.split(r"[^a-z0-9]+", name.lower()))
    found = [s for s, words in _SPLIT_WORDS.items() if tokens & words]
    return found[0] if len(found) == 1 else None


def _leaf_format(folder: Path, wanted: str) -> Optional[str]:
    """The format `folder` itself holds (checking only `wanted` unless it is auto)."""
    candidates = [wanted] if wanted in MARKERS else list(MARKERS)
    present = [f for f in candidates if (folder / MARKERS[f]).is_file()]
    if len(present) > 1:
        names = " and ".join(MARKERS[f] for f in present)
        raise InputError(f"{folder} holds both {names}, so its format is ambiguous: "
                         f"pass format={present[0]!r} (--format {present[0]}) or remove one")
    return present[0] if present else None


def _detect_parts(root: Path, wanted: str) -> list[_Part]:
    """Find the labelled sources in `root`: itself, or its subfolders (descending through wrappers)."""
    base = root
    for _ in range(4):
        fmt = _leaf_format(root, wanted)
        if fmt:
            return [_Part(root, fmt, None, _rel(root, base))]
        subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()
                         and not p.name.startswith((".", "__MACOSX")))
        parts = []
        for sub in subdirs:
            fmt = _leaf_format(sub, wanted)
            if fmt:
                parts.append(_Part(sub, fmt, split_from_name(sub.name), _rel(sub, base)))
        if parts:
            return parts
        files = [p for p in root.iterdir() if p.is_file() and not p.name.startswith(".")]
        # A zip of a folder usually wraps everything in one top folder: look inside it.
        if len(subdirs) == 1 and not files:
            root = subdirs[0]
            continue
        break
    what = (MARKERS[wanted] if wanted in MARKERS
            else "labels.txt (name<TAB>text), labels.csv (filename,words) or data.mdb (an LMDB)")
    others = [f for f in MARKERS if f != wanted and wanted in MARKERS and _leaf_format(root, f)]
    hint = f" (it holds {MARKERS[others[0]]}: pass --format {others[0]} or auto)" if others else ""
    raise InputError(
        f"{base} holds no {what}, neither itself nor in its subfolders{hint}: point at the folder that "
        "holds the labels file (or at a folder of train/val/test such folders)"
    )


def detect_format(source: Union[str, Path]) -> str:
    """The format ``auto`` resolves to for `source` (labels, easyocr, lmdb or zip)."""
    source = Path(source)
    if source.is_file():
        if zipfile.is_zipfile(source):
            return "zip"
        if source.suffix.lower() == ".csv":
            return "easyocr"
        if source.suffix.lower() == ".txt":
            return "labels"
        raise InputError(f"{source} is neither a .zip, a labels .txt nor a labels .csv: "
                         "give a folder, a labels file or a .zip")
    if not source.is_dir():
        raise InputError(f"import source {source} does not exist: check the path")
    formats = {p.fmt for p in _detect_parts(source, "auto")}
    return formats.pop() if len(formats) == 1 else "mixed"


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix() if path != root else ""
    except ValueError:
        return path.as_posix()


# --------------------------------------------------------------------------------------------
# Safe zip extraction


def _zip_entry_problem(info: zipfile.ZipInfo) -> Optional[str]:
    """Why an entry must not be extracted, or None when it is safe."""
    name = info.filename.replace("\\", "/")
    mode = info.external_attr >> 16
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "has an absolute path, which would write outside the target: store relative paths"
    if any(part == ".." for part in name.split("/")):
        return "has '..' in its path, which would write outside the target: store paths inside the archive"
    if stat.S_ISLNK(mode):
        return "is a symbolic link, which could point outside the archive: store the file itself"
    # Many zip writers store permission bits only (file type 0); that is an ordinary file.
    if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return "is not a regular file or folder: store plain files only"
    if info.flag_bits & 0x1:
        return "is encrypted: store it without a password"
    return None


def _is_junk(name: str) -> bool:
    # Finder adds resource forks and .DS_Store to every zip it makes; they are never samples.
    parts = name.replace("\\", "/").split("/")
    return "__MACOSX" in parts or parts[-1] == ".DS_Store" or parts[-1].startswith("._")


def extract_zip_safely(archive: Union[str, Path], target: Union[str, Path], max_bytes: int = 4_000_000_000,
                       max_entries: int = 1_000_000) -> list[Rejected]:
    """Extract `archive` into `target`, skipping unsafe entries; returns one Rejected per skipped entry.

    Entries with absolute paths, ``..``, symbolic links or encryption are not written. An archive
    with more than `max_entries` entries or more than `max_bytes` uncompressed (a zip bomb) is
    refused as a whole with InputError.
    """
    archive, target = Path(archive), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    rejected: list[Rejected] = []
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{archive} is not a readable zip ({exc}): re-create the archive") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > max_entries:
            raise InputError(f"{archive} has {len(infos):,} entries, over the limit of {max_entries:,} "
                             "(a zip bomb?): split the archive or raise max_zip_entries")
        declared = sum(i.file_size for i in infos)
        if declared > max_bytes:
            raise InputError(f"{archive} unpacks to {declared:,} bytes, over the limit of {max_bytes:,} "
                             "(a zip bomb?): split the archive or raise max_zip_bytes")
        written = 0
        seen: set[str] = set()
        for info in infos:
            name = info.filename
            if _is_junk(name):
                continue
            problem = _zip_entry_problem(info)
            clean = name.replace("\\", "/").strip("/")
            if problem is None and clean in seen:
                problem = "appears twice in the archive: keep one copy"
            dest = (root / clean).resolve() if clean else root
            if problem is None and dest != root and root not in dest.parents:
                problem = "would be written outside the target folder: store paths inside the archive"
            if problem:
                rejected.append(Rejected(name, "", f"zip entry {name!r} in {archive.name} {problem}"))
                continue
            seen.add(clean)
            if info.is_dir() or not clean:
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(info) as src, open(dest, "wb") as out:
                    # Count real bytes too: the sizes in the headers are written by whoever made the zip.
                    while True:
                        chunk = src.read(1 << 20)
                        if not chunk:
                            break
                        written += len(chunk)
                        if written > max_bytes:
                            raise InputError(
                                f"{archive} unpacks to more than {max_bytes:,} bytes (a zip bomb?): "
                                "split the archive or raise max_zip_bytes")
                        out.write(chunk)
            except InputError:
                raise
            except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError, ValueError) as exc:
                dest.unlink(missing_ok=True)
                rejected.append(Rejected(name, "", f"zip entry {name!r} in {archive.name} cannot be read "
                                                   f"({exc}): re-create the archive"))
    return rejected


# --------------------------------------------------------------------------------------------
# Reading the sources. Each reader yields (sample, label, bytes) for candidates and Rejected rows.


@dataclass(frozen=True)
class _Candidate:
    """A labelled image, not yet checked: a file named by a labels file, or bytes from an LMDB."""

    sample: str                 # image path relative to the input root, or "LMDB:image-000000001"
    label: str
    data: Union[Path, bytes]
    where: str                  # "labels.txt:12"


def _read_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of `path`: BOM dropped, one trailing CR removed, undecodable bytes kept
    as surrogates so the line can be rejected on its own."""
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    text = raw.decode("utf-8", errors="surrogateescape")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [(n, line[:-1] if line.endswith("\r") else line) for n, line in enumerate(lines, 1)]


def _has_bad_bytes(text: str) -> bool:
    return any("\udc80" <= c <= "\udcff" for c in text)


def _bad_line(where: str, line: str) -> Rejected:
    shown = line.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return Rejected(where, shown, f"{where} is not valid UTF-8 text: save the file as UTF-8 "
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


def _list_labels_txt(part: _Part, input_root: Path) -> Iterator[Union[_Candidate, Rejected]]:
    labels_file = part.labels_file or part.path / "labels.txt"
    rel_file = _rel(labels_file, input_root) or labels_file.name
    first_seen: dict[str, int] = {}
    for n, line in _read_lines(labels_file):
        where = f"{rel_file}:{n}"
        if not line.strip():
            continue
        sep = "\t" if "\t" in line else " "
        name, found, label = line.partition(sep)
        if _has_bad_bytes(line):
            yield _bad_line(where, label if found else line)
            continue
        if not found or not name:
            yield Rejected(where, "", f"{where} has no separator: write `name<TAB>text` (or `name text`)")
            continue
        if not label.strip():
            yield Rejected(where, label, f"{where}: image {name!r} has an empty label: "
                                         "write its text after the tab, or remove the line")
            continue
        yield from _listed(part, input_root, name, label, where, first_seen, n)


def _list_labels_csv(part: _Part, input_root: Path) -> Iterator[Union[_Candidate, Rejected]]:
    labels_file = part.labels_file or part.path / "labels.csv"
    rel_file = _rel(labels_file, input_root) or labels_file.name
    lines = _read_lines(labels_file)
    # Each physical line is parsed on its own (a text-line label never holds a newline), so one
    # unbalanced quote is one rejected row rather than the rest of the file swallowed.
    header: Optional[list[str]] = None
    first_seen: dict[str, int] = {}
    for n, line in lines:
        where = f"{rel_file}:{n}"
        if not line.strip():
            continue
        if _has_bad_bytes(line):
            if header is None:
                raise InputError(f"{where}, the header of {labels_file}, is not valid UTF-8: save the file as UTF-8")
            yield _bad_line(where, line)
            continue
        try:
            row = next(csv.reader([line], strict=True))
        except csv.Error as exc:
            if header is None:
                raise InputError(f"{where}: the header of {labels_file} is not valid CSV ({exc}): "
                                 "it must be `filename,words`") from None
            yield Rejected(where, line, f"{where} is not valid CSV ({exc}): quote the words field "
                                        "and double any quote inside it (\"\" )")
            continue
        if header is None:
            header = [h.strip().lower() for h in row]
            if "filename" not in header or "words" not in header:
                raise InputError(f"{where}: {labels_file} must start with the header `filename,words` "
                                 f"(EasyOCR trainer format), found {line!r}: add that header line")
            i_name, i_words = header.index("filename"), header.index("words")
            continue
        if len(row) != len(header):
            yield Rejected(where, line, f"{where} has {len(row)} fields but the header has {len(header)}: "
                                        "quote the words field if it contains commas")
            continue
        name, label = row[i_name], row[i_words]
        if not name:
            yield Rejected(where, label, f"{where} has an empty filename: fill it in or remove the row")
            continue
        if not label.strip():
            yield Rejected(where, label, f"{where}: image {name!r} has empty words: "
                                         "write its text, or remove the row")
            continue
        yield from _listed(part, input_root, name, label, where, first_seen, n)
    if header is None:
        raise InputError(f"{labels_file} is empty: it must hold the header `filename,words` and one row per image")


def _listed(part: _Part, input_root: Path, name: str, label: str, where: str,
            first_seen: dict[str, int], n: int) -> Iterator[Union[_Candidate, Rejected]]:
    path, problem = _resolve_image(part.path, input_root, name, where)
    sample = _rel(path, input_root) if path is not None else name
    if path is None:
        yield Rejected(sample, label, problem)
        return
    key = str(path)
    if key in first_seen:
        yield Rejected(sample, label, f"{where} lists {name!r} again (first at line {first_seen[key]}): "
                                      "keep one line per image")
        return
    first_seen[key] = n
    yield _Candidate(sample, label, path, where)


def _unlabelled_images(part: _Part, input_root: Path, listed: set[Path],
                       skip_dirs: set[Path]) -> Iterator[Rejected]:
    marker = (part.labels_file or part.path / MARKERS[part.fmt]).name
    line = "`name<TAB>text`" if part.fmt == "labels" else "a row `filename,words`"
    for dirpath, dirnames, filenames in os.walk(part.path):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if here / d not in skip_dirs and not d.startswith("."))
        for fname in sorted(filenames):
            path = here / fname
            if path.suffix.lower() in IMAGE_SUFFIXES and path not in listed and not fname.startswith("."):
                sample = _rel(path, input_root)
                yield Rejected(sample, "", f"image {sample} has no line in {marker}: add {line} "
                                           "or remove the image")


# --------------------------------------------------------------------------------------------
# Import


def _prepare_image(data: bytes, where: str, config: ImportConfig) -> bytes:
    """Bytes to store for one image: checked by a full decode, kept or re-encoded as PNG."""
    image = decode_image(data, where)
    w, h = image.size
    if w < config.min_side or h < config.min_side:
        raise InputError(f"{where} is only {w}x{h} pixels (min_side {config.min_side}): "
                         "use a larger crop or lower min_side")
    if image.format in _KEPT_FORMATS and not config.reencode:
        return data
    if image.mode not in ("1", "L", "LA", "RGB", "RGBA", "P"):
        image = image.convert("L" if image.mode.startswith(("I", "F")) else "RGB")
    return encode_png(image)


class _Importer:
    def __init__(self, source: Path, config: ImportConfig, callback: Optional[Callback]):
        self.source = source
        self.config = config
        self.callback = callback

    def parts(self, root: Path) -> list[_Part]:
        fmt = self.config.format
        inner = "auto" if fmt in ("auto", "zip") else fmt
        if root.is_file():
            kind = "easyocr" if root.suffix.lower() == ".csv" else "labels"
            if inner not in ("auto", kind):
                raise InputError(f"{root} is a {kind} file but format is {inner!r}: pass --format {kind}")
            return [_Part(root.parent, kind, None, "", labels_file=root)]
        return _detect_parts(root, inner)

    def assign_splits(self, parts: list[_Part]) -> list[_Part]:
        if len(parts) == 1 or not self.config.keep_splits:
            return [_Part(p.path, p.fmt, None, p.name, p.labels_file) for p in parts]
        unnamed = [p.name for p in parts if p.split is None]
        if unnamed:
            emit(self.callback, Message(
                f"subfolders {', '.join(unnamed)} do not name a split (train/val/test): "
                "all samples are split by the configured fractions", "warning"))
            return [_Part(p.path, p.fmt, None, p.name, p.labels_file) for p in parts]
        return parts

    def run(self, source: Path, out: Path, pre_rejected: list[Rejected]) -> Path:
        parts = self.assign_splits(self.parts(source))
        root = source.parent if source.is_file() else source
        given = {p.split for p in parts if p.split}
        missing = [s for s in ("val", "test") if s not in given] if given else []
        listings: list[tuple[_Part, list]] = []
        for part in parts:
            if part.fmt == "labels":
                listings.append((part, list(_list_labels_txt(part, root))))
            elif part.fmt == "easyocr":
                listings.append((part, list(_list_labels_csv(part, root))))
            else:
                listings.append((part, []))
        total = sum(len(items) for _, items in listings)
        lmdbs: dict[Path, LmdbReader] = {}
        for part in parts:
            if part.fmt == "lmdb":
                try:
                    lmdbs[part.path] = LmdbReader(part.path)
                except DatasetError as exc:
                    raise InputError(f"cannot import LMDB {part.path}: {exc}") from None
                total += len(lmdbs[part.path])
        part_dirs = {p.path for p in parts}
        source_info = {
            "kind": "import",
            "path": str(self.source),
            "format": self.config.format,
            "parts": [{"name": p.name or ".", "format": p.fmt, "split": p.split} for p in parts],
        }
        # Splits the source does not provide are drawn from its train part by the fractions.
        rng = random.Random(self.config.split.split_seed)
        writer = DatasetWriter(out, self.config.split, source=source_info, overwrite=self.config.overwrite)
        try:
            for r in pre_rejected:
                writer.reject(r.sample, r.label, r.reason)
            done = 0
            for part, items in listings:
                listed_paths: set[Path] = set()
                candidates = items if part.fmt != "lmdb" else self._lmdb_items(lmdbs[part.path], part, root)
                for item in candidates:
                    done += 1
                    if isinstance(item, Rejected):
                        writer.reject(item.sample, item.label, item.reason)
                    else:
                        if isinstance(item.data, Path):
                            listed_paths.add(item.data)
                        image = self._load(writer, item)
                        if image is not None:
                            writer.add(image, item.label, sample=item.sample,
                                       split=self._split_for(part, missing, rng))
                    if done % _PROGRESS_EVERY == 0:
                        emit(self.callback, Progress("import", done, total, {"rejected": len(writer.rejected)}))
                if part.fmt != "lmdb":
                    for r in _unlabelled_images(part, root, listed_paths, part_dirs - {part.path}):
                        writer.reject(r.sample, r.label, r.reason)
            emit(self.callback, Progress("import", done, total, {"rejected": len(writer.rejected)}))
            if writer.total == 0:
                raise InputError(_nothing_message(self.source, writer.rejected))
            if writer.rejected:
                emit(self.callback, Message(
                    f"{len(writer.rejected)} sample(s) rejected: see {out / 'rejected.csv'}", "warning"))
            return writer.close(extra={"import_config": self.config.to_dict()})
        except BaseException:
            writer.abort()
            raise
        finally:
            for reader in lmdbs.values():
                reader.close()

    def _lmdb_items(self, reader: LmdbReader, part: _Part, root: Path) -> Iterator[Union[_Candidate, Rejected]]:
        rel = part.name or part.path.name
        for i in range(len(reader)):
            sample = f"{rel}:image-{i + 1:09d}"
            try:
                label = reader.label(i)
                data = reader.image_bytes(i)
            except UnicodeDecodeError:
                yield Rejected(sample, "", f"{sample}: label-{i + 1:09d} in {reader.path} is not valid "
                                           "UTF-8: re-create the LMDB with UTF-8 labels")
                continue
            except DatasetError as exc:
                yield Rejected(sample, "", str(exc))
                continue
            if not label.strip():
                yield Rejected(sample, label, f"{sample} in {reader.path} has an empty label: "
                                              "re-create the LMDB without it")
                continue
            yield _Candidate(sample, label, data, sample)

    def _load(self, writer: DatasetWriter, item: _Candidate) -> Optional[bytes]:
        sample, label, where = item.sample, item.label, item.where
        if isinstance(item.data, Path):
            path = item.data
            if not path.is_file():
                writer.reject(sample, label, f"{where} lists {sample}, which does not exist: "
                                             "add the image or remove the line")
                return None
            size = path.stat().st_size
            if size > self.config.max_image_bytes:
                writer.reject(sample, label, f"{sample} ({where}) is {size:,} bytes, over max_image_bytes "
                                             f"{self.config.max_image_bytes:,}: crop or compress it")
                return None
            data = path.read_bytes()
            where = f"{sample} ({where})"
        else:
            data = item.data
        try:
            return _prepare_image(data, where, self.config)
        except InputError as exc:
            writer.reject(sample, label, str(exc))
            return None

    def _split_for(self, part: _Part, missing: list[str], rng: random.Random) -> Optional[str]:
        if part.split is None:
            return None
        if part.split != "train" or not missing:
            return part.split
        r = rng.random()
        edge = 0.0
        for name in missing:
            edge += self.config.split.test_fraction if name == "test" else self.config.split.val_fraction
            if r < edge:
                return name
        return "train"


def _nothing_message(source: Path, rejected: list[Rejected]) -> str:
    if not rejected:
        return f"{source} lists no samples: add images and labels, then import again"
    first = "; ".join(f"{r.sample}: {r.reason}" for r in rejected[:3])
    return (f"nothing could be imported from {source}: all {len(rejected)} sample(s) were rejected "
            f"(first: {first}): fix these and import again")


def import_dataset(source: Union[str, Path], out: Union[str, Path], config: Optional[ImportConfig] = None,
                   callback: Optional[Callback] = None) -> Path:
    """Import `source` (folder, labels file or .zip) into a new dataset folder `out`; returns `out`.

    Rejected samples go to ``out/rejected.csv``. Raises InputError when nothing is usable, and
    leaves no folder behind on any failure.

    >>> # import_dataset("scans/", "data/scans", ImportConfig(format="labels"))
    """
    config = config or ImportConfig()
    source, out = Path(source), Path(out)
    if not source.exists():
        raise InputError(f"import source {source} does not exist: check the path")
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not config.overwrite:
        raise DatasetError(f"{out} already exists and is not empty: choose a new folder or pass overwrite")
    importer = _Importer(source, config, callback)
    is_zip = source.is_file() and zipfile.is_zipfile(source)
    if config.format == "zip" and not is_zip:
        raise InputError(f"{source} is not a zip archive but format is 'zip': pass the .zip or --format auto")
    if not is_zip:
        if source.is_file() and source.suffix.lower() not in (".txt", ".csv"):
            raise InputError(f"{source} is neither a .zip, a labels .txt nor a labels .csv: "
                             "give a folder, a labels file or a .zip")
        return importer.run(source, out, [])
    tmp = Path(tempfile.mkdtemp(prefix="ocrtrain-import-"))
    try:
        emit(callback, Message(f"extracting {source.name}"))
        rejected = extract_zip_safely(source, tmp, config.max_zip_bytes, config.max_zip_entries)
        try:
            return importer.run(tmp, out, rejected)
        except InputError as exc:
            if rejected and "holds no" in str(exc):
                reasons = "; ".join(r.reason for r in rejected[:3])
                raise InputError(f"{exc} (unsafe zip entries skipped: {reasons})") from None
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
