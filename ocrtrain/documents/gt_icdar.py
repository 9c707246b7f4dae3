"""ICDAR / SROIE box files: one line per text box, ``x1,y1,x2,y2,x3,y3,x4,y4,TEXT``.

The text may itself contain commas (split at the first eight); the ICDAR 2013 rectangle form
``x1,y1,x2,y2,"TEXT"`` is read too, ``###`` (ICDAR's "do not care") becomes a skipped line.
Box files are matched to images by file stem: next to them, in a sibling ``img``/``images``
folder, or anywhere under the source folder (SROIE's ``img/`` + ``box/`` layout).

>>> parse_box_line("1,2,30,2,30,12,1,12,TOTAL: 1,50", "a.csv:1").text
'TOTAL: 1,50'
"""
from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from .docset import Reject
from .formats import IMAGE_SUFFIXES, TruthLine, TruthPage, read_text_file

__all__ = ["parse_box_line", "read_icdar"]

_IMAGE_FOLDERS = ("img", "imgs", "image", "images", "pages")


def _numbers(parts: list[str]) -> list[float] | None:
    try:
        return [float(p) for p in parts]
    except ValueError:
        return None


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1].replace('""', '"')
    return text


def parse_box_line(line: str, where: str) -> TruthLine:
    """One box-file line -> TruthLine; InputError naming `where` when it is not a box."""
    parts = line.split(",", 8)
    quad = _numbers([p.strip() for p in parts[:8]]) if len(parts) >= 8 else None
    if quad is not None:
        points = tuple(zip(quad[0::2], quad[1::2]))
        text = _unquote(parts[8]) if len(parts) == 9 else ""
    else:
        head = line.split(",", 4)
        rect = _numbers([p.strip() for p in head[:4]]) if len(head) >= 4 else None
        if rect is None:
            raise InputError(f"{where}: {line[:60]!r} does not start with 8 (or 4) numbers: "
                             "write x1,y1,x2,y2,x3,y3,x4,y4,TEXT")
        x1, y1, x2, y2 = rect
        points = ((x1, y1), (x2, y1), (x2, y2), (x1, y2))
        text = _unquote(head[4]) if len(head) == 5 else ""
    status = "skipped" if text == "###" else ("verified" if text.strip() else "unreviewed")
    return TruthLine(points, "" if text == "###" else text, where, status)


def _read_box_file(path: Path) -> tuple[list[TruthLine], list[Reject]]:
    text, note = read_text_file(path)
    rejects = [Reject(str(path), str(path), note)] if note else []
    lines = []
    for n, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        where = f"{path}:{n}"
        try:
            lines.append(parse_box_line(raw.rstrip("\r\n"), where))
        except InputError as exc:
            rejects.append(Reject(str(path), where, str(exc)))
    return lines, rejects


def _image_index(root: Path, box_files: list[Path]) -> dict[str, Path]:
    folders = {root} | {p.parent for p in box_files}
    folders |= {f.parent / name for f in list(folders) for name in _IMAGE_FOLDERS}
    index: dict[str, Path] = {}
    candidates = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
    candidates += [p for f in sorted(folders) if f.is_dir() and f != root for p in sorted(f.iterdir())]
    for path in candidates:
        if path.suffix.lower() in IMAGE_SUFFIXES:
            index.setdefault(path.stem, path)
    return index


def read_icdar(source: Path) -> tuple[list[TruthPage], list[Reject]]:
    """Box files under `source` (or the box file `source`) and their images."""
    if source.is_file():
        box_files, root = [source], source.parent
    else:
        root = source
        box_files = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in (".csv", ".txt"))
    images = _image_index(root, box_files)
    pages, rejects, used = [], [], set()
    for box in box_files:
        image = images.get(box.stem)
        if image is None:
            rejects.append(Reject(str(box), str(box), f"no image named {box.stem}.* next to {box.name}, "
                                  "in an img/ or images/ folder or under the source: add the image"))
            continue
        lines, bad = _read_box_file(box)
        rejects += bad
        used.add(image)
        pages.append(TruthPage(image, tuple(lines), str(box)))
    if source.is_dir():
        for stem, image in sorted(images.items()):
            if image not in used and image.is_relative_to(source):
                pages.append(TruthPage(image, (), str(image), has_truth=False))
    return pages, rejects
