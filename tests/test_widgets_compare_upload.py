"""Compare tab, try-it upload over the page's upload limit (#13): the page's guard refuses the file
before sending it and its message (limit and fix) arrives as the FileUpload's `error`; the tab
shows it as the Dataset tab does, and reads nothing (headless widgets, no browser, no model)."""
from __future__ import annotations

import pytest

W = pytest.importorskip("ipywidgets")

from ocrtrain.cli.dashboard import MAX_UPLOAD_MB  # noqa: E402

from widgets import ComparePanel, Workspace  # noqa: E402

# What the dashboard template's guard throws (ocrtrain/cli/dashboard.py, TEMPLATE_INDEX).
REFUSED = (f"scan.png is 300.0 MiB, over the dashboard's upload limit of {MAX_UPLOAD_MB} MiB: give its path on the "
           "server instead (Dataset tab, import: 'or a path on the server'), or restart the dashboard with "
           "`ocrtrain dashboard --max-upload-mb N`")


def test_a_refused_try_it_upload_shows_the_limit_and_the_fix(tmp_path):
    panel = ComparePanel(Workspace(tmp_path / "work"))
    panel.try_result.value = "<div>an earlier image's readings</div>"
    panel.upload.error = REFUSED
    assert panel.try_status.kind == "error", panel.try_status.value
    assert panel.try_status.text == REFUSED
    assert "ocrtrain-error" in panel.try_status.value
    assert panel.try_result.value == ""  # the old readings are not this file's
    # The view clears `error` when the next upload arrives: that alone shows no error.
    panel.try_status.clear()
    panel.upload.error = ""
    assert panel.try_status.kind == "" and panel.try_status.value == ""
