"""Page-level ground truth: the common records, format detection and the dispatch to each reader.

Readers (``gt_icdar``, ``gt_xml``, ``gt_json``) turn a file or folder into :class:`TruthPage`
records (an image path plus its lines in that image's pixels) and :class:`Reject` records for
what they could not use (file, line or element, reason with the fix); one bad line never costs
the rest of its page, one bad file never the rest of the set.

>>> # pages, rejects = read_truth("sroie/", "auto")
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from ..errors import DatasetError, InputError
from .docset import Reject

__all__ = ["FORMATS", "IMAGE_SUFFIXES", "TruthLine", "TruthPage", "detect_format", "read_truth",
           "read_text_file", "parse_points", "find_image", "load_json"]

FORMATS = ("auto", "icdar", "pagexml", "alto", "ppocr", "labelstudio", "images")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".pdf", ".bmp", ".webp")

Point = tuple[float, float]


@dataclass(frozen=True)
class TruthLine:
    """One ground-truth line: polygon in image pixels, text, where it was read, status to start with."""

    polygon: tuple[Point, ...]
    text: str
    where: str
    status: str = "verified"


@dataclass(frozen=True)
class TruthPage:
    """An image and its ground-truth lines (`frame`: page of a multi-page TIFF/PDF, 0-based)."""

    image: Path
    lines: tuple[TruthLine, ...]
    where: str
    frame: Optional[int] = None
    has_truth: bool = True


def read_text_file(path: Path) -> tuple[str, Optional[str]]:
    """Text of `path` as UTF-8 (BOM dropped), else cp1252/latin-1; returns (text, note or None)."""
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        where = f"byte {exc.start}"
    for encoding in ("cp1252", "latin-1"):
        try:
            return data.decode(encoding), f"{path} is not UTF-8 ({where}); read as {encoding}"
        except UnicodeDecodeError:
            continue
    raise InputError(f"{path} cannot be decoded: save it as UTF-8")  # pragma: no cover (latin-1 decodes all)


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def parse_points(text: str, where: str) -> tuple[Point, ...]:
    """``"x,y x,y ..."`` or ``"x y x y ..."`` -> points; InputError naming `where` if malformed."""
    numbers = _NUMBER.findall(text or "")
    leftover = _NUMBER.sub("", text or "").replace(",", " ").strip()
    if leftover or len(numbers) < 6 or len(numbers) % 2:
        raise InputError(f"{where}: points {text!r} are not x,y pairs (at least 3): write them as 'x1,y1 x2,y2 ...'")
    values = [float(n) for n in numbers]
    return tuple(zip(values[0::2], values[1::2]))


def find_image(name: str, folders: list[Path]) -> Optional[Path]:
    """The image `name` (a path or bare name, maybe without a suffix) in the first folder holding it."""
    name = name.replace("\\", "/")
    candidates = [name, Path(name).name]
    for folder in folders:
        for cand in candidates:
            path = folder / cand
            if path.is_file():
                return path
            if not path.suffix:
                for suffix in IMAGE_SUFFIXES:
                    if path.with_suffix(suffix).is_file():
                        return path.with_suffix(suffix)
    return None


def _xml_kind(path: Path) -> Optional[str]:
    head = path.read_bytes()[:4096].decode("utf-8", "ignore")
    if "PcGts" in head or "primaresearch.org/PAGE" in head:
        return "pagexml"
    if "<alto" in head or "standards/alto" in head:
        return "alto"
    return None


def _file_kind(path: Path) -> Optional[str]:
    suffix = path.suffix.lower()
    if suffix == ".xml":
        return _xml_kind(path)
    if suffix == ".json":
        return "labelstudio"
    if path.name == "Label.txt" or (suffix == ".txt" and "\t[" in path.read_text("utf-8", "ignore")[:4096]):
        return "ppocr"
    if suffix in IMAGE_SUFFIXES:
        return "images"
    if suffix in (".csv", ".txt"):
        return "icdar" if _looks_like_boxes(path) else None
    return None


def _looks_like_boxes(path: Path) -> bool:
    """A .csv/.txt whose first non-empty line starts with 4 or 8 numbers (not a plain transcript)."""
    head = path.read_bytes()[:2048].decode("utf-8", "ignore").lstrip("\ufeff")
    first = next((l for l in head.splitlines() if l.strip()), "")
    return bool(re.match(r"\s*-?\d+(\.\d+)?(\s*,\s*-?\d+(\.\d+)?){3}", first))


def detect_format(source: Union[str, Path]) -> str:
    """Which reader fits `source` (a file or folder); DatasetError if none does."""
    source = Path(source)
    if not source.exists():
        raise DatasetError(f"{source} does not exist: give a folder or file of pages and ground truth")
    if source.is_file():
        kind = _file_kind(source)
    else:
        files = sorted(p for p in source.rglob("*") if p.is_file())
        if any(p.name == "Label.txt" for p in files):
            kind = "ppocr"
        else:
            kinds = {k for k in (_file_kind(p) for p in files if p.suffix.lower() in (".xml", ".json")) if k}
            if kinds:
                kind = sorted(kinds)[0]
            elif any(p.suffix.lower() in (".csv", ".txt") and _looks_like_boxes(p) for p in files):
                kind = "icdar"
            elif any(p.suffix.lower() in IMAGE_SUFFIXES for p in files):
                kind = "images"
            else:
                kind = None
    if kind is None:
        raise DatasetError(f"cannot tell the ground-truth format of {source}: pass --format "
                           f"({', '.join(FORMATS[1:])})")
    return kind


def _read_images(source: Path) -> tuple[list[TruthPage], list[Reject]]:
    files = [source] if source.is_file() else sorted(
        p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    return [TruthPage(p, (), str(p), has_truth=False) for p in files], []


def read_truth(source: Union[str, Path], fmt: str = "auto") -> tuple[str, list[TruthPage], list[Reject]]:
    """Read `source` in format `fmt` (or detect it): (format, pages, rejects)."""
    source = Path(source)
    if fmt not in FORMATS:
        raise DatasetError(f"unknown ground-truth format {fmt!r}: use one of {', '.join(FORMATS)}")
    if not source.exists():
        raise DatasetError(f"{source} does not exist: give a folder or file of pages and ground truth")
    kind = detect_format(source) if fmt == "auto" else fmt
    if kind == "images":
        pages, rejects = _read_images(source)
    elif kind == "icdar":
        from .gt_icdar import read_icdar

        pages, rejects = read_icdar(source)
    elif kind in ("pagexml", "alto"):
        from .gt_xml import read_alto, read_pagexml

        pages, rejects = (read_pagexml if kind == "pagexml" else read_alto)(source)
    else:
        from .gt_json import read_labelstudio, read_ppocr

        pages, rejects = (read_ppocr if kind == "ppocr" else read_labelstudio)(source)
    return kind, pages, rejects


def load_json(path: Path) -> object:
    """JSON of `path`; InputError naming the line and column of a syntax error."""
    text, _ = read_text_file(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}:{exc.colno} is not valid JSON ({exc.msg}): fix the file") from None
