"""Training runs as jobs: listing, queueing, cancel, resume (the folder format is :mod:`ocrtrain.runfolder`).

A job is a separate process (``python -m ocrtrain train --run RUN --job``) in its own session, so a
closed browser tab or a dead kernel does not stop training. Jobs on one device take turns through
a lock file under the runs root (:func:`ocrtrain.jobs.device_lock`); a waiting job shows as ``queued``. A job
records a token (its pid and start time) in the status, so ``cancel`` signals that process only,
never an unrelated one that got the same pid.

>>> # run = launch(TrainConfig(max_steps=200), "data/receipts")   # returns at once
>>> # run.status()["state"], list_runs()[0]["progress"]
"""
from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional, Union

from . import runfolder
from .errors import RunError
from .fsutil import format_duration, now_iso, parse_time
from .home import runs_root as default_runs_root
from .jobs import device_lock, enqueue, is_job_of, job_token, pid_alive, process_gone, remember_child
from .runfolder import cancel_requested
from .sysinfo import limit_torch_threads

__all__ = [
    "STATES",
    "TERMINAL_STATES",
    "Run",
    "new_run_name",
    "create_run_dir",
    "device_lock",
    "enqueue",
    "launch",
    "cancel",
    "resume",
    "check_resumable",
    "run_job",
    "list_runs",
    "summarize_run",
    "run_seconds",
    "cancel_requested",
    "pid_alive",
    "job_token",
]

PathLike = Union[str, Path]

STATES = ("created", "queued", "running", "finished", "failed", "canceled")
TERMINAL_STATES = frozenset({"finished", "failed", "canceled"})
#: Whether SIGTERM can be caught as a cooperative stop. On Windows os.kill(pid, SIGTERM) is
#: TerminateProcess, a hard kill: there a job is stopped by its cancel request alone.
SIGTERM_STOPS = os.name == "posix"
_ADJECTIVES = ("brave", "calm", "clever", "eager", "gentle", "happy", "keen", "lively", "merry", "nimble",
               "proud", "quiet", "rapid", "steady", "swift", "tidy", "witty", "bold", "bright", "sunny")
_ANIMALS = ("otter", "lynx", "puffin", "moose", "heron", "badger", "falcon", "seal", "hare", "fox",
            "owl", "wolf", "eagle", "raven", "beaver", "marten", "tern", "orca", "elk", "stoat")

def new_run_name(rng: Optional[random.Random] = None) -> str:
    """A readable, time-sortable run name such as ``20261121-153012-brave-otter``."""
    rng = rng or random.Random()
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{rng.choice(_ADJECTIVES)}-{rng.choice(_ANIMALS)}"


def create_run_dir(runs_root: Optional[PathLike] = None, name: Optional[str] = None) -> Path:
    """Create a new, empty run folder under `runs_root` (default: ``home.runs_root()``; a generated
    name when `name` is None)."""
    root = Path(runs_root) if runs_root is not None else default_runs_root()
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
        """The stored config record (config, data, origin); RunError when it lacks what a run needs."""
        record = runfolder.read_config(self.path)
        missing = [key for key in ("config", "data") if key not in record]
        if missing or not isinstance(record["config"], dict):
            # An edited or damaged record: say so here instead of a KeyError in resume or a job.
            found = ("lacks " + " and ".join(repr(k) for k in missing) if missing
                     else f"has a {type(record['config']).__name__} for 'config', not an object")
            raise RunError(f"{runfolder.files(self.path).config} {found}: a run's record needs 'config' "
                           "(its training settings) and 'data' (its dataset folder); restore the file from a "
                           "backup or start a new run")
        return record

    def train_config(self):
        """The run's TrainConfig."""
        from .train import TrainConfig

        return TrainConfig.from_dict(self.config()["config"])

    def status(self) -> dict:
        """The status as a dict; a queued/running run whose process is gone reads as failed + interrupted."""
        st = runfolder.read_status(self.path).to_dict()
        if st["state"] in ("queued", "running") and st.get("pid") and (st.get("host") or socket.gethostname()) \
                == socket.gethostname() and process_gone(st.get('pid'), st.get('job')):
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
        """Rows of the metrics file as dicts (optionally only "train" or "val"); a half-written line is skipped."""
        return [r.to_dict() for r in runfolder.read_rows(self.path, kind)]

    def versions(self) -> list[dict]:
        """Saved step checkpoints, oldest first: ``[{"step", "file", "metrics"}, ...]``."""
        return [v.to_dict() for v in runfolder.read_versions(self.path).versions]

    def best_version(self) -> Optional[dict]:
        """The version entry copied to best.pt, or None."""
        best = runfolder.read_versions(self.path).best_version()
        return best.to_dict() if best else None

    def checkpoint_path(self, version: Union[str, int] = "best") -> Path:
        """Path of "best", "last", "step-N" / N, or a file name among the checkpoints; RunError if missing."""
        return runfolder.resolve_checkpoint(self.path, version)

    def log_tail(self, lines: int = 40) -> str:
        """The last `lines` lines of the run's log."""
        return runfolder.log_tail(self.path, lines)

    def rejected(self) -> list[dict]:
        """Labels the run could not train or validate on (split, index, label, reason)."""
        return runfolder.read_rejected(self.path)

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

    def summary(self, status: Optional[dict] = None) -> dict:
        """One row of every runs table (CLI and dashboard): name, state, progress, best CER, times."""
        st = status if status is not None else self.status()
        try:
            best = (self.best_version() or {}).get("metrics", {})
        except RunError:
            best = {}
        max_steps = st.get("max_steps") or 0
        step = min(st.get("step") or 0, max_steps) if max_steps else (st.get("step") or 0)
        duration = run_seconds(st)
        best_cer = best.get("cer", st.get("best_cer"))
        return {
            "name": self.name,
            "path": str(self.path),
            "state": st["state"],
            "interrupted": bool(st.get("interrupted")),
            "step": step,
            "max_steps": max_steps,
            "progress": round(step / max_steps, 4) if max_steps else 0.0,
            "best_cer": best_cer,
            "best_accuracy": best.get("accuracy"),
            "device": st.get("device"),
            "created": st.get("created"),
            "started": st.get("started"),
            "duration_s": duration,
            "segments": int(st.get("segments") or 1),
            "duration": format_duration(duration, missing=""),
            "error": st.get("error"),
            "pid": st.get("pid"),
        }


def _segment_seconds(st: dict) -> Optional[float]:
    """Seconds of the status's latest segment (start of its job to its end, or now while running)."""
    started = parse_time(st.get("started"))
    ended = parse_time(st.get("ended")) if st["state"] in TERMINAL_STATES else None
    end = ended or (time.time() if st["state"] == "running" else parse_time(st.get("updated")))
    return max(0.0, end - started) if started and end else None


def run_seconds(st: dict) -> Optional[float]:
    """A run's duration over all its segments: the ones before each resume (``earlier_s``,
    banked by :func:`check_resumable`) plus the latest one."""
    latest = _segment_seconds(st)
    earlier = float(st.get("earlier_s") or 0.0)
    if latest is None:
        return round(earlier, 1) if earlier else None
    return round(earlier + latest, 1)


def _bank_segment(run_dir: Path, st: dict) -> None:
    """Add the segment that ended to ``earlier_s`` before a resume starts a new one (once per
    segment: a resume that fails before its job starts does not count it again)."""
    seconds = _segment_seconds(st)
    if not seconds or st.get("banked_started") == st.get("started"):
        return
    runfolder.update_status(run_dir, earlier_s=round(float(st.get("earlier_s") or 0.0) + seconds, 2),
                            segments=int(st.get("segments") or 1) + 1, banked_started=st.get("started"))


_DAMAGED = {"state": "failed", "step": 0, "max_steps": 0, "progress": 0.0, "interrupted": False, "duration": "",
            "segments": 1,
            **dict.fromkeys(("best_cer", "best_accuracy", "device", "created", "started", "duration_s", "pid"))}


def list_runs(root: Optional[PathLike] = None) -> list[dict]:
    """Summary rows (see :meth:`Run.summary`) of the run folders under `root` (default:
    ``home.runs_root()``), oldest first; a damaged folder is listed as failed, with the reason."""
    root = Path(root) if root is not None else default_runs_root()
    rows = [summarize_run(path) for path in runfolder.run_folders_in(root)]
    rows.sort(key=lambda r: (r.get("created") or "", r["name"]))
    return rows


def summarize_run(path: PathLike) -> dict:
    """The :func:`list_runs` row of one run folder, wherever it is (a damaged one is failed, with the reason)."""
    path = Path(path)
    try:
        return Run(path).summary()
    except RunError as exc:
        return {**_DAMAGED, "name": path.name, "path": str(path), "error": str(exc)}


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
    with open(runfolder.files(run_dir).log, "ab") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, env=_job_env(), close_fds=True)
    remember_child(proc)
    # The ticket is taken here, not in the child, so jobs queue in launch order whatever their start-up time.
    ticket = enqueue(run_dir.parent, device, run_dir, proc.pid)
    # No job token until the child records its own: cancel must not signal a process that has no
    # SIGTERM handler yet (it relies on the cancel request, which the queued job polls).
    runfolder.update_status(run_dir, only_if=lambda s: s.state in ("created", "queued", "failed", "canceled"),
                            state="queued", pid=proc.pid, host=socket.gethostname(), error=None, ended=None,
                            ticket=str(ticket), device=device, job=None, signals=False)
    return proc


def launch(config, data: PathLike, run_dir: Optional[PathLike] = None, runs_root: Optional[PathLike] = None,
           name: Optional[str] = None, log_to=()) -> Run:
    """Start training as a separate job process and return at once (status ``queued`` -> ``running``).
    `log_to`: experiment-logging backends recorded for the run (see :mod:`ocrtrain.tracking`).

    >>> # run = launch(TrainConfig(max_steps=300), "data/receipts", runs_root="runs")
    """
    from .tracking import check_backend, record_backends
    from .train import prepare_run, resolve_device

    resolve_device(config.device)  # a missing CUDA device fails here, before a folder is made
    for backend in log_to:  # and so does a missing logging package
        check_backend(backend)
    run_dir = Path(run_dir) if run_dir is not None else create_run_dir(runs_root, name)
    prepare_run(config, data, run_dir)
    if log_to:
        record_backends(run_dir, log_to)
    _spawn(run_dir, resume_run=False)
    return Run(run_dir)


def cancel(run_dir: PathLike, wait: bool = False, timeout: Optional[float] = 120) -> Run:
    """Ask a queued/running run to stop cleanly (it saves last.pt and ends ``canceled``).

    RunError (and nothing written) when `run_dir` is not a run folder or the run already ended.
    SIGTERM goes only to the run's own job process (its recorded token matches); any other
    trainer (a foreground ``ocrtrain train``, a notebook) sees the cancel request at its next step.
    """
    path = runfolder.require_run_folder(run_dir)
    run = Run(path)
    st = run.status()
    if st["state"] in ("finished", "canceled"):
        raise RunError(f"run {run.name} is already {st['state']}: nothing to cancel")
    runfolder.request_cancel(path)
    pid = st.get("pid")
    if st["state"] in ("queued", "running") and pid_alive(pid):
        if SIGTERM_STOPS and st.get("signals") and is_job_of(st.get('pid'), st.get('job'), path):  # a cooperative stop
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
    else:
        # No live process will see the request (never started, interrupted, or failed): mark it here.
        runfolder.update_status(path, state="canceled", ended=now_iso(),
                                error=st.get("error") if st["state"] == "failed" else None)
    if wait:
        run.wait(timeout)
    return run


def check_resumable(run_dir: PathLike) -> Run:
    """The Run, if it can be resumed (RunError says why not); clears an old cancel request."""
    run = Run(runfolder.require_run_folder(run_dir))
    st = run.status()
    if st["state"] in ("queued", "running"):
        raise RunError(f"run {run.name} is {st['state']} (pid {st.get('pid')}): cancel it first or wait")
    if st["state"] == "finished":
        raise RunError(f"run {run.name} already finished at step {st.get('step')}: to train further, start "
                       f"a new run with origin 'run:{run.path}'")
    run.train_config()  # a damaged config fails here, before any process starts
    runfolder.clear_cancel(run.path)
    _bank_segment(run.path, st)
    return run


def resume(run_dir: PathLike, detach: bool = False, callback=None, stop_event: Optional[threading.Event] = None,
           log_to=()) -> Run:
    """Continue a canceled/interrupted/failed run from RUN/checkpoints/last.pt to its configured end.

    In this process by default (returns when done), or as a job with ``detach=True``. `log_to`
    backends are added to the run's recorded ones (see :mod:`ocrtrain.tracking`).
    """
    from .tracking import record_backends

    run = check_resumable(run_dir)
    if log_to:
        record_backends(run.path, log_to)
    if detach:
        runfolder.update_status(run.path, state="queued", error=None, ended=None, interrupted=False, pid=None)
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
    if SIGTERM_STOPS:
        signal.signal(signal.SIGTERM, on_term)
    runfolder.update_status(run_dir, pid=os.getpid(), host=socket.gethostname(), signals=SIGTERM_STOPS,
                            job=job_token(os.getpid()))
    limit_torch_threads()  # a container's CPU quota, not the machine's cores
    run = Run(run_dir)
    config = run.train_config()
    device = resolve_device(config.device)
    should_stop = lambda: stop.is_set() or cancel_requested(run_dir)  # noqa: E731

    def on_wait(holder: str) -> None:
        runfolder.update_status(run_dir, state="queued", device=device, waiting_for=holder)

    ticket = run.status().get("ticket")
    with device_lock(run_dir.parent, device, run_dir, should_stop=should_stop, on_wait=on_wait,
                     ticket=Path(ticket) if ticket else None) as got:
        if not got:
            runfolder.update_status(run_dir, state="canceled", ended=now_iso(), waiting_for=None)
            return run
        runfolder.update_status(run_dir, waiting_for=None, ticket=None)
        return fit(config, run.config()["data"], run_dir, callback=callback, stop_event=stop, resume=resume_run)
