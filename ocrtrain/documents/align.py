"""Aligning a page's known text (its lines in any order) to its line boxes.

Each box's reading (from :mod:`.preread`) is compared with every transcript line by normalised
Levenshtein distance (rapidfuzz; case and runs of spaces ignored by default), and the optimal
one-to-one assignment (``scipy.optimize.linear_sum_assignment``) pairs them. A pair whose
distance is at most ``max_distance`` makes the box verified with the transcript's text
(provenance ``aligned``); the other boxes stay unreviewed and the transcript lines nobody matched
are reported. A transcript is ``DIR/PAGE.txt`` (or named after the page's document), one line of
text per line of the page.

Split lines re-joined: a detector often cuts one printed line in two boxes at a wide space
(``TOTAL`` ... ``12,50``). Two boxes next to each other on the same text row (their heights
overlapping by half, the gap at most ``join_gap`` box heights) whose readings, joined left to
right, match one transcript line better than either alone, and make the whole page's assignment
cheaper (accepted distances plus one per transcript line left over), become one line: the left
box's left edge to the right box's right edge, verified with the transcript's text.

>>> align_page(["T0TAL 12.50", "MELK"], ["MELK", "TOTAL 12,50", "EGG"], AlignConfig()).matches
((0, 1, 0.18182), (1, 0, 0.0))
>>> row = [[(0, 0), (60, 0), (60, 20), (0, 20)], [(90, 0), (150, 0), (150, 20), (90, 20)]]
>>> align_page(["TOTAL", "12.50"], ["TOTAL 12,50"], AlignConfig(), boxes=row).joins
((0, 1, 0, 0.09091),)
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from ..config import Config, check
from ..errors import DatasetError
from ..events import Callback, Message, Progress, emit
from ..originspec import DEFAULT_ORIGIN
from .docset import DocumentSet
from .formats import read_text_file

__all__ = ["AlignConfig", "PageAlignment", "align_page", "row_neighbours", "joined_polygon", "find_transcript",
           "align_pages"]


@dataclass(frozen=True)
class AlignConfig(Config):
    """When a reading and a transcript line count as the same line."""

    max_distance: float = field(default=0.35, metadata={
        "help": "largest normalised edit distance (0..1) between reading and transcript still accepted"})
    case_sensitive: bool = field(default=False, metadata={"help": "compare letter case too"})
    model: str = field(default=DEFAULT_ORIGIN, metadata={"help": "model that reads lines that have no reading yet"})
    rejoin: bool = field(default=True, metadata={
        "help": "join two boxes of one text row when together they match a transcript line better"})
    join_gap: float = field(default=3.0, metadata={
        "help": "widest gap between two boxes still joined, in box heights"})

    def validate(self) -> None:
        check(0 <= self.max_distance < 1, f"max_distance must be in [0, 1), got {self.max_distance}")
        check(self.join_gap >= 0, f"join_gap must be >= 0 box heights, got {self.join_gap}")


@dataclass(frozen=True)
class PageAlignment:
    """Result for one page: (box index, transcript index, distance) pairs accepted, and the rest.

    `joins` holds (left box, right box, transcript index, distance) for boxes re-joined into one line;
    their boxes are in neither `matches` nor `unmatched_boxes`."""

    matches: tuple[tuple[int, int, float], ...]
    unmatched_transcript: tuple[int, ...]
    unmatched_boxes: tuple[int, ...]
    joins: tuple[tuple[int, int, int, float], ...] = ()


def _normalise(text: str, case_sensitive: bool) -> str:
    text = re.sub(r"\s+", " ", text or "").strip()
    return text if case_sensitive else text.casefold()


def _extent(polygon) -> tuple[float, float, float, float]:
    pts = np.asarray(polygon, dtype=float)
    return pts[:, 0].min(), pts[:, 0].max(), pts[:, 1].min(), pts[:, 1].max()


def row_neighbours(boxes: Sequence[Sequence], join_gap: float = 3.0) -> list[tuple[int, int]]:
    """(left, right) index pairs: each box and the nearest box to its right on the same text row.

    Same row: vertical extents overlap by at least half the lower box's height, heights within a
    factor of two; the right box starts after the left one's centre and at most `join_gap`
    heights after its end."""
    ext = [_extent(b) for b in boxes]
    pairs = []
    for i, (x0, x1, y0, y1) in enumerate(ext):
        best, best_gap = None, None
        for j, (u0, u1, v0, v1) in enumerate(ext):
            h, k = y1 - y0, v1 - v0
            if j == i or min(h, k) <= 0 or max(h, k) > 2 * min(h, k):
                continue
            overlap, gap = min(y1, v1) - max(y0, v0), u0 - x1
            if overlap < 0.5 * min(h, k) or u0 <= (x0 + x1) / 2 or gap > join_gap * (h + k) / 2:
                continue
            if best_gap is None or gap < best_gap:
                best, best_gap = j, gap
        if best is not None:
            pairs.append((i, best))
    return pairs


def joined_polygon(left: Sequence, right: Sequence) -> tuple:
    """One line's polygon from two boxes of it: the left box's left edge to the right box's right edge
    (both TL, TR, BR, BL quads; other polygons give the bounding box of both)."""
    if len(left) == 4 and len(right) == 4:
        return (tuple(left[0]), tuple(right[1]), tuple(right[2]), tuple(left[3]))
    x0, x1, y0, y1 = _extent(list(left) + list(right))
    return ((x0, y0), (x1, y0), (x1, y1), (x0, y1))


def _assign(cost: np.ndarray, boxes: Sequence[int], lines: Sequence[int], max_distance: float):
    """Optimal assignment among `boxes` x `lines`: accepted (box, line, distance) and the page cost
    (accepted distances + 1 per transcript line left over)."""
    from scipy.optimize import linear_sum_assignment

    if not boxes or not lines:
        return [], float(len(lines))
    sub = cost[np.ix_(boxes, lines)]
    rows, cols = linear_sum_assignment(sub)
    found = [(boxes[r], lines[c], float(sub[r, c])) for r, c in zip(rows, cols) if sub[r, c] <= max_distance]
    return found, sum(d for _, _, d in found) + len(lines) - len(found)


def _joins(a: list[str], b: list[str], cost: np.ndarray, pairs, max_distance: float) -> list[tuple]:
    """Re-joins that lower the page cost, best first: (left, right, line, distance)."""
    from rapidfuzz.distance import Levenshtein
    from rapidfuzz.process import cdist

    if not pairs:
        return []
    joined = cdist([f"{a[i]} {a[j]}" for i, j in pairs], b, scorer=Levenshtein.normalized_distance,
                   dtype=np.float64)
    candidates = sorted((joined[p, t], p, t) for p in range(len(pairs)) for t in range(len(b))
                        if joined[p, t] <= max_distance
                        and joined[p, t] < min(cost[pairs[p][0], t], cost[pairs[p][1], t]))
    chosen: list[tuple] = []
    _, page_cost = _assign(cost, list(range(len(a))), list(range(len(b))), max_distance)
    for d, p, t in candidates:
        used_boxes = {x for c in chosen for x in c[:2]}
        i, j = pairs[p]
        if i in used_boxes or j in used_boxes or t in {c[2] for c in chosen}:
            continue
        rest_boxes = [x for x in range(len(a)) if x not in used_boxes | {i, j}]
        rest_lines = [x for x in range(len(b)) if x not in {c[2] for c in chosen} | {t}]
        _, rest = _assign(cost, rest_boxes, rest_lines, max_distance)
        trial = sum(c[3] for c in chosen) + float(d) + rest
        if trial < page_cost - 1e-9:
            chosen.append((i, j, t, float(d)))
            page_cost = trial
    return chosen


def align_page(readings: Sequence[str], transcript: Sequence[str], config: AlignConfig = AlignConfig(),
               boxes: Optional[Sequence[Sequence]] = None) -> PageAlignment:
    """Optimal one-to-one assignment of transcript lines to boxes by their readings; with the boxes'
    polygons (`boxes`) and ``config.rejoin``, boxes split from one line are joined first."""
    from rapidfuzz.distance import Levenshtein
    from rapidfuzz.process import cdist

    if not readings or not transcript:
        return PageAlignment((), tuple(range(len(transcript))), tuple(range(len(readings))))
    a = [_normalise(r, config.case_sensitive) for r in readings]
    b = [_normalise(t, config.case_sensitive) for t in transcript]
    cost = cdist(a, b, scorer=Levenshtein.normalized_distance, dtype=np.float64)
    pairs = row_neighbours(boxes, config.join_gap) if boxes is not None and config.rejoin else []
    joins = _joins(a, b, cost, pairs, config.max_distance)
    joined_boxes, joined_lines = {x for j in joins for x in j[:2]}, {j[2] for j in joins}
    found, _ = _assign(cost, [i for i in range(len(a)) if i not in joined_boxes],
                       [t for t in range(len(b)) if t not in joined_lines], config.max_distance)
    matches = tuple(sorted((r, c, round(d, 5)) for r, c, d in found))
    used_boxes, used_lines = {m[0] for m in matches} | joined_boxes, {m[1] for m in matches} | joined_lines
    return PageAlignment(matches, tuple(i for i in range(len(b)) if i not in used_lines),
                         tuple(i for i in range(len(a)) if i not in used_boxes),
                         tuple((i, j, t, round(d, 5)) for i, j, t, d in joins))


def find_transcript(text_dir: Union[str, Path], page_id: str, document: str) -> Optional[Path]:
    """DIR/PAGE.txt, else DIR/DOCUMENT.txt, else None."""
    for name in (page_id, document):
        path = Path(text_dir) / f"{name}.txt"
        if path.is_file():
            return path
    return None


def _transcript_lines(path: Path, already: Sequence[str]) -> list[str]:
    text, _ = read_text_file(path)
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    for done in already:  # lines verified before keep their transcript line
        if done in lines:
            lines.remove(done)
    return lines


def _rejoin(lines: list, open_idx: Sequence[int], joins, transcript: Sequence[str]) -> set:
    """Each re-joined pair becomes its left line (polygon of both, the transcript's text); returns
    the indices of the right lines, which go."""
    gone = set()
    for left, right, t, _ in joins:
        i, j = open_idx[left], open_idx[right]
        a, b = lines[i], lines[j]
        conf = [c for c in (a.confidence, b.confidence) if c is not None]
        lines[i] = a.replace(polygon=joined_polygon(a.polygon, b.polygon), text=transcript[t], status="verified",
                             provenance="aligned", reading=f"{a.reading or ''} {b.reading or ''}".strip(),
                             confidence=min(conf) if conf else None, source=f"{a.source} + {b.source}".strip(" +"))
        gone.add(j)
    return gone


def _align_one(docs: DocumentSet, pid: str, path: Path, config: AlignConfig, callback) -> dict:
    lines = docs.lines(pid)
    transcript = _transcript_lines(path, [l.text for l in lines if l.status == "verified"])
    open_idx = [i for i, l in enumerate(lines) if l.status == "unreviewed" and l.reading is not None]
    result = align_page([lines[i].reading or "" for i in open_idx], transcript, config,
                        boxes=[lines[i].polygon for i in open_idx])
    for box, t, distance in result.matches:
        i = open_idx[box]
        lines[i] = lines[i].replace(text=transcript[t], status="verified", provenance="aligned")
    gone = _rejoin(lines, open_idx, result.joins, transcript)
    unmatched = [lines[open_idx[b]].id for b in result.unmatched_boxes]
    docs.save_lines(pid, [l for i, l in enumerate(lines) if i not in gone])
    info = {"page": pid, "transcript": str(path), "transcript_lines": len(transcript), "boxes": len(open_idx),
            "matched": len(result.matches) + len(result.joins),
            "unmatched_transcript": [transcript[t] for t in result.unmatched_transcript],
            "unmatched_boxes": unmatched,
            "joined": [[lines[open_idx[i]].id, lines[open_idx[j]].id] for i, j, _, _ in result.joins]}
    if len(transcript) != len(open_idx):
        emit(callback, Message(f"page {pid}: {len(transcript)} transcript lines for {len(open_idx)} open boxes "
                               f"({len(result.matches)} matched); the rest wait for review", "warning"))
    return info


def align_pages(docs: DocumentSet, text_dir: Union[str, Path], config: AlignConfig = AlignConfig(),
                callback: Optional[Callback] = None, predictor=None) -> list[dict]:
    """Align every page that has a transcript in `text_dir`; returns one report dict per page."""
    text_dir = Path(text_dir)
    if not text_dir.is_dir():
        raise DatasetError(f"transcript folder {text_dir} does not exist: give a folder of PAGE.txt files")
    todo = [(p.id, find_transcript(text_dir, p.id, p.document)) for p in docs.pages]
    todo = [(pid, path) for pid, path in todo if path is not None]
    if not todo:
        raise DatasetError(f"{text_dir} has no transcript for any page of {docs.path} (looked for PAGE.txt "
                           f"such as {docs.pages[0].id}.txt): name each file after its page")
    unread = [pid for pid, _ in todo if any(l.status == "unreviewed" and l.reading is None for l in docs.lines(pid))]
    if unread:
        from .preread import PrereadConfig, preread_pages

        preread_pages(docs, PrereadConfig(model=config.model), unread, callback, predictor)
    reports = []
    for done, (pid, path) in enumerate(todo, 1):
        reports.append(_align_one(docs, pid, path, config, callback))
        emit(callback, Progress("align", done, len(todo), {"page": pid, "matched": reports[-1]["matched"]}))
    return reports
