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

from ocrtrain.dataset import Dataset, DatasetWriter, SplitConfig  # noqa: E402
from ocrtrain.runs import Run, cancel  # noqa: E402

from test_widgets import fill_train_panel, upload_value, wait_for  # noqa: E402
from ocrtrain.workbench import TrainPanel, Workspace  # noqa: E402


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
    panel.task.join(300)  # the first job of a session renders the replay lines
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


# ---------------------------------------------------------------- dataset tab: honest imports


def crops_zip(labels: list[str], encoding: str = "utf-8", missing: int = 0) -> bytes:
    """A zip of labels.txt (in `encoding`) and line images; the last `missing` images are left out."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i, label in enumerate(labels[:len(labels) - missing]):
            zf.writestr(f"crop{i}.png", png_bytes(draw_line(label)))
        zf.writestr("labels.txt", "".join(f"crop{i}.png\t{l}\n" for i, l in enumerate(labels)).encode(encoding))
    return buf.getvalue()


def import_zip(panel, name: str, content: bytes, **form) -> str:
    panel.zip_upload.value = upload_value(f"{name}.zip", content)
    panel.import_name.value = name
    for key, value in form.items():
        panel.import_form.widget_for(key).value = value
    panel.import_button.click()
    panel.task.join(60)
    return panel.import_status.text


def test_import_summary_warns_when_most_rows_are_rejected_and_names_the_encoding(workspace):
    from ocrtrain.workbench import DatasetPanel

    labels = [f"Brød {i},90" for i in range(20)]  # non-ASCII in every row
    panel = DatasetPanel(workspace)
    # A Windows (cp1252) labels file: read as cp1252, all 20 kept, val and test lines drawn, said so.
    text = import_zip(panel, "latin", crops_zip(labels, "cp1252"))
    assert panel.import_status.kind == "ok", text
    assert "kept 20 of 20" in text and "labels.txt: cp1252" in text
    counts = json.loads((workspace.datasets_dir / "latin" / "manifest.json").read_text())["counts"]
    assert counts["val"] >= 1 and counts["test"] >= 1
    latin = Dataset(workspace.datasets_dir / "latin")
    assert "Brød 1,90" in {label for s in latin.splits for _, label in latin.iter_samples(s)}
    # The same file read as UTF-8: 20 of 20 rejected would be "nothing"; with 15 images missing and
    # UTF-8 labels, most rows are rejected: the summary is a warning, not a green success.
    text = import_zip(panel, "mostly-bad", crops_zip(labels, "utf-8", missing=15))
    assert panel.import_status.kind == "warn", text
    assert "kept 5 of 20" in text and "15 rejected" in text and "does not exist" in text
    assert "ocrtrain-warn" in panel.import_status.value
    rows = (workspace.datasets_dir / "mostly-bad" / "rejected.csv").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 1 + 15  # header + each missing image once


def test_dataset_tab_small_fixes(workspace):
    from ocrtrain.workbench import DatasetPanel

    panel = DatasetPanel(workspace)
    split_box = panel.import_form.widget_for("split")
    titles = [a.get_title(0) for a in panel.import_form.children if isinstance(a, W.Accordion)]
    assert "Train / validation / test split" in titles and not any("split: " in t for t in titles), titles
    assert split_box is not None
    # The built-in preview goes when the source changes (it showed the old source's text).
    panel.synth_form.widget_for("workers").value = 1
    panel.preview_count.value = 2
    panel.preview_button.click()
    panel.task.join(60)
    assert len(panel.preview_grid.children) == 2, panel.status.text
    panel.source.value = "upload"
    assert panel.preview_grid.children == ()


# ---------------------------------------------------------------- preselection


@pytest.fixture(scope="module")
def fresh(tmp_path_factory, tiny_dataset) -> Workspace:
    """A work folder of its own: one good dataset and one real finished 2-step run."""
    root = tmp_path_factory.mktemp("fresh")
    shutil.copytree(tiny_dataset, root / "datasets" / "good")
    ws = Workspace(root)
    panel = TrainPanel(ws)
    panel.data.refresh(select=str(ws.datasets_dir / "good"))
    fill_train_panel(panel)
    panel.run_name.value = "good-run"
    panel.launch_button.click()
    assert panel.run, panel.status.text
    assert Run(panel.run).wait(timeout=240)["state"] == "finished"
    return ws


def _age(path: Path, seconds_ago: float) -> None:
    import os
    import time

    t = time.time() - seconds_ago
    os.utime(path, (t, t))


def test_pickers_preselect_the_newest_healthy_dataset_and_run(fresh):
    from ocrtrain import runfolder
    from ocrtrain.workbench import ExportPanel
    from ocrtrain.workbench.pickers import DatasetPicker

    ws = fresh
    _age(ws.datasets_dir / "good", 300)
    write_dataset(ws.datasets_dir / "no-val", 12, SplitConfig(val_fraction=0.0, test_fraction=0.0))
    _age(ws.datasets_dir / "no-val", 200)
    damaged = write_dataset(ws.datasets_dir / "damaged", 6, SplitConfig())
    (damaged / "manifest.json").write_text('{"format": "ocrtrain-dataset/1", "counts": ', encoding="utf-8")
    _age(damaged, 100)
    picker = DatasetPicker(ws)
    labels = dict((v, k) for k, v in picker.dropdown.options)
    assert picker.value == str(ws.datasets_dir / "good"), labels
    assert "no val lines" in labels[str(ws.datasets_dir / "no-val")]
    assert "damaged manifest" in labels[str(damaged)]
    # A choice the person made is kept on refresh, even of a dataset with a problem.
    picker.dropdown.value = str(ws.datasets_dir / "no-val")
    picker.refresh()
    assert picker.value == str(ws.datasets_dir / "no-val")

    # Runs: copies of the finished run that failed and were canceled later, and a newer run that
    # failed before its first checkpoint. Export starts on the finished one and says it can export.
    good = ws.runs_dir / "good-run"
    _age(good, 300)
    for name, state, age in (("crashed", "failed", 200), ("stopped", "canceled", 150)):
        shutil.copytree(good, ws.runs_dir / name)
        runfolder.update_status(ws.runs_dir / name, state=state, error=f"{state} in a test", pid=None)
        _age(ws.runs_dir / name, age)
    runfolder.create_run(ws.runs_dir / "empty", {"config": {}, "data": str(ws.datasets_dir / "good")})
    runfolder.update_status(ws.runs_dir / "empty", state="failed", error="failed at step 0")
    export = ExportPanel(ws)
    options = dict((v, k) for k, v in export.source.run_dropdown.options)
    assert export.source.run == str(good) and export.source.version == "best", options
    assert str(ws.runs_dir / "empty") not in options  # no checkpoint: nothing to export
    assert options[str(ws.runs_dir / "crashed")] == "crashed · failed" and options[str(good)] == "good-run"
    export.name.value = ""
    export.export_button.click()  # stops at the name check: the run and version were accepted
    assert export.status.kind == "error" and "model name is empty" in export.status.text


# ---------------------------------------------------------------- monitor


def test_monitor_banners_clear_durations_span_resumes_units_are_percent(workspace):
    from ocrtrain import runfolder
    from ocrtrain.fsutil import parse_time
    from ocrtrain.workbench import MonitorPanel

    train = TrainPanel(workspace)
    train.data.refresh(select=str(workspace.datasets_dir / "tiny"))
    fill_train_panel(train, max_steps=40, val_interval=10)
    train.run_name.value = "resumed"
    train.launch_button.click()
    run = Run(train.run)
    wait_for(lambda: run.status()["state"] == "running" and (run.status().get("step") or 0) >= 2, timeout=180)
    monitor = MonitorPanel(workspace)
    monitor.select(run.path)
    assert monitor.actions.delete_button.disabled  # a running run cannot be deleted
    monitor.cancel_button.click()
    assert monitor.status.kind == "note" and monitor.status.text.startswith("cancel requested")
    wait_for(lambda: run.status()["state"] == "canceled", timeout=120)
    monitor.refresh()
    assert monitor.status.kind == "ok" and monitor.status.text == "resumed canceled"  # the banner moved on
    first = run.status()
    first_s = parse_time(first["ended"]) - parse_time(first["started"])
    assert monitor.resume_button.disabled is False and monitor.cancel_button.disabled is True

    monitor.resume_button.click()
    assert monitor.status.text.startswith("resumed"), monitor.status.text
    assert run.wait(timeout=240)["state"] == "finished", run.status().get("error")
    monitor.refresh()
    assert monitor.status.kind == ""  # "resumed ..." went once the job ran
    st = run.status()
    second_s = parse_time(st["ended"]) - parse_time(st["started"])
    summary = run.summary()
    assert summary["segments"] == 2 and abs(summary["duration_s"] - (first_s + second_s)) < 1.5, summary
    assert summary["duration_s"] > second_s
    assert "over 2 segments" in monitor.info.value
    # The validation size and what a line is worth, from the metrics rows.
    last_val = [r for r in run.metrics("val") if r.get("val_set") in (None, "val")][-1]
    assert f"validation set: {last_val['n']} lines" in monitor.info.value
    assert f"one line = {100 / last_val['n']:.1f} points" in monitor.info.value
    # Charts in percent, like the text: the CER trace's last point is 100 x the row's CER.
    cer = next(t for t in monitor.fig.data if t.name in ("CER", "CER · val"))
    assert cer.y[-1] == pytest.approx(100 * last_val["cer"]) and cer.x[-1] == last_val["step"]
    assert monitor.fig.layout.yaxis2.ticksuffix == "%" and monitor.fig.layout.yaxis3.ticksuffix == "%"
    assert runfolder.files(run.path).last.is_file()


def test_a_segment_is_counted_once_however_often_resume_is_tried(tmp_path):
    from ocrtrain import runfolder
    from ocrtrain.runs import check_resumable

    run_dir = runfolder.create_run(tmp_path / "r", {"config": {}, "data": str(tmp_path)})
    runfolder.update_status(run_dir, state="canceled", started="2026-01-01T10:00:00+0000",
                            ended="2026-01-01T10:02:00+0000")
    for _ in range(2):  # a resume whose job never started, then another
        check_resumable(run_dir)
    st = Run(run_dir).status()
    assert st["earlier_s"] == 120.0 and st["segments"] == 2
    runfolder.update_status(run_dir, state="finished", started="2026-01-01T11:00:00+0000",
                            ended="2026-01-01T11:00:30+0000")
    assert Run(run_dir).summary()["duration_s"] == 150.0 and Run(run_dir).summary()["duration"]


# ---------------------------------------------------------------- delete and rename


def test_engine_deletes_and_renames_only_inside_the_work_folder(tmp_path, tiny_dataset):
    from ocrtrain import runfolder
    from ocrtrain.errors import InputError, RunError
    from ocrtrain.manage import delete_dataset, delete_run, rename_dataset, rename_run

    ws = Workspace(tmp_path / "work")
    ds = ws.datasets_dir / "junk"
    shutil.copytree(tiny_dataset, ds)
    outside = tmp_path / "elsewhere"
    shutil.copytree(tiny_dataset, outside)
    (ws.datasets_dir / "link").symlink_to(outside, target_is_directory=True)
    for bad in (outside, ws.datasets_dir / "link", ws.datasets_dir / ".." / ".." / "elsewhere", ws.datasets_dir,
                ws.root):
        with pytest.raises(InputError):
            delete_dataset(bad, ws.datasets_dir)
    assert (outside / "manifest.json").is_file()
    (ws.datasets_dir / "notes").mkdir()
    with pytest.raises(InputError, match="not a dataset folder"):
        delete_dataset(ws.datasets_dir / "notes", ws.datasets_dir)
    for name in ("../x", "", "a/b", ".hidden"):
        with pytest.raises(InputError):
            rename_dataset(ds, name, ws.datasets_dir)
    ds = rename_dataset(ds, "renamed", ws.datasets_dir)
    assert ds == ws.datasets_dir / "renamed" and (ds / "manifest.json").is_file()
    # A run that is running (status written by the engine, its pid alive: this test) cannot go,
    # nor can the dataset it uses; once it has ended both can.
    run = runfolder.create_run(ws.runs_dir / "busy", {"config": {}, "data": str(ds)})
    import os
    import socket

    from ocrtrain.jobs import job_token

    runfolder.update_status(run, state="running", pid=os.getpid(), host=socket.gethostname(),
                            job=job_token(os.getpid()))
    assert Run(run).status()["state"] == "running"
    with pytest.raises(RunError, match="cancel it"):
        delete_run(run, ws.runs_dir)
    with pytest.raises(RunError, match="cancel it"):
        rename_run(run, "other", ws.runs_dir)
    with pytest.raises(RunError, match="busy"):
        delete_dataset(ds, ws.datasets_dir, ws.runs_dir)
    runfolder.update_status(run, state="canceled", pid=None)
    run = rename_run(run, "was-busy", ws.runs_dir)
    assert delete_run(run, ws.runs_dir) == ws.runs_dir / "was-busy" and not run.exists()
    assert delete_dataset(ds, ws.datasets_dir, ws.runs_dir) == ds and not ds.exists()
    assert sorted(p.name for p in ws.datasets_dir.iterdir()) == ["link", "notes"]
    assert (outside / "manifest.json").is_file() and not list(ws.runs_dir.iterdir())


def test_dashboard_delete_asks_first_and_rename_relists(fresh):
    from ocrtrain.workbench import DatasetPanel, MonitorPanel

    ws = fresh
    junk = shutil.copytree(ws.runs_dir / "good-run", ws.runs_dir / "junk-run")
    monitor = MonitorPanel(ws)
    monitor.select(junk)
    actions = monitor.actions
    actions.new_name.value = "kept-run"
    actions.rename_button.click()
    assert actions.status.kind == "ok", actions.status.text
    kept = ws.runs_dir / "kept-run"
    assert kept.is_dir() and not junk.exists() and monitor.selected == str(kept)
    assert "kept-run" in monitor.table.value
    actions.delete_button.click()
    assert actions.status.kind == "warn" and actions.delete_button.description == "Confirm delete" and kept.is_dir()
    monitor.run_select.value = str(ws.runs_dir / "good-run")  # another run: the confirmation lapses
    assert actions.delete_button.description == "Delete run"
    monitor.select(kept)
    actions.delete_button.click()
    actions.delete_button.click()
    assert actions.status.kind == "ok" and "deleted run kept-run" in actions.status.text and not kept.exists()
    assert "kept-run" not in monitor.table.value and monitor.selected != str(kept)

    panel = DatasetPanel(ws)
    extra = write_dataset(ws.datasets_dir / "to-delete", 5, SplitConfig())
    panel.audit_picker.refresh(select=str(extra))
    panel.dataset_actions.delete_button.click()
    assert extra.is_dir() and panel.dataset_actions.status.kind == "warn"
    panel.dataset_actions.delete_button.click()
    assert not extra.exists() and panel.dataset_actions.status.kind == "ok"
    assert str(extra) not in [v for _, v in panel.audit_picker.dropdown.options]
