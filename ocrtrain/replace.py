"""Replacing an output folder safely: what ``--overwrite`` may delete, and a swap with no gap.

A folder is replaced only when it is empty or is one of ours (a predicate the caller gives, e.g.
"has our dataset manifest"), and never when it is, holds, or lies inside a protected path (the
import source). The new folder is built beside the old one (``.NAME.partial-PID``) and swapped in
by one atomic exchange where the system has one (Linux ``renameat2``); elsewhere by two renames
through ``.NAME.old-PID``, and :func:`recover_interrupted` puts the old folder back if a crash
fell between them. :func:`clean_stale` removes leftovers of processes that are gone.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> check_replaceable(d / "new", overwrite=False, is_ours=lambda p: False)  # a new folder is fine
"""
from __future__ import annotations

import ctypes
import errno
import logging
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Callable, Iterable, Optional, Union

from .errors import DatasetError
from .jobs import pid_alive

__all__ = ["check_replaceable", "swap_into_place", "recover_interrupted", "clean_stale", "partial_path"]

log = logging.getLogger(__name__)
PathLike = Union[str, Path]


def partial_path(out: PathLike, pid: Optional[int] = None) -> Path:
    """Where the new version of `out` is built: ``.NAME.partial-PID`` beside it."""
    out = Path(out)
    return out.parent / f".{out.name}.partial-{os.getpid() if pid is None else pid}"


def _old_path(out: Path) -> Path:
    return out.parent / f".{out.name}.old-{os.getpid()}"


def _related(a: Path, b: Path) -> Optional[str]:
    """How folder `a` relates to protected path `b`: 'is', 'holds', 'inside' or None."""
    if a == b:
        return "is"
    if a in b.parents:
        return "holds"
    if b in a.parents:
        return "inside"
    return None


def check_replaceable(out: PathLike, overwrite: bool, is_ours: Callable[[Path], bool],
                      protect: Iterable[PathLike] = (), what: str = "an ocrtrain dataset") -> None:
    """Raise DatasetError unless writing `out` (replacing it when `overwrite`) is safe.

    Refused: `out` is, holds or lies inside a `protect` path (the source of an import); `out`
    exists, is not empty and `overwrite` is off; `out` is a file; `out` is not empty and not
    `is_ours` (``--overwrite`` never deletes folders ocrtrain did not write).
    """
    out = Path(out)
    target = out.resolve()
    for p in protect:
        relation = _related(target, Path(p).resolve())
        if relation:
            text = {"is": "is the source", "holds": f"holds the source {p}",
                    "inside": f"lies inside the source {p}"}[relation]
            raise DatasetError(f"output folder {out} {text}: writing there could delete the data being "
                               "read; choose an --out folder outside the source")
    if not out.exists() and not out.is_symlink():
        return
    if not out.is_dir():
        raise DatasetError(f"{out} exists and is not a folder: choose another --out or remove the file yourself")
    if not any(out.iterdir()):
        return
    if not overwrite:
        raise DatasetError(f"{out} already exists and is not empty: choose a new folder or pass overwrite "
                           "(--overwrite) to replace it")
    if out.is_symlink():
        raise DatasetError(f"{out} is a symbolic link: --overwrite replaces only real folders; give the "
                           "folder it points to or a new one")
    if not is_ours(out):
        raise DatasetError(f"{out} is not {what} (no manifest.json of ours), so --overwrite will not "
                           "delete it: choose a new folder, or empty or remove it yourself")


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths (Linux renameat2 RENAME_EXCHANGE); False if unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, getattr(errno, "ENOTSUP", errno.EINVAL), errno.EPERM):
        return False
    raise OSError(err, os.strerror(err), str(b))


def swap_into_place(new: PathLike, out: PathLike) -> None:
    """Move the finished folder `new` to `out`, replacing what is there, with no moment where
    `out` is missing (or, without an atomic exchange, a moment :func:`recover_interrupted` repairs)."""
    new, out = Path(new), Path(out)
    if not out.exists():
        os.replace(new, out)
        return
    if _exchange(new, out):
        shutil.rmtree(new, ignore_errors=True)  # `new` now holds the old folder
        return
    old = _old_path(out)
    os.replace(out, old)
    os.replace(new, out)
    shutil.rmtree(old, ignore_errors=True)


def _leftovers(out: Path, kind: str) -> list[tuple[Path, int]]:
    pattern = re.compile(rf"^\.{re.escape(out.name)}\.{kind}-(\d+)$")
    found = []
    if out.parent.is_dir():
        for p in out.parent.iterdir():
            m = pattern.match(p.name)
            if m:
                found.append((p, int(m.group(1))))
    return sorted(found, key=lambda item: item[0].stat().st_mtime if item[0].exists() else 0)


def recover_interrupted(out: PathLike) -> Optional[Path]:
    """If `out` is missing but a crashed swap left ``.NAME.old-PID``, move it back; returns `out` then."""
    out = Path(out)
    if out.exists():
        return None
    for old, pid in reversed(_leftovers(out, "old")):
        if pid_alive(pid) and pid != os.getpid():
            continue  # that process is in the middle of its swap
        os.replace(old, out)
        log.warning("restored %s from %s, left by an interrupted replacement", out, old.name)
        return out
    return None


def clean_stale(out: PathLike) -> list[Path]:
    """Delete ``.NAME.partial-PID`` and ``.NAME.old-PID`` folders whose process is gone."""
    out = Path(out)
    recover_interrupted(out)
    removed = []
    for kind in ("partial", "old"):
        for path, pid in _leftovers(out, kind):
            if pid != os.getpid() and not pid_alive(pid):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
    if removed:
        log.info("removed leftovers of stopped processes: %s", ", ".join(p.name for p in removed))
    return removed
