"""Deleting and renaming run and dataset folders, only inside the work folder they belong to.

Every call names the folder and the root it must sit in directly (``ROOT/runs`` or
``ROOT/datasets``): a path elsewhere, a symbolic link, the root itself or a folder that is not
a run (or dataset) is refused, so a mistyped or crafted path never deletes anything else. A run
that is queued or running cannot be deleted or renamed (its job writes there), nor can a dataset
an active run trains or validates on. A delete first renames the folder to a hidden
``.deleting-*`` name in the same root (one atomic step: listings stop showing it at once), then
removes it; a delete cut short leaves only such a hidden folder, removed by the next delete.

>>> # delete_run("~/ocrtrain/runs/brave-otter", "~/ocrtrain/runs")
>>> # rename_dataset("~/ocrtrain/datasets/import-20261203", "receipts-v2", "~/ocrtrain/datasets")
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Callable, Optional, Union

from . import runfolder
from .dataset import MANIFEST, SPLITS, is_dataset_folder
from .errors import InputError, RunError

__all__ = ["delete_run", "rename_run", "delete_dataset", "rename_dataset", "runs_using", "check_folder_name"]

PathLike = Union[str, Path]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_TRASH = ".deleting-"


def check_folder_name(name: str, what: str = "name") -> str:
    """`name` stripped, if usable as a run or dataset folder name (InputError naming the rule otherwise)."""
    name = (name or "").strip()
    if not _NAME.match(name):
        raise InputError(f"{what} {name!r} is not usable as a folder name: use 1-64 letters, digits, '.', '_' "
                         "or '-', starting with a letter or digit")
    return name


def _inside(path: PathLike, root: PathLike, what: str, is_kind: Callable[[Path], bool]) -> tuple[Path, Path]:
    """(folder, root), resolved, when `path` is a real `what` folder directly inside `root`."""
    root = Path(root).expanduser().resolve()
    raw = Path(path).expanduser()
    if not raw.is_absolute():
        raw = root / raw
    if raw.is_symlink():
        raise InputError(f"{raw} is a symbolic link: delete or rename the folder it points to by hand")
    folder = raw.resolve()
    if folder.parent != root or folder.name.startswith("."):
        raise InputError(f"{folder} is not a {what} folder of {root}: only folders directly inside the work "
                         f"folder's {root.name}/ are deleted or renamed here")
    if not folder.is_dir() or not is_kind(folder):
        raise InputError(f"{folder} is not a {what} folder (no {what} files in it): nothing was changed")
    return folder, root


def _remove(folder: Path, root: Path) -> None:
    for stale in root.glob(f"{_TRASH}*"):  # leftovers of a delete cut short
        shutil.rmtree(stale, ignore_errors=True)
    trash = root / f"{_TRASH}{folder.name}-{os.getpid()}"
    try:
        os.rename(folder, trash)
    except OSError as exc:
        raise InputError(f"cannot delete {folder} ({exc}): check the folder's permissions") from None
    shutil.rmtree(trash, ignore_errors=True)


def _rename(folder: Path, root: Path, new_name: str, what: str) -> Path:
    target = root / check_folder_name(new_name, f"new {what} name")
    if target.exists() or target.is_symlink():
        raise InputError(f"{what} {target.name!r} already exists in {root}: choose another name")
    try:
        os.rename(folder, target)
    except OSError as exc:
        raise InputError(f"cannot rename {folder} to {target.name} ({exc}): check the folder's permissions") from None
    return target


def _is_dataset(folder: Path) -> bool:
    """Ours (a manifest of our format), or a damaged one of ours: a manifest.json beside LMDB splits."""
    from .lmdb_io import is_lmdb

    return is_dataset_folder(folder) or ((folder / MANIFEST).is_file()
                                         and any(is_lmdb(folder / s) for s in SPLITS))


def _check_idle(folder: Path) -> None:
    from .runs import Run

    st = Run(folder).status()
    if st["state"] in ("queued", "running"):
        raise RunError(f"run {folder.name} is {st['state']} (pid {st.get('pid')}): cancel it on the Monitor tab "
                       f"(or `ocrtrain cancel {folder}`) and wait until it stops, then delete or rename it")


def delete_run(run_dir: PathLike, runs_root: PathLike) -> Path:
    """Delete a run folder that is not queued or running; returns the path that was deleted."""
    folder, root = _inside(run_dir, runs_root, "run", runfolder.is_run_folder)
    _check_idle(folder)
    _remove(folder, root)
    return folder


def rename_run(run_dir: PathLike, new_name: str, runs_root: PathLike) -> Path:
    """Rename a run folder that is not queued or running; returns the new path."""
    folder, root = _inside(run_dir, runs_root, "run", runfolder.is_run_folder)
    _check_idle(folder)
    return _rename(folder, root, new_name, "run")


def runs_using(dataset: PathLike, runs_root: Optional[PathLike], active_only: bool = True) -> list[str]:
    """Names of the runs under `runs_root` that train or validate on `dataset` (queued/running ones only,
    unless `active_only` is False)."""
    from .runs import Run

    if runs_root is None:
        return []
    dataset = Path(dataset).resolve()
    found = []
    for run_dir in runfolder.run_folders_in(runs_root):
        try:
            record = runfolder.read_config(run_dir)
            if active_only and not Run(run_dir).is_active():
                continue
        except (RunError, OSError):
            continue
        if str(dataset) in _paths_in(record.get("data")):
            found.append(run_dir.name)
    return found


def _paths_in(data) -> set[str]:
    """Resolved folder paths named anywhere in a run's data record (a path, or a mixture spec)."""
    out: set[str] = set()
    if isinstance(data, str):
        out.add(str(Path(data).resolve()))
    elif isinstance(data, dict):
        for value in data.values():
            out |= _paths_in(value)
    elif isinstance(data, (list, tuple)):
        for value in data:
            out |= _paths_in(value)
    return out


def _check_unused(folder: Path, runs_root: Optional[PathLike], verb: str) -> None:
    users = runs_using(folder, runs_root)
    if users:
        raise RunError(f"dataset {folder.name} is in use by the active run(s) {', '.join(users)}: cancel them or "
                       f"wait until they end, then {verb} it")


def delete_dataset(path: PathLike, datasets_root: PathLike, runs_root: Optional[PathLike] = None) -> Path:
    """Delete a dataset folder no active run (under `runs_root`) uses; returns the path deleted."""
    folder, root = _inside(path, datasets_root, "dataset", _is_dataset)
    _check_unused(folder, runs_root, "delete")
    _remove(folder, root)
    return folder


def rename_dataset(path: PathLike, new_name: str, datasets_root: PathLike,
                   runs_root: Optional[PathLike] = None) -> Path:
    """Rename a dataset folder no active run uses; returns the new path. Finished runs keep the old
    path in their records (their Compare/parity defaults then ask for the dataset again)."""
    folder, root = _inside(path, datasets_root, "dataset", _is_dataset)
    _check_unused(folder, runs_root, "rename")
    return _rename(folder, root, new_name, "dataset")
