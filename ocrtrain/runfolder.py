"""The run-folder format: the one module that names a run's files and reads and writes them.

::

    RUN/config.json        {"format", "config": TrainConfig.to_dict(), "data", "origin", "created", ...}
    RUN/.config-start.json the "config" as the run was created (config.json may be edited later;
                           a resume compares the two, see ocrtrain.resumecfg)
    RUN/status.json        a RunStatus: {"state", "created", "started", "ended", "step", "pid", ...}
    RUN/metrics.jsonl      one row per line: TrainRow ("kind": "train") or ValRow ("kind": "val",
                           one per validation set and validation step, named by "val_set")
    RUN/log.txt            human-readable progress; a job's stdout/stderr land here too
    RUN/rejected.csv       labels the run could not train or validate on, with the reason
    RUN/cancel.request     present while someone asks the run to stop
    RUN/checkpoints/       step-%08d.pt, best.pt, last.pt, versions.json (a Versions record)
    RUN/reports/           KIND-<UTC stamp>.json (see new_report_path / latest_report)
    RUN/export/, RUN/notebooks/

Readers are tolerant: unknown keys are kept (``extra``), missing ones take defaults, so older
and newer runs both open.

>>> st = RunStatus.from_dict({"state": "running", "step": 3, "gpu_temp": 61})
>>> st.state, st.step, st.extra, st.to_dict()["gpu_temp"]
('running', 3, {'gpu_temp': 61}, 61)
"""
from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Union

from .errors import DiskFullError, InputError, RunError
from .fsutil import (PathLike, append_whole, clean_stale_temp_files, file_lock, now_iso, overwrite_in_place,
                     parse_time, read_json, utc_stamp, write_atomic, write_json_atomic, write_text_atomic)
from .runrecords import LAST_FILE, RunStatus, TrainRow, ValRow, Version, Versions, row_from_dict

__all__ = [
    "CONFIG_FILE", "STATUS_FILE", "METRICS_FILE", "LOG_FILE", "REJECTED_FILE", "CANCEL_FILE",
    "CHECKPOINTS_DIR", "VERSIONS_FILE", "REPORTS_DIR", "EXPORT_DIR", "NOTEBOOKS_DIR", "BEST_FILE", "LAST_FILE",
    "RunFiles", "files", "is_run_folder", "run_folders_in", "require_run_folder",
    "RunStatus", "TrainRow", "ValRow", "Version", "Versions", "row_from_dict",
    "create_run", "read_config", "read_start_config", "clean_stale_temp", "read_status", "update_status",
    "append_rows", "read_rows", "truncate_rows_after", "RowWriter", "RowFollower",
    "log_append", "log_tail", "read_versions", "write_versions", "truncate_versions_after",
    "step_checkpoint_name", "resolve_checkpoint", "list_checkpoints",
    "cancel_request_path", "request_cancel", "cancel_requested", "clear_cancel",
    "REJECTED_FIELDS", "write_rejected", "read_rejected", "new_report_path", "save_report", "latest_report", "list_reports",
    "read_latest_report",
]

CONFIG_FILE = "config.json"
START_CONFIG_FILE = ".config-start.json"
STATUS_FILE = "status.json"
METRICS_FILE = "metrics.jsonl"
LOG_FILE = "log.txt"
REJECTED_FILE = "rejected.csv"
CANCEL_FILE = "cancel.request"
CHECKPOINTS_DIR = "checkpoints"
VERSIONS_FILE = "versions.json"
REPORTS_DIR = "reports"
EXPORT_DIR = "export"
NOTEBOOKS_DIR = "notebooks"
BEST_FILE = "best.pt"
_STATUS_LOCK = ".status.lock"


@dataclass(frozen=True)
class RunFiles:
    """The paths of one run folder's files (nothing is created)."""

    root: Path

    def __getattr__(self, name: str) -> Path:
        names = {"config": CONFIG_FILE, "status": STATUS_FILE, "metrics": METRICS_FILE, "log": LOG_FILE,
                 "rejected": REJECTED_FILE, "cancel": CANCEL_FILE, "checkpoints": CHECKPOINTS_DIR,
                 "reports": REPORTS_DIR, "export": EXPORT_DIR, "notebooks": NOTEBOOKS_DIR}
        if name in names:
            return self.root / names[name]
        if name in ("versions", "best", "last"):
            return self.root / CHECKPOINTS_DIR / {"versions": VERSIONS_FILE, "best": BEST_FILE, "last": LAST_FILE}[name]
        raise AttributeError(name)


def files(run_dir: PathLike) -> RunFiles:
    """``files(run).metrics``, ``.status``, ``.log``, ``.versions``, ``.checkpoints``, ``.reports``, ..."""
    return RunFiles(Path(run_dir))


def is_run_folder(path: PathLike) -> bool:
    """The one rule: a folder with config.json, status.json or checkpoints/."""
    path = Path(path)
    return path.is_dir() and ((path / CONFIG_FILE).is_file() or (path / STATUS_FILE).is_file()
                              or (path / CHECKPOINTS_DIR).is_dir())


def run_folders_in(root: PathLike) -> list[Path]:
    """The run folders directly under `root`, by name (hidden entries left out); [] when `root` is missing."""
    entries = Path(root).iterdir() if Path(root).is_dir() else ()
    return sorted(p for p in entries if not p.name.startswith(".") and is_run_folder(p))


def require_run_folder(path: PathLike) -> Path:
    """`path` as a Path when it is a run folder; RunError saying what it is and the fix otherwise."""
    path = Path(path)
    if not path.exists():
        raise RunError(f"run folder {path} does not exist: check the path, or list runs with `ocrtrain runs`")
    if not is_run_folder(path):
        raise RunError(f"{path} is not a run folder (no {CONFIG_FILE}, {STATUS_FILE} or {CHECKPOINTS_DIR}/): "
                       "give a folder made by `ocrtrain train` or the Train tab (list them with `ocrtrain runs`)")
    return path


# --------------------------------------------------------------------------- config and status

def create_run(path: PathLike, config_record: dict, **status_fields: Any) -> Path:
    """Write RUN/config.json and a ``created`` status (RunError if `path` already holds a run).

    >>> # create_run("runs/r1", {"format": "ocrtrain-run/1", "config": cfg.to_dict(), "data": "..."})
    """
    path = Path(path)
    st = read_status(path) if (path / STATUS_FILE).is_file() else RunStatus()
    if st.state != "created" or files(path).last.exists() or (path / METRICS_FILE).exists():
        raise RunError(f"{path} already holds a run ({st.state}): choose a new run folder, or "
                       f"`ocrtrain resume {path}` to continue it")
    path.mkdir(parents=True, exist_ok=True)
    for sub in (CHECKPOINTS_DIR, REPORTS_DIR, EXPORT_DIR):
        (path / sub).mkdir(exist_ok=True)
    record = {"created": now_iso(), **config_record}
    write_json_atomic(path / CONFIG_FILE, record)
    write_json_atomic(path / START_CONFIG_FILE, record.get("config") or {})
    max_steps = (record.get("config") or {}).get("max_steps") or None
    update_status(path, state="created", created=record["created"], started=None, ended=None, device=None,
                  error=None, step=0, max_steps=max_steps, pid=None, **status_fields)
    return path


def _read(path: Path, default: Any) -> Any:
    try:
        return read_json(path, default)
    except InputError as exc:
        raise RunError(f"{exc} (in run folder {path.parent})") from None


def read_config(run_dir: PathLike) -> dict:
    """RUN/config.json (RunError when missing: not a run folder, or never started)."""
    run_dir = Path(run_dir)
    data = _read(run_dir / CONFIG_FILE, None)
    if not isinstance(data, dict):
        raise RunError(f"{run_dir} has no {CONFIG_FILE}: it is not a run folder (or was never started)")
    return data


def read_start_config(run_dir: PathLike) -> Optional[dict]:
    """The "config" of RUN/config.json as the run was created, or None (older runs have no copy)."""
    data = _read(Path(run_dir) / START_CONFIG_FILE, None)
    return data if isinstance(data, dict) else None


def clean_stale_temp(run_dir: PathLike) -> list[Path]:
    """Delete temporary files of killed writers in RUN and its checkpoints, reports and export
    folders (never a live write's: see fsutil.clean_stale_temp_files); returns what went."""
    subs = ("", CHECKPOINTS_DIR, REPORTS_DIR, EXPORT_DIR)
    return [p for sub in subs for p in clean_stale_temp_files(Path(run_dir) / sub)]


def read_status(run_dir: PathLike) -> RunStatus:
    """RUN/status.json as stored (a missing file reads as ``created``)."""
    data = _read(Path(run_dir) / STATUS_FILE, {})
    return RunStatus.from_dict(data if isinstance(data, dict) else {})


def update_status(run_dir: PathLike, only_if: Optional[Callable[[RunStatus], bool]] = None,
                  last_resort: bool = False, **fields: Any) -> RunStatus:
    """Merge `fields` into RUN/status.json under a lock (launcher, job and cancel all write it);
    nothing is written when ``only_if(current)`` is False. Returns the status now on disk. A full
    disk raises DiskFullError; with `last_resort` (a job's final record) status.json is then
    rewritten in its own blocks, so the run does not read "running" with no error."""
    run_dir = Path(run_dir)
    with file_lock(run_dir / _STATUS_LOCK):
        current = _read(run_dir / STATUS_FILE, {}) or {}
        if only_if is not None and not only_if(RunStatus.from_dict(current)):
            return RunStatus.from_dict(current)
        current.update(fields)
        current["updated"] = now_iso()
        try:
            write_json_atomic(run_dir / STATUS_FILE, current)
        except DiskFullError:  # padded with spaces (still JSON): a reader never sees old bytes after new
            text = json.dumps(current, indent=2, ensure_ascii=False).encode("utf-8")
            if not last_resort or not overwrite_in_place(run_dir / STATUS_FILE, text, pad=b" "):
                raise
        return RunStatus.from_dict(current)


# --------------------------------------------------------------------------- metrics rows

def _row_line(row) -> str:
    data = row if isinstance(row, dict) else row.to_dict()
    return json.dumps(data, ensure_ascii=False) + "\n"


def append_rows(run_dir: PathLike, rows: Iterable) -> None:
    """Append TrainRow/ValRow records (or plain dicts with a "kind") to RUN/metrics.jsonl."""
    path = Path(run_dir) / METRICS_FILE
    with open(path, "ab", buffering=0) as fh:
        append_whole(fh, "".join(_row_line(r) for r in rows).encode("utf-8"), path)


class RowWriter:
    """An open RUN/metrics.jsonl for a training loop: :meth:`write` appends one whole row (or, on a
    full disk, nothing: DiskFullError)."""

    def __init__(self, run_dir: PathLike):
        self.path = Path(run_dir) / METRICS_FILE
        self._fh = open(self.path, "ab", buffering=0)

    def write(self, row) -> None:
        append_whole(self._fh, _row_line(row).encode("utf-8"), self.path)

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "RowWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _parse_lines(lines: Iterable) -> list:
    rows = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            data = json.loads(line)
        except ValueError:
            continue  # the writer is mid-line
        if isinstance(data, dict):
            rows.append(row_from_dict(data))
    return rows


def read_rows(run_dir: PathLike, kind: Optional[str] = None, val_set: Optional[str] = None) -> list:
    """The rows of RUN/metrics.jsonl (only "train" or "val" ones, only one `val_set` if given)."""
    try:
        with open(Path(run_dir) / METRICS_FILE, encoding="utf-8") as fh:
            rows = _parse_lines(fh)
    except FileNotFoundError:
        return []
    return [r for r in rows if (kind is None or r.kind == kind)
            and (val_set is None or getattr(r, "val_set", None) == val_set)]


def _step_of(line: str) -> Optional[int]:
    try:
        step = json.loads(line).get("step", 0)
    except (ValueError, AttributeError):
        return None
    return step if isinstance(step, int) else 0


def truncate_rows_after(run_dir: PathLike, step: int) -> int:
    """Drop rows after `step` (a resume redoes those steps); returns how many rows were kept."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return 0
    with open(path, encoding="utf-8") as fh:
        keep = [line if line.endswith("\n") else line + "\n" for line in fh
                if line.strip() and (_step_of(line) or 0) <= step and _step_of(line) is not None]
    write_text_atomic(path, "".join(keep))
    return len(keep)


class RowFollower:
    """New rows of a run's metrics.jsonl, read by byte offset (a half-written line waits).

    >>> # f = RowFollower("runs/r1"); rows = f.poll()   # then only what was appended since
    """

    def __init__(self, run_dir: PathLike):
        self.path = Path(run_dir) / METRICS_FILE
        self.offset = 0
        self._inode: Optional[int] = None
        self.restarted = False  # True after a poll that found the file replaced or truncated

    def poll(self) -> list:
        """Rows appended since the last poll; starts over (``restarted``) if the file was rewritten."""
        self.restarted = False
        try:
            st = os.stat(self.path)
        except OSError:
            return []
        if self._inode is not None and (st.st_ino != self._inode or st.st_size < self.offset):
            self.offset, self.restarted = 0, True
        self._inode = st.st_ino
        if st.st_size <= self.offset:
            return []
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            chunk = fh.read(st.st_size - self.offset)
        end = chunk.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        return _parse_lines(chunk[: end + 1].decode("utf-8", "replace").splitlines())


# --------------------------------------------------------------------------- log

def log_append(run_dir: PathLike, text: str, level: str = "info") -> None:
    """Append one timestamped line to RUN/log.txt."""
    line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {level.upper():7s} {text}\n"
    path = Path(run_dir) / LOG_FILE
    with open(path, "ab", buffering=0) as fh:
        append_whole(fh, line.encode("utf-8"), path)


def log_tail(run_dir: PathLike, lines: int = 40, max_bytes: Optional[int] = None) -> str:
    """The last `lines` lines of RUN/log.txt (reads only its end); "" when there is none."""
    max_bytes = max_bytes or 200 * lines + 4096
    try:
        with open(Path(run_dir) / LOG_FILE, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return ""
    out = data.decode("utf-8", "replace").splitlines()
    if size > max_bytes and out:
        out = out[1:]  # the first line is probably cut
    return "\n".join(out[-lines:])


# --------------------------------------------------------------------------- versions / checkpoints

def read_versions(run_dir: PathLike) -> Versions:
    """RUN/checkpoints/versions.json (empty when there is none yet)."""
    data = _read(files(run_dir).versions, {})
    return Versions.from_dict(data if isinstance(data, dict) else {})


def write_versions(run_dir: PathLike, versions: Versions) -> None:
    """Replace RUN/checkpoints/versions.json atomically."""
    write_json_atomic(files(run_dir).versions, versions.to_dict())


def truncate_versions_after(run_dir: PathLike, step: int) -> None:
    """Forget versions after `step` (their steps are redone on resume)."""
    if files(run_dir).versions.is_file():
        v = read_versions(run_dir)
        write_versions(run_dir, dataclasses.replace(v, versions=tuple(x for x in v.versions if x.step <= step)))


def step_checkpoint_name(step: int) -> str:
    """``step-00000040.pt``."""
    return f"step-{int(step):08d}.pt"


def list_checkpoints(run_dir: PathLike) -> list[str]:
    """File names of the run's checkpoints (sorted)."""
    folder = files(run_dir).checkpoints
    return sorted(p.name for p in folder.glob("*.pt")) if folder.is_dir() else []


def _checkpoint_name(version: Union[str, int]) -> str:
    text = str(version)
    if isinstance(version, int) or text.isdigit():
        return step_checkpoint_name(int(text))
    if text in ("best", "last"):
        return f"{text}.pt"
    if text.startswith("step-") and text[5:].isdigit():
        return step_checkpoint_name(int(text[5:]))
    return text


def resolve_checkpoint(run_dir: PathLike, version: Union[str, int] = "best") -> Path:
    """The checkpoint file of "best", "last", "step-N", N or a file name; RunError listing what exists."""
    run_dir = Path(run_dir)
    path = files(run_dir).checkpoints / _checkpoint_name(version)
    if path.is_file():
        return path
    if not run_dir.is_dir():
        raise RunError(f"run folder {run_dir} does not exist: check the path")
    found = list_checkpoints(run_dir)
    hint = (f"available: {', '.join(found[:8])}" + (" ..." if len(found) > 8 else "")) if found \
        else "the run has written no checkpoint yet (it saves one at each validation)"
    raise RunError(f"checkpoint {path} does not exist ({hint}): pick another version, e.g. run:{run_dir}@last")


# --------------------------------------------------------------------------- cancel

def cancel_request_path(run_dir: PathLike) -> Path:
    return Path(run_dir) / CANCEL_FILE


def request_cancel(run_dir: PathLike) -> Path:
    """Write RUN/cancel.request (the training loop and a queued job poll for it)."""
    return write_text_atomic(cancel_request_path(run_dir), now_iso() + "\n")


def cancel_requested(run_dir: PathLike) -> bool:
    """True when someone asked this run to stop."""
    return cancel_request_path(run_dir).exists()


def clear_cancel(run_dir: PathLike) -> None:
    cancel_request_path(run_dir).unlink(missing_ok=True)


# --------------------------------------------------------------------------- rejected labels

REJECTED_FIELDS = ("split", "index", "label", "reason")


def write_rejected(run_dir: PathLike, rows: Iterable[dict]) -> Path:
    """Write RUN/rejected.csv (split, index, label, reason) atomically."""
    import io

    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=list(REJECTED_FIELDS), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return write_atomic(Path(run_dir) / REJECTED_FILE, lambda fh: fh.write(buf.getvalue().encode("utf-8")))


def read_rejected(run_dir: PathLike) -> list[dict]:
    """Rows of RUN/rejected.csv ([] when there is none)."""
    try:
        with open(Path(run_dir) / REJECTED_FILE, newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    except FileNotFoundError:
        return []


# --------------------------------------------------------------------------- reports

_STAMPED = re.compile(r"^(?P<kind>.+)-(?P<stamp>\d{8}T\d{6}\.\d{3}Z)$")


def new_report_path(run_dir: PathLike, kind: str) -> Path:
    """A fresh ``RUN/reports/KIND-<UTC stamp with ms>.json`` (the folder is created)."""
    if not re.fullmatch(r"[A-Za-z0-9_.]+(-[A-Za-z0-9_.]+)*", kind or ""):
        raise RunError(f"report kind {kind!r} must be letters, digits, '_', '.' or inner '-'")
    folder = files(run_dir).reports
    folder.mkdir(parents=True, exist_ok=True)
    when = time.time()
    while True:
        path = folder / f"{kind}-{utc_stamp(when)}.json"
        if not path.exists():
            return path
        when += 0.001


def list_reports(run_dir: PathLike, kind: str) -> list[tuple[float, Path]]:
    """(time, path) of the run's reports of `kind`, oldest first.

    Stamped names (``KIND-<stamp>.json``) are timed by their stamp; legacy names (``KIND.json``,
    ``KIND-anything.json`` such as ``compare-test.json`` or ``parity-NAME.json``) by mtime.
    """
    folder = files(run_dir).reports
    found = []
    for path in folder.glob("*.json") if folder.is_dir() else []:
        match = _STAMPED.match(path.stem)
        if match:
            if match.group("kind") == kind:
                found.append((parse_time(match.group("stamp")) or 0.0, path))
        elif path.stem == kind or path.stem.startswith(kind + "-"):
            found.append((path.stat().st_mtime, path))
    return sorted(found)


def latest_report(run_dir: PathLike, kind: str) -> Optional[Path]:
    """The newest report of `kind` by the time it was written (not by name), or None."""
    found = list_reports(run_dir, kind)
    return found[-1][1] if found else None


def save_report(run_dir: PathLike, kind: str, data: dict) -> Path:
    """Write `data` as a new report of `kind` (see :func:`new_report_path`); returns its path."""
    return write_json_atomic(new_report_path(run_dir, kind), data)


def read_latest_report(run_dir: PathLike, kind: str) -> Optional[tuple[Path, dict]]:
    """(path, content) of the newest readable report of `kind`, or None."""
    for _when, path in reversed(list_reports(run_dir, kind)):
        try:
            data = read_json(path)
        except InputError:
            continue  # damaged: the next newest one
        if isinstance(data, dict):
            return path, data
    return None
