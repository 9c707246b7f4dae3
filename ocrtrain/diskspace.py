"""Recognising a full disk and saying so: the error names the path, the free space and the fix.

A full disk shows up as ``OSError`` (ENOSPC, a quota: EDQUOT, a file-size limit: EFBIG), as
LMDB's ``mdb_txn_commit: Input/output error`` and as torch's ``file write failed``. Callers
that write catch their own exception type and ask :func:`is_disk_full`; :func:`disk_full_message`
then gives one wording everywhere.

>>> import errno
>>> is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
True
>>> is_disk_full(ValueError("bad value"))
False
"""
from __future__ import annotations

import errno
import shutil
from pathlib import Path
from typing import Optional, Union

__all__ = ["DISK_FULL_ERRNOS", "is_disk_full", "free_bytes", "disk_full_message"]

#: errno values that mean "no room to write": no space, quota exceeded, file-size limit.
DISK_FULL_ERRNOS = frozenset(e for e in (errno.ENOSPC, getattr(errno, "EDQUOT", None), errno.EFBIG) if e)
# Texts of the same conditions in exceptions that carry no errno (LMDB reports a failed
# write on a full disk as an I/O error; torch's zip writer as "file write failed").
_TEXTS = ("no space left", "disk quota", "file too large", "input/output error", "file write failed",
          "enospc")


def is_disk_full(exc: BaseException) -> bool:
    """True when `exc` (or the exception it was raised from) says the disk had no room."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
            return True
        if not isinstance(exc, OSError) or exc.errno is None:
            text = str(exc).lower()
            if any(t in text for t in _TEXTS):
                return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def free_bytes(path: Union[str, Path]) -> Optional[int]:
    """Free bytes on the disk holding `path` (or its nearest existing parent); None if unknown."""
    path = Path(path)
    for candidate in (path, *path.parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return None


def _size(n: Optional[int]) -> str:
    if n is None:
        return "unknown"
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)  # pragma: no cover


def _detail(exc: BaseException) -> str:
    """The OS's words for the failure: the strerror of `exc` or of an OSError it was raised from
    (torch's zip writer says ``[enforce fail at inline_container.cc:672] . unexpected pos``)."""
    cause, seen = exc, 0
    while cause is not None and seen < 5:
        # Our own DiskFullError's strerror is a whole message: take the OS's words below it.
        if isinstance(cause, OSError) and cause.strerror and type(cause).__name__ != "DiskFullError":
            return cause.strerror
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    return str(exc)


def disk_full_message(path: Union[str, Path], exc: BaseException, doing: str = "writing",
                      kept: str = "nothing was kept") -> str:
    """The one wording of a full disk, e.g. ``disk full while writing data/x/train (...; 12 KiB free
    on that disk): free space there or write to another disk, then run again; nothing was kept``."""
    detail = _detail(exc)
    return (f"disk full while {doing} {path} ({detail}; {_size(free_bytes(path))} free on that disk): "
            f"free space there or write to another disk, then run again; {kept}")
