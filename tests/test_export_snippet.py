"""The Reader snippet an export shows runs as pasted against the real easyocr, for a cropped line
(``recognize``) and a full page (``readtext``, CRAFT from the offline package), with nothing to
download; ``ocrtrain export --install`` puts the bundle where a bare
``easyocr.Reader(['en'], recog_network=NAME)`` finds it (HOME pointed at a temporary folder)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from conftest import draw_line
from ocrtrain.errors import ConfigError
from ocrtrain.export import DETECTOR_FILE, MODEL_SOURCE, easyocr_module_path, export_easyocr, install_bundle

LINE = "TOTAL 1234,56"
PAGE = ["KIWI MINIPRIS", "MELK 1L 21,90", "TOTAL 99,90"]
#: Any download would go through this dead proxy and fail instead of reaching the network.
OFFLINE = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
           "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}


def _images(folder: Path) -> None:
    draw_line(LINE, height=64, font_size=44).save(folder / "line.png")
    page = Image.new("L", (900, 120 + 110 * len(PAGE)), 255)
    for i, text in enumerate(PAGE):
        page.paste(draw_line(text, height=80, font_size=56), (60, 60 + 110 * i))
    page.convert("RGB").save(folder / "page.jpg", quality=95)


def _env(home: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("EASYOCR_MODULE_PATH", "MODULE_PATH")}
    return {**env, **OFFLINE, "HOME": str(home), **extra}


def _exec(snippet: str, cwd: Path, env: dict) -> str:
    """Run the snippet exactly as printed, as a user pasting it into a fresh Python would."""
    out = subprocess.run([sys.executable, "-c", snippet], cwd=cwd, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text).upper()


def _check_readings(stdout: str) -> None:
    crop, page = stdout.strip().splitlines()[-2:]
    assert _squash(LINE) in _squash(crop), crop
    found = re.findall(r"'([^']*)'", page)  # the texts of readtext's (box, text, confidence) tuples
    assert sum(any(_squash(t) in _squash(f) or _squash(f) in _squash(t) for f in found if len(f) > 3)
               for t in PAGE) >= 2, page


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle")
    return out, export_easyocr("english_g2", "snippet_export_test", out)


def test_snippet_runs_as_pasted_for_a_crop_and_a_page(bundle, tmp_path):
    out, result = bundle
    _images(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    stdout = _exec(result["snippet"], tmp_path, _env(home))
    _check_readings(stdout)
    assert not (home / ".EasyOCR").exists(), "the snippet with directories uses no EasyOCR home folder"
    assert sorted(p.name for p in out.iterdir()) == [f"snippet_export_test.{e}" for e in ("pth", "py", "yaml")]


def test_export_install_then_bare_reader(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = _env(home)
    cli = subprocess.run([sys.executable, "-m", "ocrtrain", "export", "english_g2", "--name", "installed_test",
                          "--install"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert cli.returncode == 0, cli.stderr[-3000:]
    root = home / ".EasyOCR"
    assert (root / "model" / "installed_test.pth").is_file() and (root / "model" / DETECTOR_FILE).is_file()
    assert (root / "user_network" / "installed_test.yaml").is_file()
    assert (root / "user_network" / "installed_test.py").read_text() == MODEL_SOURCE
    snippet = cli.stdout.split("load it from anywhere with:")[1].strip()
    assert "_directory=" not in snippet and "recog_network='installed_test'" in snippet
    _images(tmp_path)
    _check_readings(_exec(snippet, tmp_path, env))


@pytest.mark.parametrize("variables", [{"EASYOCR_MODULE_PATH": "a"}, {"MODULE_PATH": "b"},
                                       {"EASYOCR_MODULE_PATH": "a", "MODULE_PATH": "b"}, {}])
def test_module_path_is_the_one_easyocr_uses(tmp_path, variables, monkeypatch):
    env = _env(tmp_path, **{k: str(tmp_path / v) for k, v in variables.items()})
    code = "import easyocr.config, sys; sys.stdout.write(easyocr.config.MODULE_PATH)"
    theirs = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    for key in ("EASYOCR_MODULE_PATH", "MODULE_PATH", "HOME"):
        monkeypatch.delenv(key, raising=False)
        if key in env:
            monkeypatch.setenv(key, env[key])
    assert easyocr_module_path() == Path(theirs).expanduser()


def test_install_respects_easyocr_module_path_and_refuses_a_foreign_network(bundle, tmp_path, monkeypatch):
    out, _ = bundle
    monkeypatch.setenv("EASYOCR_MODULE_PATH", str(tmp_path / "easyocr"))
    result = install_bundle(out, "snippet_export_test")
    assert Path(result["files"]["pth"]) == tmp_path / "easyocr" / "model" / "snippet_export_test.pth"
    detector = Path(result["detector"])
    stamp = detector.stat().st_mtime_ns
    install_bundle(out, "snippet_export_test")  # a re-install replaces our bundle, keeps the same detector
    assert detector.stat().st_mtime_ns == stamp
    (tmp_path / "easyocr" / "user_network" / "snippet_export_test.py").write_text("import torch\n")
    with pytest.raises(ConfigError, match="did not write"):
        install_bundle(out, "snippet_export_test")
    with pytest.raises(Exception, match="incomplete"):
        install_bundle(tmp_path, "snippet_export_test")
