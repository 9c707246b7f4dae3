"""A missing trdg (or a missing dependency of it) is an error naming the command that installs it.

The interpreter is made blind to the package with a meta-path wrapper, so ``importlib`` sees it as
not installed (find_spec returns None, import raises ModuleNotFoundError) exactly as in a fresh venv.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

HIDE = textwrap.dedent("""
    import sys

    class Hide:
        def __init__(self, inner, names):
            self.inner, self.names = inner, names

        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in self.names:
                return None
            find = getattr(self.inner, "find_spec", None)
            return find(name, path, target) if find else None

        def __getattr__(self, attr):
            return getattr(self.inner, attr)

    hidden = set(sys.argv[1].split(","))
    if sys.argv[2] == "guard":  # the engine loaded, then the package is gone
        from ocrtrain.errors import InputError
        from ocrtrain.synth import _trdg
        for name in [m for m in sys.modules if m.split(".")[0] in hidden]:
            del sys.modules[name]
    sys.meta_path[:] = [Hide(f, hidden) for f in sys.meta_path]
    if sys.argv[2] == "guard":
        try:
            _trdg()
        except InputError as exc:
            sys.exit(f"InputError: {exc}")
    else:
        from ocrtrain.cli import main
        sys.exit(main(sys.argv[2:]))
""")


def _cli(hidden: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", HIDE, hidden, *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("fonts", ["mono", "trdg"])
def test_synth_without_trdg_names_the_install_command(tmp_path, fonts):
    out = _cli("trdg", "synth", "--out", str(tmp_path / "ds"), "--count", "8", "--workers", "1",
               "--render-fonts", fonts)
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert "pip install --no-deps trdg==1.8.0" in out.stderr
    assert not (tmp_path / "ds" / "manifest.json").exists()


def test_missing_trdg_dependency_names_the_synth_extra():
    # trdg's renderer imports OpenCV; the engine imports it too, so it is hidden after ocrtrain.synth loaded.
    out = _cli("cv2", "guard")
    assert out.returncode == 1, out.stderr
    assert "InputError: trdg needs the package that provides 'cv2'" in out.stderr
    assert "pip install 'ocrtrain[synth]'" in out.stderr


def test_import_guard_returns_trdgs_generator():
    from ocrtrain.synth import _trdg

    generator, fonts = _trdg()
    assert generator.__module__ == "trdg.data_generator" and fonts.is_dir()


@pytest.mark.parametrize("hidden, command", [("jupyterlab", "lab"), ("voila", "dashboard")])
def test_lab_and_dashboard_without_their_server_name_the_dashboard_extra(tmp_path, hidden, command):
    """#13: a clear one-paragraph error and exit 1, not a traceback, and nothing is started or made."""
    out = _cli(hidden, command, "--home", str(tmp_path / "home"), *(["--no-browser"] if command == "lab" else []))
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert out.stderr.startswith(f"ocrtrain {command}: error: {hidden} is not installed, and `ocrtrain {command}`")
    assert "pip install 'ocrtrain[dashboard]'" in out.stderr and "make setup" in out.stderr
    assert not (tmp_path / "home").exists()
