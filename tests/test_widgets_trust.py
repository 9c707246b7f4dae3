"""Issue 14 (dashboard trust), headless: guardrails of the Train tab, honest import summaries,
preselection of healthy datasets and runs, the Monitor's hints, delete and rename.

Every panel is driven with values and clicks; results are checked on disk and in the engine.
Runs are real jobs (english_g2, a few CPU steps on a tiny drawn dataset).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import draw_line, png_bytes, sample_labels

W = pytest.importorskip("ipywidgets")

from ocrtrain.dataset import DatasetWriter, SplitConfig  # noqa: E402
from ocrtrain.runs import Run, cancel  # noqa: E402

from test_widgets import fill_train_panel, upload_value, wait_for  # noqa: E402
from widgets import TrainPanel, Workspace  # noqa: E402


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_dataset) -> Workspace:
    root = tmp_path_factory.mktemp("trust")
    shutil.copytree(tiny_dataset, root / "datasets" / "tiny")
    return Workspace(root)


@pytest.fixture(autouse=True)
def _home(workspace, monkeypatch):
    monkeypatch.setenv("OCRTRAIN_HOME", str(workspace.root))


def write_dataset(folder: Path, n: int, split: SplitConfig) -> Path:
    with DatasetWriter(folder, split, source={"kind": "test-drawn"}) as writer:
        for i, label in enumerate(sample_labels(n, seed=3)):
            writer.add(png_bytes(draw_line(label)), label, sample=f"drawn-{i}")
    return folder


def run_names(workspace: Workspace) -> list[str]:
    return sorted(p.name for p in workspace.runs_dir.iterdir())


# ---------------------------------------------------------------- train tab guardrails


def test_launch_refuses_what_check_refuses(workspace):
    no_val = write_dataset(workspace.datasets_dir / "no-val", 12, SplitConfig(val_fraction=0.0, test_fraction=0.0))
    panel = TrainPanel(workspace)
    panel.data.refresh(select=str(no_val))
    fill_train_panel(panel)
    before = run_names(workspace)
    panel.check_button.click()
    assert panel.task is None, "Check must refuse before it starts a job"
    check_message = panel.status.text
    assert panel.status.kind == "error" and "'val'" in check_message and "0 lines" in check_message
    panel.status.clear()
    panel.launch_button.click()
    assert panel.status.kind == "error" and panel.status.text == check_message and not panel.run
    assert run_names(workspace) == before
    assert "val_fraction/test_fraction > 0" not in check_message


def test_check_estimate_clears_when_the_form_changes_and_long_runs_ask_first(workspace):
    panel = TrainPanel(workspace)
    panel.data.refresh(select=str(workspace.datasets_dir / "tiny"))
    fill_train_panel(panel, max_steps=1_000_000)
    panel.check_button.click()
    panel.task.join(120)
    assert panel.status.kind == "ok", panel.status.text
    assert panel.check_result["total_s"] > 30 * 60 and "whole run" in panel.check_html.value
    # Launch of a run estimated over 30 minutes: the first click only asks.
    before = run_names(workspace)
    panel.launch_button.click()
    assert panel.launch_button.description == "Confirm launch" and panel.status.kind == "warn"
    assert "estimated at" in panel.status.text and not panel.run and run_names(workspace) == before
    # Any change of the form drops both the estimate and the pending confirmation.
    panel.form.widget_for("lr").value = 2e-4
    assert panel.check_result == {} and panel.check_html.value == ""
    assert panel.launch_button.description == "Launch training"
    # Without a Check, a run of many steps asks too; the second click launches it.
    panel.launch_button.click()
    assert panel.status.kind == "warn" and "no time estimate" in panel.status.text and not panel.run
    panel.launch_button.click()
    assert panel.run and panel.status.kind == "ok", panel.status.text
    cancel(panel.run, wait=True, timeout=120)
    assert Run(panel.run).state in ("canceled", "finished", "failed")
    assert panel.launch_button.description == "Launch training"
    # A short run launches at the first click.
    fill_train_panel(panel)
    panel.run_name.value = "short"
    panel.launch_button.click()
    assert Path(panel.run).name == "short", panel.status.text
    Run(panel.run).wait(timeout=180)
