"""Where datasets and runs live: one rule for the CLI, the notebooks and the dashboard.

The home folder is ``$OCRTRAIN_HOME`` when set, else ``~/ocrtrain``. It holds::

    HOME/datasets/NAME/   dataset folders (``ocrtrain synth/import``, the Dataset tab)
    HOME/runs/NAME/       run folders (``ocrtrain train``, ``run-notebook``, the Train tab)
    HOME/docsets/NAME/    document sets: your own pages (``ocrtrain pages import``, the Transcribe tab)

A bare name (``receipts``) is looked up under these roots; anything that looks like a path
(``./receipts``, ``runs/r1``, ``/data/x``, ``~/x``) is used as given, so a folder anywhere opens
in the CLI and in the dashboard alike (there typed in the Monitor's "open run" field or behind a
picker's folder button, and listed beside the home's folders for the session).

>>> runs_root() == home() / "runs", resolve_run("r1") == runs_root() / "r1", str(resolve_run("./r1"))
(True, True, 'r1')
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Union

__all__ = ["HOME_ENV", "DEFAULT_HOME", "DOCSETS_DIR", "home", "runs_root", "datasets_root", "docsets_root",
           "templates_root", "cache_root", "is_bare_name", "resolve_run", "resolve_dataset", "resolve_docset",
           "resolve_model_source"]

#: The environment variable naming the home folder.
HOME_ENV = "OCRTRAIN_HOME"
#: The environment variable naming the cache folder (default HOME/.cache).
CACHE_ENV = "OCRTRAIN_CACHE"
#: The home folder when the variable is not set.
DEFAULT_HOME = "~/ocrtrain"
#: The home's sub-folder for document sets.
DOCSETS_DIR = "docsets"

PathLike = Union[str, Path]


def home() -> Path:
    """``$OCRTRAIN_HOME``, else ``~/ocrtrain`` (user-expanded, not created)."""
    return Path(os.environ.get(HOME_ENV) or DEFAULT_HOME).expanduser()


def runs_root() -> Path:
    """``HOME/runs``: where new run folders go and where the dashboard's Monitor looks."""
    return home() / "runs"


def datasets_root() -> Path:
    """``HOME/datasets``: where new dataset folders go and where dataset pickers look."""
    return home() / "datasets"


def docsets_root() -> Path:
    """``HOME/docsets``: document sets (page images and their lines) and where the Transcribe tab looks."""
    return home() / DOCSETS_DIR


def cache_root() -> Path:
    """``$OCRTRAIN_CACHE``, else ``HOME/.cache``: data ocrtrain can regenerate (e.g. the general
    validation set), shared by every run."""
    return Path(os.environ.get(CACHE_ENV) or home() / ".cache").expanduser()


def templates_root() -> Path:
    """``HOME/templates``: the user's saved training templates."""
    return home() / "templates"


def is_bare_name(text: PathLike) -> bool:
    """True for a plain folder name (no separator, not ``.``/``..``/``~``-prefixed, not absolute)."""
    text = str(text)
    return bool(text) and text not in (".", "..") and not text.startswith(("~", ".")) \
        and os.sep not in text and "/" not in text and not (os.altsep and os.altsep in text)


def _resolve(text: PathLike, root: Path) -> Path:
    if isinstance(text, Path) or not is_bare_name(text):
        return Path(text).expanduser()
    under = root / str(text)
    if under.exists() or not Path(str(text)).exists():
        return under
    return Path(str(text))  # a folder of that name in the working directory, as before


def resolve_run(name_or_path: PathLike) -> Path:
    """A run folder: a bare name under :func:`runs_root` (or in the working directory when only
    there), a path as given. The folder need not exist (callers say what is missing).

    >>> resolve_run("/somewhere/r1").as_posix()
    '/somewhere/r1'
    """
    return _resolve(name_or_path, runs_root())


def resolve_dataset(name_or_path: PathLike) -> Path:
    """A dataset folder: a bare name under :func:`datasets_root` (or in the working directory when
    only there), a path as given.

    >>> resolve_dataset("/data/receipts").as_posix()
    '/data/receipts'
    """
    return _resolve(name_or_path, datasets_root())


def resolve_docset(name_or_path: PathLike) -> Path:
    """A document set folder: a bare name under :func:`docsets_root` (or in the working directory
    when only there), a path as given."""
    return _resolve(name_or_path, docsets_root())


def resolve_model_source(text: str) -> str:
    """What a user typed as a model source: a bare name of a run under :func:`runs_root` (with no
    file or folder of that name here) becomes the run's path; origin specs and paths pass unchanged.

    >>> resolve_model_source("english_g2")
    'english_g2'
    """
    from .runfolder import is_run_folder

    if is_bare_name(text) and not Path(text).exists() and is_run_folder(runs_root() / text):
        return str(runs_root() / text)
    return text
