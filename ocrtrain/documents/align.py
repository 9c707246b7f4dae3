"""Aligning a page's known text (its lines in any order) to its line boxes.

Each box's reading (from :mod:`.preread`) is compared with every transcript line by normalised
Levenshtein distance (rapidfuzz; case and runs of spaces ignored by default), and the optimal
one-to-one assignment (``scipy.optimize.linear_sum_assignment``) pairs them. A pair whose
distance is at most ``max_distance`` makes the box verified with the transcript's text
(provenance ``aligned``); the other boxes stay unreviewed and the transcript lines nobody matched
are reported. A transcript is ``DIR/PAGE.txt`` (or named after the page's document), one line of
text per line of the page.

>>> align_page(["T0TAL 12.50", "MELK"], ["MELK", "TOTAL 12,50", "EGG"], AlignConfig()).matches
((0, 1, 0.18182), (1, 0, 0.0))
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
from .docset import DocumentSet
from .formats import read_text_file

__all__ = ["AlignConfig", "PageAlignment", "align_page", "find_transcript", "align_pages"]


@dataclass(frozen=True)
class AlignConfig(Config):
    """When a reading and a transcript line count as the same line."""

    max_distance: float = field(default=0.35, metadata={
        "help": "largest normalised edit distance (0..1) between reading and transcript still accepted"})
    case_sensitive: bool = field(default=False, metadata={"help": "compare letter case too"})
    model: str = field(default="english_g2", metadata={"help": "model that reads lines that have no reading yet"})

    def validate(self) -> None:
        check(0 <= self.max_distance < 1, f"max_distance must be in [0, 1), got {self.max_distance}")


@dataclass(frozen=True)
class PageAlignment:
    """Result for one page: (box index, transcript index, distance) pairs accepted, and the rest."""

    matches: tuple[tuple[int, int, float], ...]
    unmatched_transcript: tuple[int, ...]
    unmatched_boxes: tuple[int, ...]


def _normalise(text: str, case_sensitive: bool) -> str:
    text = re.sub(r"\s+", " ", text or "").strip()
    return text if case_sensitive else text.casefold()


def align_page(readings: Sequence[str], transcript: Sequence[str], config: AlignConfig = AlignConfig()) -> PageAlignment:
    """Optimal one-to-one assignment of transcript lines to boxes by their readings."""
    from rapidfuzz.distance import Levenshtein
    from rapidfuzz.process import cdist
    from scipy.optimize import linear_sum_assignment

    if not readings or not transcript:
        return PageAlignment((), tuple(range(len(transcript))), tuple(range(len(readings))))
    a = [_normalise(r, config.case_sensitive) for r in readings]
    b = [_normalise(t, config.case_sensitive) for t in transcript]
    cost = cdist(a, b, scorer=Levenshtein.normalized_distance, dtype=np.float64)
    rows, cols = linear_sum_assignment(cost)
    matches = tuple((int(r), int(c), round(float(cost[r, c]), 5)) for r, c in zip(rows, cols)
                    if cost[r, c] <= config.max_distance)
    used_boxes, used_lines = {m[0] for m in matches}, {m[1] for m in matches}
    return PageAlignment(matches, tuple(i for i in range(len(b)) if i not in used_lines),
                         tuple(i for i in range(len(a)) if i not in used_boxes))


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


def _align_one(docs: DocumentSet, pid: str, path: Path, config: AlignConfig, callback) -> dict:
    lines = docs.lines(pid)
    transcript = _transcript_lines(path, [l.text for l in lines if l.status == "verified"])
    open_idx = [i for i, l in enumerate(lines) if l.status == "unreviewed" and l.reading is not None]
    result = align_page([lines[i].reading or "" for i in open_idx], transcript, config)
    for box, t, distance in result.matches:
        i = open_idx[box]
        lines[i] = lines[i].replace(text=transcript[t], status="verified", provenance="aligned")
    docs.save_lines(pid, lines)
    info = {"page": pid, "transcript": str(path), "transcript_lines": len(transcript), "boxes": len(open_idx),
            "matched": len(result.matches), "unmatched_transcript": [transcript[t] for t in result.unmatched_transcript],
            "unmatched_boxes": [lines[open_idx[b]].id for b in result.unmatched_boxes]}
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
