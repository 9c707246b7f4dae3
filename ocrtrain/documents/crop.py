"""Cutting a text line out of a page along its polygon, rotation and perspective corrected.

A four-point polygon is warped (``cv2.getPerspectiveTransform``) onto an upright rectangle; any
other polygon is first reduced to its minimum-area rectangle (``cv2.minAreaRect``). The corners
are put in reading order first (top-left, top-right, bottom-right, bottom-left of the text), so a
box given in any order or rotated by up to +-90 degrees comes out horizontal. Upside-down text
cannot be told from its geometry and comes out upside down. Padding, in line heights and pixels,
takes real page pixels around the box (the border repeats only beyond the page edge).

>>> import numpy as np
>>> page = np.full((100, 200, 3), 255, np.uint8)
>>> crop_line(page, [(10, 10), (110, 10), (110, 30), (10, 30)], CropConfig(padding=0, padding_px=0)).shape
(20, 100, 3)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import cv2
import numpy as np

from ..config import Config, check
from ..errors import InputError

__all__ = ["CropConfig", "order_quad", "line_quad", "crop_line", "crop_lines"]


@dataclass(frozen=True)
class CropConfig(Config):
    """How line crops are cut from a page."""

    padding: float = field(default=0.1, metadata={"help": "extra margin on every side, in line heights"})
    padding_px: int = field(default=2, metadata={"help": "extra margin on every side, in pixels (added)"})
    min_height: int = field(default=4, metadata={"help": "lines lower than this many pixels are refused"})

    def validate(self) -> None:
        check(0 <= self.padding <= 2, f"padding must be in [0, 2] line heights, got {self.padding}")
        check(0 <= self.padding_px <= 200, f"padding_px must be in [0, 200], got {self.padding_px}")
        check(self.min_height >= 1, f"min_height must be at least 1, got {self.min_height}")


def order_quad(points: np.ndarray) -> np.ndarray:
    """Four points -> [top-left, top-right, bottom-right, bottom-left] of the text they enclose.

    Clockwise order (image y points down) around the centre, then the start that makes the first
    edge a long edge running left to right: text lines are wider than high.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(4, 2)
    centre = pts.mean(axis=0)
    angles = np.arctan2(pts[:, 1] - centre[1], pts[:, 0] - centre[0])
    pts = pts[np.argsort(angles)]  # increasing angle with y down = clockwise on screen
    best, best_score = 0, -np.inf
    for start in range(4):
        p = np.roll(pts, -start, axis=0)
        top, side = p[1] - p[0], p[2] - p[1]
        long_edge = np.hypot(*top) >= np.hypot(*side) * 0.999
        # Prefer a long first edge, then one pointing rightwards, then the upper one.
        score = (2.0 if long_edge else 0.0) + top[0] / (np.hypot(*top) + 1e-9) - 1e-6 * (p[0][1] + p[1][1])
        if score > best_score:
            best, best_score = start, score
    return np.roll(pts, -best, axis=0).astype(np.float32)


def line_quad(polygon: Sequence[Sequence[float]]) -> np.ndarray:
    """The reading-ordered quadrilateral of a polygon (itself if it has 4 points, else its min-area box)."""
    pts = np.asarray(polygon, dtype=np.float32).reshape(-1, 2)
    if len(pts) < 3:
        raise InputError(f"a line polygon needs at least 3 points, got {len(pts)}: fix the box")
    if len(pts) != 4:
        pts = cv2.boxPoints(cv2.minAreaRect(pts))
    return order_quad(pts)


def crop_line(page: np.ndarray, polygon: Sequence[Sequence[float]], config: CropConfig = CropConfig()) -> np.ndarray:
    """The line under `polygon` as an upright image (same channels as `page`), padded per `config`."""
    quad = line_quad(polygon)
    width = max(np.hypot(*(quad[1] - quad[0])), np.hypot(*(quad[2] - quad[3])))
    height = max(np.hypot(*(quad[3] - quad[0])), np.hypot(*(quad[2] - quad[1])))
    if height < config.min_height or width < 1:
        raise InputError(f"line box is {width:.0f}x{height:.0f} pixels, under min_height={config.min_height}: "
                         "mark it bad_box or redraw it")
    pad = config.padding * height + config.padding_px
    w, h = int(round(width)), int(round(height))
    target = np.float32([[pad, pad], [pad + w, pad], [pad + w, pad + h], [pad, pad + h]])
    matrix = cv2.getPerspectiveTransform(quad, target)
    size = (int(round(w + 2 * pad)), int(round(h + 2 * pad)))
    return cv2.warpPerspective(page, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def crop_lines(page: np.ndarray, polygons: Sequence[Sequence[Sequence[float]]],
               config: CropConfig = CropConfig()) -> list:
    """crop_line for each polygon; an unusable box gives its InputError in place of the crop."""
    out: list = []
    for polygon in polygons:
        try:
            out.append(crop_line(page, polygon, config))
        except InputError as exc:
            out.append(exc)
    return out
