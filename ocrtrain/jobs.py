"""Job processes: is a pid alive, which process it is (a token), and the one-job-per-device queue.

Jobs on one device take turns: each takes a ticket in ``RUNS_ROOT/.locks/<device>.queue/`` and
the first live ticket holder takes an OS file lock on ``RUNS_ROOT/.locks/<device>.lock``.

>>> pid_alive(os.getpid())
True
"""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterator, Optional, Union

from .fsutil import try_lock, unlock, write_text_atomic

__all__ = ["LOCK_DIR", "pid_alive", "job_token", "is_job_of", "process_gone", "remember_child", "enqueue",
           "device_lock"]

PathLike = Union[str, Path]
LOCK_DIR = ".locks"

# Children started by launch(), kept so their exit status is collected (no zombies that look alive).
_CHILDREN: dict[int, subprocess.Popen] = {}


def remember_child(proc: subprocess.Popen) -> None:
    """Keep a started child so :func:`pid_alive` reaps it (a dead child is not a live zombie)."""
    _CHILDREN[proc.pid] = proc


def pid_alive(pid: Optional[int]) -> bool:
    """True when process `pid` exists and is not a zombie."""
    if not pid:
        return False
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:  # e.g. Windows: an invalid pid
        return False
    try:  # a dead child of another process can linger as a zombie until reaped
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def job_token(pid: int) -> Optional[str]:
    """``"PID:START"`` with the process start time from /proc (a reused pid gets another token);
    None where /proc is not available or the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return f"{pid}:{stat.rsplit(')', 1)[1].split()[19]}"


def is_job_of(pid: Optional[int], token: Optional[str], run_dir: PathLike) -> bool:
    """Whether `pid` is still the job process of `run_dir` that recorded `token` (same start time,
    and its command line is a ``--job`` naming the run folder); False where /proc is missing."""
    if not pid or not token or not str(token).startswith(f"{pid}:") or job_token(pid) != token:
        return False
    try:
        args = [os.fsdecode(a) for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
    except OSError:
        return False
    name = Path(run_dir).resolve().name
    return "--job" in args and any(Path(a).name == name for a in args)


def process_gone(pid: Optional[int], token: Optional[str] = None) -> bool:
    """True when `pid` is dead, or lives on as another process than the one that recorded `token`."""
    if not pid_alive(pid):
        return True
    current = job_token(pid) if token and str(token).startswith(f"{pid}:") else None
    return current is not None and current != token


def _lock_name(device: str) -> str:
    return device.replace(":", "_").replace("/", "_")


def enqueue(runs_root: PathLike, device: str, run_dir: PathLike, pid: Optional[int] = None) -> Path:
    """Take a ticket in the device's queue (``RUNS_ROOT/.locks/<device>.queue/``); tickets go first-come first-served."""
    folder = Path(runs_root) / LOCK_DIR / f"{_lock_name(device)}.queue"
    folder.mkdir(parents=True, exist_ok=True)
    ticket = folder / f"{time.time_ns():020d}-{pid or os.getpid()}.ticket"
    write_text_atomic(ticket, json.dumps({"pid": pid or os.getpid(), "run": str(run_dir)}))
    return ticket


def _first_live_ticket(folder: Path) -> Optional[Path]:
    for ticket in sorted(folder.glob("*.ticket")):
        try:
            pid = json.loads(ticket.read_text(encoding="utf-8")).get("pid")
        except (OSError, json.JSONDecodeError):
            continue
        if pid_alive(pid):
            return ticket
        ticket.unlink(missing_ok=True)  # its process died while waiting
    return None


def _ticket_run(ticket: Optional[Path]) -> Optional[str]:
    try:
        return json.loads(ticket.read_text(encoding="utf-8")).get("run") if ticket else None
    except (OSError, json.JSONDecodeError):
        return None


@contextlib.contextmanager
def device_lock(runs_root: PathLike, device: str, run_dir: Optional[PathLike] = None,
                should_stop: Optional[Callable[[], bool]] = None, poll: float = 0.25,
                on_wait: Optional[Callable[[str], None]] = None, ticket: Optional[Path] = None) -> Iterator[bool]:
    """Hold the one-job-per-device lock of `runs_root`; yields False if `should_stop()` fired while waiting.

    The lock is an OS file lock (:func:`ocrtrain.fsutil.try_lock`) on ``RUNS_ROOT/.locks/<device>.lock``
    (the kernel frees it when the holder dies, even by ``kill -9``); waiters take turns in ticket order (see :func:`enqueue`).
    """
    folder = Path(runs_root) / LOCK_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{_lock_name(device)}.lock"
    if ticket is None or not ticket.exists():
        ticket = enqueue(runs_root, device, run_dir or "", os.getpid())
    fh = open(path, "a+")
    acquired = False
    try:
        reported = None
        while True:
            first = _first_live_ticket(ticket.parent)
            if first == ticket:
                if try_lock(fh):
                    acquired = True
                    break
            if should_stop is not None and should_stop():
                break
            if on_wait is not None:
                fh.seek(0)
                holder = fh.read().strip() or _ticket_run(first) or "an earlier job in the queue"
                if holder != reported:  # report each change of who we wait for, once
                    on_wait(holder)
                    reported = holder
            time.sleep(poll)
        ticket.unlink(missing_ok=True)
        if acquired:
            fh.seek(0)
            fh.truncate()
            fh.write(str(run_dir or os.getpid()))
            fh.flush()
        yield acquired
    finally:
        ticket.unlink(missing_ok=True)
        if acquired:
            fh.seek(0)
            fh.truncate()
            unlock(fh)
        fh.close()
