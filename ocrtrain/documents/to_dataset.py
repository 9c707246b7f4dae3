"""Document set -> dataset folder: the verified lines, cut out, split by page, document or tag.

Whole pages (or documents) go to one split, never single lines, so no crop of a receipt sits in
train while another crop of it is in test. The assignment is deterministic: units are ordered by
a hash of (seed, unit id) and cut by the val/test fractions, with at least one val and one test
unit once there are three or more. ``split_by="tag"`` follows the pages' train/val/test tags
(untagged pages train). Only verified lines become samples; the result is an ordinary dataset
folder (LMDB splits + manifest + rejected.csv) written by :class:`ocrtrain.dataset.DatasetWriter`.

>>> assign_splits(["a", "b", "c"], 0.1, 0.1, seed=0)
{'a': 'val', 'c': 'test', 'b': 'train'}
"""
from __future__ import annotations

import hashlib
import io
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

from PIL import Image

from ..config import Config, check
from ..dataset import SplitConfig, DatasetWriter
from ..errors import DatasetError
from ..events import Callback, Message, Progress, emit
from .crop import crop_lines
from .docset import DocumentSet

__all__ = ["ExportConfig", "assign_splits", "export_dataset"]


@dataclass(frozen=True)
class ExportConfig(Config):
    """How a document set's verified lines are split into train/val/test."""

    split_by: str = field(default="page", metadata={"help": "unit kept together in one split",
                                                     "choices": ("page", "document", "tag")})
    val_fraction: float = field(default=0.1, metadata={"help": "share of pages/documents for validation"})
    test_fraction: float = field(default=0.1, metadata={"help": "share of pages/documents for the test split"})
    split_seed: int = field(default=0, metadata={"help": "seed of the page/document split"})

    def validate(self) -> None:
        check(0 <= self.val_fraction < 1 and 0 <= self.test_fraction < 1,
              "val_fraction and test_fraction must be in [0, 1)")
        check(self.val_fraction + self.test_fraction < 1, "val_fraction + test_fraction must leave pages to train on")


def assign_splits(units: Sequence[str], val_fraction: float, test_fraction: float, seed: int = 0) -> dict[str, str]:
    """Unit id -> split, deterministic; >= 1 val and >= 1 test unit (fraction > 0) once there are 3 units."""
    order = sorted(set(units), key=lambda u: hashlib.sha256(f"{seed}:{u}".encode("utf-8")).hexdigest())
    n = len(order)
    n_val = (max(1, round(n * val_fraction)) if val_fraction > 0 else 0) if n >= 3 else 0
    n_test = (max(1, round(n * test_fraction)) if test_fraction > 0 else 0) if n >= 3 else 0
    while n_val + n_test > n - 1 and (n_val or n_test):  # leave at least one unit to train on
        if n_val >= n_test:
            n_val -= 1
        else:
            n_test -= 1
    splits = ["val"] * n_val + ["test"] * n_test + ["train"] * (n - n_val - n_test)
    return dict(zip(order, splits))


def _page_splits(docs: DocumentSet, config: ExportConfig, pages: list, callback) -> dict[str, str]:
    if config.split_by == "tag":
        untagged = [p.id for p in pages if not p.tag]
        if untagged:
            emit(callback, Message(f"{len(untagged)} untagged page(s) go to train (e.g. {untagged[0]}): "
                                   "tag them to place them elsewhere", "warning"))
        return {p.id: p.tag or "train" for p in pages}
    unit_of = {p.id: (p.id if config.split_by == "page" else p.document) for p in pages}
    units = assign_splits(list(unit_of.values()), config.val_fraction, config.test_fraction, config.split_seed)
    if len(units) < 3:
        emit(callback, Message(f"only {len(units)} {config.split_by}(s) with verified lines: all go to train "
                               "(3 or more give val and test splits too)", "warning"))
    return {pid: units[u] for pid, u in unit_of.items()}


def _png(crop) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(crop).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def export_dataset(docs: DocumentSet, out: Union[str, Path], config: ExportConfig = ExportConfig(),
                   overwrite: bool = False, callback: Optional[Callback] = None) -> Path:
    """Write the verified lines of `docs` as the dataset folder `out`; returns its path."""
    import numpy as np

    out_path = Path(out).resolve()
    if out_path == docs.path.resolve() or docs.path.resolve() in out_path.parents:
        raise DatasetError(f"dataset folder {out} is (inside) the document set {docs.path}: choose a folder outside it")
    crop = docs.crop_config()
    pages = [p for p in docs.pages if any(l.status == "verified" for l in docs.lines(p.id))]
    split_of = _page_splits(docs, config, pages, callback)
    split = SplitConfig(val_fraction=config.val_fraction, test_fraction=config.test_fraction,
                        split_seed=config.split_seed)
    source = {"kind": "docset", "path": str(docs.path), "content_hash": docs.manifest.get("content_hash"),
              "config": config.to_dict(), "crop": crop.to_dict()}
    by_split: dict[str, list[str]] = defaultdict(list)
    skipped = 0
    with DatasetWriter(out, split, source=source, overwrite=overwrite) as writer:
        for done, page in enumerate(pages, 1):
            lines = docs.lines(page.id)
            skipped += sum(1 for l in lines if l.status != "verified")
            verified = [l for l in lines if l.status == "verified"]
            crops = crop_lines(np.asarray(docs.image(page.id)), [l.polygon for l in verified], crop)
            for line, cut in zip(verified, crops):
                if isinstance(cut, Exception):
                    writer.reject(line.id, line.text, f"{line.id}: {cut}")
                elif not line.text.strip():
                    writer.reject(line.id, line.text, f"{line.id}: verified but empty: type its text or mark it skipped")
                else:
                    writer.add(_png(cut), line.text, sample=line.id, split=split_of[page.id])
            by_split[split_of[page.id]].append(page.id)
            emit(callback, Progress("to-dataset", done, len(pages), {"page": page.id}))
        writer.source["pages"] = {s: sorted(ids) for s, ids in by_split.items()}
        writer.source["lines_not_verified"] = skipped
    return writer.out
