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
    for folder in ("ocrtrain", "notebooks"):
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist"), str(src)], check=True, capture_output=True, timeout=300)
    wheel, = (tmp_path / "dist").glob("ocrtrain-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        zf.extractall(site)
    assert {f"ocrtrain/notebook_files/{n}.ipynb" for n in list_notebooks()} <= set(names)
    # The front end ships inside the package (#13), not as a top-level `widgets` a user's file shadows.
    assert {"ocrtrain/workbench/__init__.py", "ocrtrain/workbench/app.py"} <= set(names)
    assert not any(n.startswith("widgets/") for n in names)
    # From the unpacked wheel (no checkout next to it), the engine lists the packaged notebooks.
    code = ("import ocrtrain, ocrtrain.notebooks as n, json; "
            "print(json.dumps([ocrtrain.__file__, str(n.NOTEBOOK_DIR), n.list_notebooks()]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=site, capture_output=True, text=True, check=True)
    module, folder, listed = json.loads(out.stdout)
    assert Path(module).is_relative_to(site)
    assert Path(folder) == site / "ocrtrain" / "notebook_files"
    assert listed == list_notebooks()


def test_lab_and_dashboard_refuse_a_home_they_cannot_write(tmp_path, monkeypatch, capsys):
    """#13: a home that is a file, lies under a file or is read-only is an error naming it and the fix,
    before any server starts (it used to be mkdir's traceback)."""
    import pytest

    from ocrtrain.cli import dashboard, main

    def no_server(*args, **kwargs):
        raise AssertionError("a server was started")

    monkeypatch.setattr(dashboard, "_serve", no_server)
    afile = tmp_path / "afile"
    afile.write_text("")
    for command in (["lab", "--no-browser"], ["dashboard"]):
        assert main([*command, "--home", str(afile)]) == 1
        assert f"the ocrtrain home {afile} is a file, not a folder: give a folder you can write: " \
               f"`ocrtrain {command[0]} --home DIR`" in capsys.readouterr().err
    assert main(["lab", "--no-browser", "--home", str(afile / "home")]) == 1
    assert f"the ocrtrain home {afile / 'home'} cannot be created (Not a directory)" in capsys.readouterr().err
    readonly = tmp_path / "readonly"
    readonly.mkdir()
    real_access = os.access
    monkeypatch.setattr(dashboard.os, "access", lambda path, mode: Path(path) != readonly and real_access(path, mode))
    assert main(["lab", "--no-browser", "--home", str(readonly)]) == 1
    assert f"the ocrtrain home {readonly} is not writable by this user" in capsys.readouterr().err
    home = tmp_path / "home"
    home.mkdir()
    (home / "notebooks").write_text("")
    assert main(["lab", "--no-browser", "--home", str(home)]) == 1
    assert "start with `ocrtrain lab --no-notebooks`" in capsys.readouterr().err
    with pytest.raises(AssertionError, match="a server was started"):  # the same home is fine without the copy
        main(["lab", "--no-browser", "--no-notebooks", "--home", str(home)])
