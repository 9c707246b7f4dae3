"""The front end lives under the package's name, ``ocrtrain.workbench`` (#13): a user's own
``widgets.py`` (or ``widgets/``) in the folder a kernel starts in comes first on ``sys.path`` and
used to shadow the top-level ``widgets`` package the dashboard imported."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ipywidgets")

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "notebooks" / "dashboard.ipynb"

# Runs the dashboard notebook's code cells in order, as its kernel would, in the stray file's folder.
_RUN_CELLS = """
import json, sys
cells = [c for c in json.load(open(sys.argv[1], encoding="utf-8"))["cells"] if c["cell_type"] == "code"]
for cell in cells:
    exec(compile("".join(cell["source"]), sys.argv[1], "exec"), globals())
import ocrtrain.workbench
print(json.dumps([ocrtrain.workbench.__file__, sorted(m for m in sys.modules if m.split(".")[0] == "widgets")]))
"""


def _stray_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "my_project"
    folder.mkdir()
    (folder / "widgets.py").write_text('raise ImportError("the user\'s own widgets.py was imported")\n')
    return folder


def _env(tmp_path: Path) -> dict:
    # The checkout's ocrtrain, after the cwd, as an installed copy would be.
    return {**os.environ, "PYTHONPATH": str(ROOT), "OCRTRAIN_HOME": str(tmp_path / "home")}


def test_a_stray_widgets_py_does_not_shadow_the_dashboard(tmp_path):
    folder = _stray_folder(tmp_path)
    proc = subprocess.run([sys.executable, "-c", _RUN_CELLS, str(DASHBOARD)], cwd=folder, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    where, loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert Path(where).is_relative_to(ROOT / "ocrtrain" / "workbench")
    assert loaded == []


def test_the_stray_file_is_first_on_the_path(tmp_path):
    # The check above can fail: from that folder, a top-level `widgets` is the user's file.
    folder = _stray_folder(tmp_path)
    proc = subprocess.run([sys.executable, "-c", "import widgets"], cwd=folder, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "the user's own widgets.py was imported" in proc.stderr
