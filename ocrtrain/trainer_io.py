"""What the training loop writes into its run folder, through one object (rank 0 writes, others don't).

The file names and record layout belong to :mod:`ocrtrain.runfolder`; this is the trainer's handle
on it: log lines, status fields, metrics rows, checkpoint versions (step files, best, last, pruning)
and the cancel request. Errors while saving name the disk-full case and the fix.
"""
from __future__ import annotations

import dataclasses
import errno
import logging
from pathlib import Path
from typing import Callable, Optional

from . import runfolder
from .diskspace import is_disk_full
from .errors import DiskFullError, RunError

__all__ = ["RunWriter"]

log = logging.getLogger(__name__)


class RunWriter:
    """The trainer's writes to one run folder; every method is a no-op on torchrun ranks other than 0."""

    def __init__(self, run_dir: Path, main: bool):
        self.run_dir = Path(run_dir)
        self.main = main
        self.files = runfolder.files(self.run_dir)
        self.ckpt_dir = self.files.checkpoints
        self._rows = None
        self._last_resort = False
        if main:
            removed = runfolder.clean_stale_temp(self.run_dir)
            if removed:
                log.info("removed %d temporary file(s) of killed writers: %s", len(removed),
                         ", ".join(p.name for p in removed))

    # ---- log, status, rows
    def log(self, text: str, level: str = "info") -> None:
        """A line in RUN/log.txt; a failed log write is reported, not raised (the log is a courtesy)."""
        if self.main:
            try:
                runfolder.log_append(self.run_dir, text, level)
            except OSError as exc:
                log.error("could not write to %s: %s (line: %s)", self.files.log, exc, text)
        log.debug(text)

    def status(self, **fields) -> None:
        if self.main:
            runfolder.update_status(self.run_dir, last_resort=self._last_resort, **fields)

    def open_rows(self) -> None:
        if self.main:
            self._rows = runfolder.RowWriter(self.run_dir)

    def close_rows(self) -> None:
        if self._rows is not None:
            self._rows.close()
            self._rows = None

    def append_row(self, row: dict) -> None:
        if self._rows is not None:
            self._rows.write(row)

    def truncate_after(self, step: int) -> None:
        """Drop rows and versions after `step` (a process died after the last.pt we resume from)."""
        if self.main:
            runfolder.truncate_rows_after(self.run_dir, step)
            runfolder.truncate_versions_after(self.run_dir, step)

    def rejected(self, rows: list[dict]) -> None:
        if self.main:
            runfolder.write_rejected(self.run_dir, rows)

    def recorded_fingerprint(self) -> dict:
        """{dataset path: content hash} of the training sources as recorded when the run was created."""
        try:
            record = runfolder.read_config(self.run_dir)
        except RunError:
            return {}
        return {d.get("path"): d.get("content_hash") for d in record.get("datasets") or [] if isinstance(d, dict)}

    def best_metrics(self):
        """(step, metrics) of the best version recorded so far, or None."""
        best = runfolder.read_versions(self.run_dir).best_version()
        return (best.step, dict(best.metrics)) if best is not None else None

    def cancel_requested(self) -> bool:
        return runfolder.cancel_requested(self.run_dir)

    # ---- checkpoints
    def checkpoint_path(self, which: str) -> Path:
        """RUN/checkpoints/last.pt or best.pt."""
        return getattr(self.files, which)

    def guarded(self, action: str, fn: Callable, *args) -> None:
        """Run a save; an OSError becomes a RunError saying what failed, why and how to go on."""
        try:
            fn(*args)
        except DiskFullError as exc:
            # One fix, not two: the write's own "then run again" becomes the resume command.
            text = str(exc).replace("then run again", f"then `ocrtrain resume {self.run_dir}`")
            raise RunError(f"could not {action}, the disk is full: {text}; earlier checkpoints are intact") from exc
        except OSError as exc:
            reason = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
            raise RunError(
                f"could not {action} in {self.ckpt_dir} ({reason}; {type(exc).__name__}: {exc}): earlier "
                f"checkpoints are intact; free space or fix permissions, then `ocrtrain resume {self.run_dir}`"
            ) from exc

    def save_version(self, task, step: int, metrics: dict, is_best: bool, keep: int) -> str:
        """Save the step checkpoint, update best.pt and versions, prune old ones; returns the file name."""
        from .fsutil import copy_atomic

        name = runfolder.step_checkpoint_name(step)
        if not self.main:
            return name
        self.guarded(f"save {name}", task.save_checkpoint, self.ckpt_dir / name, step, metrics, None)
        versions = runfolder.read_versions(self.run_dir)
        kept = [v for v in versions.versions if v.step != step]  # a resumed run may redo a step
        kept.append(runfolder.Version(step=step, file=name, metrics=metrics))
        best = versions.best
        if is_best:
            self.guarded("update best.pt", copy_atomic, self.ckpt_dir / name, self.files.best)
            best = name
        if keep:
            steps = [v for v in kept if v.file != best]
            for old in steps[:-keep] if len(steps) > keep else []:
                (self.ckpt_dir / old.file).unlink(missing_ok=True)
                kept.remove(old)
        self.guarded("write the versions file", runfolder.write_versions, self.run_dir,
                     dataclasses.replace(versions, versions=tuple(kept), best=best))
        return name

    def quietly(self, fn: Callable[[], None]) -> None:
        """Call `fn` (the final status record); an OSError is logged, not raised. On a full disk it is
        retried with status.json rewritten in place, so the run does not read "running" forever."""
        try:
            fn()
        except OSError as exc:
            if is_disk_full(exc):
                self._last_resort = True
                try:
                    fn()
                    return
                except OSError as again:
                    exc = again
                finally:
                    self._last_resort = False
            log.error("could not update the run status: %s", exc)
