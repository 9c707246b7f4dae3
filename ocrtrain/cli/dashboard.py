"""`ocrtrain dashboard` (the Voila dashboard) and `ocrtrain lab` (JupyterLab on the work folder).

Both serve on 127.0.0.1 by default and keep the datasets and runs in the ocrtrain home
(``$OCRTRAIN_HOME``, else ``~/ocrtrain``; ``--home`` sets it for the server and its kernels), the
folder the other commands use. Arguments after ``--`` go to Voila / JupyterLab unchanged.

The dashboard is served from ``HOME/.dashboard/`` (a copy of the packaged notebook, rewritten at
each start, and a ``voila.py`` config) with Voila's root at HOME, so that Voila's
``/voila/files/`` handler serves the files the kernel writes into ``HOME/.dashboard/downloads/``
(and nothing else: the allowlist names that folder's ``.zip`` and ``.pt`` files only). The
kernels find the folder and its URL in ``$OCRTRAIN_DOWNLOADS`` / ``$OCRTRAIN_DOWNLOADS_URL``.

An upload reaches the kernel as one websocket message, and tornado drops a message over its
``websocket_max_message_size`` (10 MiB unless set) by closing the page's kernel connection. The
dashboard raises that limit to ``--max-upload-mb`` (default :data:`MAX_UPLOAD_MB`), its page refuses a
bigger file before sending it (the upload widget gets the message as its ``error``), and the
kernels read the limit from ``$OCRTRAIN_UPLOAD_LIMIT`` (:func:`upload_limit`) to state it.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

from ..errors import InputError

__all__ = ["register", "voila_command", "lab_command", "copy_notebooks", "prepare_serving", "DEFAULT_PORT",
           "CULL_IDLE", "CULL_INTERVAL", "SERVE_DIR", "DOWNLOADS_ENV", "DOWNLOADS_URL_ENV", "DOWNLOAD_TYPES",
           "MAX_UPLOAD_MB", "TORNADO_MESSAGE_LIMIT", "UPLOAD_LIMIT_ENV", "upload_limit"]

DEFAULT_PORT = 8866
#: Closed pages leave their kernels alive (voila #1458): cull a kernel idle this long (seconds) ...
CULL_IDLE = 600
#: ... checked this often.
CULL_INTERVAL = 60
DASHBOARD = "dashboard.ipynb"
#: The folder under the home that Voila serves the dashboard from; downloads/ inside it.
SERVE_DIR = ".dashboard"
#: The kernel writes download files into $OCRTRAIN_DOWNLOADS and links them under $OCRTRAIN_DOWNLOADS_URL.
DOWNLOADS_ENV = "OCRTRAIN_DOWNLOADS"
DOWNLOADS_URL_ENV = "OCRTRAIN_DOWNLOADS_URL"
#: The largest upload the dashboard takes (MiB; --max-upload-mb): the file, the server and the kernel
#: each hold it in memory once, so hundreds of MiB are fine on a laptop; bigger data come by path.
MAX_UPLOAD_MB = 200
#: tornado's default websocket message limit: what Jupyter, `ocrtrain lab` and a bare Voila allow.
TORNADO_MESSAGE_LIMIT = 10 * 1024 * 1024
#: The kernels read the dashboard's upload limit (bytes) here.
UPLOAD_LIMIT_ENV = "OCRTRAIN_UPLOAD_LIMIT"
#: What a websocket message carries besides an upload's bytes (the widget message's JSON).
_MESSAGE_HEADROOM = 1024 * 1024
#: Suffix -> Content-Type of the files served (Python's table says .pt is a SNES page table).
DOWNLOAD_TYPES = {".zip": "application/zip", ".pt": "application/octet-stream"}
VOILA_CONFIG = """# Written by `ocrtrain dashboard` at each start: edits here are overwritten.
import mimetypes

for suffix, mime in {types!r}.items():
    mimetypes.add_type(mime, suffix)
# Only the kernel's download files (HOME/{serve}/downloads/TOKEN/NAME.zip|.pt) are served.
c.VoilaConfiguration.file_allowlist = [{allow!r}]

# A closed page asks Voila to shut its kernel down (a beacon carrying the _xsrf cookie), but Voila's
# page never sets that cookie, so the request got a 403 and the kernel lived on (voila #1458).
from voila.tornado.handler import TornadoVoilaHandler

_page_get = TornadoVoilaHandler.get


async def _get_setting_the_xsrf_cookie(self, path=None):
    self.xsrf_token  # noqa: B018 -- reading it sets the _xsrf cookie
    return await _page_get(self, path)


TornadoVoilaHandler.get = _get_setting_the_xsrf_cookie

# A page that dies without the beacon (a crashed browser) only drops its websocket. Jupyter culls a
# kernel after cull_idle_timeout without *activity*, and every widget update the Monitor's polling
# thread sends counts as activity: such a kernel was never culled while a run was going. So a kernel
# with no page connected for cull_idle_timeout seconds is shut down, busy or not (seen at each cull).
# Seen unconnected at two culls cull_idle_timeout apart is enough (a tenth of slack for a late timer
# on a loaded event loop): waiting for "more than" it took a third cull, cull_idle + 2 intervals.
import time

from jupyter_core.utils import ensure_async
from jupyter_server.services.kernels.kernelmanager import MappingKernelManager

_cull_if_idle = MappingKernelManager.cull_kernel_if_idle
_unconnected_since = {{}}


async def _cull_if_idle_or_unconnected(self, kernel_id):
    if self._kernel_connections.get(kernel_id, 0):
        _unconnected_since.pop(kernel_id, None)
        return await _cull_if_idle(self, kernel_id)
    since = _unconnected_since.setdefault(kernel_id, time.monotonic())
    if time.monotonic() - since < 0.9 * self.cull_idle_timeout:
        return await _cull_if_idle(self, kernel_id)
    _unconnected_since.pop(kernel_id, None)
    last = getattr(self._kernels[kernel_id], "last_activity", None)
    active = "?" if last is None else int((last.now(last.tzinfo) - last).total_seconds())
    self.log.warning("Culling kernel %s: no page connected for over %d s (last activity %s s ago)",
                     kernel_id, self.cull_idle_timeout, active)
    await ensure_async(self.shutdown_kernel(kernel_id))


MappingKernelManager.cull_kernel_if_idle = _cull_if_idle_or_unconnected

# An upload is one websocket message: tornado's 10 MiB limit, raised to the upload limit (+ headroom).
c.Voila.tornado_settings = {{"websocket_max_message_size": {message_limit}}}
"""
#: Voila's lab template links Font Awesome from a CDN (a failed request offline) although
#: voila-style.js already carries it with its fonts: the `ocrtrain` template drops the links.
TEMPLATE = "ocrtrain"
TEMPLATE_INDEX = """{%- extends 'lab/index.html.j2' -%}
{#- Written by `ocrtrain dashboard`: the lab template without its two CDN stylesheets. -#}
{%- block notebook_css -%}
{{ super()
   | replace('<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/@fortawesome/fontawesome-free@^5/css/all.min.css" type="text/css" />', '')
   | replace('<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/@fortawesome/fontawesome-free@^5/css/v4-shims.min.css" type="text/css" />', '') }}
{%- endblock notebook_css -%}
{%- block html_head_js -%}
{{ super() }}
<script>
/* An upload goes to the kernel as one websocket message; the server drops a bigger one than its
   limit and the page loses its kernel. Refuse it before sending: the FileUpload view passes what
   its file read throws to the kernel as the widget's error. */
(function () {
  var limit = @UPLOAD_LIMIT@, read = FileReader.prototype.readAsArrayBuffer;
  FileReader.prototype.readAsArrayBuffer = function (blob) {
    if (blob && blob.size > limit) {
      throw (blob.name || "the file") + " is " + (blob.size / 1048576).toFixed(1) + " MiB, over the " +
        "dashboard's upload limit of " + (limit / 1048576).toFixed(0) + " MiB: give its path on the server " +
        "instead (Dataset tab, import: 'or a path on the server'), or restart the dashboard with " +
        "`ocrtrain dashboard --max-upload-mb N`";
    }
    return read.apply(this, arguments);
  };
})();
</script>
{%- endblock html_head_js -%}
"""


def register(sub) -> None:
    p = sub.add_parser("dashboard", help="serve the Voila dashboard (http://127.0.0.1:8866/)",
                       description="Serve notebooks/dashboard.ipynb with Voila on 127.0.0.1. Kernels of closed "
                                   "pages are culled after --cull-idle seconds. Arguments after -- go to voila.")
    _common(p, DEFAULT_PORT)
    p.add_argument("--cull-idle", type=int, default=CULL_IDLE, metavar="S",
                   help=f"stop a page's kernel after S idle seconds (default: {CULL_IDLE})")
    p.add_argument("--open", action="store_true", help="open a browser tab")
    p.add_argument("--max-upload-mb", type=int, default=MAX_UPLOAD_MB, metavar="MB",
                   help=f"largest file the page uploads (default: {MAX_UPLOAD_MB}); bigger ones are imported "
                        "from a path on the server")
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
                  open_browser: bool = False, extra: Optional[list[str]] = None,
                  root: Optional[Path] = None) -> list[str]:
    """The voila command line serving `notebook` (this interpreter's voila); with `root` (the home,
    after :func:`prepare_serving`), Voila's root is the home and its config the one in SERVE_DIR."""
    served = [] if root is None else [
        f"--Voila.root_dir={root}", "--ContentsManager.allow_hidden=True",  # the notebook is in .dashboard/
        f"--Voila.config_file_paths={Path(root) / SERVE_DIR}", f"--template={TEMPLATE}"]
    return [sys.executable, "-m", "voila", str(notebook), f"--port={port}", f"--Voila.ip={ip}",
            *([] if open_browser else ["--no-browser"]),
            f"--MappingKernelManager.cull_idle_timeout={cull_idle}",
            f"--MappingKernelManager.cull_interval={min(CULL_INTERVAL, max(1, cull_idle))}", *served, *(extra or [])]


def upload_limit() -> int:
    """The largest upload (bytes) the serving dashboard takes: $OCRTRAIN_UPLOAD_LIMIT, else tornado's
    10 MiB (a kernel under JupyterLab or a bare Voila)."""
    try:
        return max(1, int(os.environ[UPLOAD_LIMIT_ENV]))
    except (KeyError, ValueError):
        return TORNADO_MESSAGE_LIMIT


def prepare_serving(root: Path, notebook: Path, max_upload_mb: int = MAX_UPLOAD_MB) -> tuple[Path, dict]:
    """Write ROOT/SERVE_DIR (the notebook's copy, voila.py, the template, downloads/); return the
    copy's path and the environment variables: where downloads go, where Voila finds the template,
    the upload limit."""
    if max_upload_mb < 1:
        raise InputError(f"--max-upload-mb must be at least 1, got {max_upload_mb}")
    limit = max_upload_mb * 1024 * 1024
    from ..fsutil import copy_atomic, write_text_atomic

    serve = Path(root) / SERVE_DIR
    (serve / "downloads").mkdir(parents=True, exist_ok=True)
    copy = copy_atomic(notebook, serve / DASHBOARD)
    suffixes = "|".join(s.lstrip(".") for s in DOWNLOAD_TYPES)
    allow = rf"{re.escape(SERVE_DIR)}/downloads/[0-9a-f]+/[^/]+\.({suffixes})"
    write_text_atomic(serve / "voila.py", VOILA_CONFIG.format(types=DOWNLOAD_TYPES, serve=SERVE_DIR, allow=allow,
                                                              message_limit=limit + _MESSAGE_HEADROOM))
    templates = serve / "share" / "voila" / "templates" / TEMPLATE
    templates.mkdir(parents=True, exist_ok=True)
    write_text_atomic(templates / "conf.json", json.dumps({"base_template": "lab"}))
    write_text_atomic(templates / "index.html.j2", TEMPLATE_INDEX.replace("@UPLOAD_LIMIT@", str(limit)))
    jupyter_path = os.pathsep.join(p for p in (str(serve / "share"), os.environ.get("JUPYTER_PATH", "")) if p)
    env = {DOWNLOADS_ENV: str(serve / "downloads"), DOWNLOADS_URL_ENV: f"voila/files/{SERVE_DIR}/downloads/",
           "JUPYTER_PATH": jupyter_path, UPLOAD_LIMIT_ENV: str(limit)}
    return copy, env


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
                         f"needs it: run `{sys.executable} -m pip install 'ocrtrain[dashboard]'` (the dashboard "
                         "extra: Voila, JupyterLab, papermill; in a checkout: `make setup`)")


def _make_home(root: Path, command: str) -> None:
    """Create the home and check that it takes files, before a server starts on it (else a traceback
    from mkdir, or a server whose kernels cannot save a dataset or a run)."""
    fix = f"give a folder you can write: `ocrtrain {command} --home DIR` or $OCRTRAIN_HOME"
    if root.exists() and not root.is_dir():
        raise InputError(f"the ocrtrain home {root} is a file, not a folder: {fix}")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"the ocrtrain home {root} cannot be created ({exc.strerror or exc}): {fix}") from exc
    if not os.access(root, os.W_OK | os.X_OK):
        raise InputError(f"the ocrtrain home {root} is not writable by this user: {fix}")


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
    _make_home(root, "dashboard")
    served, download_env = prepare_serving(root.resolve(), notebook, args.max_upload_mb)
    env.update(download_env)
    print(f"ocrtrain home: {root}; dashboard at http://{args.ip}:{args.port}/", file=sys.stderr)
    command = voila_command(served, args.port, args.ip, args.cull_idle, args.open, _extra(args), root=root.resolve())
    return _serve(command, env, "voila")


def _run_lab(args) -> int:
    _require("jupyterlab")
    env, root = _environment(args)
    _make_home(root, "lab")
    if not args.no_notebooks:
        try:
            made = copy_notebooks(root / "notebooks")
        except OSError as exc:
            raise InputError(f"cannot copy the project's notebooks into {root / 'notebooks'} ({exc.strerror or exc}): "
                             "make it a writable folder, or start with `ocrtrain lab --no-notebooks`") from exc
        if made:
            print(f"copied {len(made)} notebooks into {root / 'notebooks'}", file=sys.stderr)
    return _serve(lab_command(root, args.port, args.ip, not args.no_browser, _extra(args)), env, "jupyter lab")
