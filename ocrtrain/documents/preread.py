"""Pre-reading: every line not yet verified gets a model's reading and its confidence.

A person then corrects instead of typing: an empty line's text is filled with the reading
(``prefill``), the line stays unreviewed until someone accepts it. The model is any origin spec
:class:`ocrtrain.inference.Predictor` loads (``english_g2``, ``run:PATH``, ``easyocr:DIR/NAME``).
Crops are cut along each line's polygon with the set's CropConfig, in grey as EasyOCR converts.

>>> # preread_pages(DocumentSet("docsets/mine"), PrereadConfig(model="english_g2"))
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import cv2
import numpy as np

from ..config import Config, check
from ..events import Callback, Message, Progress, emit
from ..originspec import DEFAULT_ORIGIN
from ..readconfig import ReadConfig
from .crop import CropConfig, crop_lines
from .docset import DocumentSet, Line

__all__ = ["PrereadConfig", "page_gray", "read_page_lines", "preread_pages"]


@dataclass(frozen=True)
class PrereadConfig(Config):
    """Which model pre-reads which lines."""

    model: str = field(default=DEFAULT_ORIGIN, metadata={"help": "origin spec: english_g2, run:PATH, easyocr:DIR/NAME"})
    device: str = field(default=ReadConfig.device, metadata={
        "help": "device to read on: auto (a GPU when torch sees one, else cpu), cpu, cuda or cuda:N"})
    all_lines: bool = field(default=False, metadata={"help": "also read verified lines (to compare with their text)"})
    prefill: bool = field(default=True, metadata={"help": "copy the reading into lines that have no text yet"})

    def validate(self) -> None:
        check(bool(self.model.strip()), "model must name an origin spec such as english_g2")
        ReadConfig(device=self.device)  # the same device names as eval and predict


def page_gray(docs: DocumentSet, page_id: str) -> np.ndarray:
    """The page in grey, converted as EasyOCR converts an RGB image."""
    return cv2.cvtColor(np.asarray(docs.image(page_id)), cv2.COLOR_RGB2GRAY)


def read_page_lines(predictor, gray: np.ndarray, lines: Sequence[Line], crop: CropConfig) -> list:
    """Prediction (or the InputError of an unusable box) for each line of one grey page."""
    crops = crop_lines(gray, [l.polygon for l in lines], crop)
    good = [i for i, c in enumerate(crops) if not isinstance(c, Exception)]
    predictions = predictor.predict([crops[i] for i in good]) if good else []
    out = list(crops)
    for i, pred in zip(good, predictions):
        out[i] = pred
    return out


def _apply(line: Line, result, config: PrereadConfig) -> Line:
    if isinstance(result, Exception):
        return line.replace(reading=None, confidence=None, reading_model=config.model)
    changes = dict(reading=result.text, confidence=round(float(result.confidence), 5), reading_model=config.model)
    if config.prefill and not line.text and line.status == "unreviewed":
        changes["text"] = result.text
    return line.replace(**changes)


def preread_pages(docs: DocumentSet, config: PrereadConfig = PrereadConfig(), pages: Optional[Sequence[str]] = None,
                  callback: Optional[Callback] = None, predictor=None) -> int:
    """Read the set's lines (not verified, or all with ``all_lines``) and save; returns lines read."""
    if predictor is None:
        from ..inference import Predictor

        predictor = Predictor.from_origin(config.model, device=config.device)
    crop = docs.crop_config()
    ids = list(pages) if pages is not None else [p.id for p in docs.pages]
    total = 0
    for done, pid in enumerate(ids, 1):
        lines = docs.lines(pid)
        todo = [i for i, l in enumerate(lines) if config.all_lines or l.status != "verified"]
        if todo:
            results = read_page_lines(predictor, page_gray(docs, pid), [lines[i] for i in todo], crop)
            bad = 0
            for i, result in zip(todo, results):
                lines[i] = _apply(lines[i], result, config)
                bad += isinstance(result, Exception)
            docs.save_lines(pid, lines)
            total += len(todo) - bad
            if bad:
                emit(callback, Message(f"page {pid}: {bad} line box(es) too small to read: mark them bad_box",
                                       "warning"))
        emit(callback, Progress("preread", done, len(ids), {"page": pid, "lines": len(todo)}))
    return total
