"""What a transcription editor shows: lines filtered and sorted, the page with its boxes, line crops.

The editor itself (ocrtrain.workbench.transcribe_panel) only lays these out; every edit goes through
:meth:`DocumentSet.update_line`, which saves at once.

>>> select_lines([], status="unreviewed", sort="confidence")
[]
"""
from __future__ import annotations

import io
from typing import Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw

from ..errors import ConfigError, InputError
from .crop import CropConfig, crop_line
from .docset import STATUSES, DocumentSet, Line

__all__ = ["STATUS_COLOURS", "OUTCOME_COLOURS", "SORTS", "select_lines", "page_preview_png", "page_outcome_png",
           "line_crop_png"]

#: box colour per status in page previews
STATUS_COLOURS = {"unreviewed": (230, 140, 0), "verified": (24, 128, 56), "skipped": (128, 128, 128),
                  "bad_box": (217, 48, 37)}
SORTS = ("order", "confidence")
#: box colour per page-evaluation outcome (``evaluate_pages``): truth lines, and boxes found where none is
OUTCOME_COLOURS = {"right": (24, 128, 56), "misread": (217, 48, 37), "no box found": (230, 140, 0),
                   "found only": (120, 120, 220)}


def select_lines(lines: Sequence[Line], status: Optional[str] = None, sort: str = "order") -> list[Line]:
    """Lines with `status` (all when None), in reading order or least confident first."""
    if status is not None and status not in STATUSES:
        raise ConfigError(f"status {status!r} is not one of {STATUSES}")
    chosen = [l for l in lines if status is None or l.status == status]
    if sort == "confidence":
        # Lines never read sort first: they need a look most.
        chosen.sort(key=lambda l: -1.0 if l.confidence is None else l.confidence)
    elif sort != "order":
        raise ConfigError(f"sort {sort!r} is not one of {SORTS}")
    return chosen


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def page_preview_png(docs: DocumentSet, page_id: str, max_width: int = 700, highlight: Optional[str] = None) -> bytes:
    """The page scaled to `max_width`, each line's polygon drawn in its status colour (`highlight` thicker)."""
    image = docs.image(page_id)
    scale = min(1.0, max_width / image.size[0])
    if scale < 1:
        image = image.resize((max(1, int(image.size[0] * scale)), max(1, int(image.size[1] * scale))))
    draw = ImageDraw.Draw(image)
    for line in docs.lines(page_id):
        points = [(x * scale, y * scale) for x, y in line.polygon]
        width = 4 if line.id == highlight else 2
        draw.line(points + points[:1], fill=STATUS_COLOURS[line.status], width=width)
    return _png(image)


def line_crop_png(page: np.ndarray, line: Line, crop: CropConfig = CropConfig(), max_height: int = 48) -> bytes:
    """PNG of one line's crop (at most `max_height` pixels high); a grey strip if the box is unusable."""
    try:
        cut = Image.fromarray(crop_line(page, line.polygon, crop))
    except InputError:  # a degenerate box still gets a row the person can mark bad_box
        cut = Image.new("RGB", (64, 16), (200, 200, 200))
    if cut.size[1] > max_height:
        cut = cut.resize((max(1, int(cut.size[0] * max_height / cut.size[1])), max_height))
    return _png(cut)


def page_outcome_png(docs: DocumentSet, page: dict, max_width: int = 520) -> bytes:
    """The page scaled to `max_width` with one ``evaluate_pages`` result drawn on it: each ground-truth
    line's box in its outcome colour (right, misread, no box found) and boxes found where no line is."""
    image = docs.image(page["page"])
    scale = min(1.0, max_width / image.size[0])
    if scale < 1:
        image = image.resize((max(1, int(image.size[0] * scale)), max(1, int(image.size[1] * scale))))
    draw = ImageDraw.Draw(image)
    shapes = [(box["polygon"], "found only", 1) for box in page.get("found_only", [])]
    shapes += [(line["polygon"], line["outcome"], 2) for line in page.get("lines", [])]
    for polygon, outcome, width in shapes:
        points = [(x * scale, y * scale) for x, y in polygon]
        draw.line(points + points[:1], fill=OUTCOME_COLOURS[outcome], width=width)
    return _png(image)
