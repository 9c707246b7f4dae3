"""Following a run folder cheaply: metrics.jsonl read incrementally by byte offset, log tails.

A 20,000-step run writes tens of thousands of lines; re-reading the whole file every second
would grow without bound, so :class:`MetricsFollower` keeps its offset and only parses what is
new (a half-written last line waits for the next poll). :func:`downsample` bounds what is sent
to the browser, since a FigureWidget re-sends whole trace arrays on every update.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Optional, Sequence, Union

__all__ = ["MetricsFollower", "downsample", "tail_text", "read_json", "run_summary"]


def read_json(path: Union[str, Path]) -> dict:
    """A JSON file's object, or {} while it is missing or being replaced."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else {"items": data}
    except (OSError, ValueError):
        return {}


class MetricsFollower:
    """Series of a run's metrics.jsonl, extended by each :meth:`poll` with the new lines only."""

    def __init__(self, path: Union[str, Path]):
        self.path = Path(path)
        self.offset = 0
        self._inode: Optional[int] = None
        self.train: dict[str, list] = {}
        self.val: dict[str, list] = {}
        self.last_train: dict = {}
        self.last_val: dict = {}
        self.best_cer: Optional[float] = None
        self.count = 0

    def reset(self) -> None:
        self.__init__(self.path)

    def poll(self) -> int:
        """Read lines appended since the last call; returns how many records were added."""
        try:
            st = os.stat(self.path)
        except OSError:
            return 0
        if self._inode is not None and (st.st_ino != self._inode or st.st_size < self.offset):
            self.reset()  # file replaced or truncated (e.g. resume rewrote it): start over
        self._inode = st.st_ino
        if st.st_size <= self.offset:
            return 0
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            chunk = fh.read(st.st_size - self.offset)
        end = chunk.rfind(b"\n")
        if end < 0:
            return 0  # a line is being written; take it next time
        self.offset += end + 1
        added = 0
        for line in chunk[: end + 1].splitlines():
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict):
                self._add(rec)
                added += 1
        return added

    def _add(self, rec: dict) -> None:
        self.count += 1
        kind = rec.get("kind")
        if kind not in ("train", "val"):
            kind = "val" if ("cer" in rec or "val_loss" in rec) else "train"
        target = self.val if kind == "val" else self.train
        for key, value in rec.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                target.setdefault(key, []).append((rec.get("step"), value))
        if kind == "val":
            self.last_val = rec
            cer = rec.get("cer")
            if isinstance(cer, (int, float)) and (self.best_cer is None or cer < self.best_cer):
                self.best_cer = float(cer)
        else:
            self.last_train = rec

    def series(self, kind: str, key: str, max_points: int = 500) -> tuple[list, list]:
        """(steps, values) of `key` in `kind` records, downsampled to at most `max_points`."""
        pairs = (self.val if kind == "val" else self.train).get(key, [])
        pairs = [p for p in pairs if p[0] is not None]
        pairs = downsample(pairs, max_points)
        return [p[0] for p in pairs], [p[1] for p in pairs]


def downsample(points: Sequence, max_points: int = 500) -> list:
    """At most `max_points` evenly spaced items of `points`, always keeping the first and last."""
    n = len(points)
    if n <= max_points or max_points < 2:
        return list(points)
    step = (n - 1) / (max_points - 1)
    return [points[min(n - 1, round(i * step))] for i in range(max_points)]


def tail_text(path: Union[str, Path], max_bytes: int = 6000, max_lines: int = 40) -> str:
    """The last lines of a text file (reads only the end of it)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return ""
    lines = data.decode("utf-8", "replace").splitlines()
    if size > max_bytes and lines:
        lines = lines[1:]  # first line is probably cut
    return "\n".join(lines[-max_lines:])


def _fmt_duration(seconds: Optional[float]) -> str:
    if seconds is None or seconds < 0:
        return ""
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _parse_time(value) -> Optional[float]:
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return float(value)
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        for fmt in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S"):
            try:
                return datetime.strptime(str(value), fmt).timestamp()
            except ValueError:
                pass
    return None


def run_summary(run_dir: Union[str, Path], follower: Optional[MetricsFollower] = None,
                status: Optional[dict] = None) -> dict:
    """One row of the runs table from the run's status (+ the follower's best CER).

    `status` is ``ocrtrain.runs.Run.status()`` (which notices a dead job); status.json otherwise.
    """
    run_dir = Path(run_dir)
    st = status if status is not None else read_json(run_dir / "status.json")
    step, max_steps = st.get("step") or 0, st.get("max_steps") or 0
    if follower is not None and follower.last_train.get("step"):
        step = max(step, int(follower.last_train["step"]))
    if max_steps:
        step = min(step, max_steps)
    started, ended = _parse_time(st.get("started")), _parse_time(st.get("ended"))
    state = st.get("state", "unknown")
    duration = None
    if started is not None:
        duration = (ended if ended is not None else (time.time() if state == "running" else started)) - started
    best = follower.best_cer if follower is not None else None
    if best is None:
        versions = read_json(run_dir / "checkpoints" / "versions.json")
        for v in versions.get("versions", []):
            cer = (v.get("metrics") or {}).get("cer") if isinstance(v, dict) else None
            if isinstance(cer, (int, float)) and (best is None or cer < best):
                best = cer
    return {
        "name": run_dir.name,
        "path": str(run_dir),
        "state": state,
        "step": step,
        "max_steps": max_steps,
        "progress": (step / max_steps) if max_steps else 0.0,
        "best_cer": best,
        "device": st.get("device") or "",
        "started": st.get("started") or st.get("created") or "",
        "duration": _fmt_duration(duration),
        "error": st.get("error") or "",
        "pid": st.get("pid"),
    }
