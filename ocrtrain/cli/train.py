"""`ocrtrain train`: fine-tune on a dataset folder, in the foreground or as a detached job."""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path

from ..config import add_config_arguments, config_from_args
from ..errors import ConfigError, RunError
from ..events import Message
from ..sysinfo import limit_torch_threads
from ..tracking import BACKENDS, check_backend
from ..train import StatusChange, TrainConfig, TrainStep, Validation, load_template

__all__ = ["register", "run", "ProgressPrinter"]


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="fine-tune a recognizer on a dataset folder",
        description="Fine-tune a recognizer (default: EasyOCR english_g2) on a dataset folder with train/val "
                    "splits. Options override --config, which overrides --template, which overrides defaults.")
    p.add_argument("--data", metavar="DIR[:WEIGHT]", action="append",
                   help="dataset folder (train + val LMDBs), or a dataset name under $OCRTRAIN_HOME/datasets; "
                        "repeat for a mixture: each source's share of every batch follows its WEIGHT (default 1), "
                        "an epoch is one pass over the first")
    p.add_argument("--val", metavar="NAME=DIR_OR_SPLIT", action="append",
                   help="a named validation set (a dataset folder's val split, or one split's LMDB folder); "
                        "repeatable, each is logged and plotted; default: val = the first --data's val split. "
                        "--select NAME:METRIC picks which one chooses the best checkpoint")
    # --run-dir: torchrun's own parser reads "--run" as an abbreviation of its --run-path and stops.
    p.add_argument("--run", "--run-dir", dest="run", metavar="RUN",
                   help="run folder to create (default: a new name under --runs-root); spell it --run-dir "
                        "under torchrun")
    p.add_argument("--runs-root", default=None, metavar="DIR",
                   help="where generated run folders go (default: $OCRTRAIN_HOME/runs, ~/ocrtrain/runs when unset, "
                        "where the dashboard looks)")
    p.add_argument("--name", help="name of the new run folder under --runs-root (default: generated)")
    p.add_argument("--template", metavar="NAME", help="start from a saved template (list them with --list-templates)")
    p.add_argument("--list-templates", action="store_true", help="print the template names and exit")
    p.add_argument("--config", metavar="FILE", help="YAML/JSON file of TrainConfig keys")
    p.add_argument("--detach", action="store_true", help="start as a background job and return at once")
    p.add_argument("--log-to", action="append", choices=BACKENDS, default=[], metavar="BACKEND",
                   help="also log the training and validation scalars (per validation set) to BACKEND: "
                        "tensorboard (event files in RUN/tensorboard; needs `pip install 'ocrtrain[tracking]'`); "
                        "recorded in the run, so a --detach job and `ocrtrain resume` log too; off by default")
    p.add_argument("--job", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--resume", action="store_true", help=argparse.SUPPRESS)
    add_config_arguments(p, TrainConfig)
    p.set_defaults(func=run)


def build_config(args: argparse.Namespace) -> TrainConfig:
    """Defaults <- --template <- --config <- command-line options."""
    base = load_template(args.template) if args.template else TrainConfig()
    if args.config:
        base = merge_config_file(base, args.config)
    return config_from_args(TrainConfig, args, base)


def merge_config_file(base: TrainConfig, path) -> TrainConfig:
    """`base` with the keys set in YAML/JSON file `path` replaced (nested augment keys merged)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist: check the path")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML/JSON ({exc}): fix the syntax") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of TrainConfig keys, got {type(raw).__name__}")
    merged = base.to_dict()
    for key, value in raw.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    try:
        return TrainConfig.from_dict(merged)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


class ProgressPrinter:
    """Turns training events into progress lines on stdout (at most one step line per `every` s)."""

    def __init__(self, every: float = 2.0, stream=None):
        self.every = every
        self.stream = stream or sys.stdout
        self._last = 0.0

    def __call__(self, event) -> None:
        if isinstance(event, TrainStep):
            now = time.monotonic()
            if now - self._last < self.every and event.step != event.max_steps:
                return
            self._last = now
            loss = "skipped" if event.loss is None else f"{event.loss:.4f}"
            eta = "?" if event.eta_s is None else f"{event.eta_s:.0f}s"
            self._print(f"step {event.step}/{event.max_steps}  epoch {event.epoch:.2f}  loss {loss}  "
                        f"lr {event.lr:.2e}  {event.samples_per_s:.1f} lines/s  eta {eta}")
        elif isinstance(event, Validation):
            m = event.metrics
            acc = m.get("accuracy")
            cer = m.get("cer")
            self._print(f"val @ {event.step}: loss {m.get('val_loss')}  accuracy "
                        f"{'?' if acc is None else f'{acc:.4f}'}  cer {'?' if cer is None else f'{cer:.4f}'}"
                        f"{'  (best)' if event.is_best else ''}  -> {event.checkpoint}")
        elif isinstance(event, Message) and event.level != "debug":
            self._print(("warning: " if event.level == "warning" else "") + event.text)
        elif isinstance(event, StatusChange) and event.state != "running":
            self._print(f"{event.state} at step {event.step}/{event.max_steps}"
                        + (f" ({event.reason})" if event.reason else "") + (f": {event.error}" if event.error else ""))

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


def _foreground(config: TrainConfig, data, run_dir: Path, resume: bool, log_to=()) -> int:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see run()
    from .. import distributed
    from ..runs import device_lock
    from ..train import fit, resolve_device

    group = distributed.current()
    if group.active:
        return _torchrun_rank(config, data, run_dir, resume, group, log_to)

    stop = threading.Event()

    def on_sigint(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        print("stopping after this step (Ctrl-C again to abort)...", file=sys.stderr, flush=True)
        stop.set()

    def on_sigterm(signum, frame):  # `kill`, `timeout`, a scheduler or a shutdown: save last.pt, then exit
        if not stop.is_set():
            print("SIGTERM: stopping after this step; last.pt is saved for `ocrtrain resume`", file=sys.stderr,
                  flush=True)
        stop.set()

    handlers = ((signal.SIGINT, on_sigint), (signal.SIGTERM, on_sigterm))
    previous = {s: signal.signal(s, h) for s, h in handlers} if threading.current_thread() is threading.main_thread() \
        else {}
    device = resolve_device(config.device)
    limit_torch_threads()  # a container's CPU quota, not the machine's cores
    try:
        print(f"run folder: {run_dir}", flush=True)
        with device_lock(run_dir.parent, device, run_dir, should_stop=stop.is_set,
                         on_wait=lambda holder: print(f"waiting for {device}: used by {holder}", flush=True)) as got:
            if not got:
                print("canceled while waiting for the device", file=sys.stderr)
                return 130
            run = fit(config, data, run_dir, callback=ProgressPrinter(), stop_event=stop, resume=resume,
                      log_to=log_to)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    state = run.status()["state"]
    return 0 if state == "finished" else 130 if state == "canceled" else 1


def _torchrun_rank(config: TrainConfig, data, run_dir: Path, resume: bool, group, log_to=()) -> int:
    """One torchrun process: rank 0 holds the device lock, prints and writes the run folder."""
    import contextlib

    from .. import distributed
    from ..runs import device_lock
    from ..train import fit

    device = f"cuda:{group.local_rank}" if group.backend == "nccl" else "cpu"
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        # torchrun passes Ctrl-C to every rank; the ranks agree on the step to stop at.
        signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    printer = ProgressPrinter() if group.main else None
    # One lock per GPU; on CPU all ranks share "cpu", so only rank 0 takes it.
    locking = group.main or device.startswith("cuda")
    lock = device_lock(run_dir.parent, device, run_dir) if locking else contextlib.nullcontext(True)
    if group.main:
        print(f"run folder: {run_dir}  (torchrun: {group.world_size} processes, {group.backend})", flush=True)
    with lock:
        run_obj = fit(config, data, run_dir, callback=printer, stop_event=stop, resume=resume, log_to=log_to)
    state = distributed.broadcast_object(run_obj.status()["state"] if group.main else None)
    # torchrun reads any non-zero exit as a crash (and restarts the workers with --max-restarts):
    # a canceled run is a clean end here; status.json says "canceled".
    return 0 if state in ("finished", "canceled") else 1


def _distributed_run_dir(args: argparse.Namespace, group) -> Path:
    """The run folder rank 0 names (a generated name must be the same on every rank)."""
    from .. import distributed
    from ..runs import create_run_dir

    chosen = None
    if group.main:
        chosen = str(Path(args.run) if args.run else create_run_dir(args.runs_root, args.name))
    return Path(distributed.broadcast_object(chosen))


def _resolve_paths(args: argparse.Namespace) -> None:
    """Bare names of --run / --data are looked up under $OCRTRAIN_HOME (see ocrtrain.home); paths stay."""
    from ..home import resolve_dataset, resolve_run

    if isinstance(args.run, str):
        args.run = str(resolve_run(args.run))
    if args.data:
        from ..datamix import TrainSource

        sources = [TrainSource.parse(text) for text in args.data]
        args.data = [f"{resolve_dataset(s.path)}:{s.weight:g}" for s in sources]


def run(args: argparse.Namespace) -> int:
    from .. import distributed

    _resolve_paths(args)

    if distributed.launched_by_torchrun():
        if args.detach or args.job:
            raise ConfigError("--detach cannot be used under torchrun (torchrun itself starts the processes): "
                              "run torchrun in the background, e.g. with nohup")
        group = None
        try:
            group = distributed.init_from_env(_requested_device(args))
            return _run(args, group)
        finally:
            if group is not None:
                distributed.shutdown()
    return _run(args, None)


def _requested_device(args: argparse.Namespace) -> str:
    """The device the run will ask for (decides NCCL vs gloo before the config is fully built)."""
    if getattr(args, "device", None):
        return args.device
    if args.resume and args.run:
        from ..runs import Run

        return Run(args.run).train_config().device
    if args.template:
        return load_template(args.template).device
    return TrainConfig().device


def _run(args: argparse.Namespace, group) -> int:
    # Before torch loads OpenMP: spinning waits collapse when another process wants a core (see runs._job_env).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from ..runs import check_resumable, create_run_dir, launch, run_job

    if args.list_templates:
        from ..train import list_templates, template_dirs

        for name in list_templates():
            print(name)
        print(f"(user templates: {template_dirs()['user']})", file=sys.stderr)
        return 0
    if args.job:
        if not args.run:
            raise ConfigError("--job needs --run RUN")
        state = run_job(args.run, resume_run=args.resume).status()["state"]
        return 0 if state in ("finished", "canceled") else 1
    for backend in args.log_to:  # a missing package fails before a run folder is made
        check_backend(backend)
    if args.resume:
        if not args.run:
            raise ConfigError("--resume needs --run RUN")
        run_obj = check_resumable(args.run)
        return _foreground(run_obj.train_config(), run_obj.config()["data"], run_obj.path, resume=True,
                           log_to=args.log_to)
    if not args.data:
        raise ConfigError("ocrtrain train needs --data DIR (a dataset folder with train and val splits)")
    from ..datamix import DataSpec

    data = DataSpec.parse(args.data, args.val or [])
    config = build_config(args)
    if args.run and args.name:
        raise RunError("give either --run RUN or --name NAME, not both")
    if args.detach:
        run_obj = launch(config, data, run_dir=args.run, runs_root=args.runs_root, name=args.name,
                         log_to=args.log_to)
        print(run_obj.path)
        return 0
    if group is not None:
        run_dir = _distributed_run_dir(args, group)
    else:
        run_dir = Path(args.run) if args.run else create_run_dir(args.runs_root, args.name)
    return _foreground(config, data, run_dir, resume=False, log_to=args.log_to)
