"""PPOCRLabel ``Label.txt`` and Label Studio's OCR JSON export.

PPOCRLabel: one image per line, ``PATH<TAB>[{"transcription": ..., "points": [[x, y] x4],
"difficult": false}, ...]`` with PATH relative to the folder above Label.txt's. Label Studio: the
JSON export of an OCR project, a list of tasks whose annotation results pair a ``rectangle`` or
``polygon`` region (percent coordinates, rectangles rotated by ``rotation`` degrees clockwise about
their top-left corner) with a ``textarea`` result of the same id holding its text.

>>> rectangle_points({"x": 10, "y": 20, "width": 50, "height": 10, "rotation": 0}, 200, 100)[2]
(120.0, 30.0)
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Optional

from ..errors import InputError
from .docset import Reject
from .formats import TruthLine, TruthPage, find_image, load_json, read_text_file

__all__ = ["read_ppocr", "read_labelstudio", "rectangle_points"]


def _line_status(text: str) -> str:
    return "skipped" if text == "###" else ("verified" if text.strip() else "unreviewed")


def _ppocr_line(raw: str, where: str, folders: list[Path]) -> tuple[Path, list[TruthLine], list[Reject]]:
    if "\t" not in raw:
        raise InputError(f"{where}: expected PATH<TAB>[json list], found no tab: fix the line")
    name, payload = raw.split("\t", 1)
    image = find_image(name.strip(), folders)
    if image is None:
        raise InputError(f"{where}: image {name.strip()!r} not found next to Label.txt or above it: add it")
    try:
        items = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: the box list is not valid JSON ({exc.msg} at column {exc.colno}): fix it") from None
    if not isinstance(items, list):
        raise InputError(f"{where}: expected a JSON list of boxes, got {type(items).__name__}")
    lines, rejects = [], []
    for k, item in enumerate(items, 1):
        at = f"{where} box {k}"
        try:
            points = tuple((float(x), float(y)) for x, y in item["points"])
            text = str(item.get("transcription", ""))
        except (KeyError, TypeError, ValueError):
            rejects.append(Reject(where.rsplit(":", 1)[0], at, f"{at}: needs 'points' [[x, y], ...] and "
                                  "'transcription': fix the box"))
            continue
        if len(points) < 3:
            rejects.append(Reject(where.rsplit(":", 1)[0], at, f"{at}: {len(points)} points, need at least 3"))
            continue
        lines.append(TruthLine(points, "" if text == "###" else text, at, _line_status(text)))
    return image, lines, rejects


def read_ppocr(source: Path) -> tuple[list[TruthPage], list[Reject]]:
    """Label.txt (the file, or every Label.txt under the folder `source`)."""
    files = [source] if source.is_file() else sorted(source.rglob("Label.txt"))
    pages, rejects = [], []
    for path in files:
        text, note = read_text_file(path)
        if note:
            rejects.append(Reject(str(path), str(path), note))
        folders = [path.parent.parent, path.parent]
        for n, raw in enumerate(text.splitlines(), 1):
            if not raw.strip():
                continue
            where = f"{path}:{n}"
            try:
                image, lines, bad = _ppocr_line(raw, where, folders)
            except InputError as exc:
                rejects.append(Reject(str(path), where, str(exc)))
                continue
            rejects += bad
            pages.append(TruthPage(image, tuple(lines), where))
    return pages, rejects


def rectangle_points(value: dict, width: float, height: float) -> tuple:
    """Corners (clockwise from top-left) of a Label Studio rectangle in pixels of a WxH image."""
    x, y = value["x"] / 100 * width, value["y"] / 100 * height
    w, h = value["width"] / 100 * width, value["height"] / 100 * height
    angle = math.radians(float(value.get("rotation", 0) or 0))
    cos, sin = math.cos(angle), math.sin(angle)
    corners = ((0, 0), (w, 0), (w, h), (0, h))
    return tuple((round(x + dx * cos - dy * sin, 3), round(y + dx * sin + dy * cos, 3)) for dx, dy in corners)


def _region_points(result: dict, where: str) -> Optional[tuple]:
    value = result.get("value") or {}
    width, height = result.get("original_width"), result.get("original_height")
    if "points" not in value and "width" not in value:
        return None
    if not width or not height:
        raise InputError(f"{where}: region without original_width/original_height: re-export from Label Studio")
    if "points" in value:
        return tuple((float(px) / 100 * width, float(py) / 100 * height) for px, py in value["points"])
    return rectangle_points(value, width, height)


def _task_image(task: dict, where: str, folders: list[Path]) -> Path:
    data = task.get("data") or {}
    names = [v for k, v in data.items() if isinstance(v, str) and k in ("ocr", "image", "img")] \
        or [v for v in data.values() if isinstance(v, str)]
    if not names:
        raise InputError(f"{where}: the task's data names no image: export with the image field")
    name = names[0].split("?", 1)[0]
    found = find_image(name, folders)
    # Label Studio renames uploads to '<8 hex>-<original name>'.
    plain = re.sub(r"^[0-9a-f]{8}-", "", Path(name).name)
    found = found or find_image(plain, folders)
    if found is None:
        raise InputError(f"{where}: image {name!r} not found next to the export (or in images/): copy it there")
    return found


def _task_lines(task: dict, where: str) -> tuple[list[TruthLine], list[Reject]]:
    annotations = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
    results = annotations[0].get("result", []) if annotations else []
    regions: dict[str, tuple] = {}
    texts: dict[str, str] = {}
    rejects = []
    for k, result in enumerate(results, 1):
        at = f"{where} result {result.get('id') or k}"
        try:
            points = _region_points(result, at)
        except (InputError, TypeError, ValueError, KeyError) as exc:
            rejects.append(Reject(where.split(" ", 1)[0], at, str(exc) if isinstance(exc, InputError)
                                  else f"{at}: malformed region ({exc}): re-export it"))
            continue
        rid = str(result.get("id", k))
        if points is not None:
            regions.setdefault(rid, points)
        text = (result.get("value") or {}).get("text")
        if text:
            texts[rid] = " ".join(text) if isinstance(text, list) else str(text)
    lines = [TruthLine(points, texts.get(rid, ""), f"{where} region {rid}", _line_status(texts.get(rid, "")))
             for rid, points in regions.items()]
    return lines, rejects


def read_labelstudio(source: Path) -> tuple[list[TruthPage], list[Reject]]:
    """Label Studio JSON exports (the file, or every .json under the folder `source`)."""
    files = [source] if source.is_file() else sorted(source.rglob("*.json"))
    pages, rejects = [], []
    for path in files:
        try:
            tasks = load_json(path)
        except InputError as exc:
            rejects.append(Reject(str(path), str(path), str(exc)))
            continue
        tasks = tasks if isinstance(tasks, list) else [tasks]
        folders = [path.parent, path.parent / "images", path.parent.parent]
        for n, task in enumerate(tasks, 1):
            where = f"{path} task {task.get('id', n) if isinstance(task, dict) else n}"
            try:
                if not isinstance(task, dict):
                    raise InputError(f"{where}: a task must be a JSON object: is this a Label Studio JSON export?")
                image = _task_image(task, where, folders)
            except InputError as exc:
                rejects.append(Reject(str(path), where, str(exc)))
                continue
            lines, bad = _task_lines(task, where)
            rejects += bad
            pages.append(TruthPage(image, tuple(lines), where))
    return pages, rejects
