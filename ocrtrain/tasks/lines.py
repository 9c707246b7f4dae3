"""Text-line data for training: usable samples of LMDB splits, mixtures of them, and ready batches.

A :class:`LineSet` is one split's usable lines (labels the model can learn, with their widths at
model height). Several sets train together through one index space: position p belongs to set i
when ``offsets[i] <= p < offsets[i + 1]``, so an epoch plan stays a plain list of position lists.
"""
from __future__ import annotations

import io
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from ..augment import AugmentConfig, augment, sample_rng
from ..datamix import batch_shares
from ..errors import DatasetError
from ..trainstate import plan_epoch

__all__ = ["LineSet", "scan_split", "filter_lines", "LineBatches", "KnownRows", "plan_mixture", "padding_groups"]


@dataclass
class LineSet:
    """Usable samples of one split: LMDB indices, labels, encoded targets and widths at model height."""

    path: Path
    indices: list[int]
    labels: list[str]
    targets: list[list[int]]
    widths: list[int]

    def head(self, n: int) -> "LineSet":
        return LineSet(self.path, self.indices[:n], self.labels[:n], self.targets[:n], self.widths[:n])


def scan_split(path: Path) -> tuple[list[str], list[tuple[int, int]]]:
    """Labels and (height, width) of every sample of the LMDB at `path`, reading image headers only."""
    from PIL import Image, UnidentifiedImageError

    from ..lmdb_io import LmdbReader

    reader = LmdbReader(path)
    labels, shapes = [], []
    for i in range(len(reader)):
        data, label = reader[i]
        try:
            with Image.open(io.BytesIO(data)) as img:
                w, h = img.size
        except (UnidentifiedImageError, OSError) as exc:
            raise DatasetError(f"{path} sample {i} (label {label!r}) is not a readable image ({exc}): "
                               "re-create this split") from None
        labels.append(label)
        shapes.append((h, w))
    return labels, shapes


def filter_lines(split: str, path: Path, labels: list[str], shapes: list[tuple[int, int]], codec,
                 height: int, mode: str, rejected: list[dict]) -> LineSet:
    """The lines a model can learn; the others go to `rejected` with the reason and the fix.

    `codec` supplies ``missing(label)``, ``encode(label)`` and ``check_label(label, (h, w))``.
    """
    out = LineSet(Path(path), [], [], [], [])
    for i, (label, (h, w)) in enumerate(zip(labels, shapes)):
        missing = codec.missing(label)
        if missing:
            rejected.append({"split": split, "index": i, "label": label,
                             "reason": f"characters {''.join(sorted(missing))!r} are not in the model's charset "
                                       f"(charset_mode {mode}): use charset_mode extend, or fix the label"})
            continue
        problem = codec.check_label(label, (h, w))
        if problem:
            rejected.append({"split": split, "index": i, "label": label, "reason": problem})
            continue
        out.indices.append(i)
        out.labels.append(label)
        out.targets.append(codec.encode(label))
        out.widths.append(max(1, int(height * w / h)) if w >= h else height)
    return out


def plan_mixture(sets: Sequence[LineSet], weights: Sequence[float], batch_size: int, seed: int,
                 epoch: int) -> list[list[int]]:
    """An epoch of batches over several sets: set i gives ``batch_shares(weights)[i]`` lines of every
    batch; an epoch is one pass over the first set, the others cycle through their own shuffles.

    One set: exactly :func:`ocrtrain.trainstate.plan_epoch` (width-bucketed, shuffled)."""
    if len(sets) == 1:
        return plan_epoch(sets[0].widths, batch_size, seed, epoch)
    shares = batch_shares(weights, batch_size)
    offsets = np.cumsum([0] + [len(s.indices) for s in sets]).tolist()
    steps = -(-len(sets[0].indices) // shares[0])
    batches: list[list[int]] = [[] for _ in range(steps)]
    for i, (s, k) in enumerate(zip(sets, shares)):
        if k == 0:
            continue
        need, start = steps * k, epoch * steps * k  # this set's stream position at the epoch start
        stream: list[int] = []
        n = len(s.indices)
        cycle, skip = divmod(start, n)
        while len(stream) < need + skip:
            chunk = plan_epoch(s.widths, k, seed + 7919 * i, cycle)
            stream.extend(p for b in chunk for p in b)
            cycle += 1
        stream = stream[skip:skip + need]
        for b in range(steps):
            batches[b].extend(offsets[i] + p for p in stream[b * k:(b + 1) * k])
    # The first set's last batch may be short; the others then fill their full share.
    return [b for b in batches if b]


@dataclass
class KnownRows:
    """Rows a per-line batch need not decode: the feature cache holds them (`cached(position,
    variant)`), and `aspects` remembers each decoded line's width / height by (position, variant),
    so padding groups are decided exactly as with the pixels. Shared with the parent process only
    (DataLoader workers 0): a worker would see a copy."""

    cached: Callable[[int, int], bool]
    aspects: dict = field(default_factory=dict)


class LineBatches:
    """Map-style source of ready batches (a DataLoader with batch_size=None): item i = batch i of a plan."""

    def __init__(self, sets: Sequence[LineSet], batches: Sequence[list[int]],
                 augment_config: Optional[AugmentConfig], seed: int, epoch: int, to_tensor,
                 group_sources: bool = True, per_line: bool = False, variants: int = 0,
                 fixed_sources: frozenset = frozenset(), known: Optional[KnownRows] = None):
        self.sets = list(sets)
        # per_line: each line as its own [1, C, H, W] tensor at its own width (for a feature cache).
        self.per_line = per_line
        # variants N > 0: a line's augmentation repeats every N epochs (N fixed variants per line);
        # the lines of `fixed_sources` (set indices) then keep one augmentation (variant 0) all run.
        self.variants = variants
        self.fixed_sources = frozenset(fixed_sources) if variants else frozenset()
        # per_line only: rows already in the feature cache come as None (no decode, no augmentation).
        self.known = known if per_line else None
        # Under torchrun every rank must run the same forward passes per step (DDP): no groups there.
        self.group_sources = group_sources
        self.offsets = np.cumsum([0] + [len(s.indices) for s in self.sets]).tolist()
        self.batches = list(batches)
        self.augment_config = augment_config
        self.seed = seed
        self.epoch = epoch
        self.to_tensor = to_tensor  # grays (list of HxW uint8, original size) -> model input [B, C, H, W]
        self._readers: Optional[list] = None

    def __len__(self) -> int:
        return len(self.batches)

    def _reader(self, i: int):
        from ..lmdb_io import LmdbReader

        if self._readers is None:  # opened lazily: in each DataLoader worker, not in the parent
            self._readers = [LmdbReader(s.path) for s in self.sets]
        return self._readers[i]

    def locate(self, pos: int) -> tuple[int, int]:
        """(set index, position within the set) of mixture position `pos`."""
        i = bisect_right(self.offsets, pos) - 1
        return i, pos - self.offsets[i]

    def _gray(self, i: int, local: int):
        from ..images import decode_image
        from ..preprocess import to_gray

        s = self.sets[i]
        index = s.indices[local]
        return to_gray(decode_image(self._reader(i).image_bytes(index), f"{s.path} sample {index}"))

    def _augmented(self, i: int, local: int, epoch: int):
        gray = self._gray(i, local)
        if self.augment_config is None:
            return gray
        # Seeded by (seed, epoch, LMDB index): the first set keeps the single-dataset streams.
        rng = sample_rng(self.seed + 104729 * i, self.variant(epoch, i), self.sets[i].indices[local])
        return np.asarray(augment(gray, self.augment_config, rng))

    def variant(self, epoch: int, source: Optional[int] = None) -> int:
        """Which augmentation of its lines `epoch` draws (the epoch itself unless variants repeat);
        with `source`, of that set's lines (0 for a set of `fixed_sources`)."""
        if source is not None and source in self.fixed_sources:
            return 0
        return epoch % self.variants if self.variants else epoch

    def row_variant(self, pos: int, variant: int) -> int:
        """The variant position `pos` is kept under when its batch draws `variant` (a batch's epoch variant)."""
        return 0 if self.fixed_sources and self.locate(pos)[0] in self.fixed_sources else variant

    def line(self, pos: int, epoch: int = 0):
        """The line at mixture position `pos` alone, at its own width, as in `epoch`: [1, C, H, W]."""
        return self.to_tensor([self._augmented(*self.locate(pos), epoch)])

    def _row(self, pos: int, i: int, local: int, variant: int):
        """(gray or None when the cache holds the row, its aspect width / height)."""
        key = (pos, self.row_variant(pos, variant))
        if self.known is not None and key in self.known.aspects and self.known.cached(*key):
            return None, self.known.aspects[key]
        gray = self._augmented(i, local, self.epoch)
        aspect = gray.shape[1] / max(1, gray.shape[0])
        if self.known is not None:
            self.known.aspects[key] = aspect
        return gray, aspect

    def __getitem__(self, b: int) -> dict:
        grays, aspects, targets, labels, sources, positions = [], [], [], [], [], self.batches[b]
        variant = self.variant(self.epoch) if self.augment_config is not None else 0
        for pos in positions:
            i, local = self.locate(pos)
            sources.append(i)
            s = self.sets[i]
            gray, aspect = self._row(pos, i, local, variant)
            grays.append(gray)
            aspects.append(aspect)
            targets.append(s.targets[local])
            labels.append(s.labels[local])
        groups = padding_groups(sources, aspects) if self.group_sources else None
        if groups is not None:  # rows in group order (see padding_groups)
            order = [r for rows in groups for r in rows]
            grays, targets, labels, sources = ([seq[r] for r in order] for seq in (grays, targets, labels, sources))
            positions = [positions[r] for r in order]
        batch = {"targets": targets, "labels": labels, "positions": list(positions), "sources": sources}
        if self.per_line:
            batch["lines"] = [None if g is None else self.to_tensor([g]) for g in grays]
            batch["groups"] = [len(rows) for rows in groups] if groups is not None else None
            batch["variant"] = variant
        elif groups is None:
            batch["images"] = self.to_tensor(grays)
        else:  # one tensor per source, each padded to its own widest line
            batch["images"], start = [], 0
            for rows in groups:
                batch["images"].append(self.to_tensor(grays[start:start + len(rows)]))
                start += len(rows)
        return batch


#: Split a mixed batch by source when that pads at most this share of the single tensor's pixels.
GROUP_BELOW = 0.85


def padding_groups(sources: Sequence[int], aspects: Sequence[float]) -> Optional[list[list[int]]]:
    """Rows of a batch grouped by source, or None to keep one tensor.

    Each set of a mixture is planned in width buckets of its own, but the sets' buckets land in one
    batch at random: replay's wide general lines next to short receipt lines pad the whole batch to
    the widest (measured: 663 px per line vs 466 padded per source). Padding each source on its own
    and running one forward pass per source costs what the padded pixels cost, so groups are used
    when they save more than ``1 - GROUP_BELOW`` of them. `aspects` are width / height per row."""
    kinds = sorted(set(sources))
    if len(kinds) < 2:
        return None
    rows = [[r for r, s in enumerate(sources) if s == k] for k in kinds]
    single = len(sources) * max(aspects)
    grouped = sum(len(g) * max(aspects[r] for r in g) for g in rows)
    return rows if grouped <= GROUP_BELOW * single else None
