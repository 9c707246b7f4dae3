"""Job processes: is a pid alive, which process it is (a token), the one-job-per-device queue and
the one-trainer-per-run-folder lock.

Jobs on one device take turns machine-wide, whatever runs folder they write to: each takes a ticket
in ``LOCKS/<device>.queue/`` and the first live ticket holder takes an OS file lock on
``LOCKS/<device>.lock``, where LOCKS is :func:`lock_root` (``CACHE/locks``, see
:func:`ocrtrain.home.cache_root`). A trainer also holds ``RUN/.run.lock`` while it waits and
trains, so a second trainer of the same run folder is told at once that the folder is taken.

Process checks use psutil where it is installed (Linux, macOS, Windows) and /proc otherwise.

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

from .errors import RunError
from .fsutil import try_lock, unlock, write_text_atomic
from .home import cache_root

try:
    import psutil
except ImportError:  # pragma: no cover - psutil is optional
    psutil = None  # type: ignore[assignment]

__all__ = ["LOCK_DIR", "RUN_LOCK_FILE", "lock_root", "pid_alive", "job_token", "is_job_of", "process_gone",
           "remember_child", "enqueue", "device_lock", "run_lock"]

PathLike = Union[str, Path]
LOCK_DIR = "locks"
RUN_LOCK_FILE = ".run.lock"

# Children started by launch(), kept so their exit status is collected (no zombies that look alive).
_CHILDREN: dict[int, subprocess.Popen] = {}


def lock_root() -> Path:
    """``CACHE/locks``: the device queues and locks every ocrtrain process on this machine shares."""
    return cache_root() / LOCK_DIR


def remember_child(proc: subprocess.Popen) -> None:
    """Keep a started child so :func:`pid_alive` reaps it (a dead child is not a live zombie)."""
    _CHILDREN[proc.pid] = proc


def _proc_stat(pid: int) -> Optional[list[str]]:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def pid_alive(pid: Optional[int]) -> bool:
    """True when process `pid` exists and is not a zombie (a process we may not inspect counts as alive)."""
    if not pid or pid < 0:
        return False
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None
    if psutil is not None:
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False
        except (psutil.AccessDenied, OSError):
            return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:  # e.g. Windows: an invalid pid
        return False
    stat = _proc_stat(pid)  # a dead child of another process can linger as a zombie until reaped
    return stat is None or stat[0] != "Z"


def job_token(pid: int) -> Optional[str]:
    """``"PID:START"`` with the process start time (a reused pid gets another token); None where
    neither psutil nor /proc can tell, or the process is gone."""
    tokens = _tokens(pid)
    return tokens[0] if tokens else None


def _tokens(pid: int) -> list[str]:
    """The tokens `pid` has now: psutil's (start time in seconds) and /proc's (clock ticks), so a
    token recorded by either way of telling still matches."""
    found = []
    if psutil is not None:
        with contextlib.suppress(psutil.Error, OSError):
            found.append(f"{pid}:{psutil.Process(pid).create_time():.2f}")
    stat = _proc_stat(pid)
    if stat and len(stat) > 19:
        found.append(f"{pid}:{stat[19]}")
    return found


def _cmdline(pid: int) -> Optional[list[str]]:
    if psutil is not None:
        try:
            return list(psutil.Process(pid).cmdline())
        except (psutil.Error, OSError):
            return None
    try:
        return [os.fsdecode(a) for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
    except OSError:
        return None


def is_job_of(pid: Optional[int], token: Optional[str], run_dir: PathLike) -> bool:
    """Whether `pid` is still the job process of `run_dir` that recorded `token` (same start time,
    and its command line is a ``--job`` naming the run folder); False where that cannot be told."""
    if not pid or not token or not str(token).startswith(f"{pid}:") or token not in _tokens(pid):
        return False
    args = _cmdline(pid)
    if args is None:
        return False
    name = Path(run_dir).resolve().name
    return "--job" in args and any(Path(a).name == name for a in args)


def process_gone(pid: Optional[int], token: Optional[str] = None) -> bool:
    """True when `pid` is dead, or lives on as another process than the one that recorded `token`."""
    if not pid_alive(pid):
        return True
    current = _tokens(pid) if token and str(token).startswith(f"{pid}:") else []
    return bool(current) and token not in current


def _lock_name(device: str) -> str:
    return device.replace(":", "_").replace("/", "_")


def enqueue(runs_root: Optional[PathLike], device: str, run_dir: PathLike, pid: Optional[int] = None) -> Path:
    """Take a ticket in the device's machine-wide queue (``LOCKS/<device>.queue/``); first come,
    first served. `runs_root` is not used any more (the queue spans every runs folder)."""
    folder = lock_root() / f"{_lock_name(device)}.queue"
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
def run_lock(run_dir: PathLike) -> Iterator[None]:
    """Hold ``RUN/.run.lock`` (an OS file lock, freed even by ``kill -9``) for one trainer of `run_dir`;
    RunError at once, without waiting, when another trainer or waiting job holds it."""
    path = Path(run_dir) / RUN_LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        if not try_lock(fh):
            holder = ""
            with contextlib.suppress(OSError):
                fh.seek(0)
                holder = fh.read().strip()
            raise RunError(f"run folder {run_dir} is taken: another training process ({holder or 'pid unknown'}) "
                           f"trains it or waits for a device; wait for it to end, stop it with `ocrtrain cancel "
                           f"{run_dir}`, or choose another run folder")
        try:
            fh.seek(0)
            fh.truncate()
            fh.write(f"pid {os.getpid()}")
            fh.flush()
            yield
        finally:
            with contextlib.suppress(OSError):
                fh.seek(0)
                fh.truncate()
            unlock(fh)


def _is_first_rank() -> bool:
    # torchrun ranks of one run all come here (one device lock per GPU); only rank 0 owns the run folder.
    return os.environ.get("RANK", "0").strip() in ("", "0")


@contextlib.contextmanager
def device_lock(runs_root: Optional[PathLike], device: str, run_dir: Optional[PathLike] = None,
                should_stop: Optional[Callable[[], bool]] = None, poll: float = 0.25,
                on_wait: Optional[Callable[[str], None]] = None, ticket: Optional[Path] = None) -> Iterator[bool]:
    """Hold the machine-wide one-job-per-device lock; yields False if `should_stop()` fired while waiting.

    The lock is an OS file lock (:func:`ocrtrain.fsutil.try_lock`) on ``LOCKS/<device>.lock`` (the
    kernel frees it when the holder dies, even by ``kill -9``); waiters take turns in ticket order
    (see :func:`enqueue`). With `run_dir`, :func:`run_lock` is taken first, so a second trainer of
    the same folder fails at once instead of queueing. `runs_root` is not used any more.
    """
    with contextlib.ExitStack() as stack:
        if run_dir and _is_first_rank():
            stack.enter_context(run_lock(run_dir))
        folder = lock_root()
        folder.mkdir(parents=True, exist_ok=True)
        if ticket is None or not ticket.exists():
            ticket = enqueue(None, device, run_dir or "", os.getpid())
        stack.callback(ticket.unlink, missing_ok=True)
        fh = stack.enter_context(open(folder / f"{_lock_name(device)}.lock", "a+"))
        acquired = _wait_turn(fh, ticket, should_stop, poll, on_wait)
        ticket.unlink(missing_ok=True)
        if acquired:
            stack.callback(_release, fh)
            fh.seek(0)
            fh.truncate()
            fh.write(str(run_dir or os.getpid()))
            fh.flush()
        yield acquired


def _wait_turn(fh, ticket: Path, should_stop, poll: float, on_wait) -> bool:
    """Wait until `ticket` is the first live one and the lock is ours (True), or should_stop() (False)."""
    reported = None
    while True:
        first = _first_live_ticket(ticket.parent)
        if first == ticket and try_lock(fh):
            return True
        if should_stop is not None and should_stop():
            return False
        if on_wait is not None:
            fh.seek(0)
            holder = fh.read().strip() or _ticket_run(first) or "an earlier job in the queue"
            if holder != reported:  # report each change of who we wait for, once
                on_wait(holder)
                reported = holder
        time.sleep(poll)


def _release(fh) -> None:
    fh.seek(0)
    fh.truncate()
    unlock(fh)
