"""Dataset tab, import from a path on the server (files over the page's upload limit), and the
raised, stated upload limit of `ocrtrain dashboard` (headless widgets, real import, real LMDB)."""
from __future__ import annotations

import json
import shutil
import zipfile

import pytest

from conftest import draw_line, png_bytes, sample_labels

W = pytest.importorskip("ipywidgets")

from ocrtrain.cli import main  # noqa: E402
from ocrtrain.cli.dashboard import (MAX_UPLOAD_MB, TORNADO_MESSAGE_LIMIT, UPLOAD_LIMIT_ENV,  # noqa: E402
                                    prepare_serving, upload_limit)
from ocrtrain.dataset import Dataset  # noqa: E402
from ocrtrain.notebooks import NOTEBOOK_DIR  # noqa: E402

from ocrtrain.workbench import DatasetPanel, Workspace  # noqa: E402

MIB = 1024 * 1024


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Workspace:
    monkeypatch.setenv("OCRTRAIN_HOME", str(tmp_path / "work"))
    return Workspace(tmp_path / "work")


def labelled_folder(folder, labels):
    folder.mkdir(parents=True)
    for i, label in enumerate(labels):
        (folder / f"img{i}.png").write_bytes(png_bytes(draw_line(label)))
    (folder / "labels.txt").write_text("".join(f"img{i}.png\t{t}\n" for i, t in enumerate(labels)) + "gone.png\tX\n",
                                       encoding="utf-8")
    return folder


def _samples(path) -> dict:
    ds = Dataset(path)
    out = {}
    for split, n in ds.counts().items():
        if n:
            reader = ds.reader(split)
            out[split] = sorted((reader.label(i), reader.image_bytes(i)) for i in reader.present_indices())
    return out


def _import(panel: DatasetPanel, path: str, name: str) -> None:
    panel.import_path.value = path
    panel.import_name.value = name
    panel.import_button.click()
    if panel.task is not None:
        panel.task.join(120)


def test_a_folder_on_the_server_imports_as_the_cli_does(workspace, tmp_path, capsys):
    labels = sample_labels(10, seed=7)
    folder = labelled_folder(workspace.root / "incoming" / "scans", labels)
    panel = DatasetPanel(workspace)
    panel.import_form.widget_for("split").widget_for("val_fraction").value = 0.3
    _import(panel, "incoming/scans", "by-path")  # relative to the work folder
    assert panel.import_status.kind in ("ok", "warn"), panel.import_status.text
    out = workspace.datasets_dir / "by-path"
    assert panel.dataset == str(out)
    assert main(["import", str(folder), "--out", str(tmp_path / "cli"), "--val-fraction", "0.3"]) == 0, \
        capsys.readouterr()
    by_widget, by_cli = json.loads((out / "manifest.json").read_text()), \
        json.loads((tmp_path / "cli" / "manifest.json").read_text())
    assert by_widget["counts"] == by_cli["counts"] and sum(by_widget["counts"].values()) == 10
    assert by_widget["rejected"] == by_cli["rejected"] == 1  # gone.png
    assert _samples(out) == _samples(tmp_path / "cli")
    assert not (workspace.root / "uploads").exists()  # nothing went through the upload folder


def test_a_zip_by_absolute_path_and_the_path_wins_over_an_upload(workspace):
    source = labelled_folder(workspace.root / "tmp" / "z", sample_labels(6, seed=2))
    zpath = workspace.root / "big.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for item in source.iterdir():
            zf.write(item, item.name)
    shutil.rmtree(source)
    panel = DatasetPanel(workspace)
    _import(panel, str(zpath), "zipped")
    assert panel.import_status.kind in ("ok", "warn"), panel.import_status.text
    assert sum(json.loads((workspace.datasets_dir / "zipped" / "manifest.json").read_text())["counts"].values()) == 6


@pytest.mark.parametrize("typed, expected", [
    ("OUTSIDE", "outside the work folder"),
    ("../elsewhere", "outside the work folder"),
    ("incoming/../../elsewhere", "outside the work folder"),
    ("nothing/here", "does not exist"),
    ("notes.pdf", "neither a .zip"),
])
def test_a_bad_server_path_is_refused_with_the_fix_and_writes_nothing(workspace, tmp_path, typed, expected):
    elsewhere = labelled_folder(tmp_path / "elsewhere", ["Melk"])
    (workspace.root / "notes.pdf").write_bytes(b"%PDF-1.4")
    panel = DatasetPanel(workspace)
    _import(panel, str(elsewhere) if typed == "OUTSIDE" else typed, "refused")
    assert panel.import_status.kind == "error" and expected in panel.import_status.text, panel.import_status.text
    if "outside" in expected:
        assert "ln -s" in panel.import_status.text and "ocrtrain import" in panel.import_status.text
    assert not (workspace.datasets_dir / "refused").exists()
    assert panel.task is None  # refused before any job started


def test_the_form_states_the_upload_limit_and_shows_a_refused_upload(workspace, monkeypatch):
    monkeypatch.delenv(UPLOAD_LIMIT_ENV, raising=False)
    assert upload_limit() == TORNADO_MESSAGE_LIMIT == 10 * MIB  # JupyterLab or a bare Voila
    assert "Uploads up to 10 MiB" in DatasetPanel(workspace).import_box.children[0].value
    monkeypatch.setenv(UPLOAD_LIMIT_ENV, str(MAX_UPLOAD_MB * MIB))  # what `ocrtrain dashboard` sets
    panel = DatasetPanel(workspace)
    assert f"Uploads up to {MAX_UPLOAD_MB} MiB" in panel.import_box.children[0].value
    assert str(workspace.root) in panel.import_box.children[0].value
    # What the page's guard throws arrives as the FileUpload's error (see the dashboard's template).
    refused = f"scans.zip is 300.0 MiB, over the dashboard's upload limit of {MAX_UPLOAD_MB} MiB: give its path"
    panel.zip_upload.error = refused
    assert panel.import_status.kind == "error" and refused in panel.import_status.text
    panel.words_upload.error = refused.replace("scans.zip", "words.txt")
    assert "words.txt is 300.0 MiB" in panel.words_info.value and "ocrtrain-error" in panel.words_info.value


def test_dashboard_raises_the_websocket_limit_and_tells_page_and_kernels(tmp_path, monkeypatch):
    from traitlets.config import Config
    from voila.tornado.handler import TornadoVoilaHandler

    monkeypatch.setattr(TornadoVoilaHandler, "get", TornadoVoilaHandler.get)  # voila.py wraps it: undone after
    for mb in (MAX_UPLOAD_MB, 25):
        root = tmp_path / f"home{mb}"
        _notebook, env = prepare_serving(root, NOTEBOOK_DIR / "dashboard.ipynb", mb)
        assert env[UPLOAD_LIMIT_ENV] == str(mb * MIB)
        c = Config()
        exec(compile((root / ".dashboard" / "voila.py").read_text(), "voila.py", "exec"), {"c": c})
        limit = c.Voila.tornado_settings["websocket_max_message_size"]
        assert mb * MIB < limit <= mb * MIB + 2 * MIB  # the file plus its message's JSON
        page = (root / ".dashboard" / "share" / "voila" / "templates" / "ocrtrain" / "index.html.j2").read_text()
        assert f"var limit = {mb * MIB}," in page and "readAsArrayBuffer" in page and "@UPLOAD_LIMIT@" not in page
    with pytest.raises(Exception, match="max-upload-mb"):
        prepare_serving(tmp_path / "zero", NOTEBOOK_DIR / "dashboard.ipynb", 0)
