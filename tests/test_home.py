"""One rule for where datasets and runs live ($OCRTRAIN_HOME, default ~/ocrtrain)."""
from __future__ import annotations

from pathlib import Path

from ocrtrain import home


def test_home_defaults_to_ocrtrain_under_the_user_folder(monkeypatch):
    monkeypatch.delenv("OCRTRAIN_HOME", raising=False)
    assert home.home() == Path("~/ocrtrain").expanduser()
    assert home.runs_root() == Path("~/ocrtrain/runs").expanduser()
    assert home.datasets_root() == Path("~/ocrtrain/datasets").expanduser()


def test_the_session_never_uses_the_real_home():
    assert home.home() != Path("~/ocrtrain").expanduser()  # conftest points it at a temporary folder


def test_bare_names_resolve_under_the_roots_and_paths_stay(tmp_path, monkeypatch):
    monkeypatch.setenv("OCRTRAIN_HOME", str(tmp_path / "h"))
    monkeypatch.chdir(tmp_path)
    assert home.resolve_run("r1") == tmp_path / "h" / "runs" / "r1"
    assert home.resolve_dataset("receipts") == tmp_path / "h" / "datasets" / "receipts"
    assert home.resolve_docset("scans") == home.docsets_root() / "scans" == tmp_path / "h" / "docsets" / "scans"
    for text in ("./r1", "runs/r1", str(tmp_path / "x"), "..", "."):
        assert home.resolve_run(text) == Path(text)
    assert home.resolve_run("~/r1") == Path("~/r1").expanduser()
    assert home.resolve_run(Path("r1")) == Path("r1")  # a Path is always a path
    (tmp_path / "local").mkdir()  # only in the working directory: the folder found there
    assert home.resolve_run("local") == Path("local")
    (tmp_path / "h" / "runs" / "local").mkdir(parents=True)  # under the root too: the root wins
    assert home.resolve_run("local") == tmp_path / "h" / "runs" / "local"
    assert not home.is_bare_name("") and not home.is_bare_name(".hidden") and home.is_bare_name("a-b_c.1")
