"""The workbench's folder: ``datasets/`` and ``runs/``, by default ocrtrain's home (``$OCRTRAIN_HOME``,
else ``~/ocrtrain``: see :mod:`ocrtrain.home`), so runs started from the CLI or papermill show up."""
from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Optional, Union

from ocrtrain.errors import InputError
from ocrtrain.home import datasets_root, runs_root

__all__ = ["Workspace", "default_workdir"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


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
        return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)

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
