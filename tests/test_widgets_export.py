"""The Export tab headless: a real export of a real 2-step run with a real easyocr.Reader parity check,
watched through the progress bar and its text from the worker thread, then a cancel mid-check."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import draw_line, png_bytes, sample_labels

W = pytest.importorskip("ipywidgets")

from ocrtrain.dataset import DatasetWriter, SplitConfig  # noqa: E402
from ocrtrain.lmdb_io import LmdbReader  # noqa: E402
from ocrtrain.train import TrainConfig, fit  # noqa: E402

from ocrtrain.workbench import ExportPanel, Workspace  # noqa: E402

BATCH = 32  # parity_check reports once per ReadConfig.batch_size lines: 0, 32, 40 for 40 lines


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_dataset) -> Workspace:
    """A work folder with the tiny dataset, a finished 2-step run on it and a 60-line parity set."""
    root = tmp_path_factory.mktemp("export-panel")
    shutil.copytree(tiny_dataset, root / "datasets" / "tiny")
    ws = Workspace(root)
    config = TrainConfig(max_steps=2, val_interval=2, batch_size=4, val_limit=4, workers=0, warmup_steps=0,
                         freeze_feature_extractor=True, device="cpu")
    fit(config, ws.datasets_dir / "tiny", ws.runs_dir / "tiny-run")
    with DatasetWriter(ws.datasets_dir / "parity", SplitConfig(val_fraction=0.05, test_fraction=0.85, split_seed=3),
                       source={"kind": "test-drawn"}) as writer:
        for i, label in enumerate(sample_labels(60, seed=5)):
            writer.add(png_bytes(draw_line(label)), label, sample=f"parity-{i}")
    return ws


@pytest.fixture(autouse=True)
def _home(workspace, monkeypatch):
    monkeypatch.setenv("OCRTRAIN_HOME", str(workspace.root))


def _panel(ws: Workspace, name: str, limit: int) -> tuple[ExportPanel, list]:
    panel = ExportPanel(ws)
    panel.source.refresh(select=str(ws.runs_dir / "tiny-run"))
    panel.parity_data.refresh(select=str(ws.datasets_dir / "parity"))
    assert panel.source.run == str(ws.runs_dir / "tiny-run") and panel.source.version, panel.source.run
    assert panel.parity_data.value == str(ws.datasets_dir / "parity")
    panel.name.value, panel.parity_limit.value = name, limit
    seen: list = []  # (value, max, text) each time the worker thread moves the bar
    panel.progress.observe(lambda ch: seen.append((ch["new"], panel.progress.max, panel.progress_text.value)),
                           names="value")
    return panel, seen


def _test_lines(ws: Workspace) -> int:
    reader = LmdbReader(ws.datasets_dir / "parity" / "test")
    try:
        return len(reader)
    finally:
        reader.close()


def test_export_shows_live_parity_progress_and_the_final_result(workspace):
    run = workspace.runs_dir / "tiny-run"
    assert _test_lines(workspace) > 40
    panel, seen = _panel(workspace, "tiny_progress", 40)
    panel.export_button.click()
    assert panel.export_button.disabled and not panel.cancel_button.disabled
    assert panel.progress_row.layout.display == "flex"
    panel.task.join(300)
    assert not panel.task.running and panel.status.kind == "ok", panel.status.text
    values = [v for v, _, _ in seen]
    assert BATCH in values and values[-1] == 40, seen  # a step in the middle, then the end
    middle = next(text for v, m, text in seen if v == BATCH and m == 40)
    assert f"parity {BATCH}/40 lines" in middle and "ETA" in middle and "lines/s" in middle, middle
    assert "parity 40/40 lines" in panel.progress_text.value and "took" in panel.progress_text.value
    assert panel.progress.bar_style == "success" and (panel.progress.value, panel.progress.max) == (40, 40)
    assert panel.export_button.disabled is False and panel.cancel_button.disabled is True
    assert panel.parity["n"] == 40 and panel.parity["canceled"] is False and "parity on 40" in panel.parity_html.value
    assert all((run / "export" / f"tiny_progress{s}").is_file() for s in (".pth", ".yaml", ".py"))
    from ocrtrain.runfolder import latest_report

    saved = json.loads(latest_report(run, "parity").read_text())
    assert saved["n"] == 40 and saved["bundle"] == "tiny_progress"


def test_cancel_stops_the_parity_check_after_the_current_batch(workspace):
    from ocrtrain.runfolder import latest_report

    run = workspace.runs_dir / "tiny-run"
    before = latest_report(run, "parity")
    panel, seen = _panel(workspace, "tiny_cancel", 40)
    # Cancel from the worker thread's own update at 32/40: the stop event is set before the next batch.
    panel.progress.observe(lambda ch: ch["new"] == BATCH and panel.progress.max == 40 and panel.cancel_button.click(),
                           names="value")
    panel.export_button.click()
    panel.task.join(300)
    assert not panel.task.running
    assert panel.parity["canceled"] is True and panel.parity["n"] == BATCH, panel.parity
    assert panel.status.kind == "note", panel.status.text
    assert f"canceled after {BATCH} of 40 lines" in panel.status.text and "not saved" in panel.status.text
    assert panel.progress.bar_style == "warning" and f"canceled after {BATCH}/40" in panel.progress_text.value
    assert max(v for v, _, _ in seen) == BATCH, seen
    assert "canceled: partial" in panel.parity_html.value
    assert latest_report(run, "parity") == before  # a partial check is not the run's parity report
    assert all((run / "export" / f"tiny_cancel{s}").is_file() for s in (".pth", ".yaml", ".py"))  # the bundle stays
    assert panel.export_button.disabled is False and panel.cancel_button.disabled is True
