"""The workbench's folder: ``datasets/`` and ``runs/``, by default ocrtrain's home (``$OCRTRAIN_HOME``,
else ``~/ocrtrain``: see :mod:`ocrtrain.home`), so runs started from the CLI or papermill show up.

A run or dataset folder elsewhere is opened by path (:meth:`Workspace.open_run`,
:meth:`Workspace.open_dataset`) and listed beside the home's until the session ends."""
from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Optional, Union

from ocrtrain.errors import InputError
from ocrtrain.home import datasets_root, is_bare_name, runs_root

__all__ = ["Workspace", "default_workdir", "OUTSIDE"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: What a list label says of a folder opened by path from outside the home.
OUTSIDE = "outside home"


def default_workdir() -> Path:
    """ocrtrain's home folder (``$OCRTRAIN_HOME``, else ``~/ocrtrain``), where the CLI and papermill
    put datasets and runs too, whatever folder Jupyter started the kernel in."""
    from ocrtrain.home import home

    return home().resolve()


class Workspace:
    """Paths and listings under one work folder; everything else lives in the engine."""

    def __init__(self, root: Union[str, Path, None] = None):
        self.root = Path(root).expanduser().resolve() if root else default_workdir()
        for sub in (self.datasets_dir, self.runs_dir):
            sub.mkdir(parents=True, exist_ok=True)
        # Folders opened by path outside datasets/ and runs/, newest first: view state for this session.
        self._opened: dict[str, list[Path]] = {"run": [], "dataset": []}

    @property
    def datasets_dir(self) -> Path:
        """ROOT/datasets (with the default root: :func:`ocrtrain.home.datasets_root`)."""
        return self.root / datasets_root().name

    @property
    def runs_dir(self) -> Path:
        """ROOT/runs (with the default root: :func:`ocrtrain.home.runs_root`)."""
        return self.root / runs_root().name

    @staticmethod
    def check_name(name: str, what: str = "name") -> str:
        name = (name or "").strip()
        if not _NAME.match(name):
            raise InputError(
                f"{what} {name!r} is not usable as a folder name: use 1-64 letters, digits, '.', '_' "
                "or '-', starting with a letter or digit"
            )
        return name

    def datasets(self) -> list[Path]:
        """Finished dataset folders (those with a manifest, damaged ones too: the picker names the
        problem), newest first."""
        from ocrtrain.dataset import MANIFEST

        found = [p for p in self.datasets_dir.iterdir()
                 if p.is_dir() and not p.name.startswith(".") and (p / MANIFEST).is_file()]
        outside = [p for p in self._opened["dataset"] if (p / MANIFEST).is_file()]
        return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True) + outside

    def run_folders(self) -> list[Path]:
        """The run folders in runs/ (by name), then those opened by path from elsewhere (newest first)."""
        from ocrtrain.runfolder import is_run_folder, run_folders_in

        return run_folders_in(self.runs_dir) + [p for p in self._opened["run"] if is_run_folder(p)]

    def open_run(self, path: Union[str, Path]) -> Path:
        """The run folder at `path` (anywhere; a bare name means runs/NAME), resolved. One outside
        runs/ is listed by :meth:`run_folders` for the rest of the session. RunError naming the path
        and the fix when it is not a run folder; nothing is remembered then."""
        from ocrtrain.runfolder import require_run_folder

        return self._remember("run", require_run_folder(self._typed(path, self.runs_dir, "run")))

    def open_dataset(self, path: Union[str, Path]) -> Path:
        """The dataset folder at `path` (anywhere; a bare name means datasets/NAME), resolved. One
        outside datasets/ is listed by :meth:`datasets` for the rest of the session. DatasetError
        naming the path and the fix when it is not a dataset folder; nothing is remembered then."""
        from ocrtrain.dataset import require_dataset_folder

        return self._remember("dataset", require_dataset_folder(self._typed(path, self.datasets_dir, "dataset")))

    def is_outside(self, path: Union[str, Path]) -> bool:
        """True for a folder listed because it was opened by path (not in datasets/ or runs/)."""
        path = Path(path)
        return path in self._opened["run"] or path in self._opened["dataset"]

    def mark(self, path: Union[str, Path], label: str) -> str:
        """`label`, saying so and where when the folder was opened from outside the home."""
        return f"{label} · {OUTSIDE} ({Path(path).parent})" if self.is_outside(path) else label

    @staticmethod
    def _typed(text: Union[str, Path], root: Path, kind: str) -> Path:
        text = str(text).strip()
        if not text:
            raise InputError(f"no {kind} folder given: type its path on the server, e.g. /data/{kind}s/NAME")
        if is_bare_name(text) and (root / text).exists():
            return root / text
        return Path(text).expanduser().absolute()

    def _remember(self, kind: str, folder: Path) -> Path:
        folder = folder.resolve()
        home = self.runs_dir if kind == "run" else self.datasets_dir
        opened = self._opened[kind]
        if folder.parent != home and folder not in opened:
            opened.insert(0, folder)
        return folder

    def dataset_summary(self, path: Union[str, Path]) -> str:
        """"name (N lines: a/b/c)" from the manifest, for dropdown labels; a problem is named after it."""
        from ocrtrain.dataset import read_manifest
        from ocrtrain.errors import OcrtrainError

        path = Path(path)
        problem = self.dataset_problem(path)
        try:
            m = read_manifest(path)
            c = m.get("counts", {})
            text = f"{path.name} ({m.get('total', '?')} lines: {c.get('train', 0)}/{c.get('val', 0)}/{c.get('test', 0)})"
        except (OcrtrainError, OSError, AttributeError):
            text = path.name
        text = self.mark(path, text)
        return f"{text} · {problem}" if problem else text

    @staticmethod
    def dataset_problem(path: Union[str, Path]) -> str:
        """Why the dataset cannot be trained on as it is ("" when it can): a damaged manifest, no
        train lines, or no val lines (training validates on them)."""
        from ocrtrain.dataset import read_manifest
        from ocrtrain.errors import OcrtrainError
        from ocrtrain.lmdb_io import is_lmdb

        try:
            counts = read_manifest(path).get("counts")
        except (OcrtrainError, OSError):
            return "damaged manifest"
        if not isinstance(counts, dict):
            return "damaged manifest"
        if not counts.get("train") or not is_lmdb(Path(path) / "train"):
            return "no train lines"
        if not counts.get("val") or not is_lmdb(Path(path) / "val"):
            return "no val lines"
        return ""

    def new_name(self, prefix: str, parent: Optional[Path] = None) -> str:
        """A fresh `prefix-YYYYmmdd-HHMMSS[-n]` not yet used under `parent`."""
        parent = parent or self.root
        base = f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"
        name, n = base, 1
        while (parent / name).exists():
            n += 1
            name = f"{base}-{n}"
        return name
