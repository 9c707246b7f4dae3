"""Small file and time helpers shared by the whole package: atomic writes, one JSON reader,
one file lock, timestamps and one duration format.

Atomic writes go through a temporary file in the same folder and ``os.replace``, so a reader
(the dashboard, another process) sees the old file or the new one, never half of one.

>>> from ocrtrain.fsutil import format_duration
>>> format_duration(3725), format_duration(65), format_duration(None)
('1h02m05s', '1m05s', '?')
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, Optional, Union

from .diskspace import disk_full_message, is_disk_full
from .errors import DiskFullError, InputError

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]
try:  # Windows
    import msvcrt  # type: ignore[import-not-found]
except ImportError:
    msvcrt = None  # type: ignore[assignment]

__all__ = [
    "PathLike",
    "write_atomic",
    "write_bytes_atomic",
    "write_text_atomic",
    "write_json_atomic",
    "copy_atomic",
    "append_whole",
    "overwrite_in_place",
    "disk_full_error",
    "clean_stale_temp_files",
    "STALE_TMP_SECONDS",
    "read_json",
    "file_lock",
    "try_lock",
    "unlock",
    "now_iso",
    "utc_stamp",
    "parse_time",
    "format_duration",
]

PathLike = Union[str, Path]
_MISSING = object()


def _tmp_for(path: Path) -> Path:
    # pid + thread: two writers of the same file never share a temporary file.
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def disk_full_error(path: PathLike, exc: BaseException, existed: Optional[bool] = None,
                    doing: str = "writing") -> DiskFullError:
    """The DiskFullError for a failed write of `path`: names the file, the free space and the fix."""
    path = Path(path)
    existed = path.exists() if existed is None else existed
    kept = f"the previous {path.name} is unchanged" if existed else "nothing was written"
    err_no = getattr(exc, "errno", None) or errno.ENOSPC
    return DiskFullError(disk_full_message(path, exc, doing, kept).replace(
        "write to another disk", "choose a folder on another disk"), err_no, str(path))


def _atomic(path: Path, produce: Callable[[Path], Any]) -> Path:
    """``produce(tmp)`` then rename tmp to `path`; no temporary file survives, a full disk is a DiskFullError."""
    existed = path.exists()
    tmp = _tmp_for(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        produce(tmp)
        os.replace(tmp, path)
    except DiskFullError:
        raise
    except (OSError, RuntimeError) as exc:
        # torch.save reports a failed write as a RuntimeError from its zip writer, chained to the OSError.
        if is_disk_full(exc):
            raise disk_full_error(path, exc, existed) from exc
        raise
    finally:
        _remove_quietly(tmp)
    return path


def write_atomic(path: PathLike, write: Callable[[BinaryIO], Any], fsync: bool = True) -> Path:
    """Call ``write(fh)`` on a temporary binary file, then rename it to `path` (parents are made).

    On a full disk (ENOSPC, EDQUOT, EFBIG, or torch's wrapping of them) it raises
    :class:`~ocrtrain.errors.DiskFullError` naming `path`; `path` keeps its old content.
    """
    def produce(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())

    return _atomic(Path(path), produce)


def write_bytes_atomic(path: PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically."""
    return write_atomic(path, lambda fh: fh.write(data))


def write_text_atomic(path: PathLike, text: str) -> Path:
    """Write UTF-8 `text` to `path` atomically."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: PathLike, data: Any, indent: Optional[int] = 2) -> Path:
    """Write `data` as JSON (UTF-8, not ASCII-escaped) to `path` atomically."""
    return write_text_atomic(path, json.dumps(data, indent=indent, ensure_ascii=False))


def copy_atomic(src: PathLike, dst: PathLike) -> Path:
    """Copy file `src` to `dst` so that `dst` is never seen half-copied (synced, as write_atomic)."""
    def produce(tmp: Path) -> None:
        shutil.copyfile(src, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())

    return _atomic(Path(dst), produce)


def append_whole(fh: BinaryIO, data: bytes, path: PathLike) -> None:
    """Append `data` to `fh` (opened ``"ab"``, unbuffered) whole or not at all: a failed write
    (e.g. a full disk: DiskFullError naming `path`) is cut off again, so no half line is left."""
    start = os.fstat(fh.fileno()).st_size
    view = memoryview(data)
    try:
        while view:
            written = fh.write(view)
            if not written:  # nothing taken and no error: treat as no room rather than loop
                raise OSError(errno.ENOSPC, "No space left on device (the write took no bytes)")
            view = view[written:]
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.ftruncate(fh.fileno(), start)
        if is_disk_full(exc):
            raise disk_full_error(path, exc, existed=True) from exc
        raise


def overwrite_in_place(path: PathLike, data: bytes, pad: bytes = b"") -> bool:
    """Rewrite `path` in its own blocks (no new file) when `data` fits in them; True if done.

    The last resort of a small record (status.json) on a full disk, where an atomic write cannot
    make its temporary file. Not atomic: use only when the atomic write failed. With `pad` (one
    byte) `data` is padded to the old length instead of truncating the file after it.
    """
    path = Path(path)
    try:
        st = os.stat(path)
        if pad:
            data = data.ljust(st.st_size, pad)
        if len(data) > getattr(st, "st_blocks", 0) * 512:
            return False
        with open(path, "r+b", buffering=0) as fh:
            fh.write(data)
            fh.truncate(len(data))
            os.fsync(fh.fileno())
        return True
    except OSError:
        return False


#: ``.NAME.PID.THREAD.tmp`` (write_atomic) and ``.NAME.PID.tmp`` (older writers).
_TMP_NAME = re.compile(r"^\..+?\.(?P<pid>\d+)(?:\.\d+)?\.tmp$")
#: A temporary file not written for this long belongs to no live write (even a pid reused since).
STALE_TMP_SECONDS = 6 * 3600


def clean_stale_temp_files(folder: PathLike, max_age_s: float = STALE_TMP_SECONDS) -> list[Path]:
    """Delete the temporary files of our atomic writes in `folder` (not below it) that no live write
    owns: their process is gone, or they were not written for `max_age_s`. Returns what was deleted.

    Only names of the ``.NAME.PID[.THREAD].tmp`` form are considered, so other files are never touched.
    """
    from .jobs import pid_alive

    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        match = _TMP_NAME.match(entry.name)
        if not match or not entry.is_file(follow_symlinks=False):
            continue
        try:
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        pid = int(match.group("pid"))
        if age > max_age_s or (pid != os.getpid() and not pid_alive(pid)):
            _remove_quietly(Path(entry.path))
            removed.append(Path(entry.path))
    return removed


def read_json(path: PathLike, default: Any = _MISSING) -> Any:
    """The JSON in `path`; `default` when the file is missing (InputError without a default).

    A file that is not valid JSON raises InputError naming it (writers here are atomic, so that
    is damage, not a write in progress).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if default is _MISSING:
            raise InputError(f"{path} does not exist: check the path") from None
        return default
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InputError(f"{path} is not valid JSON ({exc}): the file is damaged; restore or remove it") from None


# --------------------------------------------------------------------------- locks

def try_lock(fh, blocking: bool = False) -> bool:
    """Take an exclusive lock on open file `fh` (flock on POSIX, msvcrt on Windows); False if held.

    The operating system frees the lock when its holder dies, even by ``kill -9``.
    """
    if fcntl is not None:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            return True
        except BlockingIOError:
            return False
    if msvcrt is not None:  # pragma: no cover - Windows
        while True:
            try:
                fh.seek(0)
                msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
                return True
            except OSError:
                if not blocking:
                    return False
                time.sleep(0.05)
    return True  # pragma: no cover - no locking primitive: a single writer is assumed


def unlock(fh) -> None:
    """Release a lock taken with :func:`try_lock`."""
    if fcntl is not None:
        fcntl.flock(fh, fcntl.LOCK_UN)
    elif msvcrt is not None:  # pragma: no cover - Windows
        fh.seek(0)
        with contextlib.suppress(OSError):
            msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)


_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


@contextlib.contextmanager
def file_lock(path: PathLike) -> Iterator[None]:
    """Hold an exclusive lock on the lock file `path` (created if missing) across processes and threads."""
    key = os.path.abspath(path)
    with _THREAD_LOCKS_GUARD:
        local = _THREAD_LOCKS.setdefault(key, threading.Lock())
    # flock is per open file description, so threads are also serialized here (msvcrt is per process).
    with local, open(path, "a+") as fh:
        try_lock(fh, blocking=True)
        try:
            yield
        finally:
            unlock(fh)


# --------------------------------------------------------------------------- time

def now_iso() -> str:
    """Local time with its UTC offset, e.g. ``2026-12-02T18:31:14+0100`` (sorts by time on one host)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def utc_stamp(when: Optional[float] = None) -> str:
    """A UTC time stamp with milliseconds for file names, e.g. ``20261202T173114.123Z``."""
    dt = datetime.fromtimestamp(time.time() if when is None else when, tz=timezone.utc)
    return dt.strftime("%Y%m%dT%H%M%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_time(value: Any) -> Optional[float]:
    """Seconds since the epoch of an ISO time (with or without offset, ``Z``), a :func:`utc_stamp`
    or a number; None when empty or unreadable (a time without offset is local time)."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        pass
    for fmt in ("%Y%m%dT%H%M%S.%f%z", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S", "%Y%m%d-%H%M%S"):
        try:
            return datetime.strptime(text, fmt).timestamp()
        except ValueError:
            pass
    return None


def format_duration(seconds: Optional[float], missing: str = "?", precise: bool = False) -> str:
    """``1h02m05s``, ``4m07s`` or ``9s``; `missing` for None, NaN or negative values.

    `precise` keeps the fraction of short times (a training step): ``0.35s``, ``4.2s``.

    >>> format_duration(0.349, precise=True), format_duration(4.24, precise=True), format_duration(4.24)
    ('0.35s', '4.2s', '4s')
    """
    if seconds is None or seconds != seconds or seconds < 0 or seconds == float("inf"):
        return missing
    if precise and seconds < 10:
        return f"{seconds:.2g}s" if seconds < 1 else f"{seconds:.1f}s"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")
