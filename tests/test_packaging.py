"""requirements.txt, environment.yml and binder/environment.yml name the same packages."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TEST_ONLY = {"pytest", "pytest-timeout", "playwright"}


def _name(spec: str) -> str:
    return re.split(r"[<>=!~\[ ;]", spec.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _requirements() -> set[str]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return {_name(l) for l in lines if l.strip() and not l.lstrip().startswith("#")}


def _conda_pip(path: Path) -> set[str]:
    env = yaml.safe_load(path.read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return {_name(s) for s in pip}


def test_environment_yml_matches_requirements():
    assert _conda_pip(ROOT / "environment.yml") == _requirements()


def test_binder_matches_environment_without_test_tools():
    assert _conda_pip(ROOT / "binder" / "environment.yml") == _requirements() - TEST_ONLY


def test_binder_installs_trdg_without_pins():
    post = (ROOT / "binder" / "postBuild").read_text()
    assert "--no-deps trdg==1.8.0" in post
    assert "--no-deps trdg==1.8.0" in (ROOT / "Makefile").read_text()
