"""Run the project's notebooks reproducibly with papermill, one executed copy per run folder.

A notebook under ``notebooks/`` starts with a code cell tagged ``parameters`` that holds only
literal assignments. :func:`run_notebook` checks the given parameters against those defaults
(unknown keys and wrong types are errors), executes the notebook in the current Python's kernel
and writes ``RUN/notebooks/NAME.ipynb`` (papermill also records the parameters in its metadata)
plus ``RUN/notebooks/NAME.params.json``. papermill is imported only when a notebook is executed.

>>> # run_notebook("02_finetune", "runs/r1", {"max_steps": 4, "data": "datasets/receipts"})
"""
from __future__ import annotations

import ast
import difflib
import json
import logging
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Optional, Union

from .errors import ConfigError, InputError, RunError
from .events import Callback, Message, emit
from .fsutil import now_iso, write_json_atomic, write_text_atomic
from .home import resolve_run
from .runfolder import files

__all__ = [
    "NOTEBOOK_DIR",
    "RUN_DIR_PARAMETER",
    "list_notebooks",
    "notebook_path",
    "read_parameters",
    "coerce_parameters",
    "kernel_python",
    "run_notebook",
    "runs_root",
    "default_run_dir",
    "run_folder",
    "strip_outputs",
]

log = logging.getLogger(__name__)

#: The project's notebooks: notebooks/ of a checkout (or an editable install), else the copy a wheel
#: installs inside the package (pyproject.toml maps notebooks/ to the package ocrtrain.notebook_files).
_CHECKOUT_NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOK_DIR = (_CHECKOUT_NOTEBOOKS if (_CHECKOUT_NOTEBOOKS / "dashboard.ipynb").is_file()
                else Path(__file__).resolve().parent / "notebook_files")
#: A notebook declaring this parameter is told the run folder it executes in.
RUN_DIR_PARAMETER = "run_dir"
_PARAMETER_TYPES = (bool, int, float, str, type(None), list, dict, tuple)


def list_notebooks(notebook_dir: Union[str, Path, None] = None) -> list[str]:
    """Names (without ``.ipynb``) of the notebooks in `notebook_dir` (default: the project's)."""
    folder = Path(notebook_dir) if notebook_dir else NOTEBOOK_DIR
    return sorted(p.stem for p in folder.glob("*.ipynb"))


def notebook_path(name: str, notebook_dir: Union[str, Path, None] = None) -> Path:
    """The file of notebook `name` (a name from :func:`list_notebooks` or a path to a .ipynb)."""
    if name.endswith(".ipynb") and Path(name).is_file():
        return Path(name)
    folder = Path(notebook_dir) if notebook_dir else NOTEBOOK_DIR
    path = folder / f"{name.removesuffix('.ipynb')}.ipynb"
    if not path.is_file():
        names = list_notebooks(folder)
        close = difflib.get_close_matches(name, names, n=1)
        raise InputError(
            f"no notebook {name!r} in {folder}" + (f" (did you mean {close[0]!r}?)" if close else "")
            + f": pick one of {', '.join(names) or '(none)'}"
        )
    return path


def _parameters_cell(nb: Mapping, where: str) -> Mapping:
    code = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    if not code:
        raise InputError(f"{where} has no code cell: add a first code cell tagged 'parameters'")
    first = code[0]
    if "parameters" not in first.get("metadata", {}).get("tags", []):
        raise InputError(
            f"{where}: the first code cell is not tagged 'parameters': tag it so papermill can inject values"
        )
    return first


def read_parameters(path: Union[str, Path]) -> dict[str, Any]:
    """Defaults of a notebook's ``parameters`` cell, which must hold only ``name = literal`` lines.

    Raises InputError naming the line when the cell has anything else (calls, imports, names).
    """
    path = Path(path)
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read notebook {path} ({exc}): check the file is a saved .ipynb") from None
    cell = _parameters_cell(nb, str(path))
    source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise InputError(f"{path}: parameters cell line {exc.lineno} is not valid Python: fix it") from None
    defaults: dict[str, Any] = {}
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
        if not isinstance(target, ast.Name):
            raise InputError(
                f"{path}: parameters cell line {node.lineno} is not a `name = literal` assignment: "
                "move code into a later cell"
            )
        try:
            defaults[target.id] = ast.literal_eval(node.value)
        except ValueError:
            raise InputError(
                f"{path}: parameter {target.id!r} (parameters cell line {node.lineno}) is not a literal: "
                "use a number, text, True/False/None, or a list/dict of those"
            ) from None
    return defaults


def _coerce_one(name: str, default: Any, value: Any) -> Any:
    """`value` as the type of `default`; text (from a command line) is parsed into that type."""
    kind = type(default)
    if isinstance(value, str) and kind is not str:
        if kind is bool:
            low = value.strip().lower()
            if low in ("true", "yes", "1", "on", "false", "no", "0", "off"):
                return low in ("true", "yes", "1", "on")
        elif kind is int:
            try:
                return int(value)
            except ValueError:
                pass
        elif kind is float:
            try:
                return float(value)
            except ValueError:
                pass
        else:  # None, list, dict: YAML gives numbers, lists and mappings from one string
            import yaml

            try:
                return yaml.safe_load(value)
            except yaml.YAMLError:
                return value
        raise ConfigError(f"parameter {name} must be {kind.__name__} like {default!r}, got {value!r}")
    if default is None or value is None:
        return value
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, tuple) and kind is list:
        return list(value)
    if isinstance(value, bool) != isinstance(default, bool) or not isinstance(value, kind):
        raise ConfigError(f"parameter {name} must be {kind.__name__} like {default!r}, got {value!r}")
    return value


def coerce_parameters(defaults: Mapping[str, Any], given: Mapping[str, Any], where: str = "notebook") -> dict:
    """Check `given` against a notebook's `defaults`: unknown names and wrong types are ConfigError."""
    unknown = [k for k in given if k not in defaults]
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, list(defaults), n=1)
            hints.append(repr(key) + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ConfigError(f"unknown parameter(s) {', '.join(hints)} for {where}: valid are {', '.join(defaults)}")
    out = {}
    for key, value in given.items():
        value = _coerce_one(key, defaults[key], value)
        if not isinstance(value, _PARAMETER_TYPES):
            raise ConfigError(f"parameter {key} = {value!r} of {where} is not a plain literal: pass text or a number")
        out[key] = value
    return out


def kernel_python(kernel_name: str = "python3") -> str:
    """The interpreter a papermill run with `kernel_name` starts (as jupyter_client resolves it)."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(kernel_name)
    except NoSuchKernel:
        raise RunError(
            f"no Jupyter kernel named {kernel_name!r}: run `{sys.executable} -m ipykernel install --sys-prefix`"
        ) from None
    exe = spec.argv[0]
    # jupyter_client starts the launching interpreter for a bare `python` (see KernelManager.format_kernel_cmd).
    if exe in ("python", f"python{sys.version_info[0]}", f"python{sys.version_info[0]}.{sys.version_info[1]}"):
        return sys.executable
    return exe


def runs_root() -> Path:
    """Where new run folders go: :func:`ocrtrain.home.runs_root` (``$OCRTRAIN_HOME/runs``, else
    ``~/ocrtrain/runs``), the folder the dashboard and the CLI use too."""
    from .home import runs_root as root

    return root()


def default_run_dir(name: str, root: Union[str, Path, None] = None) -> Path:
    """A new, not yet existing run folder ``ROOT/YYYYmmdd-HHMMSS-NAME`` (ROOT: :func:`runs_root`)."""
    root = Path(root) if root else runs_root()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = root / f"{stamp}-{name}"
    n = 1
    while path.exists():
        n += 1
        path = root / f"{stamp}-{name}-{n}"
    return path


def run_folder(run_dir: Union[str, Path, None], name: str = "notebook") -> Path:
    """`run_dir` (created if missing), or a new folder from :func:`default_run_dir` when empty.

    Notebooks call this with their ``run_dir`` parameter, so one opened by hand still has a
    folder to write to, while ``run-notebook`` fills it in.
    """
    path = resolve_run(run_dir) if run_dir else default_run_dir(name)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _first_error(nb_path: Path) -> str:
    """`ename: evalue` of the first failed cell of an executed notebook, for a one-line error."""
    try:
        nb = json.loads(nb_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []) or []:
            if out.get("output_type") == "error":
                source = cell.get("source", "")
                first = ("".join(source) if isinstance(source, list) else source).strip().splitlines()[:1]
                return (f"In [{cell.get('execution_count')}] `{first[0] if first else ''}`: "
                        f"{out.get('ename')}: {out.get('evalue')}")
    return ""


def run_notebook(name: str, run_dir: Union[str, Path, None] = None,
                 parameters: Optional[Mapping[str, Any]] = None, *,
                 notebook_dir: Union[str, Path, None] = None, kernel_name: str = "python3",
                 log_output: bool = False, cwd: Union[str, Path, None] = None,
                 callback: Optional[Callback] = None) -> Path:
    """Execute notebook `name` into ``RUN/notebooks/NAME.ipynb`` and return that path.

    `parameters` override the notebook's defaults (text values are parsed into the default's
    type). A notebook with a ``run_dir`` parameter gets the run folder unless one is given.
    The kernel is `kernel_name` resolved to the current interpreter; the run's parameters,
    kernel, timing and outcome go to ``RUN/notebooks/NAME.params.json``. A failing cell raises
    RunError naming the cell and the executed notebook, which keeps the traceback.
    """
    source = notebook_path(name, notebook_dir)
    stem = source.stem
    defaults = read_parameters(source)
    params = coerce_parameters(defaults, dict(parameters or {}), where=str(source))
    run = resolve_run(run_dir) if run_dir else default_run_dir(stem)
    run = run.resolve()
    if RUN_DIR_PARAMETER in defaults and not params.get(RUN_DIR_PARAMETER):
        params[RUN_DIR_PARAMETER] = str(run)
    python = _checked_kernel(kernel_name)
    out_dir = files(run).notebooks
    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / f"{stem}.ipynb"
    record = _record(stem, source, output, params, defaults, kernel_name, python, cwd, run)
    params_file = out_dir / f"{stem}.params.json"
    write_json_atomic(params_file, record)
    emit(callback, Message(f"executing {source.name} into {output}"))
    import papermill
    from papermill.exceptions import PapermillExecutionError

    started = time.monotonic()
    try:
        papermill.execute_notebook(
            str(source), str(output), parameters=params, kernel_name=kernel_name,
            progress_bar=False, log_output=log_output, cwd=str(cwd) if cwd else None,
            # The kernel app's own start-up notes (e.g. "running over TCP") are noise on a terminal.
            extra_arguments=["--IPKernelApp.log_level=ERROR"],
        )
        record["state"] = "finished"
    except PapermillExecutionError as exc:
        record.update(state="failed", error=_first_error(output) or f"{exc.ename}: {exc.evalue}")
        raise RunError(f"notebook {stem} failed ({record['error']}): "
                       f"the executed notebook {output} shows the traceback") from None
    except KeyboardInterrupt:
        record.update(state="canceled", error="interrupted")
        raise
    except Exception as exc:  # kernel died, timed out, or could not start
        record.update(state="failed", error=f"{type(exc).__name__}: {exc}")
        raise RunError(f"notebook {stem} did not run to the end ({record['error']}): "
                       f"see {output} and {params_file}") from exc
    finally:
        record.update(ended=now_iso(), seconds=round(time.monotonic() - started, 3))
        write_json_atomic(params_file, record)
    emit(callback, Message(f"finished {stem} in {record['seconds']:.1f} s: {output}"))
    return output


def _checked_kernel(kernel_name: str) -> str:
    """The kernel's interpreter; RunError when python3 would start another environment's Python."""
    python = kernel_python(kernel_name)
    log.debug("kernel %s starts %s", kernel_name, python)
    # Compare folders, not resolved files: a venv's python links to the system one it was made from.
    if kernel_name == "python3" and Path(python).absolute().parent != Path(sys.executable).absolute().parent:
        raise RunError(
            f"kernel {kernel_name!r} starts {python}, not this interpreter {sys.executable}: "
            f"run `{sys.executable} -m ipykernel install --sys-prefix` so runs use the same packages"
        )
    return python


def _record(stem, source, output, params, defaults, kernel_name, python, cwd, run) -> dict:
    """The NAME.params.json record of one notebook run (state "running" until it ends)."""
    return {
        "notebook": stem,
        "source": str(source),
        "output": str(output),
        "parameters": params,
        "defaults": defaults,
        "effective": {**defaults, **params},
        "kernel": {"name": kernel_name, "python": python},
        "cwd": str(Path(cwd).resolve() if cwd else Path.cwd()),
        "command": "ocrtrain run-notebook " + " ".join(
            [shlex.quote(stem)] + [f"-p {k} {shlex.quote(json.dumps(v) if not isinstance(v, str) else v)}"
                                   for k, v in params.items() if k != RUN_DIR_PARAMETER]
            + [f"--run {shlex.quote(str(run))}"]),
        "state": "running",
        "started": now_iso(),
        "ended": None,
        "seconds": None,
        "error": None,
    }


def strip_outputs(path: Union[str, Path]) -> bool:
    """Remove outputs and execution counts from a notebook in place; True if it changed."""
    path = Path(path)
    nb = json.loads(path.read_text(encoding="utf-8"))
    changed = False
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        if cell.get("outputs") or cell.get("execution_count") is not None:
            cell["outputs"], cell["execution_count"] = [], None
            changed = True
        for key in ("execution", "papermill"):
            if cell.get("metadata", {}).pop(key, None) is not None:
                changed = True
    for key in ("papermill", "widgets"):
        if nb.get("metadata", {}).pop(key, None) is not None:
            changed = True
    if changed:
        write_text_atomic(path, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return changed
