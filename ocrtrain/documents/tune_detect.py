"""Line grouping for your own pages: the ``readtext`` settings that find your ground-truth lines best.

CRAFT finds words; EasyOCR then merges them into lines (``easyocr.utils.group_text_box``: words
closer than ``width_ths`` box heights, centres within ``ycenter_ths``, heights within ``height_ths``)
and pads each by ``add_margin``. Its defaults were chosen for its own scenes, and how a document
lays out its text (a price far right of its item, a form's label and value) decides what a "line"
is. :func:`tune_grouping` finds the settings for a document set's pages:

1. CRAFT runs once per page with the fixed detection settings (``Reader.get_textbox``, what
   ``Reader.detect`` calls), keeping the words;
2. every combination of the grids regroups the words (as ``Reader.detect`` does, milliseconds) and
   is scored against the pages' verified boxes: line recall and precision at IoU >= ``iou``, their
   F1;
3. with a ``model``, the ``top`` combinations by F1 and EasyOCR's defaults are also read
   (``Reader.recognize`` on the grouped boxes: what ``readtext`` does) and ranked by page CER, the
   figure ``ocrtrain pages eval`` reports; without one, the best F1 wins.

Tune on validation pages (``tag="val"``) and report on test pages with the settings found:
``ocrtrain pages eval MODEL --pages DOCSET --tag test --width-ths 1.0`` (or
``reader.readtext(image, width_ths=1.0)`` in your own code).

>>> # tune_grouping(DocumentSet("docsets/sroie"), TuneConfig(tag="val"), model="english_g2")["best"]
"""
from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass, field, replace
from typing import Optional, Union

import numpy as np

from ..config import check
from ..easyocr_interop import quiet_reader
from ..errors import DatasetError
from ..events import Callback, Progress, emit
from .detect import GroupingConfig, _polygons, detector, match_boxes
from .docset import DocumentSet
from .page_eval import PageEvalConfig, PageScoring, page_reader_for, score_page, summarize_pages, truth_lines

__all__ = ["TuneConfig", "GRID_KEYS", "tune_grouping", "grouping_text"]

#: The grouping parameters the grids vary (their TuneConfig grid field: the name + "s").
GRID_KEYS = ("width_ths", "ycenter_ths", "height_ths", "add_margin")


@dataclass(frozen=True)
class TuneConfig(PageScoring):
    """Fixed detection settings (the inherited fields), the grids tried, which pages, how they are scored."""

    width_thss: tuple[float, ...] = field(default=(0.3, 0.5, 0.7, 1.0, 1.5, 2.0), metadata={
        "help": "width_ths values tried (largest gap merged, in box heights)"})
    ycenter_thss: tuple[float, ...] = field(default=(0.3, 0.5, 0.7), metadata={"help": "ycenter_ths values tried"})
    height_thss: tuple[float, ...] = field(default=(0.3, 0.5, 0.7), metadata={"help": "height_ths values tried"})
    add_margins: tuple[float, ...] = field(default=(0.05, 0.1, 0.2), metadata={"help": "add_margin values tried"})
    top: int = field(default=3, metadata={"help": "with --model: how many best-F1 settings are also read"})

    def validate(self) -> None:
        super().validate()
        check(self.top >= 0, f"top must be >= 0, got {self.top}")
        for key in GRID_KEYS:
            values = getattr(self, _grid(key))
            check(bool(values), f"{_grid(key)} must list at least one value")
            check(all(0 <= v <= 20 for v in values), f"{_grid(key)} values must be in [0, 20], got {values}")

    def combinations(self) -> list[GroupingConfig]:
        """Every grouping the grids give, with the fixed detection settings."""
        base = GroupingConfig(**self.reader_kwargs())
        grids = [getattr(self, _grid(k)) for k in GRID_KEYS]
        return [replace(base, **dict(zip(GRID_KEYS, values))) for values in itertools.product(*grids)]


def _grid(key: str) -> str:
    return key + "s"


def _words(reader, path: str, config: GroupingConfig) -> tuple[np.ndarray, np.ndarray]:
    """CRAFT's word boxes on the page at `path` (as ``Reader.detect`` computes them) and the grey page
    ``readtext`` recognizes from."""
    from ..easyocr_interop import page_words

    return page_words(reader, path, config.canvas_size, config.mag_ratio, config.text_threshold,
                      config.link_threshold, config.low_text)


def group_words(words: np.ndarray, grouping: GroupingConfig) -> tuple[list, list]:
    """(horizontal, free) line boxes from CRAFT's words, exactly as ``Reader.detect`` groups them."""
    from ..easyocr_interop import group_words as group

    return group(words, grouping.slope_ths, grouping.ycenter_ths, grouping.height_ths, grouping.width_ths,
                 grouping.add_margin, grouping.min_size)


def _geometry(pages: dict, truth: dict, grouping: GroupingConfig, iou: float) -> dict:
    found = matched = lines = 0
    for pid, (words, grey) in pages.items():
        boxes = _polygons(*group_words(words, grouping), (grey.shape[1], grey.shape[0]))
        found += len(boxes)
        lines += len(truth[pid])
        matched += len(match_boxes(boxes, truth[pid], iou))
    recall, precision = matched / max(1, lines), matched / max(1, found)
    return {"line_recall": recall, "line_precision": precision,
            "f1": 2 * recall * precision / max(1e-12, recall + precision)}


def _read(reader, docs: DocumentSet, pages: dict, grouping: GroupingConfig, config: TuneConfig) -> dict:
    """Page CER and lines read right with `grouping` (readtext = detect + recognize, CRAFT kept)."""
    scoring = PageEvalConfig(**grouping.to_dict(), iou=config.iou)
    rows = []
    for pid, (words, grey) in pages.items():
        horizontal, free = group_words(words, grouping)
        with quiet_reader():
            result = reader.recognize(grey, horizontal, free, reformat=False)
        rows.append(score_page(docs, pid, result, scoring)[0])
    summary = summarize_pages(rows)
    return {k: summary[k] for k in ("page_cer", "line_recall", "line_precision", "lines_correct")}


def grouping_text(row: dict) -> str:
    """``width_ths=0.7 ycenter_ths=0.3 ...``: the grid parameters of a result row (or ``best``)."""
    return " ".join(f"{k}={row[k]:g}" for k in GRID_KEYS)


def _params(grouping: GroupingConfig) -> dict:
    return {k: getattr(grouping, k) for k in GRID_KEYS}


def tune_grouping(docs: DocumentSet, config: TuneConfig = TuneConfig(), model: Optional[str] = None,
                  callback: Optional[Callback] = None, gpu: Union[bool, str] = False) -> dict:
    """Score every grouping of the grids on the set's pages (see the module doc); returns the rows,
    EasyOCR's defaults' row and the best settings (``best``: readtext keyword arguments)."""
    ids = [p.id for p in docs.pages if (config.tag is None or p.tag == config.tag)]
    truth = {pid: [l.polygon for l in truth_lines(docs, pid)] for pid in ids}
    truth = {pid: polys for pid, polys in truth.items() if polys}
    if not truth:
        raise DatasetError(f"{docs.path} has no pages with verified lines" + (f" tagged {config.tag}" if config.tag
                           else "") + ": import ground truth or verify lines first (or change --tag)")
    combos = config.combinations()
    default = replace(combos[0], **_params(GroupingConfig()))
    with (page_reader_for(model, gpu) if model else contextlib.nullcontext(detector(gpu))) as reader:
        pages = {}
        for done, pid in enumerate(truth, 1):
            pages[pid] = _words(reader, str(docs.image_path(pid)), config)
            emit(callback, Progress("craft", done, len(truth), {"page": pid, "words": len(pages[pid][0])}))
        rows = []
        for done, grouping in enumerate(combos, 1):
            rows.append({**_params(grouping), **_geometry(pages, truth, grouping, config.iou)})
            emit(callback, Progress("group", done, len(combos)))
        rows.sort(key=lambda r: -r["f1"])
        default_row = {**_params(default), **_geometry(pages, truth, default, config.iou)}
        read = []
        if model:
            candidates = [replace(default, **{k: r[k] for k in GRID_KEYS}) for r in rows[:config.top]]
            candidates += [default] if default not in candidates else []
            for done, grouping in enumerate(candidates, 1):
                read.append({**_params(grouping), **_read(reader, docs, pages, grouping, config)})
                emit(callback, Progress("read", done, len(candidates), read[-1]))
            read.sort(key=lambda r: r["page_cer"])
    best = {k: (read or rows)[0][k] for k in GRID_KEYS}
    return {"docset": str(docs.path), "tag": config.tag, "pages": len(truth), "model": model,
            "lines": sum(map(len, truth.values())), "combinations": len(combos), "rows": rows,
            "default": default_row, "read": read, "ranked_by": "page_cer" if read else "f1", "best": best}
