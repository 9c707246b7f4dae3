"""The workbench's folder: ``datasets/`` and ``runs/`` (train templates live where the engine keeps them)."""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Optional, Union

from ocrtrain.errors import InputError

__all__ = ["Workspace", "default_workdir"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def default_workdir() -> Path:
    """$OCRTRAIN_HOME, else ./workspace; in a checkout the repository's workspace/ (where the CLI
    and papermill put runs too), whatever folder Jupyter started the kernel in."""
    if os.environ.get("OCRTRAIN_HOME"):
        return Path(os.environ["OCRTRAIN_HOME"]).expanduser().resolve()
    from ocrtrain.notebooks import runs_root

    return runs_root().parent.resolve()


class Workspace:
    """Paths and listings under one work folder; everything else lives in the engine."""

    def __init__(self, root: Union[str, Path, None] = None):
        self.root = Path(root).expanduser().resolve() if root else default_workdir()
        for sub in ("datasets", "runs"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    @property
    def datasets_dir(self) -> Path:
        return self.root / "datasets"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

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
        """Finished dataset folders (those with a manifest), newest first."""
        found = [p for p in self.datasets_dir.iterdir()
                 if p.is_dir() and not p.name.startswith(".") and (p / "manifest.json").is_file()]
        return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)

    def dataset_summary(self, path: Union[str, Path]) -> str:
        """"name (N lines: a/b/c)" from the manifest, for dropdown labels."""
        path = Path(path)
        try:
            m = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
            c = m.get("counts", {})
            return f"{path.name} ({m.get('total', '?')} lines: {c.get('train', 0)}/{c.get('val', 0)}/{c.get('test', 0)})"
        except (OSError, ValueError):
            return path.name

    def new_name(self, prefix: str, parent: Optional[Path] = None) -> str:
        """A fresh `prefix-YYYYmmdd-HHMMSS[-n]` not yet used under `parent`."""
        parent = parent or self.root
        base = f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"
        name, n = base, 1
        while (parent / name).exists():
            n += 1
            name = f"{base}-{n}"
        return name
