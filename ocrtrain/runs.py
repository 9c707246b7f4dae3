"""Training runs as folders and as jobs: status, metrics, versions, queueing, cancel, resume.

A run is a folder (see the engine contract)::

    RUN/config.json      {"format", "config": TrainConfig.to_dict(), "data", "origin", "created"}
    RUN/status.json      {"state", "created", "started", "ended", "device", "error", "step",
                          "max_steps", "pid", ...}
    RUN/metrics.jsonl    one JSON object per line ("kind": "train" | "val")
    RUN/log.txt          human-readable progress; a job's stdout/stderr also land here
    RUN/rejected.csv     training/validation labels that could not be used, with the reason
    RUN/checkpoints/     step-%08d.pt, best.pt, last.pt, versions.json
    RUN/reports/, RUN/export/

A job is a separate process (``python -m ocrtrain train --run RUN --job``) in its own session, so a
closed browser tab or a dead kernel does not stop training. Jobs on one device take turns through
an ``fcntl`` lock file under the runs root; a waiting job shows as ``queued``.

>>> # run = launch(TrainConfig(max_steps=200), "data/receipts")   # returns at once
>>> # run.status()["state"], list_runs("runs")[0]["progress"]
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Union

from .dataset import write_json_atomic
from .errors import RunError

__all__ = [
    "STATES",
    "TERMINAL_STATES",
    "Run",
    "new_run_name",
    "create_run_dir",
    "update_status",
    "device_lock",
    "enqueue",
    "launch",
    "cancel",
    "resume",
    "check_resumable",
    "run_job",
    "list_runs",
    "cancel_requested",
    "pid_alive",
]

PathLike = Union[str, Path]

STATES = ("created", "queued", "running", "finished", "failed", "canceled")
TERMINAL_STATES = frozenset({"finished", "failed", "canceled"})
CONFIG = "config.json"
STATUS = "status.json"
METRICS = "metrics.jsonl"
LOG = "log.txt"
REJECTED = "rejected.csv"
CANCEL_FILE = "cancel.request"
LOCK_DIR = ".locks"

_ADJECTIVES = ("brave", "calm", "clever", "eager", "gentle", "happy", "keen", "lively", "merry", "nimble",
               "proud", "quiet", "rapid", "steady", "swift", "tidy", "witty", "bold", "bright", "sunny")
_ANIMALS = ("otter", "lynx", "puffin", "moose", "heron", "badger", "falcon", "seal", "hare", "fox",
            "owl", "wolf", "eagle", "raven", "beaver", "marten", "tern", "orca", "elk", "stoat")

# Children started by launch(), kept so their exit status is collected (no zombies that look alive).
_CHILDREN: dict[int, subprocess.Popen] = {}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _parse_time(text: Optional[str]) -> Optional[float]:
    if not text:
        return None
    try:
        return time.mktime(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None


def new_run_name(rng: Optional[random.Random] = None) -> str:
    """A readable, time-sortable run name such as ``20261121-153012-brave-otter``."""
    rng = rng or random.Random()
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{rng.choice(_ADJECTIVES)}-{rng.choice(_ANIMALS)}"


def create_run_dir(runs_root: PathLike = "runs", name: Optional[str] = None) -> Path:
    """Create a new, empty run folder under `runs_root` (a generated name when `name` is None)."""
    root = Path(runs_root)
    root.mkdir(parents=True, exist_ok=True)
    if name is not None:
        if not name or "/" in name or name.startswith("."):
            raise RunError(f"run name {name!r} is not a plain folder name: use letters, digits, '-' or '_'")
        path = root / name
        try:
            path.mkdir()
        except FileExistsError:
            raise RunError(f"run folder {path} already exists: pick another name or resume that run") from None
        return path
    for _ in range(100):
        path = root / new_run_name()
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RunError(f"could not find a free run name under {root}: give one explicitly")


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
    try:  # a dead child of another process can linger as a zombie until reaped
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


@contextlib.contextmanager
def _status_lock(run_dir: Path) -> Iterator[None]:
    # Launcher, job and cancel all read-modify-write status.json; serialize them.
    with open(run_dir / ".status.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunError(f"{path} is not valid JSON ({exc}): the run folder is damaged") from None


def update_status(run_dir: PathLike, only_if: Optional[Callable[[dict], bool]] = None, **fields: Any) -> dict:
    """Merge `fields` into RUN/status.json atomically; skipped when `only_if(current)` is False."""
    run_dir = Path(run_dir)
    with _status_lock(run_dir):
        current = _read_json(run_dir / STATUS, {}) or {}
        if only_if is not None and not only_if(current):
            return current
        current.update(fields)
        current["updated"] = _now()
        write_json_atomic(run_dir / STATUS, current)
        return current


def cancel_requested(run_dir: PathLike) -> bool:
    """True when someone asked this run to stop (``cancel`` writes RUN/cancel.request)."""
    return (Path(run_dir) / CANCEL_FILE).exists()


class Run:
    """A read-only view of a run folder (safe to use while a job writes to it)."""

    def __init__(self, path: PathLike):
        self.path = Path(path)
        if not self.path.is_dir():
            raise RunError(f"run folder {self.path} does not exist: check the path or list runs with `ocrtrain runs`")

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    @property
    def name(self) -> str:
        return self.path.name

    def config(self) -> dict:
        """The stored RUN/config.json (config, data path, origin)."""
        data = _read_json(self.path / CONFIG)
        if data is None:
            raise RunError(f"{self.path} has no {CONFIG}: it is not a run folder (or was never started)")
        return data

    def train_config(self):
        """The run's TrainConfig."""
        from .train import TrainConfig

        return TrainConfig.from_dict(self.config()["config"])

    def status(self) -> dict:
        """RUN/status.json; a queued/running run whose process is gone reads as failed + interrupted."""
        st = dict(_read_json(self.path / STATUS, {}) or {})
        st.setdefault("state", "created")
        if st["state"] in ("queued", "running") and st.get("pid") and st.get("host", socket.gethostname()) \
                == socket.gethostname() and not pid_alive(st["pid"]):
            st["state"] = "failed"
            st["interrupted"] = True
            st["error"] = (f"interrupted: the training process (pid {st['pid']}) is gone (killed or crashed) "
                           f"while {st.get('step', 0)}/{st.get('max_steps', '?')} steps were done; "
                           f"`ocrtrain resume {self.path}` continues from the last checkpoint")
        return st

    @property
    def state(self) -> str:
        return self.status()["state"]

    def is_active(self) -> bool:
        """True while the run is queued or running in a live process."""
        return self.state in ("queued", "running")

    def metrics(self, kind: Optional[str] = None) -> list[dict]:
        """Rows of RUN/metrics.jsonl (optionally only "train" or "val"); a half-written line is skipped."""
        rows = []
        try:
            with open(self.path / METRICS, encoding="utf-8") as fh:
                for line in fh:
                    line = line.strip()
                    if not line:
                        continue
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # the writer is mid-line
                    if kind is None or row.get("kind") == kind:
                        rows.append(row)
        except FileNotFoundError:
            pass
        return rows

    def _versions_file(self) -> dict:
        return _read_json(self.path / "checkpoints" / "versions.json", {}) or {}

    def versions(self) -> list[dict]:
        """Saved step checkpoints, oldest first: ``[{"step", "file", "metrics"}, ...]``."""
        return list(self._versions_file().get("versions", []))

    def best_version(self) -> Optional[dict]:
        """The version entry copied to best.pt (lowest validation CER), or None."""
        data = self._versions_file()
        best = data.get("best")
        return next((v for v in data.get("versions", []) if v["file"] == best), None) if best else None

    def checkpoint_path(self, version: Union[str, int] = "best") -> Path:
        """Path of "best", "last", "step-N" / N, or a file name in RUN/checkpoints; RunError if missing."""
        folder = self.path / "checkpoints"
        if isinstance(version, int) or (isinstance(version, str) and version.isdigit()):
            name = f"step-{int(version):08d}.pt"
        elif version in ("best", "last"):
            name = f"{version}.pt"
        elif isinstance(version, str) and version.startswith("step-") and version[5:].isdigit():
            name = f"step-{int(version[5:]):08d}.pt"
        else:
            name = str(version)
        path = folder / name
        if not path.is_file():
            have = sorted(p.name for p in folder.glob("*.pt")) if folder.is_dir() else []
            raise RunError(f"checkpoint {name!r} not found in {folder} (have: {', '.join(have) or 'none'}): "
                           "pick one of those, or wait for the first validation")
        return path

    def log_tail(self, lines: int = 40) -> str:
        """The last `lines` lines of RUN/log.txt."""
        path = self.path / LOG
        if not path.is_file():
            return ""
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 200 * lines - 4096))
            text = fh.read().decode("utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def rejected(self) -> list[dict]:
        """Rows of RUN/rejected.csv (labels the run could not train or validate on)."""
        import csv

        path = self.path / REJECTED
        if not path.is_file():
            return []
        with open(path, newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))

    def wait(self, timeout: Optional[float] = None, poll: float = 0.2) -> dict:
        """Block until the run is finished, failed or canceled; returns the status (RunError on timeout)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            st = self.status()
            if st["state"] in TERMINAL_STATES or (st["state"] == "created" and not st.get("pid")):
                return st
            if deadline is not None and time.monotonic() > deadline:
                raise RunError(f"run {self.name} is still {st['state']} after {timeout} s: wait longer or cancel it")
            time.sleep(poll)

    def summary(self) -> dict:
        """One row for run tables: name, state, progress, best CER/accuracy, device, times."""
        st = self.status()
        best = None
        try:
            best = self.best_version()
        except RunError:
            pass
        started = _parse_time(st.get("started"))
        ended = _parse_time(st.get("ended")) if st["state"] in TERMINAL_STATES else None
        end = ended or (time.time() if st["state"] == "running" else _parse_time(st.get("updated")))
        max_steps = st.get("max_steps") or 0
        step = st.get("step") or 0
        metrics = (best or {}).get("metrics", {})
        return {
            "name": self.name,
            "path": str(self.path),
            "state": st["state"],
            "interrupted": bool(st.get("interrupted")),
            "step": step,
            "max_steps": max_steps,
            "progress": round(step / max_steps, 4) if max_steps else 0.0,
            "best_cer": metrics.get("cer"),
            "best_accuracy": metrics.get("accuracy"),
            "device": st.get("device"),
            "created": st.get("created"),
            "started": st.get("started"),
            "duration_s": round(end - started, 1) if started and end else None,
            "error": st.get("error"),
        }


def list_runs(root: PathLike = "runs") -> list[dict]:
    """Summary rows (see :meth:`Run.summary`) of the run folders under `root`, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    rows = []
    for path in sorted(root.iterdir()):
        if path.is_dir() and not path.name.startswith(".") and ((path / STATUS).exists() or (path / CONFIG).exists()):
            try:
                rows.append(Run(path).summary())
            except RunError as exc:  # a damaged folder still shows up, with the reason
                rows.append({"name": path.name, "path": str(path), "state": "failed", "error": str(exc)})
    rows.sort(key=lambda r: (r.get("created") or "", r["name"]))
    return rows


# --------------------------------------------------------------------------- device queue

def _lock_name(device: str) -> str:
    return device.replace(":", "_").replace("/", "_")


def enqueue(runs_root: PathLike, device: str, run_dir: PathLike, pid: Optional[int] = None) -> Path:
    """Take a ticket in the device's queue (``RUNS_ROOT/.locks/<device>.queue/``); tickets go first-come first-served."""
    folder = Path(runs_root) / LOCK_DIR / f"{_lock_name(device)}.queue"
    folder.mkdir(parents=True, exist_ok=True)
    ticket = folder / f"{time.time_ns():020d}-{pid or os.getpid()}.ticket"
    tmp = ticket.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": pid or os.getpid(), "run": str(run_dir)}), encoding="utf-8")
    os.replace(tmp, ticket)
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

    The lock is an ``fcntl.flock`` on ``RUNS_ROOT/.locks/<device>.lock`` (the kernel frees it when
    the holder dies, even by ``kill -9``); waiters take turns in ticket order (see :func:`enqueue`).
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
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    acquired = True
                    break
                except BlockingIOError:
                    pass
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
            fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


def _job_env() -> dict:
    env = dict(os.environ)
    # The job must import this same ocrtrain, whatever the caller's working directory.
    pkg_parent = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = pkg_parent + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    # OpenMP threads that spin while waiting collapse (10x slower steps seen on 2 cores) as soon as
    # another process - a data loader, the dashboard - wants a core; passive waiting does not.
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


def _spawn(run_dir: Path, resume_run: bool) -> subprocess.Popen:
    from .train import resolve_device

    device = resolve_device(Run(run_dir).train_config().device)
    cmd = [sys.executable, "-m", "ocrtrain", "train", "--run", str(run_dir), "--job"]
    if resume_run:
        cmd.append("--resume")
    with open(run_dir / LOG, "ab") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, env=_job_env(), close_fds=True)
    _CHILDREN[proc.pid] = proc
    # The ticket is taken here, not in the child, so jobs queue in launch order whatever their start-up time.
    ticket = enqueue(run_dir.parent, device, run_dir, proc.pid)
    update_status(run_dir, only_if=lambda s: s.get("state") in (None, "created", "queued", "failed", "canceled"),
                  state="queued", pid=proc.pid, host=socket.gethostname(), error=None, ended=None,
                  ticket=str(ticket), device=device)
    return proc


def launch(config, data: PathLike, run_dir: Optional[PathLike] = None, runs_root: PathLike = "runs",
           name: Optional[str] = None) -> Run:
    """Start training as a separate job process and return at once (status ``queued`` -> ``running``).

    >>> # run = launch(TrainConfig(max_steps=300), "data/receipts", runs_root="runs")
    """
    from .train import prepare_run, resolve_device

    resolve_device(config.device)  # a missing CUDA device fails here, before a folder is made
    run_dir = Path(run_dir) if run_dir is not None else create_run_dir(runs_root, name)
    prepare_run(config, data, run_dir)
    _spawn(run_dir, resume_run=False)
    return Run(run_dir)


def cancel(run_dir: PathLike, wait: bool = False, timeout: Optional[float] = 120) -> Run:
    """Ask a queued/running run to stop cleanly (it saves last.pt and ends ``canceled``)."""
    run = Run(run_dir)
    st = run.status()
    if st["state"] in ("finished", "canceled"):
        raise RunError(f"run {run.name} is already {st['state']}: nothing to cancel")
    (run.path / CANCEL_FILE).write_text(_now() + "\n")
    pid = st.get("pid")
    if st["state"] in ("queued", "running") and pid_alive(pid):
        if st.get("signals"):  # the job installed its SIGTERM handler, so the signal is a cooperative stop
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
    else:
        # No live process will see the request (never started, interrupted, or failed): mark it here.
        update_status(run.path, state="canceled", ended=_now(),
                      error=st.get("error") if st["state"] == "failed" else None)
    if wait:
        run.wait(timeout)
    return run


def check_resumable(run_dir: PathLike) -> Run:
    """The Run, if it can be resumed (RunError says why not); clears an old cancel request."""
    run = Run(run_dir)
    st = run.status()
    if st["state"] in ("queued", "running"):
        raise RunError(f"run {run.name} is {st['state']} (pid {st.get('pid')}): cancel it first or wait")
    if st["state"] == "finished":
        raise RunError(f"run {run.name} already finished at step {st.get('step')}: to train further, start "
                       f"a new run with origin 'run:{run.path}'")
    run.train_config()  # a damaged config fails here, before any process starts
    (run.path / CANCEL_FILE).unlink(missing_ok=True)
    return run


def resume(run_dir: PathLike, detach: bool = False, callback=None, stop_event: Optional[threading.Event] = None) -> Run:
    """Continue a canceled/interrupted/failed run from RUN/checkpoints/last.pt to its configured end.

    In this process by default (returns when done), or as a job with ``detach=True``.
    """
    run = check_resumable(run_dir)
    if detach:
        update_status(run.path, state="queued", error=None, ended=None, interrupted=False, pid=None)
        _spawn(run.path, resume_run=True)
        return run
    from .train import fit

    return fit(run.train_config(), run.config()["data"], run.path, callback=callback, stop_event=stop_event,
               resume=True)


def run_job(run_dir: PathLike, resume_run: bool = False, callback=None) -> Run:
    """Body of a job process: wait for the device, then train; SIGTERM means a clean cancel."""
    from .train import fit, resolve_device

    run_dir = Path(run_dir)
    stop = threading.Event()

    def on_term(signum, frame):  # cooperative: the training loop polls the event each step
        stop.set()

    on_term.cooperative_stop = True  # fit() records this, so cancel() knows SIGTERM is safe to send
    signal.signal(signal.SIGTERM, on_term)
    update_status(run_dir, pid=os.getpid(), host=socket.gethostname(), signals=True)
    run = Run(run_dir)
    config = run.train_config()
    device = resolve_device(config.device)
    should_stop = lambda: stop.is_set() or cancel_requested(run_dir)  # noqa: E731

    def on_wait(holder: str) -> None:
        update_status(run_dir, state="queued", device=device, waiting_for=holder)

    ticket = run.status().get("ticket")
    with device_lock(run_dir.parent, device, run_dir, should_stop=should_stop, on_wait=on_wait,
                     ticket=Path(ticket) if ticket else None) as got:
        if not got:
            update_status(run_dir, state="canceled", ended=_now(), waiting_for=None)
            return run
        update_status(run_dir, waiting_for=None, ticket=None)
        return fit(config, run.config()["data"], run_dir, callback=callback, stop_event=stop, resume=resume_run)
