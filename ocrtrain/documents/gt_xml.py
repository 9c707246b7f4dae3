"""PAGE-XML and ALTO files (what eScriptorium, kraken and Transkribus export).

PAGE-XML (2010-2019 namespaces): ``Page/@imageFilename``; each ``TextLine`` has ``Coords/@points``
(or 2010's ``Point`` children) and ``TextEquiv/Unicode`` (else its words' texts joined by spaces).
ALTO (v2-v4): ``sourceImageInformation/fileName``; each ``TextLine`` has ``HPOS VPOS WIDTH HEIGHT``
(or ``Shape/Polygon/@POINTS``) and its ``String/@CONTENT`` joined by spaces; ``mm10`` and
``inch1200`` measurement units are converted to pixels at 300 dpi. Namespaces are ignored, so
every version reads the same way.

>>> # pages, rejects = read_pagexml(Path("export/page"))
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Iterator, Optional

from ..errors import InputError
from .docset import Reject
from .formats import TruthLine, TruthPage, find_image, parse_points

__all__ = ["read_pagexml", "read_alto"]

#: ALTO MeasurementUnit -> pixels per unit (at 300 dpi when the unit is not pixels)
_ALTO_UNITS = {"pixel": 1.0, "mm10": 300 / 254.0, "inch1200": 300 / 1200.0}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in element if _local(c.tag) == name]


def _descendants(element: ET.Element, name: str) -> Iterator[ET.Element]:
    return (e for e in element.iter() if _local(e.tag) == name)


def _xml_files(source: Path) -> list[Path]:
    if source.is_file():
        return [source]
    return sorted(p for p in source.rglob("*.xml") if p.is_file())


def _parse(path: Path) -> ET.Element:
    try:
        return ET.parse(path).getroot()
    except ET.ParseError as exc:
        line, col = exc.position
        raise InputError(f"{path}:{line}:{col} is not well-formed XML ({exc}): fix or re-export the file") from None


def _page_image(path: Path, name: Optional[str]) -> Path:
    if not name:
        raise InputError(f"{path}: no image file named (imageFilename / fileName is empty): add it")
    folders = [path.parent, path.parent.parent, path.parent / "images", path.parent.parent / "images"]
    found = find_image(name, folders) or find_image(Path(name).stem, folders)
    if found is None:
        raise InputError(f"{path}: its image {name!r} is not in {path.parent} or {path.parent.parent}: "
                         "put the image next to the XML file or fix imageFilename")
    return found


def _pagexml_text(line: ET.Element) -> str:
    for equiv in _children(line, "TextEquiv"):
        for uni in _children(equiv, "Unicode"):
            return (uni.text or "").strip()
    words = []
    for word in _children(line, "Word"):
        for equiv in _children(word, "TextEquiv"):
            words += [(u.text or "").strip() for u in _children(equiv, "Unicode")][:1]
    return " ".join(w for w in words if w)


def _pagexml_points(line: ET.Element, where: str) -> tuple:
    for coords in _children(line, "Coords"):
        if coords.get("points"):
            return parse_points(coords.get("points", ""), where)
        pts = [(float(p.get("x", 0)), float(p.get("y", 0))) for p in _children(coords, "Point")]
        if len(pts) >= 3:
            return tuple(pts)
    raise InputError(f"{where}: TextLine has no Coords points: add <Coords points='x,y x,y ...'/>")


def _read_one_pagexml(path: Path) -> tuple[list[TruthPage], list[Reject]]:
    root = _parse(path)
    pages, rejects = [], []
    for page in _descendants(root, "Page"):
        image = _page_image(path, page.get("imageFilename"))
        lines = []
        for n, line in enumerate(_descendants(page, "TextLine"), 1):
            where = f"{path}: TextLine {line.get('id') or n}"
            try:
                lines.append(_truth_line(_pagexml_points(line, where), _pagexml_text(line), where))
            except InputError as exc:
                rejects.append(Reject(str(path), where, str(exc)))
        pages.append(TruthPage(image, tuple(lines), str(path)))
    if not pages:
        raise InputError(f"{path}: no <Page> element: is this a PAGE-XML file? Pass the right --format")
    return pages, rejects


def _truth_line(points: tuple, text: str, where: str) -> TruthLine:
    return TruthLine(points, text, where, "verified" if text.strip() else "unreviewed")


def _alto_scale(root: ET.Element) -> float:
    units = [(e.text or "").strip() for e in _descendants(root, "MeasurementUnit")]
    return _ALTO_UNITS.get(units[0] if units else "pixel", 1.0)


def _alto_text(line: ET.Element) -> str:
    parts = []
    for child in line:
        name = _local(child.tag)
        if name == "String":
            parts.append(child.get("CONTENT", ""))
        elif name == "HYP" and parts:
            parts[-1] += child.get("CONTENT", "-")
    return " ".join(p for p in parts if p)


def _alto_points(line: ET.Element, scale: float, where: str) -> tuple:
    for shape in _children(line, "Shape"):
        for poly in _children(shape, "Polygon"):
            return tuple((x * scale, y * scale) for x, y in parse_points(poly.get("POINTS", ""), where))
    try:
        x, y, w, h = (float(line.get(k)) * scale for k in ("HPOS", "VPOS", "WIDTH", "HEIGHT"))
    except (TypeError, ValueError):
        raise InputError(f"{where}: TextLine needs numeric HPOS, VPOS, WIDTH, HEIGHT (or a Shape/Polygon): "
                         "add them") from None
    return ((x, y), (x + w, y), (x + w, y + h), (x, y + h))


def _read_one_alto(path: Path) -> tuple[list[TruthPage], list[Reject]]:
    root = _parse(path)
    names = [(e.text or "").strip() for e in _descendants(root, "fileName")]
    image = _page_image(path, names[0] if names else path.stem)
    scale = _alto_scale(root)
    pages, rejects = [], []
    for index, page in enumerate(_descendants(root, "Page")):
        lines = []
        for n, line in enumerate(_descendants(page, "TextLine"), 1):
            where = f"{path}: TextLine {line.get('ID') or n}"
            try:
                lines.append(_truth_line(_alto_points(line, scale, where), _alto_text(line), where))
            except InputError as exc:
                rejects.append(Reject(str(path), where, str(exc)))
        frame = index if index > 0 else None
        pages.append(TruthPage(image, tuple(lines), str(path), frame=frame))
    if not pages:
        raise InputError(f"{path}: no <Page> element: is this an ALTO file? Pass the right --format")
    return pages, rejects


def _read_all(source: Path, reader) -> tuple[list[TruthPage], list[Reject]]:
    pages, rejects = [], []
    for path in _xml_files(source):
        try:
            got, bad = reader(path)
        except InputError as exc:
            rejects.append(Reject(str(path), str(path), str(exc)))
            continue
        pages += got
        rejects += bad
    return pages, rejects


def read_pagexml(source: Path) -> tuple[list[TruthPage], list[Reject]]:
    """Every PAGE-XML file under `source` (or the file `source`)."""
    return _read_all(source, _read_one_pagexml)


def read_alto(source: Path) -> tuple[list[TruthPage], list[Reject]]:
    """Every ALTO file under `source` (or the file `source`)."""
    return _read_all(source, _read_one_alto)
