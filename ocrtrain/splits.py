"""Deterministic train/val/test splits of streamed samples, with at least one val and one test line.

A sample's split follows a hash of (seed, sample id), not a random draw in reading order: the same
input gives the same split every time, whatever order its files are listed in. A random draw per
line often gave a small import no val or test line (20 crops at 0.1/0.1 gave 20/0/0): a small
input is split exactly instead (the way :func:`ocrtrain.documents.to_dataset.assign_splits`
splits pages), and a large one keeps two train lines back for a split that would end up empty.

>>> from collections import Counter
>>> draw = SplitDraw(val_fraction=0.1, test_fraction=0.1, seed=0)
>>> placed = [p for s in ("a.png", "b.png", "c.png") for p in draw.place(s, s)]
>>> placed += draw.finish(Counter(split for split, _ in placed))
>>> sorted(split for split, _ in placed)
['test', 'train', 'val']
"""
from __future__ import annotations

import hashlib
import heapq
from typing import Any, Iterable, Optional

__all__ = ["SplitDraw", "unit_fraction", "MIN_FOR_VAL_AND_TEST"]

#: With fewer samples than this, all of them train (one val and one test line would leave one).
MIN_FOR_VAL_AND_TEST = 3


def unit_fraction(seed: int, key: str) -> float:
    """A number in [0, 1) fixed by (seed, key): the sample's place on the split line."""
    digest = hashlib.sha256(f"{seed}:{key}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64


class SplitDraw:
    """Decide the split of samples given one at a time; `payload` is whatever the caller writes.

    :meth:`place` returns the (split, payload) pairs to write now; :meth:`finish` returns the rest.
    The first `BUFFER` samples are held: an input no larger than that is split exactly (sorted by
    hash, ``round(n * fraction)`` lines per split, at least one each from 3 lines, at least one left
    to train). A larger input streams: each sample goes where its hash falls, except that the two
    train lines nearest the cut are held back for a split that ends up empty. Only the splits named
    in `splits` are drawn (e.g. only "test" when the source has its own val folder).
    """

    BUFFER = 32

    def __init__(self, val_fraction: float, test_fraction: float, seed: int = 0,
                 splits: Iterable[str] = ("val", "test")):
        wanted = set(splits)
        self.seed = seed
        # test first on the line, then val, then train (as the dataset writer's random draw did).
        self.fractions = [(name, f) for name, f in (("test", test_fraction), ("val", val_fraction))
                          if name in wanted and f > 0]
        self.edges: list[tuple[str, float]] = []
        edge = 0.0
        for name, fraction in self.fractions:
            edge += fraction
            self.edges.append((name, edge))
        self.drawn = 0
        self.buffer: Optional[list[tuple[float, str, Any]]] = []
        self.held: list[tuple[float, str, Any]] = []  # heap by -u: the train lines nearest the cut

    def split_of(self, key: str) -> str:
        u = unit_fraction(self.seed, key)
        for name, edge in self.edges:
            if u < edge:
                return name
        return "train"

    def place(self, key: str, payload: Any) -> list[tuple[str, Any]]:
        self.drawn += 1
        item = (unit_fraction(self.seed, key), key, payload)
        if self.buffer is not None:
            self.buffer.append(item)
            if len(self.buffer) <= self.BUFFER:
                return []
            items, self.buffer = self.buffer, None
            return [out for it in items for out in self._stream(it)]
        return self._stream(item)

    def _stream(self, item: tuple[float, str, Any]) -> list[tuple[str, Any]]:
        u, key, payload = item
        split = self.split_of(key)
        if split != "train" or not self.edges:
            return [(split, payload)]
        heap_item = (-u, key, payload)
        if len(self.held) < len(self.edges):
            heapq.heappush(self.held, heap_item)
            return []
        _, _, out = heapq.heappushpop(self.held, heap_item)
        return [("train", out)]

    def finish(self, counts: dict[str, int]) -> list[tuple[str, Any]]:
        """The samples not placed yet; `counts` are the lines per split written so far."""
        if self.buffer is not None:
            return self._exact(counts)
        held = [payload for _, _, payload in sorted(self.held, key=lambda h: (-h[0], h[1]))]
        self.held = []
        out: list[tuple[str, Any]] = []
        for name in ("val", "test"):
            # Never the last training line: a dataset needs train more than it needs test.
            room = counts.get("train", 0) + len(held) > 1
            if held and room and counts.get(name, 0) == 0 and any(n == name for n, _ in self.edges):
                out.append((name, held.pop(0)))
        return out + [("train", payload) for payload in held]

    def _exact(self, counts: dict[str, int]) -> list[tuple[str, Any]]:
        items, self.buffer = sorted(self.buffer or [], key=lambda it: (it[0], it[1])), None
        n = len(items)
        sizes = {}
        for name, fraction in self.fractions:
            k = round(n * fraction) if n >= MIN_FOR_VAL_AND_TEST else 0
            sizes[name] = max(1, k) if k == 0 and n >= MIN_FOR_VAL_AND_TEST and not counts.get(name) else k
        while sum(sizes.values()) > n - 1 and any(sizes.values()):  # leave one line to train on
            largest = max(sizes, key=lambda s: (sizes[s], s == "val"))
            sizes[largest] -= 1
        out, i = [], 0
        for name, _ in self.fractions:
            out += [(name, payload) for _, _, payload in items[i:i + sizes[name]]]
            i += sizes[name]
        return out + [("train", payload) for _, _, payload in items[i:]]

    @staticmethod
    def empty_note(counts: dict[str, int], wanted: Optional[Iterable[str]] = None) -> Optional[str]:
        """Why a split is still empty, for the import summary (None when none is)."""
        total = sum(counts.values())
        empty = [s for s in (wanted or ("val", "test")) if counts.get(s, 0) == 0]
        if not empty or total >= MIN_FOR_VAL_AND_TEST:
            return None
        return (f"only {total} line(s): all train, split(s) {', '.join(empty)} left empty "
                f"({MIN_FOR_VAL_AND_TEST} or more lines give at least one val and one test line)")
