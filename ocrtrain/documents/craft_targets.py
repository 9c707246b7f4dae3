"""What CRAFT should see on a page whose lines are known: character and link heat maps, and its loss.

CRAFT (EasyOCR's detector) predicts two maps at half the input's resolution: a *region* score
that peaks at each character's centre and an *affinity* score that peaks between neighbouring
characters of a word. A document set knows lines (a polygon and a text), not characters, so each
line is cut into equal cells, one per character of its text (whitespace runs count as one cell):
exact for the monospace print of receipts, close for proportional text, the fallback of CRAFT's
own weak supervision. Each non-space cell gets a 2-D Gaussian warped onto its quadrilateral (1 at
its centre, 0.2 at the middle of its sides), and each pair of neighbouring characters of a word an
affinity Gaussian (0.1 at its sides) spanning the two cells' centres (the quadrilateral through the
centres of their upper and lower triangles, as in the CRAFT paper).

>>> region, affinity = line_maps([((0, 0), (40, 0), (40, 20), (0, 20))], ["AB"], (10, 20))
>>> region.shape, round(float(region.max()), 2), float(affinity.max()) > 0
((10, 20), 1.0, True)
"""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np

__all__ = ["char_quads", "line_maps", "ohem_loss"]

#: Side of the Gaussian template; how far it reaches past a cell (x the cell's half side); its value
#: at the middle of a cell's side for characters and for links. Chosen so the published CRAFT's own
#: maps on receipt crops fit them best (OHEM loss of craft_mlt_25k on SROIE crops: 0.154 with 0.2 /
#: 0.1; 0.181 with 0.4 / 0.2, the CRAFT paper's thresholds on its own glyph boxes; 0.245 for a
#: Gaussian inside the cell): line boxes are taller than their glyphs.
_TEMPLATE, _SPREAD, REGION_EDGE, AFFINITY_EDGE = 96, 1.5, 0.2, 0.1


@lru_cache(maxsize=4)
def _template(edge: float) -> np.ndarray:
    xs = np.linspace(-_SPREAD, _SPREAD, _TEMPLATE, dtype=np.float32)
    sigma2 = 1.0 / (2.0 * np.log(1.0 / edge))
    return np.exp(-(xs[:, None] ** 2 + xs[None, :] ** 2) / (2 * sigma2)).astype(np.float32)


def _quad(polygon: Sequence) -> np.ndarray:
    """TL, TR, BR, BL of a line polygon (4 points as given; otherwise its axis-aligned box)."""
    pts = np.asarray(polygon, dtype=np.float32).reshape(-1, 2)
    if len(pts) == 4:
        return pts
    (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
    return np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], dtype=np.float32)


def char_quads(polygon: Sequence, text: str) -> list[list[np.ndarray]]:
    """Per word of `text`, the quadrilateral of each of its characters: the line cut in equal cells
    along its top and bottom edges, one per character (a whitespace run is one cell)."""
    cells = " ".join(text.split())
    if not cells:
        return []
    tl, tr, br, bl = _quad(polygon)
    n = len(cells)

    def cell(k: int) -> np.ndarray:
        a, b = k / n, (k + 1) / n
        return np.array([tl + a * (tr - tl), tl + b * (tr - tl), bl + b * (br - bl), bl + a * (br - bl)],
                        dtype=np.float32)

    words: list[list[np.ndarray]] = [[]]
    for k, ch in enumerate(cells):
        if ch == " ":
            words.append([])
        else:
            words[-1].append(cell(k))
    return [w for w in words if w]


def _paint(canvas: np.ndarray, quad: np.ndarray, edge: float) -> None:
    """Max a Gaussian into `canvas`: `edge` at the middle of each side of `quad` (canvas pixels),
    1 at its centre, reaching past it (the template is warped into the quad grown around its centre)."""
    import cv2

    centre = quad.mean(0)
    quad = centre + _SPREAD * (quad - centre)
    h, w = canvas.shape
    x0, y0 = max(0, int(np.floor(quad[:, 0].min()))), max(0, int(np.floor(quad[:, 1].min())))
    x1, y1 = min(w, int(np.ceil(quad[:, 0].max())) + 1), min(h, int(np.ceil(quad[:, 1].max())) + 1)
    if x1 - x0 < 1 or y1 - y0 < 1:
        return
    s = _TEMPLATE - 1
    src = np.array([(0, 0), (s, 0), (s, s), (0, s)], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(src, (quad - np.array([x0, y0], dtype=np.float32)).astype(np.float32))
    warped = cv2.warpPerspective(_template(edge), matrix, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR)
    np.maximum(canvas[y0:y1, x0:x1], warped, out=canvas[y0:y1, x0:x1])


def _link(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The affinity quadrilateral of neighbouring characters `a`, `b`: through the centres of
    each one's upper and lower triangle."""
    def tops(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c = q.mean(0)
        return (q[0] + q[1] + c) / 3, (q[2] + q[3] + c) / 3

    (ta, ba), (tb, bb) = tops(a), tops(b)
    return np.array([ta, tb, bb, ba], dtype=np.float32)


def line_maps(polygons: Sequence, texts: Sequence[str], shape: tuple[int, int],
              scale: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """(region, affinity) float32 maps of `shape` (rows, columns) for lines given in page pixels,
    drawn at `scale` (CRAFT's maps are half its input's size)."""
    region = np.zeros(shape, dtype=np.float32)
    affinity = np.zeros(shape, dtype=np.float32)
    for polygon, text in zip(polygons, texts):
        for word in char_quads(np.asarray(polygon, dtype=np.float32) * scale, text):
            for q in word:
                _paint(region, q, REGION_EDGE)
            for a, b in zip(word, word[1:]):
                _paint(affinity, _link(a, b), AFFINITY_EDGE)
    return region, affinity


def ohem_loss(pred, target, ratio: int = 3, floor: int = 500):
    """CRAFT's loss for one map: squared error on every text pixel (target > 0.1) plus the hardest
    `ratio` x as many background pixels (at least `floor`), each part averaged, per sample."""
    import torch

    total = pred.new_zeros(())
    for p, t in zip(pred, target):
        err = (p - t) ** 2
        pos = t > 0.1
        n = int(pos.sum())
        if n:
            total = total + err[pos].mean()
        neg = err[~pos]
        k = min(neg.numel(), max(ratio * n, floor))
        if k:
            total = total + torch.topk(neg, k).values.mean()
    return total / max(1, len(pred))
