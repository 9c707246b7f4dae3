"""What an import kept and what it rejected, read back from the dataset folder it wrote.

The summary is honest about a mostly failed import: `mostly_rejected` is true when more rows were
rejected than kept, and the text leads with the rejections and their commonest reasons. The
encoding each labels file was read in (see :func:`ocrtrain.labels.detect_encoding`) is named.

>>> # s = summarize_import("datasets/receipts"); s.mostly_rejected, s.text()
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

from .dataset import Dataset, read_manifest
from .splits import SplitDraw

__all__ = ["ImportSummary", "summarize_import"]


@dataclass(frozen=True)
class ImportSummary:
    """Counts, encodings and the commonest rejection reasons of one imported dataset folder."""

    name: str
    kept: int
    rejected: int
    counts: dict = field(default_factory=dict)
    encodings: dict = field(default_factory=dict)
    reasons: tuple = ()   # ((first reason of a kind, count), ...), commonest first

    @property
    def mostly_rejected(self) -> bool:
        return self.rejected > self.kept

    def text(self) -> str:
        c = self.counts
        split = f"{c.get('train', 0)} train / {c.get('val', 0)} val / {c.get('test', 0)} test"
        parts = [f"imported {self.name}: kept {self.kept} of {self.kept + self.rejected} rows ({split})"]
        if self.rejected:
            share = round(100 * self.rejected / (self.kept + self.rejected))
            parts.append(f"{self.rejected} rejected ({share}%), see rejected.csv; commonest: "
                         + "; ".join(f"{n}× {reason}" for reason, n in self.reasons))
        if self.encodings:
            parts.append("read as " + ", ".join(f"{name}: {enc}" for name, enc in sorted(self.encodings.items())))
        note = SplitDraw.empty_note(c)
        if note:
            parts.append(note)
        return "\n".join(parts)


def _kind(reason: str) -> str:
    # Reasons differ by file names, line numbers and quoted text: group by the rest of the wording.
    from .dataset import _REASON_DETAILS

    return _REASON_DETAILS.sub("_", reason)[:160]


def summarize_import(folder: Union[str, Path], top: int = 3) -> ImportSummary:
    """The :class:`ImportSummary` of a dataset folder written by :func:`ocrtrain.imports.import_dataset`."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    rows = Dataset(folder).rejected()
    kinds: Counter = Counter()
    first: dict[str, str] = {}
    for r in rows:
        key = _kind(r.reason)
        kinds[key] += 1
        first.setdefault(key, r.reason)
    return ImportSummary(
        name=folder.name, kept=int(manifest.get("total") or 0), rejected=int(manifest.get("rejected") or len(rows)),
        counts=dict(manifest.get("counts") or {}), encodings=dict((manifest.get("source") or {}).get("encodings") or {}),
        reasons=tuple((first[k], n) for k, n in kinds.most_common(top)))
