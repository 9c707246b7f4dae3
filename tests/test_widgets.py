"""The workbench headless: set widget values, click buttons, wait for threads, check the engine's state.

No browser: ipywidgets work without a front end, so every panel is driven like a person would
(values + clicks) and the results are checked on disk (dataset folders, run folders, bundles).
Training runs are real jobs (english_g2, a couple of CPU steps on a tiny drawn dataset).
"""
from __future__ import annotations

import csv
import html
import io
import json
import shutil
import time
import zipfile
from pathlib import Path

import pytest

from conftest import draw_line, png_bytes, sample_labels

W = pytest.importorskip("ipywidgets")

from ocrtrain.errors import ConfigError  # noqa: E402
from ocrtrain.fsutil import format_duration  # noqa: E402
from ocrtrain.readconfig import DEVICE_CHOICES, ReadConfig  # noqa: E402
from ocrtrain.runs import Run  # noqa: E402
from ocrtrain.train import TrainConfig  # noqa: E402

from ocrtrain.workbench import ConfigForm, MonitorPanel, TrainPanel, Workspace  # noqa: E402
from ocrtrain.workbench.follow import MetricsFollower, downsample  # noqa: E402

TINY_TRAIN = {"max_steps": 2, "warmup_steps": 0, "batch_size": 4, "device": "cpu"}
TINY_ADVANCED = {"val_interval": 2, "val_limit": 4, "workers": 0, "freeze_feature_extractor": True,
                 "keep_checkpoints": 1}


def wait_for(predicate, timeout: float = 90.0, poll: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout} s waiting for {predicate}")


def upload_value(name: str, content: bytes) -> tuple:
    """What ipywidgets 8's FileUpload holds after a browser upload."""
    from datetime import datetime, timezone

    return ({"name": name, "type": "", "size": len(content), "content": memoryview(content),
             "last_modified": datetime.now(timezone.utc)},)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_dataset) -> Workspace:
    root = tmp_path_factory.mktemp("workbench")
    shutil.copytree(tiny_dataset, root / "datasets" / "tiny")
    return Workspace(root)


@pytest.fixture(autouse=True)
def _home(workspace, monkeypatch):
    # Templates are stored under $OCRTRAIN_HOME by the engine: keep them in the test's folder.
    monkeypatch.setenv("OCRTRAIN_HOME", str(workspace.root))


def fill_train_panel(panel: TrainPanel, **overrides) -> None:
    for name, value in {**TINY_TRAIN, **overrides}.items():
        (panel.form if name in panel.form.field_names else panel.advanced).widget_for(name).value = value
    for name, value in TINY_ADVANCED.items():
        if name not in overrides:
            panel.advanced.widget_for(name).value = value


@pytest.fixture(scope="module")
def finished_run(workspace) -> Path:
    """A real 2-step run launched from the Train tab (started early; other tests overlap with it)."""
    panel = TrainPanel(workspace)
    panel.data.refresh(select=str(workspace.datasets_dir / "tiny"))
    fill_train_panel(panel)
    panel.run_name.value = "finished"
    panel.launch_button.click()
    assert panel.run, panel.status.text
    return Path(panel.run)


# ---------------------------------------------------------------- forms and following


def test_config_form_shows_the_engines_message_and_marks_the_field():
    form = ConfigForm(TrainConfig)
    assert form.config == TrainConfig()
    form.widget_for("lr").value = -1.0
    with pytest.raises(ConfigError) as exc:
        TrainConfig(lr=-1.0)
    assert form.config is None and form.error == str(exc.value)
    assert "ocrtrain-error" in form.status.value and str(exc.value)[:30] in form.status.text
    assert "ocrtrain-invalid" in form.widget_for("lr")._dom_classes
    form.widget_for("lr").value = 1e-4
    assert form.config.lr == 1e-4 and form.error == "" and form.status.value == ""
    # Nested configs get their own sub-form; a bad nested value fails the whole config.
    form.widget_for("augment").widget_for("rotation").value = 90.0
    assert form.config is None and "rotation" in form.error


def test_metrics_follower_reads_only_complete_new_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    follower = MetricsFollower(path)
    assert follower.poll() == 0  # no file yet
    with open(path, "w") as fh:
        fh.write(json.dumps({"kind": "train", "step": 1, "train_loss": 2.0}) + "\n")
        fh.write('{"kind": "train", "step": 2, "train_lo')  # being written
    assert follower.poll() == 1 and follower.series("train", "train_loss") == ([1], [2.0])
    with open(path, "a") as fh:
        fh.write('ss": 1.5}\n' + json.dumps({"kind": "val", "step": 2, "cer": 0.25}) + "\n")
    assert follower.poll() == 2
    assert follower.series("train", "train_loss") == ([1, 2], [2.0, 1.5]) and follower.best_cer == 0.25
    points = downsample(list(range(20_000)), 500)
    assert len(points) == 500 and points[0] == 0 and points[-1] == 19_999


# ---------------------------------------------------------------- train tab


def test_train_panel_errors_are_shown_not_raised(workspace):
    panel = TrainPanel(workspace)
    panel.form.widget_for("warmup_steps").value = -5
    panel.form.widget_for("max_steps").value = 10
    panel.launch_button.click()
    assert panel.status.kind == "error" and "warmup_steps" in panel.status.text and not panel.run
    panel.form.widget_for("warmup_steps").value = 0
    panel.data.dropdown.options = [("(no datasets yet)", "")]
    panel.launch_button.click()
    assert panel.status.kind == "error" and "no training data" in panel.status.text and not panel.run


def test_templates_round_trip_through_the_engine(workspace):
    panel = TrainPanel(workspace)
    panel.form.widget_for("lr").value = 5e-4
    panel.advanced.widget_for("val_interval").value = 7
    panel.template_name.value = "my-receipts"
    panel.save_button.click()
    assert panel.status.kind == "ok", panel.status.text
    assert TrainConfig.from_file(workspace.root / "templates" / "my-receipts.yaml").val_interval == 7
    other = TrainPanel(workspace)
    other.template_select.value = "my-receipts"
    other.load_button.click()
    assert other.config().lr == 5e-4 and other.config().val_interval == 7
    other.template_name.value = "../escape"
    other.save_button.click()
    assert other.status.kind == "error" and "template name" in other.status.text


def test_launch_then_cancel_from_the_monitor(workspace, finished_run):
    panel = TrainPanel(workspace)
    panel.data.refresh(select=str(workspace.datasets_dir / "tiny"))
    fill_train_panel(panel, max_steps=500, val_interval=100)
    panel.run_name.value = "to-cancel"
    panel.launch_button.click()
    run = Run(panel.run)
    assert run.name == "to-cancel" and run.config()["config"]["max_steps"] == 500
    monitor = MonitorPanel(workspace)
    monitor.select(run.path)
    assert monitor.selected == str(run.path.resolve())
    assert not monitor.cancel_button.disabled
    monitor.cancel_button.click()
    assert monitor.status.kind == "note", monitor.status.text
    status = run.wait(timeout=90)
    assert status["state"] == "canceled"
    monitor.refresh()
    row = next(r for r in monitor.rows if r["name"] == "to-cancel")
    assert row["state"] == "canceled" and monitor.cancel_button.disabled and not monitor.resume_button.disabled
    # Resume starts the job again from its last checkpoint (a separate process, not this one).
    monitor.resume_button.click()
    assert monitor.status.kind == "note" and "resumed" in monitor.status.text, monitor.status.text
    assert run.status()["state"] in ("queued", "running", "finished")
    wait_for(lambda: run.status()["state"] == "running", timeout=180)  # queued behind other jobs on the cpu device
    monitor.refresh()
    assert not monitor.cancel_button.disabled
    monitor.cancel_button.click()
    assert run.wait(timeout=90)["state"] == "canceled"


# ---------------------------------------------------------------- monitor, compare, export


def test_monitor_follows_a_finished_run(workspace, finished_run):
    status = Run(finished_run).wait(timeout=300)
    assert status["state"] == "finished", status
    monitor = MonitorPanel(workspace)
    monitor.select(finished_run)
    row = next(r for r in monitor.rows if r["name"] == "finished")
    assert row["step"] == row["max_steps"] == 2 and row["best_cer"] is not None
    assert monitor.points("train loss") == 2
    # One CER curve per validation set (the run's own val split and the general forgetting guard).
    sets = {r["val_set"] for r in Run(finished_run).metrics("val")}
    for name in sets:
        rows = [r for r in Run(finished_run).metrics("val") if r["val_set"] == name]
        assert monitor.points(f"CER · {name}" if len(sets) > 1 else "CER") == len(rows) >= 1
    assert monitor.progress.value == 1.0 and 'data-state="finished"' in monitor.progress_text.value
    assert "finished at step 2/2" in monitor.log_view.value
    assert monitor.cancel_button.disabled and monitor.resume_button.disabled


def test_compare_shows_gallery_metrics_and_reads_an_upload(workspace, finished_run):
    from ocrtrain.workbench import ComparePanel

    Run(finished_run).wait(timeout=300)
    panel = ComparePanel(workspace)
    read = ReadConfig()  # the tab's defaults are the reading config's, like eval's CLI options
    assert (panel.device.value, panel.limit.value) == (read.device, read.compare_limit)
    assert tuple(panel.device.options) == DEVICE_CHOICES
    panel.after.refresh(select=str(finished_run))
    assert panel.after.spec == f"run:{finished_run}@best"
    # Every validation set, origin (step 0) vs the best version, read from the run's own rows.
    from ocrtrain.valsets import validation_summary
    sets = validation_summary(finished_run)
    assert [r["val_set"] for r in sets] == ["val", "general"]
    assert panel.valsets_html.value.count("<tr") == 3 and "the origin (step 0) vs step" in panel.valsets_html.value
    assert all(r["verdict"] in panel.valsets_html.value for r in sets)
    panel.limit.value = 4
    panel.run_button.click()
    panel.task.join(120)
    assert panel.status.kind == "ok", panel.status.text
    report = panel.report
    assert report["before"] == "english_g2" and sum(report["counts"].values()) == 4
    assert panel.gallery.value.count("<img") == 4 and "ocrtrain-compare-metrics" in panel.metrics_html._dom_classes
    assert len(panel.charts.children) >= 1
    saved = sorted((finished_run / "reports").glob("compare-*.json"))
    assert saved and json.loads(saved[-1].read_text())["counts"] == report["counts"]
    task = panel.read_image(png_bytes(draw_line("Melk 12,50")), "melk.png")
    task.join(60)
    assert panel.try_status.kind == "", panel.try_status.text
    assert panel.try_result.value.count("<tr>") == 3  # header + before + after
    task = panel.read_image(b"not an image", "broken.png")
    task.join(60)
    assert panel.try_status.kind == "error" and "broken.png" in panel.try_status.text


def test_export_writes_a_bundle_checks_parity_and_rejects_bad_names(workspace, finished_run):
    from ocrtrain.workbench import ExportPanel

    Run(finished_run).wait(timeout=300)
    panel = ExportPanel(workspace)
    panel.source.refresh(select=str(finished_run))
    panel.name.value = "class"  # a Python keyword: EasyOCR could not import class.py
    panel.export_button.click()
    panel.task.join(60)
    assert panel.status.kind == "error" and "not a Python identifier" in panel.status.text
    assert not (finished_run / "export" / "class.pth").exists()
    panel.name.value = "tiny_receipts"
    panel.parity_limit.value = 4
    panel.export_button.click()
    panel.task.join(120)
    assert panel.status.kind == "ok", panel.status.text
    bundle = finished_run / "export"
    assert all((bundle / f"tiny_receipts{s}").is_file() for s in (".pth", ".yaml", ".py"))
    assert panel.parity["n"] == 4 and "parity on 4" in panel.parity_html.value
    assert 'download="tiny_receipts.zip"' in panel.download.value and "recog_network" in panel.snippet.value
    from ocrtrain.runfolder import latest_report

    saved = json.loads(latest_report(finished_run, "parity").read_text())
    assert saved["n"] == 4 and saved["bundle"] == "tiny_receipts"
    reopened = ExportPanel(workspace)  # the page opened later shows the run's last parity check
    reopened.source.refresh(select=str(finished_run))
    assert reopened.parity["n"] == 4 and "last check" in reopened.parity_html.value


# ---------------------------------------------------------------- dataset tab: import and audit


def labelled_zip(labels: list[str], with_bad: bool = True) -> bytes:
    """A zip with labels.txt and line images (plus one listed image that does not exist)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        lines = []
        for i, label in enumerate(labels):
            zf.writestr(f"img{i}.png", png_bytes(draw_line(label)))
            lines.append(f"img{i}.png\t{label}")
        if with_bad:
            lines.append("missing.png\tGhost")
        zf.writestr("labels.txt", "\n".join(lines) + "\n")
    return buf.getvalue()


def test_import_zip_makes_a_dataset_and_audits_it(workspace):
    from ocrtrain.workbench import DatasetPanel

    panel = DatasetPanel(workspace)
    panel.zip_upload.value = upload_value("receipts.zip", labelled_zip(sample_labels(12, seed=3)))
    panel.import_name.value = "imported"
    form = panel.import_form.widget_for("split")
    form.widget_for("val_fraction").value = 0.25
    form.widget_for("test_fraction").value = 0.25
    panel.import_button.click()
    panel.task.join(60)
    assert panel.import_status.kind == "ok", panel.import_status.text
    out = workspace.datasets_dir / "imported"
    assert panel.dataset == str(out) and sum(json.loads((out / "manifest.json").read_text())["counts"].values()) == 12
    panel.audit_task.join(60)
    report = panel.audit_view.report
    assert report["total"] == 12 and "ø" in report["outside_charset"]
    assert "missing.png" in panel.audit_view.rejected.value
    assert "not in english_g2" in panel.audit_view.summary.value
    # The same name again, and a zip with nothing usable: errors in the page, no new folder.
    panel.import_button.click()
    assert panel.import_status.kind == "error" and "already exists" in panel.import_status.text
    panel.import_name.value = "empty"
    panel.zip_upload.value = upload_value("empty.zip", labelled_zip([], with_bad=True))
    panel.import_button.click()
    panel.task.join(60)
    assert panel.import_status.kind == "error" and "Traceback" not in panel.import_status.text
    assert not (workspace.datasets_dir / "empty").exists()


def test_workbench_links_the_tabs(workspace):
    from ocrtrain.workbench import Workbench

    bench = Workbench(workspace.root, start_polling=False)
    try:
        assert bench.tabs.get_title(0).endswith("Dataset") and len(bench.tabs.children) == 6
        # Only the first tab is built with the page; the others on first use.
        assert bench._panels[0] is not None and bench._panels[1:] == [None] * 5
        bench.tabs.selected_index = 1
        assert bench.tabs.children[1] is bench.train
        tiny = str(workspace.datasets_dir / "tiny")
        bench.dataset.dataset = tiny  # as after Generate / Import
        assert bench.train.data.value == tiny
        run_dir = next(p for p in workspace.runs_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
        bench.train.run = str(run_dir)  # as after Launch
        assert bench.tabs.selected_index == 2 and bench.monitor.selected == str(run_dir.resolve())
        bench.tabs.selected_index = 3
        assert bench.compare.after.run
    finally:
        bench.close()


# ---------------------------------------------------------------- dataset tab: synthetic lines


def test_generate_previews_writes_and_audits_a_dataset(workspace):
    from ocrtrain.workbench import DatasetPanel

    panel = DatasetPanel(workspace)
    panel.synth_form.widget_for("count").value = 30
    panel.synth_form.widget_for("workers").value = 1
    panel.preview_count.value = 3
    panel.preview_button.click()
    panel.task.join(60)
    assert len(panel.preview_grid.children) == 3, panel.status.text
    assert bytes(panel.preview_grid.children[0].children[0].value).startswith(b"\x89PNG")
    panel.dataset_name.value = "synth-tiny"
    panel.generate_button.click()
    panel.task.join(120)
    assert panel.status.kind == "ok", panel.status.text
    out = workspace.datasets_dir / "synth-tiny"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["total"] == 30 and manifest["source"]["source"] == "builtin"
    assert panel.progress.value == 30 and panel.dataset == str(out)
    panel.audit_task.join(60)
    assert panel.audit_view.report["total"] == 30 and len(panel.audit_view.charts.children) >= 1


def test_generate_can_be_canceled(workspace):
    from ocrtrain.workbench import DatasetPanel

    panel = DatasetPanel(workspace)
    panel.synth_form.widget_for("count").value = 5000
    panel.synth_form.widget_for("workers").value = 1
    panel.dataset_name.value = "never"
    panel.generate_button.click()
    wait_for(lambda: panel.progress.value > 0, timeout=60, poll=0.05)
    panel.cancel_button.click()
    panel.task.join(60)
    assert panel.status.kind == "note" and "canceled" in panel.status.text
    assert not (workspace.datasets_dir / "never").exists()
    assert not list(workspace.datasets_dir.glob(".never*"))  # no partial folder either


def test_bad_text_sources_show_the_engines_errors(workspace):
    from ocrtrain.workbench import DatasetPanel

    panel = DatasetPanel(workspace)
    panel.synth_form.widget_for("count").value = 10
    panel.source.value = "upload"
    panel.generate_button.click()
    assert panel.status.kind == "error" and "no word list uploaded" in panel.status.text
    # A CSV without the chosen column: the engine names the columns it has.
    rows = io.StringIO()
    csv.writer(rows).writerows([["sku", "product"], ["1", "Brød"], ["2", "Smør"]])
    panel.words_upload.value = upload_value("prices.csv", rows.getvalue().encode())
    assert panel.column.value == "product" and "2 entries" in panel.words_info.value
    panel.column.value = "name"
    assert "has no column 'name'" in html.unescape(panel.words_info.value)
    panel.dataset_name.value = "from-csv"
    panel.generate_button.click()
    panel.task.join(60)
    assert panel.status.kind == "error" and "has no column 'name'" in panel.status.text
    assert "sku" in panel.status.text and "product" in panel.status.text
    assert not (workspace.datasets_dir / "from-csv").exists()
    # An empty word list: nothing to generate from.
    panel.words_upload.value = upload_value("empty.txt", b"# only a comment\n\n")
    panel.generate_button.click()
    panel.task.join(60)
    assert panel.status.kind == "error" and "holds no text entries" in panel.status.text
    assert not (workspace.datasets_dir / "from-csv").exists()
    # A value the config rejects never reaches the engine's generator.
    panel.synth_form.widget_for("count").value = 0
    panel.generate_button.click()
    assert panel.status.kind == "error" and "count must be >= 1" in panel.status.text


def test_check_times_a_few_steps_in_a_job_and_leaves_nothing_behind(workspace, finished_run):
    panel = TrainPanel(workspace)
    panel.data.refresh(select=str(workspace.datasets_dir / "tiny"))
    fill_train_panel(panel, max_steps=0, max_epochs=3)
    before = sorted(p.name for p in workspace.runs_dir.iterdir())
    panel.check_button.click()
    panel.task.join(300)  # the first job of a session renders the replay lines (cached after)
    assert panel.status.kind == "ok", panel.status.text
    r = panel.check_result
    assert r["device"] == "cpu" and r["batch_used"] == 4 and r["step_s"] > 0
    own = round(4 * (1 - 0.25))  # replay (on by default) takes a quarter of each batch of 4
    assert r["train_samples"] > 0 and r["steps_per_epoch"] == -(-r["train_samples"] // own)
    assert r["total_steps"] == 3 * r["steps_per_epoch"]
    assert "time per epoch" in panel.check_html.value
    step_text = format_duration(r["step_s"], precise=True)  # a step is a fraction of a second: not "0s"
    assert step_text != "0s" and f"<td>{step_text} (first step " in panel.check_html.value
    assert sorted(p.name for p in workspace.runs_dir.iterdir()) == before  # not a run
    assert not list(workspace.root.glob(".check-*"))
