"""The Train tab remembers its form and data choices per work folder (issue 14.4): a new panel
(a reloaded page) shows them again; a broken state file is ignored with a note, never an error."""
from __future__ import annotations

import json
import shutil

import pytest

pytest.importorskip("ipywidgets")

from test_widgets_trust import write_dataset  # noqa: E402
from ocrtrain.dataset import SplitConfig  # noqa: E402
from ocrtrain.workbench import TrainPanel, Workspace  # noqa: E402
from ocrtrain.workbench.form_state import state_path  # noqa: E402


@pytest.fixture
def workspace(tmp_path, tiny_dataset, monkeypatch) -> Workspace:
    root = tmp_path / "work"
    shutil.copytree(tiny_dataset, root / "datasets" / "tiny")
    write_dataset(root / "datasets" / "extra", 12, SplitConfig(val_fraction=0.2, test_fraction=0.2))
    monkeypatch.setenv("OCRTRAIN_HOME", str(root))
    return Workspace(root)


def test_a_new_panel_shows_the_form_as_it_was_left(workspace):
    tiny, extra = (str(workspace.datasets_dir / n) for n in ("tiny", "extra"))
    panel = TrainPanel(workspace)
    assert not state_path(workspace.root).exists(), "nothing saved before a change"
    defaults = panel.config()
    panel.data.refresh(select=tiny)
    panel.form.widget_for("max_steps").value = 37
    panel.form.widget_for("lr").value = 3e-4
    panel.advanced.widget_for("val_interval").value = 7
    panel.mixform.primary_weight.value = 2.0
    panel.mixform.mix.value = (extra,)
    panel.mixform.mix_weights.children[0].value = 0.5
    panel.mixform.validate_on.value = (extra,)
    saved = json.loads(state_path(workspace.root).read_text())
    assert saved["train"]["config"]["max_steps"] == 37 and saved["train"]["data"]["mix"] == {extra: 0.5}

    again = TrainPanel(workspace)  # the page reloaded: a fresh kernel builds a fresh panel
    config = again.config()
    assert (config.max_steps, config.lr, config.val_interval) == (37, 3e-4, 7)
    assert (defaults.max_steps, defaults.val_interval) != (37, 7), "the test must be able to fail"
    assert again.data.value == tiny and again.mixform.primary_weight.value == 2.0
    assert again.mixform.mix.value == (extra,) and again.mixform.mix_weights.children[0].value == 0.5
    assert again.mixform.validate_on.value == (extra,)
    assert again.status.kind != "error" and "restored" in again.status.text

    # An invalid field is not saved over the last valid config.
    again.form.widget_for("batch_size").value = 0
    assert json.loads(state_path(workspace.root).read_text())["train"]["config"]["max_steps"] == 37

    # A dataset that was deleted since is left out, with a note.
    shutil.rmtree(workspace.datasets_dir / "extra")
    third = TrainPanel(workspace)
    assert third.mixform.mix.value == () and third.config().max_steps == 37
    assert third.status.kind != "error" and "extra" in third.status.text


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe\x00garbage", b"[1, 2]",
                                     json.dumps({"train": {"config": {"max_stepz": 5}}}).encode(),
                                     json.dumps({"train": {"config": {"max_steps": -3}}}).encode()])
def test_a_broken_state_file_is_ignored_with_a_note(workspace, content):
    path = state_path(workspace.root)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    panel = TrainPanel(workspace)  # must not raise
    assert panel.status.kind != "error", panel.status.text
    assert "not" in panel.status.text and ("restored" in panel.status.text or "read" in panel.status.text)
    assert panel.config().max_steps == TrainPanel(Workspace(workspace.root / "elsewhere")).config().max_steps
    panel.form.widget_for("max_steps").value = 41  # the next change writes a good file again
    assert json.loads(path.read_text())["train"]["config"]["max_steps"] == 41
