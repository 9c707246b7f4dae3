"""Following a run folder cheaply: the metrics series of :class:`ocrtrain.runfolder.RowFollower`.

A 20,000-step run writes tens of thousands of rows; re-reading the whole file every second
would grow without bound, so the follower keeps its byte offset and only parses what is new
(a half-written last line waits for the next poll). :func:`downsample` bounds what is sent to
the browser, since a FigureWidget re-sends whole trace arrays on every update. Validation rows
are kept per validation set (``val_set``), so each set gets its own curves.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

from ocrtrain.runfolder import METRICS_FILE, RowFollower, ValRow

__all__ = ["MetricsFollower", "downsample"]


class MetricsFollower:
    """Series of a run's metrics rows, extended by each :meth:`poll` with the new rows only.

    `path` is the run folder (or its metrics file). ``val`` holds the first validation set's
    series; ``val_by_set`` every set's, in the order they first appeared.
    """

    def __init__(self, path: Union[str, Path]):
        path = Path(path)
        self.run_dir = path.parent if path.name == METRICS_FILE else path
        self._rows = RowFollower(self.run_dir)
        self._clear()

    def _clear(self) -> None:
        self.train: dict[str, list] = {}
        self.val_by_set: dict[str, dict[str, list]] = {}
        self.last_train: dict = {}
        self.last_val: dict = {}
        self.best_cer: Optional[float] = None
        self.count = 0

    def reset(self) -> None:
        """Forget everything and read the file again from the start."""
        self._rows = RowFollower(self.run_dir)
        self._clear()

    @property
    def val(self) -> dict[str, list]:
        return next(iter(self.val_by_set.values()), {})

    @property
    def val_sets(self) -> list[str]:
        return list(self.val_by_set)

    def poll(self) -> int:
        """Read rows appended since the last call; returns how many were added."""
        rows = self._rows.poll()
        if self._rows.restarted:  # the file was rewritten (a resume truncates it): start over
            self._clear()
        for row in rows:
            self._add(row)
        return len(rows)

    def _add(self, row) -> None:
        self.count += 1
        rec = row.to_dict()
        if isinstance(row, ValRow):
            target = self.val_by_set.setdefault(row.val_set, {})
        else:
            target = self.train
        for key, value in rec.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                target.setdefault(key, []).append((rec.get("step"), value))
        if isinstance(row, ValRow):
            if row.val_set == self.val_sets[0]:
                self.last_val = rec
                cer = rec.get("cer")
                if isinstance(cer, (int, float)) and (self.best_cer is None or cer < self.best_cer):
                    self.best_cer = float(cer)
        else:
            self.last_train = rec

    def series(self, kind: str, key: str, max_points: int = 500,
               val_set: Optional[str] = None) -> tuple[list, list]:
        """(steps, values) of `key` in `kind` rows (of `val_set`, default the first), downsampled."""
        if kind == "val":
            source = self.val_by_set.get(val_set, {}) if val_set else self.val
        else:
            source = self.train
        pairs = [p for p in source.get(key, []) if p[0] is not None]
        pairs = downsample(pairs, max_points)
        return [p[0] for p in pairs], [p[1] for p in pairs]


def downsample(points: Sequence, max_points: int = 500) -> list:
    """At most `max_points` evenly spaced items of `points`, always keeping the first and last."""
    n = len(points)
    if n <= max_points or max_points < 2:
        return list(points)
    step = (n - 1) / (max_points - 1)
    return [points[min(n - 1, round(i * step))] for i in range(max_points)]
