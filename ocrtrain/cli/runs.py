"""`ocrtrain runs`, `ocrtrain cancel`, `ocrtrain resume`: list, stop and continue training runs."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Callable

__all__ = ["register", "format_table", "format_summary"]


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


def _pct(value, decimals: int = 2) -> str:
    return "-" if value is None else f"{100 * value:.{decimals}f}%"


def _aligned(lines: list[list[str]]) -> list[str]:
    """Rows of cells as left-aligned columns two spaces apart."""
    widths = [max(len(row[i]) for row in lines) for i in range(len(lines[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in lines]


def format_table(rows: list[dict]) -> str:
    """A plain-text table of :func:`ocrtrain.runs.list_runs` rows."""
    lines = [["NAME", "STATE", "PROGRESS", "BEST CER", "BEST ACC", "DEVICE", "STARTED", "DURATION"]]
    for r in rows:
        state = r.get("state", "?") + (" (interrupted)" if r.get("interrupted") else "")
        progress = f"{r.get('step', 0)}/{r.get('max_steps') or '?'}"
        lines.append([str(r["name"]), state, progress, _pct(r.get("best_cer")), _pct(r.get("best_accuracy")),
                      r.get("device") or "-", (r.get("started") or "-")[:19].replace("T", " "),
                      r.get("duration") or "-"])
    return "\n".join(_aligned(lines))


def format_summary(rows: list[dict]) -> str:
    """A plain-text table of :func:`ocrtrain.valsets.validation_summary` rows, under a title line."""
    from ..valsets import DEFAULT_METRIC

    step = rows[0]["step"] if rows else "?"
    title = f"{rows[0]['metric'] if rows else DEFAULT_METRIC}: the origin (step 0) vs step {step}"
    lines = [["SET", "LINES", "ORIGIN", f"STEP {step}", "POINTS", "VERDICT"]]
    lines += [[r["val_set"], str(r["n"] or "-"), _pct(r["origin"], 1), _pct(r["version"], 1),
               "-" if r["delta"] is None else f"{100 * r['delta']:+.1f}", r["verdict"]] for r in rows]
    return "\n".join([title] + _aligned(lines))


def _print_rows(rows: list[dict], as_json: bool, table: Callable[[list[dict]], str], empty: str) -> int:
    """Print `rows` as JSON (``--json``, an empty list included) or as `table`; `empty` on stderr when
    there are none to tabulate."""
    if as_json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    elif not rows:
        print(empty, file=sys.stderr)
    else:
        print(table(rows))
    return 0


def _list(args: argparse.Namespace) -> int:
    from ..home import runs_root
    from ..runfolder import is_run_folder
    from ..runs import list_runs

    root = args.root or runs_root()
    if is_run_folder(root):
        return _one_run(args)
    return _print_rows(list_runs(root), args.json, format_table, f"no runs under {root}")


def _one_run(args: argparse.Namespace) -> int:
    from ..valsets import DEFAULT_METRIC, validation_summary

    rows = validation_summary(args.root, metric=args.metric or DEFAULT_METRIC, step=args.step)
    return _print_rows(rows, args.json, format_summary, f"{args.root}: no validation yet")


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
