"""`ocrtrain run-notebook NAME -p key value ... [--run RUN]`: execute a notebook as a run's report."""
from __future__ import annotations

import argparse
import logging
import re
import sys

from .. import notebooks

__all__ = ["register", "run"]

_OBJECT_REPR = re.compile(r"^<[\w.]+ object>$")


def register(sub) -> None:
    parser = sub.add_parser(
        "run-notebook",
        help="execute notebooks/NAME.ipynb with papermill into RUN/notebooks/",
        description="Execute a project notebook with parameters into RUN/notebooks/NAME.ipynb and record "
                    "them in RUN/notebooks/NAME.params.json. Values are parsed into the type of the "
                    "notebook's default (lists and mappings as YAML).",
    )
    parser.add_argument("name", nargs="?", help="notebook name, e.g. 02_finetune (omit with --list)")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                        help="set a parameter of the notebook's `parameters` cell (repeatable)")
    parser.add_argument("--run", metavar="RUN", default=None,
                        help="run folder to execute in (default: $OCRTRAIN_HOME/runs/DATE-TIME-NAME, else "
                             "workspace/runs/..., where the dashboard looks)")
    parser.add_argument("--list", action="store_true", help="list the notebooks and their parameters")
    parser.add_argument("--log-output", action="store_true", help="print cell outputs while executing")
    parser.set_defaults(func=run)


def _quiet_papermill_chatter(record: logging.LogRecord) -> bool:
    """Keep cell outputs and warnings; drop papermill's per-cell start/end banners."""
    if isinstance(record.msg, str):  # cell output already ends with a newline; the handler adds one
        record.msg = record.msg.rstrip("\n")
    text = record.getMessage()
    # Blank lines and the text form of rich outputs ("<IPython.core.display.Image object>") say nothing here.
    if not text.strip() or _OBJECT_REPR.match(text):
        return False
    return record.levelno > logging.INFO or not text.startswith(
        ("Executing Cell", "Ending Cell", "Input Notebook", "Output Notebook", "Executing notebook with kernel"))


def _list() -> int:
    import papermill  # its parser keeps each parameter's trailing comment as help

    for name in notebooks.list_notebooks():
        path = notebooks.notebook_path(name)
        helps = {k: v.get("help", "") for k, v in papermill.inspect_notebook(str(path)).items()}
        print(name)
        for key, value in notebooks.read_parameters(path).items():
            print(f"    -p {key} {value!r}" + (f"  # {helps[key]}" if helps.get(key) else ""))
    return 0


def run(args: argparse.Namespace) -> int:
    if args.list:
        return _list()
    if not args.name:
        print("ocrtrain run-notebook: give a notebook name (see --list)", file=sys.stderr)
        return 2
    pm_log = logging.getLogger("papermill")
    handler = None
    if args.log_output:
        # papermill logs cell outputs at INFO on its own logger; show them plainly on stdout.
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.addFilter(_quiet_papermill_chatter)
        pm_log.addHandler(handler)
        pm_log.setLevel(logging.INFO)
        pm_log.propagate = False
    try:
        output = notebooks.run_notebook(
            args.name, args.run, dict(args.parameter), log_output=args.log_output,
            callback=lambda event: print(getattr(event, "text", event), file=sys.stderr),
        )
    finally:
        if handler is not None:
            pm_log.removeHandler(handler)
            pm_log.propagate = True
    run_dir = output.parent.parent
    print(f"run folder: {run_dir}")
    print(f"executed notebook: {output}")
    print(f"parameters: {output.with_suffix('.params.json')}")
    for bundle in sorted((run_dir / "export").glob("*.pth")):
        print(f"exported model: {bundle} (+ {bundle.stem}.yaml, {bundle.stem}.py)")
    return 0
