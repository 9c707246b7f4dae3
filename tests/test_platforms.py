"""Issue 13 point 7: the engine outside Linux and in containers.

Windows and macOS are not run here, so what they lack is taken away from a Linux interpreter:
no ``fcntl``/``termios``/``resource``, no ``os.sched_getaffinity``, no symlinks, SIGTERM that
kills. CPU counts follow a container's quota, for torch's threads too.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ocrtrain import easyocr_interop, runfolder, runs, sysinfo
from ocrtrain.jobs import job_token

ROOT = Path(__file__).resolve().parents[1]

# Third-party packages load first (torch may use fcntl itself on Linux; on Windows it does not),
# then the POSIX-only modules are hidden and every ocrtrain module is imported and exercised.
_WITHOUT_POSIX = r"""
import ast, importlib, json, os, sys, tempfile
from pathlib import Path
root = Path(sys.argv[1]) / "ocrtrain"
names = sorted(".".join(p.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__")
               for p in root.rglob("*.py") if p.name != "__main__.py")  # __main__ would run the CLI
third = set()
for p in root.rglob("*.py"):
    for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            third |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            third.add(node.module)
for name in sorted(third):
    if not name.startswith("ocrtrain"):
        try:
            importlib.import_module(name)
        except Exception:
            pass
for hidden in ("fcntl", "termios", "resource", "pwd", "grp", "msvcrt"):
    sys.modules[hidden] = None
del os.sched_getaffinity
for name in names:
    importlib.import_module(name)
from ocrtrain import fsutil, jobs, sysinfo
from ocrtrain.cli import main
assert fsutil.fcntl is None
with tempfile.TemporaryDirectory() as tmp:
    with fsutil.file_lock(Path(tmp) / "x.lock"):
        pass
    code = main(["runs", tmp])
print(json.dumps({"modules": len(names), "runs": code, "cpus": sysinfo.available_cpus(),
                  "alive": jobs.pid_alive(os.getpid()), "token": jobs.job_token(os.getpid())}))
"""


def test_engine_imports_and_runs_without_posix_only_modules(tmp_path):
    out = subprocess.run([sys.executable, "-c", _WITHOUT_POSIX, str(ROOT)], capture_output=True, text=True,
                         cwd=tmp_path, env={**os.environ, "OCRTRAIN_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)},
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["modules"] > 80 and result["runs"] == 0 and result["cpus"] >= 1
    assert result["alive"] and result["token"]


@pytest.fixture
def job_like(tmp_path):
    """A live process whose command line is a --job of run folder RUN, and the run's status naming it."""
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "--job", str(run_dir)])
    try:
        runfolder.create_run(run_dir, {"format": "ocrtrain-run/1", "config": {}, "data": "/d"})
        runfolder.update_status(run_dir, state="running", pid=proc.pid, signals=True, job=job_token(proc.pid))
        yield run_dir, proc
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("sigterm_stops", [True, False])
def test_cancel_sends_sigterm_only_where_it_is_a_cooperative_stop(job_like, monkeypatch, sigterm_stops):
    run_dir, proc = job_like
    monkeypatch.setattr(runs, "SIGTERM_STOPS", sigterm_stops)
    runs.cancel(run_dir)
    assert runfolder.cancel_requested(run_dir)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    # POSIX: the job's handler turns SIGTERM into a stop (this stand-in just dies of it). Windows:
    # SIGTERM would be TerminateProcess, so the job is left to see the cancel request.
    assert (proc.poll() is not None) == sigterm_stops


def test_torch_threads_follow_the_cpu_quota(monkeypatch):
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    try:
        monkeypatch.setattr(sysinfo, "available_cpus", lambda: before + 1)
        assert sysinfo.limit_torch_threads() is None and torch.get_num_threads() == before
        torch.set_num_threads(2)
        monkeypatch.setattr(sysinfo, "available_cpus", lambda: 1)
        monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the user's choice wins
        assert sysinfo.limit_torch_threads() is None and torch.get_num_threads() == 2
        monkeypatch.delenv("OMP_NUM_THREADS")
        assert sysinfo.limit_torch_threads() == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_cli_train_runs_torch_on_the_quota(tiny_dataset, tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    from ocrtrain.cli import main

    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    monkeypatch.setattr(sysinfo, "available_cpus", lambda: 1)
    torch.set_num_threads(2)
    try:
        assert main(["train", "--data", str(tiny_dataset), "--run", str(tmp_path / "run"), "--max-steps", "1",
                     "--batch-size", "4", "--val-limit", "4", "--val-interval", "1", "--workers", "0",
                     "--warmup-steps", "0", "--freeze-feature-extractor", "--device", "cpu"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_reader_folder_copies_where_symlinks_are_not_allowed(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError(1314, "A required privilege is not held by the client")  # Windows' answer

    source = tmp_path / "english_g2.pth"
    source.write_bytes(b"weights")
    monkeypatch.setattr(os, "symlink", refuse)
    easyocr_interop._link(source, tmp_path / "copy.pth")
    assert (tmp_path / "copy.pth").read_bytes() == b"weights" and not (tmp_path / "copy.pth").is_symlink()
