"""Importing pages and their ground truth into a new document set.

Reads the ground truth (:func:`~ocrtrain.documents.formats.read_truth`), opens each page image
(EXIF-upright, big pages scaled down, PDF/TIFF pages one by one), fits every box to the page
(clipped to the image; outside, tiny or duplicate boxes rejected with where and why) and writes
the set atomically: a failure leaves no half-written folder, a bad file or line costs only itself.

>>> # import_pages("sroie/", "docsets/sroie", PageImportConfig(format="icdar"))
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import numpy as np

from ..config import Config, check
from ..errors import InputError
from ..events import Callback, Message, Progress, emit
from .crop import CropConfig
from .docset import TAGS, DocumentSetWriter, Line
from .formats import FORMATS, TruthLine, TruthPage, read_truth
from .pageimages import count_frames, encode_page, open_frames

__all__ = ["PageImportConfig", "import_pages"]


@dataclass(frozen=True)
class PageImportConfig(Config):
    """How pages and their ground truth are imported."""

    format: str = field(default="auto", metadata={"help": "ground-truth format", "choices": FORMATS})
    pdf_dpi: int = field(default=200, metadata={"help": "resolution PDF pages are rendered at"})
    max_pages: int = field(default=200, metadata={"help": "most pages taken from one PDF/TIFF file"})
    max_megapixels: float = field(default=40.0, metadata={"help": "larger pages are scaled down to this"})
    min_box_size: float = field(default=3.0, metadata={"help": "boxes thinner than this (pixels) are rejected"})
    document_from: str = field(default="file", metadata={
        "help": "what makes a document: each file (a PDF/TIFF's pages stay together) or each folder",
        "choices": ("file", "folder")})
    tag: Optional[str] = field(default=None, metadata={"help": "tag every imported page train, val or test"})

    def validate(self) -> None:
        check(36 <= self.pdf_dpi <= 1200, f"pdf_dpi must be in [36, 1200], got {self.pdf_dpi}")
        check(self.max_pages >= 1, f"max_pages must be at least 1, got {self.max_pages}")
        check(0.1 <= self.max_megapixels <= 400, f"max_megapixels must be in [0.1, 400], got {self.max_megapixels}")
        check(self.min_box_size >= 0, f"min_box_size must be >= 0, got {self.min_box_size}")
        check(self.tag is None or self.tag in TAGS, f"tag must be one of {TAGS} or empty, got {self.tag!r}")


def _fit_line(line: TruthLine, scale: float, size: tuple[int, int], min_size: float) -> tuple:
    """The line's polygon scaled to the stored page and clipped to it; InputError if unusable."""
    w, h = size
    pts = np.asarray(line.polygon, dtype=np.float64) * scale
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h:
        raise InputError(f"{line.where}: box {x0:.0f},{y0:.0f}-{x1:.0f},{y1:.0f} lies outside the "
                         f"{w}x{h} page: fix its coordinates")
    pts[:, 0] = pts[:, 0].clip(0, w)
    pts[:, 1] = pts[:, 1].clip(0, h)
    span = pts.max(axis=0) - pts.min(axis=0)
    if span.min() < min_size:
        raise InputError(f"{line.where}: box is {span[0]:.0f}x{span[1]:.0f} pixels inside the page, under "
                         f"min_box_size={min_size}: redraw it")
    return tuple((round(float(x), 2), round(float(y), 2)) for x, y in pts)


def _page_lines(writer: DocumentSetWriter, page_id: str, truth: TruthPage, scale: float,
                size: tuple[int, int], config: PageImportConfig) -> list[Line]:
    lines, seen = [], {}
    for line in truth.lines:
        try:
            polygon = _fit_line(line, scale, size, config.min_box_size)
        except InputError as exc:
            writer.reject(truth.where, line.where, str(exc))
            continue
        key = tuple((round(x), round(y)) for x, y in polygon)
        if key in seen:
            writer.reject(truth.where, line.where, f"{line.where}: same box as {seen[key]}: "
                          "duplicate kept once, remove one of them")
            continue
        seen[key] = line.where
        lines.append(Line(f"{page_id}:{len(lines):04d}", page_id, polygon, line.text, line.status,
                          "gt-file", source=line.where))
    return lines


def _document_of(image: Path, source: Path, config: PageImportConfig) -> str:
    if config.document_from == "folder" and image.parent != source:
        return image.parent.name
    return image.stem


def _add_truth_page(writer: DocumentSetWriter, truth: TruthPage, source: Path, config: PageImportConfig,
                    callback: Optional[Callback]) -> int:
    """All pages of one TruthPage (frames of a PDF/TIFF for images without truth); returns pages added."""
    image = truth.image
    frames = count_frames(image)
    if truth.frame is None and frames > config.max_pages:
        raise InputError(f"{image} has {frames} pages, over max_pages={config.max_pages}: "
                         "split the file or raise --max-pages")
    only = truth.frame if truth.frame is not None else (0 if truth.has_truth else None)
    added = 0
    for frame in open_frames(image, config.max_megapixels, config.pdf_dpi, only):
        wanted = image.stem if frames == 1 else f"{image.stem}-p{(frame.index or 0) + 1:03d}"
        page_id = writer.unique_id(wanted)
        lines = _page_lines(writer, page_id, truth, frame.scale, frame.image.size, config)
        if truth.has_truth and not lines:
            emit(callback, Message(f"{truth.where}: page {page_id} has no usable line boxes "
                                   "(run `ocrtrain pages detect` to find them)", "warning"))
        data, suffix = encode_page(frame)
        where = f"{image}" + (f" page {frame.index + 1}" if frame.index is not None else "")
        writer.add_page(page_id, data, suffix, frame.image.size, _document_of(image, source, config),
                        lines, where, config.tag, round(frame.scale, 6))
        added += 1
    return added


def import_pages(source: Union[str, Path], out: Union[str, Path], config: PageImportConfig = PageImportConfig(),
                 overwrite: bool = False, callback: Optional[Callback] = None, crop: Optional[CropConfig] = None) -> Path:
    """Import `source` (pages + ground truth, or bare pages) into the new document set `out`."""
    source = Path(source)
    kind, truths, rejects = read_truth(source, config.format)
    crop = crop or CropConfig()
    writer = DocumentSetWriter(out, source={"path": str(source), "format": kind, "config": config.to_dict(),
                                            "crop": crop.to_dict()}, overwrite=overwrite)
    with writer:
        for r in rejects:
            writer.reject(r.source, r.where, r.reason)
        for done, truth in enumerate(truths, 1):
            try:
                _add_truth_page(writer, truth, source, config, callback)
            except InputError as exc:
                writer.reject(truth.where, str(truth.image), str(exc))
            emit(callback, Progress("import", done, len(truths), {"image": str(truth.image)}))
    for r in writer.rejects[:20]:
        emit(callback, Message(r.reason, "warning"))
    return writer.out
