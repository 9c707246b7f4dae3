"""`ocrtrain runs`, `ocrtrain cancel`, `ocrtrain resume`: list, stop and continue training runs."""
from __future__ import annotations

import argparse
import json
import sys

__all__ = ["register", "format_table"]


def register(subparsers) -> None:
    p = subparsers.add_parser("runs", help="list training runs with their state and best scores; with a run "
                                           "folder: every validation set, origin (step 0) vs the best version")
    p.add_argument("root", nargs="?", default=None,
                   help="runs folder (default: $OCRTRAIN_HOME/runs, ~/ocrtrain/runs when unset), or one run")
    p.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    p.add_argument("--metric", default=None, help="for one run: the metric compared (default accuracy_ws)")
    p.add_argument("--step", type=int, default=None, help="for one run: compare this step instead of the best")
    p.set_defaults(func=_list)

    p = subparsers.add_parser("cancel", help="stop a queued or running training job cleanly (saves last.pt)")
    p.add_argument("run", metavar="RUN", help="run folder, or a run name under the runs folder")
    p.add_argument("--wait", action="store_true", help="wait until the job has stopped")
    p.set_defaults(func=_cancel)

    p = subparsers.add_parser("resume", help="continue a canceled or interrupted run from its last checkpoint")
    p.add_argument("run", metavar="RUN", help="run folder, or a run name under the runs folder")
    p.add_argument("--detach", action="store_true", help="continue as a background job and return at once")
    from ..tracking import BACKENDS

    p.add_argument("--log-to", action="append", choices=BACKENDS, default=[], metavar="BACKEND",
                   help="also log to BACKEND from now on (tensorboard: RUN/tensorboard, the earlier steps "
                        "included); a run started with --log-to keeps logging without it")
    p.set_defaults(func=_resume)


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def format_table(rows: list[dict]) -> str:
    """A plain-text table of :func:`ocrtrain.runs.list_runs` rows."""
    header = ["NAME", "STATE", "PROGRESS", "BEST CER", "BEST ACC", "DEVICE", "STARTED", "DURATION"]
    lines = [header]
    for r in rows:
        state = r.get("state", "?") + (" (interrupted)" if r.get("interrupted") else "")
        progress = f"{r.get('step', 0)}/{r.get('max_steps') or '?'}"
        lines.append([r["name"], state, progress, _pct(r.get("best_cer")), _pct(r.get("best_accuracy")),
                      r.get("device") or "-", (r.get("started") or "-")[:19].replace("T", " "),
                      r.get("duration") or "-"])
    widths = [max(len(str(row[i])) for row in lines) for i in range(len(header))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in lines)


def _list(args: argparse.Namespace) -> int:
    from ..home import runs_root
    from ..runs import list_runs

    root = args.root or runs_root()
    from ..runfolder import is_run_folder

    if is_run_folder(root):
        return _one_run(args)
    rows = list_runs(root)
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    elif not rows:
        print(f"no runs under {root}", file=sys.stderr)
    else:
        print(format_table(rows))
    return 0


def _one_run(args: argparse.Namespace) -> int:
    from ..valsets import DEFAULT_METRIC, format_summary, validation_summary

    rows = validation_summary(args.root, metric=args.metric or DEFAULT_METRIC, step=args.step)
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    elif not rows:
        print(f"{args.root}: no validation yet", file=sys.stderr)
    else:
        print(format_summary(rows))
    return 0


def _cancel(args: argparse.Namespace) -> int:
    from ..home import resolve_run
    from ..runs import cancel

    run = cancel(resolve_run(args.run), wait=args.wait)
    print(f"{run.path}: {run.status()['state'] if args.wait else 'cancel requested'}")
    return 0


def _resume(args: argparse.Namespace) -> int:
    from ..home import resolve_run
    from ..runs import resume

    from ..tracking import check_backend

    args.run = resolve_run(args.run)
    for backend in args.log_to:  # a missing package fails before the run is touched
        check_backend(backend)
    if args.detach:
        run = resume(args.run, detach=True, log_to=args.log_to)
        print(run.path)
        return 0
    from ..runs import check_resumable
    from .train import _foreground

    run = check_resumable(args.run)
    return _foreground(run.train_config(), run.config()["data"], run.path, resume=True, log_to=args.log_to)
