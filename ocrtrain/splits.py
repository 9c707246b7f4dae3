"""Deterministic train/val/test splits of streamed samples, with at least one val and one test line.

A sample's split follows a hash of (seed, sample id), not a random draw in reading order: the same
input gives the same split every time, whatever order its files are listed in. A small import
would often draw no val or no test line at all (20 crops at 0.1/0.1 gave 20/0/0), so the train
lines nearest the val/test cut are held back (at most two, in memory) and, at the end, moved to a
split that is still empty, once there are three or more samples.

>>> draw = SplitDraw(val_fraction=0.1, test_fraction=0.1, seed=0)
>>> placed = [p for s in ("a.png", "b.png", "c.png") for p in draw.place(s, s)]
>>> placed += draw.finish({"train": 0, "val": 0, "test": 0})
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

    :meth:`place` returns the (split, payload) pairs to write now (a held-back line may come out in
    place of the new one); :meth:`finish` returns the held-back ones, moved into empty splits
    where needed. Only the splits named in `splits` are drawn (e.g. only "test" when the source
    has its own val folder).
    """

    def __init__(self, val_fraction: float, test_fraction: float, seed: int = 0,
                 splits: Iterable[str] = ("val", "test")):
        wanted = set(splits)
        self.seed = seed
        # test first on the line, then val, then train (as the dataset writer's random draw did).
        self.edges: list[tuple[str, float]] = []
        edge = 0.0
        for name, fraction in (("test", test_fraction), ("val", val_fraction)):
            if name in wanted and fraction > 0:
                edge += fraction
                self.edges.append((name, edge))
        self.cut = edge
        self.drawn = 0
        self.held: list[tuple[float, str, Any]] = []  # max-heap by -u: the train lines nearest the cut

    def split_of(self, key: str) -> str:
        u = unit_fraction(self.seed, key)
        for name, edge in self.edges:
            if u < edge:
                return name
        return "train"

    def place(self, key: str, payload: Any) -> list[tuple[str, Any]]:
        self.drawn += 1
        split = self.split_of(key)
        if split != "train" or not self.edges:
            return [(split, payload)]
        item = (-unit_fraction(self.seed, key), key, payload)
        if len(self.held) < len(self.edges):
            heapq.heappush(self.held, item)
            return []
        _, _, out = heapq.heappushpop(self.held, item)
        return [("train", out)]

    def finish(self, counts: dict[str, int]) -> list[tuple[str, Any]]:
        """The held-back lines: into each drawn split that `counts` (written so far) shows empty."""
        held = [payload for _, _, payload in sorted(self.held, key=lambda h: (-h[0], h[1]))]
        self.held = []
        out: list[tuple[str, Any]] = []
        if self.drawn >= MIN_FOR_VAL_AND_TEST:
            for name in ("val", "test"):
                if held and counts.get(name, 0) == 0 and any(n == name for n, _ in self.edges):
                    out.append((name, held.pop(0)))
        return out + [("train", payload) for payload in held]

    @staticmethod
    def empty_note(counts: dict[str, int], wanted: Optional[Iterable[str]] = None) -> Optional[str]:
        """Why a split is still empty, for the import summary (None when none is)."""
        total = sum(counts.values())
        empty = [s for s in (wanted or ("val", "test")) if counts.get(s, 0) == 0]
        if not empty or total >= MIN_FOR_VAL_AND_TEST:
            return None
        return (f"only {total} line(s): all train, split(s) {', '.join(empty)} left empty "
                f"({MIN_FOR_VAL_AND_TEST} or more lines give at least one val and one test line)")
