"""`ocrtrain dashboard` (the Voila dashboard) and `ocrtrain lab` (JupyterLab on the work folder).

Both serve on 127.0.0.1 by default and keep the datasets and runs in the ocrtrain home
(``$OCRTRAIN_HOME``, else ``~/ocrtrain``; ``--home`` sets it for the server and its kernels), the
folder the other commands use. Arguments after ``--`` go to Voila / JupyterLab unchanged.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

from ..errors import InputError

__all__ = ["register", "voila_command", "lab_command", "copy_notebooks", "DEFAULT_PORT", "CULL_IDLE", "CULL_INTERVAL"]

DEFAULT_PORT = 8866
#: Closed pages leave their kernels alive (voila #1458): cull a kernel idle this long (seconds) ...
CULL_IDLE = 600
#: ... checked this often.
CULL_INTERVAL = 60
DASHBOARD = "dashboard.ipynb"


def register(sub) -> None:
    p = sub.add_parser("dashboard", help="serve the Voila dashboard (http://127.0.0.1:8866/)",
                       description="Serve notebooks/dashboard.ipynb with Voila on 127.0.0.1. Kernels of closed "
                                   "pages are culled after --cull-idle seconds. Arguments after -- go to voila.")
    _common(p, DEFAULT_PORT)
    p.add_argument("--cull-idle", type=int, default=CULL_IDLE, metavar="S",
                   help=f"stop a page's kernel after S idle seconds (default: {CULL_IDLE})")
    p.add_argument("--open", action="store_true", help="open a browser tab")
    p.set_defaults(func=_run_dashboard)
    p = sub.add_parser("lab", help="open JupyterLab on the ocrtrain home (datasets, runs, notebooks)",
                       description="Start JupyterLab with the ocrtrain home as its root folder; the project's "
                                   "notebooks missing from HOME/notebooks are copied there first (yours are "
                                   "never overwritten). Arguments after -- go to jupyter lab.")
    _common(p, 8888)
    p.add_argument("--no-browser", action="store_true", help="do not open a browser tab")
    p.add_argument("--no-notebooks", action="store_true", help="do not copy the project's notebooks")
    p.set_defaults(func=_run_lab)


def _common(p: argparse.ArgumentParser, port: int) -> None:
    p.add_argument("--port", type=int, default=port, help=f"port (default: {port})")
    p.add_argument("--ip", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--home", default=None, metavar="DIR",
                   help="ocrtrain home for the server and its kernels (default: $OCRTRAIN_HOME, else ~/ocrtrain)")
    p.add_argument("extra", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def _extra(args) -> list[str]:
    extra = list(args.extra or [])
    return extra[1:] if extra[:1] == ["--"] else extra


def voila_command(notebook: Path, port: int = DEFAULT_PORT, ip: str = "127.0.0.1", cull_idle: int = CULL_IDLE,
                  open_browser: bool = False, extra: Optional[list[str]] = None) -> list[str]:
    """The voila command line serving `notebook` (this interpreter's voila)."""
    return [sys.executable, "-m", "voila", str(notebook), f"--port={port}", f"--Voila.ip={ip}",
            *([] if open_browser else ["--no-browser"]),
            f"--MappingKernelManager.cull_idle_timeout={cull_idle}",
            f"--MappingKernelManager.cull_interval={min(CULL_INTERVAL, max(1, cull_idle))}", *(extra or [])]


def lab_command(root: Path, port: int = 8888, ip: str = "127.0.0.1", open_browser: bool = True,
                extra: Optional[list[str]] = None) -> list[str]:
    """The JupyterLab command line with `root` as its folder (this interpreter's jupyterlab)."""
    return [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={root}", f"--ServerApp.port={port}",
            f"--ServerApp.ip={ip}", *([] if open_browser else ["--no-browser"]), *(extra or [])]


def copy_notebooks(target: Path) -> list[Path]:
    """Copy the project's notebooks missing from `target` into it; return the copies made."""
    from ..notebooks import NOTEBOOK_DIR

    target.mkdir(parents=True, exist_ok=True)
    made = []
    for source in sorted(NOTEBOOK_DIR.glob("*.ipynb")):
        if not (target / source.name).exists():
            shutil.copyfile(source, target / source.name)
            made.append(target / source.name)
    return made


def _environment(args) -> tuple[dict, Path]:
    from ..home import HOME_ENV, home

    env = dict(os.environ)
    if args.home:
        env[HOME_ENV] = str(Path(args.home).expanduser().resolve())
    root = Path(env.get(HOME_ENV) or home()).expanduser()
    return env, root


def _require(module: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise InputError(f"{module} is not installed, and `ocrtrain {'dashboard' if module == 'voila' else 'lab'}` "
                         f"needs it: run `{sys.executable} -m pip install 'ocrtrain[dashboard]'`")


def _serve(command: list[str], env: dict, what: str) -> int:
    print(f"{what}: {' '.join(command[2:])}", file=sys.stderr)
    proc = subprocess.Popen(command, env=env)
    try:
        return proc.wait()
    except KeyboardInterrupt:  # the server got the same Ctrl-C: let it shut down cleanly
        try:
            return proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise


def _run_dashboard(args) -> int:
    from ..notebooks import NOTEBOOK_DIR

    _require("voila")
    notebook = NOTEBOOK_DIR / DASHBOARD
    if not notebook.is_file():
        raise InputError(f"the dashboard notebook {notebook} is missing: reinstall ocrtrain "
                         f"(`{sys.executable} -m pip install --force-reinstall --no-deps ocrtrain`)")
    env, root = _environment(args)
    root.mkdir(parents=True, exist_ok=True)
    print(f"ocrtrain home: {root}; dashboard at http://{args.ip}:{args.port}/", file=sys.stderr)
    return _serve(voila_command(notebook, args.port, args.ip, args.cull_idle, args.open, _extra(args)), env, "voila")


def _run_lab(args) -> int:
    _require("jupyterlab")
    env, root = _environment(args)
    root.mkdir(parents=True, exist_ok=True)
    if not args.no_notebooks:
        made = copy_notebooks(root / "notebooks")
        if made:
            print(f"copied {len(made)} notebooks into {root / 'notebooks'}", file=sys.stderr)
    return _serve(lab_command(root, args.port, args.ip, not args.no_browser, _extra(args)), env, "jupyter lab")
