"""Train tab, headless: a mixture of two datasets and an extra validation set, launched as a real job;
the Monitor then shows one validation curve per set."""
from __future__ import annotations

import shutil

import pytest

from conftest import draw_line, png_bytes, sample_labels

W = pytest.importorskip("ipywidgets")

from ocrtrain.dataset import DatasetWriter, SplitConfig  # noqa: E402
from ocrtrain.runs import Run  # noqa: E402

from ocrtrain.workbench import MonitorPanel, TrainPanel, Workspace  # noqa: E402

TINY = {"max_steps": 2, "warmup_steps": 0, "batch_size": 4, "device": "cpu"}
ADVANCED = {"val_interval": 2, "val_limit": 3, "workers": 0, "freeze_feature_extractor": True}


@pytest.fixture()
def workspace(tmp_path, tiny_dataset, monkeypatch):
    root = tmp_path / "bench"
    shutil.copytree(tiny_dataset, root / "datasets" / "tiny")
    with DatasetWriter(root / "datasets" / "upper", SplitConfig(val_fraction=0.3, test_fraction=0.0, split_seed=2),
                       source={"kind": "test-drawn"}) as writer:
        for i, label in enumerate(sample_labels(12, seed=4)):
            writer.add(png_bytes(draw_line(label.upper())), label.upper(), sample=f"u{i}")
    monkeypatch.setenv("OCRTRAIN_HOME", str(root))
    return Workspace(root)


def test_train_panel_launches_a_mixture_and_the_monitor_plots_each_val_set(workspace):
    tiny, upper = str(workspace.datasets_dir / "tiny"), str(workspace.datasets_dir / "upper")
    panel = TrainPanel(workspace)
    for name, value in TINY.items():
        panel.form.widget_for(name).value = value
    for name, value in ADVANCED.items():
        panel.advanced.widget_for(name).value = value
    panel.data.refresh(select=tiny)
    panel.mixform.mix.value = (upper,)
    panel.mixform._weights[upper].value = 3.0
    panel.mixform.validate_on.value = (upper,)
    spec = panel.mixform.spec()
    assert [(s.path, s.weight) for s in spec.train] == [(tiny, 1.0), (upper, 3.0)]
    assert [(v.name, v.path) for v in spec.val] == [("val", tiny), ("upper", upper)]
    panel.advanced.widget_for("select").value = "nope:cer"
    panel.launch_button.click()  # Launch checks what the engine checks
    assert panel.status.kind == "error" and "nope" in panel.status.text and not panel.run
    panel.advanced.widget_for("select").value = "upper:cer"
    panel.launch_button.click()
    assert panel.run, panel.status.text
    run = Run(panel.run)
    st = run.wait(timeout=180)
    assert st["state"] == "finished", st
    assert [r["val_set"] for r in run.metrics("val") if r["step"]] == ["val", "upper", "general"]
    assert [s["weight"] for s in run.config()["data_spec"]["train"]][:2] == [1.0, 3.0]  # then replay

    monitor = MonitorPanel(workspace)
    monitor.select(panel.run)
    monitor.refresh()
    drawn = {t.name: len(t.x) for t in monitor.fig.data if t.x is not None and len(t.x)}
    assert any("upper" in n for n in drawn) and any("· val" in n for n in drawn), drawn
