"""`ocrtrain dashboard` serves the real dashboard with Voila, `ocrtrain lab` starts JupyterLab on the
ocrtrain home, and a built wheel carries the notebooks where the engine finds them."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

from browser_support import ROOT, free_port, serve_dashboard, serving
from ocrtrain.cli.dashboard import CULL_IDLE, voila_command
from ocrtrain.notebooks import NOTEBOOK_DIR, list_notebooks


def test_voila_command_has_the_culling_and_loopback_flags():
    cmd = voila_command(NOTEBOOK_DIR / "dashboard.ipynb", port=9001)
    assert cmd[:3] == [sys.executable, "-m", "voila"]
    assert {"--port=9001", "--Voila.ip=127.0.0.1", "--no-browser",
            f"--MappingKernelManager.cull_idle_timeout={CULL_IDLE}",
            "--MappingKernelManager.cull_interval=60"} <= set(cmd)
    make = (ROOT / "Makefile").read_text()
    assert "$(BIN)/ocrtrain dashboard --port=$(PORT)" in make
    assert "voila " not in make, "make dashboard goes through `ocrtrain dashboard`"


def test_dashboard_serves_the_workbench(tmp_path):
    log = tmp_path / "dashboard.log"
    with serve_dashboard(tmp_path / "home", log, env=dict(os.environ), cwd=tmp_path) as url:
        # A GET renders the notebook in a kernel: the page carries the Workbench's widget view.
        with urllib.request.urlopen(url, timeout=180) as resp:
            status, html = resp.status, resp.read().decode("utf-8", "replace")
    assert status == 200
    assert "application/vnd.jupyter.widget-view+json" in html, log.read_text()[-2000:]
    assert "Traceback" not in html and "There was an error when executing cell" not in html
    assert (tmp_path / "home").is_dir()
    assert "cull_idle_timeout=600" in log.read_text()


def test_lab_opens_on_the_home_with_the_notebooks(tmp_path):
    home, port, token = tmp_path / "home", free_port(), "ocrtrain-test"
    command = [sys.executable, "-m", "ocrtrain", "lab", "--no-browser", "--port", str(port), "--home", str(home),
               "--", f"--IdentityProvider.token={token}", *(["--allow-root"] if os.geteuid() == 0 else [])]
    with serving(command, port, tmp_path / "lab.log", dict(os.environ), cwd=tmp_path, timeout=90,
                 what="ocrtrain lab") as url:
        with urllib.request.urlopen(f"{url}api/contents/notebooks?token={token}", timeout=60) as resp:
            listing = json.loads(resp.read())
    names = sorted(item["name"] for item in listing["content"])
    assert names == sorted(f"{n}.ipynb" for n in list_notebooks())
    assert (home / "notebooks" / "dashboard.ipynb").read_bytes() == (NOTEBOOK_DIR / "dashboard.ipynb").read_bytes()


def test_lab_keeps_the_users_notebooks(tmp_path):
    from ocrtrain.cli.dashboard import copy_notebooks

    mine = tmp_path / "notebooks" / "dashboard.ipynb"
    mine.parent.mkdir()
    mine.write_text("{}")
    made = copy_notebooks(mine.parent)
    assert mine.read_text() == "{}" and mine not in made
    assert len(made) == len(list_notebooks()) - 1


def test_wheel_ships_the_notebooks_where_the_engine_finds_them(tmp_path):
    src = tmp_path / "src"  # a copy: building in the checkout would leave build/ behind
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for folder in ("ocrtrain", "widgets", "notebooks"):
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist"), str(src)], check=True, capture_output=True, timeout=300)
    wheel, = (tmp_path / "dist").glob("ocrtrain-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        zf.extractall(site)
    assert {f"ocrtrain/notebook_files/{n}.ipynb" for n in list_notebooks()} <= set(names)
    # From the unpacked wheel (no checkout next to it), the engine lists the packaged notebooks.
    code = ("import ocrtrain, ocrtrain.notebooks as n, json; "
            "print(json.dumps([ocrtrain.__file__, str(n.NOTEBOOK_DIR), n.list_notebooks()]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=site, capture_output=True, text=True, check=True)
    module, folder, listed = json.loads(out.stdout)
    assert Path(module).is_relative_to(site)
    assert Path(folder) == site / "ocrtrain" / "notebook_files"
    assert listed == list_notebooks()
