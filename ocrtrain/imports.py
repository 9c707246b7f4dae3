"""Importing labelled text-line images (labels.txt, EasyOCR labels.csv, DTRB LMDB, .zip) into a dataset.

Supported sources (detected automatically, or named with ``ImportConfig.format``):

- ``labels``: a folder of images and ``labels.txt`` with ``name<TAB>text`` lines (or
  ``name text``, split at the first space, as the EasyOCR tutorials write it);
- ``easyocr``: an EasyOCR trainer folder, images and ``labels.csv`` with header ``filename,words``,
  read as EasyOCR's trainer reads it (see :mod:`ocrtrain.labels`);
- ``lmdb``: a deep-text-recognition-benchmark LMDB (a folder with ``data.mdb``); only the
  samples present are read, whatever ``num-samples`` claims;
- ``zip``: a .zip of any of these, extracted safely into a temporary folder first
  (:mod:`ocrtrain.imports_zip`).

Labels are cleaned by :func:`ocrtrain.label_text.clean_label` (NFC, invisible characters
removed; control and bidi characters reject the row). Images are fully decoded; 16-bit ones are
stored as 8-bit, and a line too long for the model at its input height is rejected.

A folder whose subfolders are such sources (``train/``, ``val/``, ``en_train_filtered/`` ...)
keeps the splits their names give; other samples are split by a hash of their name
(:mod:`ocrtrain.splits`: the same split every time, at least one val and one test line from 3
lines). A labels file is read as UTF-8, or as cp1252 when it is not UTF-8 and every byte is a
cp1252 character (``encoding``); the encoding is recorded in the manifest and warned about. Every sample that cannot be used becomes a row of the
dataset's ``rejected.csv`` with the reason and the fix; the good samples are kept. If nothing is
usable, InputError is raised and no dataset folder is left behind.

>>> # import_dataset("receipts.zip", "data/receipts", ImportConfig(split=SplitConfig(split_seed=1)))
"""
from __future__ import annotations

import os
import re
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Union

from .config import Config, check
from .dataset import REJECTED, DatasetWriter, Rejected, SplitConfig, is_dataset_folder
from .errors import DatasetError, InputError
from .events import Callback, Message, Progress, emit
from .images import decode_image, encode_png
from .imports_zip import DEFAULT_MAX_ZIP_BYTES, IMAGE_SUFFIXES, extract_zip_safely, make_temp_dir
from .label_text import clean_label
from .labels import ENCODINGS, Candidate, Note, detect_encoding, list_labels_csv, list_labels_txt
from .labels import rel as _rel
from .lmdb_io import LmdbReader
from .replace import check_replaceable
from .splits import SplitDraw

__all__ = ["FORMATS", "IMAGE_SUFFIXES", "ImportConfig", "import_dataset", "detect_format",
           "extract_zip_safely", "split_from_name"]

FORMATS = ("auto", "labels", "easyocr", "lmdb", "zip")
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
    split: SplitConfig = field(default_factory=SplitConfig, metadata={
        "help": "shares of lines for validation and test (deterministic; at least one each from 3 lines)"})
    encoding: str = field(default="auto", metadata={
        "help": "text encoding of labels.txt/labels.csv: auto (UTF-8, else cp1252 if that reads every byte), "
                "utf-8 or cp1252", "choices": ENCODINGS})
    keep_splits: bool = field(default=True, metadata={
        "help": "keep the train/val/test division a source's subfolders give (else split by fractions)"})
    reencode: bool = field(default=False, metadata={
        "help": "re-encode every image as PNG (else PNG/JPEG bytes are kept as they are)"})
    min_side: int = field(default=4, metadata={"help": "reject images narrower or lower than this (pixels)"})
    max_image_bytes: int = field(default=50_000_000, metadata={"help": "reject image files larger than this"})
    max_width: int = field(default=4000, metadata={
        "help": "reject lines wider than this many pixels once scaled to line_height (model input)"})
    line_height: int = field(default=64, metadata={
        "help": "the model's input height, at which max_width applies (english_g2: 64)"})
    max_zip_bytes: int = field(default=DEFAULT_MAX_ZIP_BYTES, metadata={
        "help": "refuse a zip whose files add up to more than this many bytes uncompressed"})
    max_zip_entries: int = field(default=1_000_000, metadata={"help": "refuse a zip with more entries than this"})
    overwrite: bool = field(default=False, metadata={"help": "replace an existing output folder"})

    def validate(self) -> None:
        check(self.min_side >= 1, f"min_side must be at least 1, got {self.min_side}")
        check(self.max_image_bytes > 0, f"max_image_bytes must be positive, got {self.max_image_bytes}")
        check(self.max_width >= self.line_height, f"max_width must be at least line_height, got {self.max_width}")
        check(self.line_height >= 1, f"line_height must be at least 1, got {self.line_height}")
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
    # The model reads a line scaled to its input height (a tall crop is stood up, as EasyOCR does).
    scaled = round(max(w, h) * config.line_height / min(w, h))
    if scaled > config.max_width:
        raise InputError(f"{where} is {w}x{h} pixels: at the model's height of {config.line_height} px it would be "
                         f"{scaled:,} px wide, over max_width {config.max_width:,}: crop it into shorter lines "
                         "or raise max_width")
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
        self.normalised = 0
        self.encodings: dict[str, str] = {}  # labels file (relative) -> the encoding it was read in
        self.named: dict[Path, set] = {}      # part folder -> images of rows rejected for their label

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

    def listings(self, parts: list[_Part], root: Path) -> tuple[list[tuple[_Part, list]], dict, int]:
        """Every part's candidates (labels files are read now, LMDBs lazily), open LMDBs, total."""
        listings: list[tuple[_Part, list]] = []
        lmdbs: dict[Path, LmdbReader] = {}
        total = 0
        try:
            for part in parts:
                if part.fmt == "lmdb":
                    try:
                        reader = lmdbs[part.path] = LmdbReader(part.path, strict=False)
                    except DatasetError as exc:
                        raise InputError(f"cannot import LMDB {part.path}: {exc}") from None
                    listings.append((part, []))
                    total += min(len(reader), max(0, (reader.entries - 1) // 2))
                    continue
                labels_file = part.labels_file or part.path / MARKERS[part.fmt]
                lister = list_labels_txt if part.fmt == "labels" else list_labels_csv
                encoding = self._encoding(labels_file, root)
                items = list(lister(labels_file, part.path, root, encoding, self.named.setdefault(part.path, set())))
                listings.append((part, items))
                total += len(items)
        except BaseException:
            for reader in lmdbs.values():
                reader.close()
            raise
        return listings, lmdbs, total

    def _encoding(self, labels_file: Path, root: Path) -> str:
        name = _rel(labels_file, root) or labels_file.name
        encoding = self.encodings[name] = detect_encoding(labels_file, self.config.encoding)
        if self.config.encoding == "auto" and encoding != "utf-8":
            emit(self.callback, Message(
                f"{name} is not UTF-8: read it as {encoding} (Windows Western European, what Excel and Notepad "
                "save as 'ANSI'); if letters such as æ ø å é look wrong in the dataset, save the file as UTF-8 "
                "and import again, or set encoding", "warning"))
        return encoding

    def run(self, source: Path, out: Path, pre_rejected: list[Rejected]) -> Path:
        parts = self.assign_splits(self.parts(source))
        root = source.parent if source.is_file() else source
        given = {p.split for p in parts if p.split}
        missing = [s for s in ("val", "test") if s not in given] if given else []
        source_info = {
            "kind": "import",
            "path": str(self.source),
            "format": self.config.format,
            "parts": [{"name": p.name or ".", "format": p.fmt, "split": p.split} for p in parts],
        }
        writer = DatasetWriter(out, self.config.split, source=source_info, overwrite=self.config.overwrite,
                               protect=(self.source,))
        lmdbs: dict[Path, LmdbReader] = {}
        try:
            listings, lmdbs, total = self.listings(parts, root)
            for r in pre_rejected:
                writer.reject(r.sample, r.label, r.reason)
            writer.source["encodings"] = dict(self.encodings)
            self.write_all(writer, listings, lmdbs, root, missing, total)
            if writer.total == 0:
                raise InputError(_nothing_message(self.source, writer.rejected))
            if writer.rejected:
                emit(self.callback, Message(
                    f"{len(writer.rejected)} sample(s) rejected: see {out / REJECTED}", "warning"))
            return writer.close(extra={"import_config": self.config.to_dict(),
                                       "labels_normalised": self.normalised})
        except BaseException:
            writer.abort()
            raise
        finally:
            for reader in lmdbs.values():
                reader.close()

    def write_all(self, writer: DatasetWriter, listings: list, lmdbs: dict, root: Path,
                  missing: list[str], total: int) -> None:
        # Splits the source does not provide are drawn from its train part by the fractions.
        cfg = self.config.split
        self.draw = SplitDraw(cfg.val_fraction, cfg.test_fraction, cfg.split_seed,
                              splits=missing if any(p.split for p, _ in listings) else ("val", "test"))
        part_dirs = {p.path for p, _ in listings}
        done = 0
        for part, items in listings:
            # A row rejected for its label names its image: that image is not reported "unlisted" too.
            listed_paths: set[Path] = set(self.named.get(part.path, ()))
            candidates = items if part.fmt != "lmdb" else self._lmdb_items(lmdbs[part.path], part)
            for item in candidates:
                if isinstance(item, Note):
                    emit(self.callback, Message(item.text, "warning"))
                    continue
                done += 1
                if isinstance(item, Rejected):
                    writer.reject(item.sample, item.label, item.reason)
                else:
                    if isinstance(item.data, Path):
                        listed_paths.add(item.data)
                    self._take(writer, item, self._split_for(part, missing))
                if done % _PROGRESS_EVERY == 0:
                    emit(self.callback, Progress("import", done, total, {"rejected": len(writer.rejected)}))
            if part.fmt != "lmdb":
                for r in _unlabelled_images(part, root, listed_paths, part_dirs - {part.path}):
                    writer.reject(r.sample, r.label, r.reason)
        for split, (image, label, sample) in self.draw.finish(writer.counts):
            writer.add(image, label, sample=sample, split=split)
        emit(self.callback, Progress("import", done, total, {"rejected": len(writer.rejected)}))
        if self.normalised:
            emit(self.callback, Message(f"{self.normalised} label(s) normalised (NFC, unusual spaces, invisible "
                                        "zero-width characters removed)"))

    def _take(self, writer: DatasetWriter, item: Candidate, split: Optional[str]) -> None:
        label, changed, problem = clean_label(item.label)
        if problem:
            writer.reject(item.sample, item.label, f"{item.where}: label {item.label!r} {problem}, "
                                                   "or remove the row")
            return
        if not label.strip():
            writer.reject(item.sample, item.label, f"{item.where}: label {item.label!r} is empty once invisible "
                                                   "characters are removed: write its text, or remove the row")
            return
        image = self._load(writer, item)
        if image is None:
            return
        self.normalised += changed
        if split is not None:
            writer.add(image, label, sample=item.sample, split=split)
            return
        for drawn, (data, text, sample) in self.draw.place(item.sample, (image, label, item.sample)):
            writer.add(data, text, sample=sample, split=drawn)

    def _lmdb_items(self, reader: LmdbReader, part: _Part) -> Iterator[Union[Candidate, Rejected]]:
        rel = part.name or part.path.name
        claimed, room = len(reader), max(0, (reader.entries - 1) // 2)
        indices: Iterator[int] = iter(range(claimed))
        if claimed > room:
            # A damaged count: walk the keys present instead of millions of missing ones.
            yield Rejected(f"{rel}:num-samples", "", f"{reader.path} claims {claimed:,} samples in 'num-samples' "
                                                     f"but holds keys for at most {room:,}: imported the samples "
                                                     "present; re-create the LMDB to fix its count")
            indices = iter(list(reader.present_indices()))
        for i in indices:
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
            yield Candidate(sample, label, data, sample)

    def _load(self, writer: DatasetWriter, item: Candidate) -> Optional[bytes]:
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

    @staticmethod
    def _split_for(part: _Part, missing: list[str]) -> Optional[str]:
        """The split a part's folder gives its samples, or None: drawn by :class:`SplitDraw`."""
        if part.split is None or (part.split == "train" and missing):
            return None
        return part.split


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
    leaves no folder behind on any failure. `out` must not be, hold or lie inside `source`;
    ``overwrite`` replaces only an ocrtrain dataset or an empty folder.

    >>> # import_dataset("scans/", "data/scans", ImportConfig(format="labels"))
    """
    config = config or ImportConfig()
    source, out = Path(source), Path(out)
    if not source.exists():
        raise InputError(f"import source {source} does not exist: check the path")
    # Checked before a zip is extracted; DatasetWriter checks again before it writes anything.
    check_replaceable(out, config.overwrite, is_dataset_folder, protect=(source,))
    importer = _Importer(source, config, callback)
    is_zip = source.is_file() and zipfile.is_zipfile(source)
    if config.format == "zip" and not is_zip:
        raise InputError(f"{source} is not a zip archive but format is 'zip': pass the .zip or --format auto")
    if not is_zip:
        if source.is_file() and source.suffix.lower() not in (".txt", ".csv"):
            raise InputError(f"{source} is neither a .zip, a labels .txt nor a labels .csv: "
                             "give a folder, a labels file or a .zip")
        return importer.run(source, out, [])
    tmp = make_temp_dir()
    try:
        emit(callback, Message(f"extracting {source.name}"))
        rejected = extract_zip_safely(source, tmp, config.max_zip_bytes, config.max_zip_entries,
                                      max_member_bytes=config.max_image_bytes)
        try:
            return importer.run(tmp, out, rejected)
        except InputError as exc:
            if rejected and "holds no" in str(exc):
                reasons = "; ".join(r.reason for r in rejected[:3])
                raise InputError(f"{exc} (unsafe zip entries skipped: {reasons})") from None
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
