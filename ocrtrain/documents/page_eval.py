"""Page-level evaluation: the whole EasyOCR pipeline (``Reader.readtext``: CRAFT + a recognizer) on pages.

For each page with ground-truth lines: ``readtext`` on the page image file, the found boxes put in
reading order, and against the page's verified lines:

- ``page_cer``: character edit distance between the page's text in reading order (lines joined
  by newlines, each compared under ``page_compare``) and the ground truth's, summed over pages,
  divided by the ground truth's length;
- ``line_recall`` / ``line_precision``: ground-truth boxes / found boxes matched one-to-one with
  IoU >= ``iou`` (axis-aligned boxes), over all ground-truth / found boxes;
- ``lines_correct``: the share of ground-truth lines whose matched box reads their text (under
  ``line_compare``), plus the per-line errors; each page's ``lines`` (polygon, truth, reading,
  outcome: right / misread / no box found) and ``found_only`` boxes (found, matching no line) are
  what :func:`ocrtrain.documents.review.page_outcome_png` draws.

The model is ``english_g2``, an exported bundle (``easyocr:DIR/NAME`` or a folder holding one
NAME.pth/.yaml/.py), or anything ``ocrtrain export`` takes (a run folder, ``run:PATH@best``, a
checkpoint): that is exported to a temporary bundle first, so what is measured is what a user
loads into ``easyocr.Reader``.

>>> # evaluate_pages("runs/r1", DocumentSet("docsets/sroie"), PageEvalConfig(tag="test"))["page_cer"]
"""
from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Union

from ..config import check
from ..easyocr_interop import quiet_reader
from ..errors import DatasetError
from ..originspec import ENGLISH_G2
from ..events import Callback, Progress, emit
from .detect import GroupingConfig, match_boxes, reading_order
from .docset import TAGS, DocumentSet

__all__ = ["PageScoring", "PageEvalConfig", "page_reader_for", "evaluate_pages", "truth_lines", "score_page",
           "summarize_pages"]

_MODES = ("raw", "ws", "ci_ws", "loose")


@dataclass(frozen=True)
class PageScoring(GroupingConfig):
    """What page scoring shares (page eval, tune-detect): the grouping, which pages, the box match."""

    tag: Optional[str] = field(default=None, metadata={"help": "only pages with this tag (train, val, test)"})
    iou: float = field(default=0.5, metadata={"help": "least IoU for a found box to match a ground-truth box"})

    def validate(self) -> None:
        super().validate()
        check(self.tag is None or self.tag in TAGS, f"tag must be one of {TAGS} or empty, got {self.tag!r}")
        check(0 < self.iou <= 1, f"iou must be in (0, 1], got {self.iou}")


@dataclass(frozen=True)
class PageEvalConfig(PageScoring):
    """Which pages, how ``readtext`` finds lines (EasyOCR's defaults), how boxes and text are compared."""
    page_compare: str = field(default="ci_ws", metadata={
        "help": "page text comparison: raw, ws (space runs collapsed), ci_ws (+ ignore case), loose (no spaces, no case)",
        "choices": _MODES})
    line_compare: str = field(default="loose", metadata={"help": "line text comparison (same choices)",
                                                         "choices": _MODES})
    max_errors: int = field(default=200, metadata={"help": "most per-line errors listed"})
    detector: str = field(default="", metadata={
        "help": "CRAFT from this folder (`ocrtrain pages train-detect`) instead of EasyOCR's"})


def _norm(text: str, mode: str) -> str:
    import re

    if mode == "raw":
        return text
    if mode == "loose":
        return re.sub(r"\s+", "", text).casefold()
    text = re.sub(r"\s+", " ", text).strip()
    return text.casefold() if mode == "ci_ws" else text


def _bundle_in(folder: Path) -> Optional[str]:
    names = [p.stem for p in folder.glob("*.yaml") if (folder / f"{p.stem}.pth").is_file()
             and (folder / f"{p.stem}.py").is_file()]
    return names[0] if len(names) == 1 else None


@contextlib.contextmanager
def page_reader_for(model: Union[str, Path], gpu: Union[bool, str] = False,
                    detector: Optional[Union[str, Path]] = None) -> Iterator:
    """An ``easyocr.Reader`` with CRAFT (EasyOCR's, or `detector`'s) and `model`'s recognizer
    (exported to a bundle if need be)."""
    from ..easyocr_interop import make_page_reader

    text = str(model)
    if text == ENGLISH_G2:
        yield make_page_reader(None, gpu=gpu, detector=detector)
        return
    if text.startswith("easyocr:"):
        folder, _, name = text[len("easyocr:"):].rpartition("/")
        yield make_page_reader(Path(folder or "."), name, gpu=gpu, detector=detector)
        return
    if Path(text).is_dir() and _bundle_in(Path(text)):
        yield make_page_reader(Path(text), _bundle_in(Path(text)), gpu=gpu, detector=detector)
        return
    from ..export import export_easyocr

    with tempfile.TemporaryDirectory(prefix="ocrtrain-page-eval-") as tmp:
        export_easyocr(text, "ocrtrain_page_eval", tmp)
        yield make_page_reader(Path(tmp), "ocrtrain_page_eval", gpu=gpu, detector=detector)


def _page_result(reader, docs: DocumentSet, pid: str, config: PageEvalConfig) -> tuple[dict, list]:
    with quiet_reader():
        result = reader.readtext(str(docs.image_path(pid)), **config.reader_kwargs())
    return score_page(docs, pid, result, config)


def truth_lines(docs: DocumentSet, pid: str) -> list:
    """Page `pid`'s ground truth: its verified lines that hold text."""
    return [l for l in docs.lines(pid) if l.status == "verified" and l.text.strip()]


def score_page(docs: DocumentSet, pid: str, result: list, config: PageEvalConfig) -> tuple[dict, list]:
    """(page row, per-line errors) of ``readtext``-style `result` ([(box, text, confidence)]) on page `pid`."""
    from rapidfuzz.distance import Levenshtein

    truth = truth_lines(docs, pid)
    boxes = [[(float(x), float(y)) for x, y in box] for box, _, _ in result]
    order = reading_order(boxes) if boxes else []
    read = "\n".join(_norm(result[i][1], config.page_compare) for i in order)
    gold_order = reading_order([l.polygon for l in truth]) if truth else []
    gold = "\n".join(_norm(truth[i].text, config.page_compare) for i in gold_order)
    pairs = match_boxes(boxes, [l.polygon for l in truth], config.iou)
    matched = {t: f for f, t, _ in pairs}
    errors, right, lines = [], 0, []
    for t, line in enumerate(truth):
        got = result[matched[t]][1] if t in matched else None
        ok = got is not None and _norm(got, config.line_compare) == _norm(line.text, config.line_compare)
        right += ok
        outcome = "right" if ok else ("no box found" if got is None else "misread")
        lines.append({"line": line.id, "polygon": [list(map(float, xy)) for xy in line.polygon],
                      "truth": line.text, "read": got, "outcome": outcome})
        if not ok:
            errors.append({"page": pid, "line": line.id, "truth": line.text, "read": got, "why": outcome})
    found_only = [{"polygon": [list(xy) for xy in boxes[f]], "read": result[f][1]}
                  for f in range(len(boxes)) if f not in {f for f, _, _ in pairs}]
    page = {"page": pid, "truth_lines": len(truth), "found": len(boxes), "matched": len(pairs), "right": right,
            "char_errors": Levenshtein.distance(gold, read), "truth_chars": len(gold),
            "lines": lines, "found_only": found_only}
    page["cer"] = page["char_errors"] / max(1, page["truth_chars"])
    return page, errors


def evaluate_pages(model: Union[str, Path], docs: DocumentSet, config: PageEvalConfig = PageEvalConfig(),
                   callback: Optional[Callback] = None, gpu: Union[bool, str] = False) -> dict:
    """Page CER, line recall/precision and lines read right for `model` on the set's pages (see module doc)."""
    pages = [p.id for p in docs.pages if (config.tag is None or p.tag == config.tag)
             and any(l.status == "verified" for l in docs.lines(p.id))]
    if not pages:
        raise DatasetError(f"{docs.path} has no pages with verified lines" + (f" tagged {config.tag}" if config.tag else "")
                           + ": import ground truth or verify lines first (or drop --tag)")
    per_page, errors = [], []
    with page_reader_for(model, gpu, config.detector or None) as reader:
        for done, pid in enumerate(pages, 1):
            page, wrong = _page_result(reader, docs, pid, config)
            per_page.append(page)
            errors += wrong
            emit(callback, Progress("eval", done, len(pages), {"page": pid, "cer": round(page["cer"], 4)}))
    return {"model": str(model), "docset": str(docs.path), "config": config.to_dict(),
            **summarize_pages(per_page), "per_page": per_page, "errors": errors[:config.max_errors],
            "errors_total": len(errors)}


def summarize_pages(per_page: list[dict]) -> dict:
    """Page CER, line recall/precision, lines read right and the totals over `per_page` rows."""
    total = {k: sum(p[k] for p in per_page) for k in ("truth_lines", "found", "matched", "right", "char_errors",
                                                        "truth_chars")}
    return {"pages": len(per_page),
            "page_cer": total["char_errors"] / max(1, total["truth_chars"]),
            "line_recall": total["matched"] / max(1, total["truth_lines"]),
            "line_precision": total["matched"] / max(1, total["found"]),
            "lines_correct": total["right"] / max(1, total["truth_lines"]),
            "lines_correct_count": total["right"], **{f"total_{k}": v for k, v in total.items()}}
