"""Folders given by path, headless: a run and a dataset outside the home open in the Monitor, the
run pickers and the Train tab (listed for the session, marked as outside the home); a folder that
is not one is refused with the path and the fix, and nothing changes."""
from __future__ import annotations

from pathlib import Path

import pytest

W = pytest.importorskip("ipywidgets")

from ocrtrain.runs import Run  # noqa: E402
from ocrtrain.train import TrainConfig, fit  # noqa: E402

from ocrtrain.workbench import MonitorPanel, TrainPanel, Workspace  # noqa: E402
from ocrtrain.workbench.pickers import DatasetPicker, RunVersionPicker  # noqa: E402

# tests/test_train_mixture.py's tiny CPU run, without the general set and replay.
FAST = dict(max_steps=6, val_interval=3, batch_size=4, val_limit=4, workers=0, warmup_steps=1,
            freeze_feature_extractor=True, device="cpu", guard="", replay=0, general_val=0)


@pytest.fixture(scope="module")
def outside_run(tmp_path_factory, tiny_dataset) -> Path:
    """A finished run trained outside any home, as `ocrtrain train --run /elsewhere/r` leaves it."""
    run_dir = tmp_path_factory.mktemp("elsewhere") / "cli-run"
    fit(TrainConfig(**FAST), tiny_dataset, run_dir)
    assert Run(run_dir).status()["state"] == "finished"
    return run_dir


@pytest.fixture()
def workspace(tmp_path, monkeypatch) -> Workspace:
    monkeypatch.setenv("OCRTRAIN_HOME", str(tmp_path / "home"))
    return Workspace(tmp_path / "home")


def options(dropdown) -> dict:
    """value -> label of a dropdown."""
    return {value: label for label, value in dropdown.options}


def test_monitor_opens_a_run_outside_the_home_by_path_and_plots_it(workspace, outside_run):
    path = str(outside_run.resolve())
    monitor = MonitorPanel(workspace)
    assert monitor.selected == "" and path not in options(monitor.run_select)
    monitor.opener.path.value = str(outside_run)
    monitor.opener.button.click()
    assert monitor.opener.status.kind == "ok" and path in monitor.opener.status.text, monitor.opener.status.text
    assert monitor.selected == path and monitor.opener.opened == path
    assert "outside home" in options(monitor.run_select)[path] and "outside home" in monitor.table.value
    run = Run(outside_run)
    train_rows, val_rows = run.metrics("train"), run.metrics("val")
    assert monitor.points("train loss") == len(train_rows) == 6
    assert monitor.points("CER") == len(val_rows) >= 2
    assert 'data-state="finished"' in monitor.progress_text.value and monitor.progress.value == 1.0
    assert monitor.actions.delete_button.disabled  # the home's folders only are deleted or renamed here

    # Remembered for the session: another Monitor and the Compare/Export run pickers list it too.
    assert path in options(MonitorPanel(workspace).run_select)
    picker = RunVersionPicker(workspace)
    assert picker.run == path and picker.spec == f"run:{path}@best"
    assert "outside home" in options(picker.run_dropdown)[path]


def test_select_and_the_run_pickers_open_a_run_given_by_path(tmp_path, outside_run):
    path = str(outside_run.resolve())
    monitor = MonitorPanel(Workspace(tmp_path / "a"))
    monitor.select(outside_run)  # what the Train tab does with a run it launched
    assert monitor.selected == path and monitor.points("train loss") == 6
    picker = RunVersionPicker(Workspace(tmp_path / "b"), description="after (run)")
    assert picker.run == ""
    picker.open_toggle.value = True
    assert picker.opener.layout.display == ""
    picker.opener.path.value = str(outside_run)
    picker.opener.button.click()
    assert picker.spec == f"run:{path}@best", picker.opener.status.text


def test_train_tab_opens_a_dataset_outside_the_home(workspace, tiny_dataset):
    path = str(tiny_dataset.resolve())
    panel = TrainPanel(workspace)
    picker = panel.data
    assert picker.value == "" and path not in options(picker.dropdown)
    assert picker.opener.layout.display == "none"  # behind the folder button until asked for
    picker.open_toggle.value = True
    picker.opener.path.value = str(tiny_dataset)
    picker.opener.button.click()
    assert picker.opener.status.kind == "ok" and path in picker.opener.status.text, picker.opener.status.text
    assert picker.value == path
    label = options(picker.dropdown)[path]
    assert label.startswith("tiny (40 lines") and "outside home" in label
    assert [s.path for s in panel.mixform.spec().train] == [path]
    assert path in options(panel.mixform.mix)  # offered to mix in and validate on too
    assert path in options(DatasetPicker(workspace).dropdown)  # and on the other tabs, this session


def test_a_folder_that_is_not_a_run_or_dataset_is_refused_and_nothing_changes(workspace, outside_run,
                                                                              tiny_dataset, tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "notes.txt").write_text("not a run")
    monitor = MonitorPanel(workspace)
    monitor.select(outside_run)
    before = (monitor.selected, monitor.run_select.options, workspace.run_folders(), monitor.fig)
    for typed, message in ((plain, f"{plain} is not a run folder"), (tmp_path / "nope", "does not exist"),
                           ("", "no run folder given")):
        monitor.opener.path.value = str(typed) if typed else ""
        monitor.opener.button.click()
        status = monitor.opener.status
        assert status.kind == "error" and message in status.text, status.text
        assert (monitor.selected, monitor.run_select.options, workspace.run_folders(), monitor.fig) == before
    monitor.opener.path.value = str(plain)
    monitor.opener.button.click()
    assert "give a folder made by `ocrtrain train`" in monitor.opener.status.text  # the fix

    picker = DatasetPicker(workspace)
    picker.opener.path.value = str(outside_run)  # a run is not a dataset
    picker.opener.button.click()
    assert picker.opener.status.kind == "error"
    assert f"{outside_run} is not a dataset folder" in picker.opener.status.text
    assert "ocrtrain synth" in picker.opener.status.text and picker.value == ""
    assert workspace.datasets() == [] and not options(picker.dropdown).get(str(outside_run.resolve()))


def test_a_train_form_left_on_a_dataset_outside_the_home_reopens_it(workspace, tiny_dataset):
    path = str(tiny_dataset.resolve())
    panel = TrainPanel(workspace)
    panel.data.opener.path.value = path
    panel.data.opener.button.click()
    assert panel.data.value == path
    panel.form.widget_for("max_steps").value = 37  # a change saves the form
    again = TrainPanel(Workspace(workspace.root))  # the page reloaded: a new session, nothing opened yet
    assert again.data.value == path and "outside home" in options(again.data.dropdown)[path]
    assert again.config().max_steps == 37 and again.status.kind != "error", again.status.text
