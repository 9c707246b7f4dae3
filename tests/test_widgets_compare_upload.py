"""Compare tab, try-it upload over the page's upload limit (#13): the page's guard refuses the file
before sending it and its message (limit and fix) arrives as the FileUpload's `error`; the tab
shows it as the Dataset tab does, with the fix that applies to a try-it image (a smaller image or a
higher limit; the Dataset tab's import by a path on the server does not read an image), and reads
nothing; the Dataset tab's word-list upload likewise says the fix for a word list (headless widgets,
no browser, no model)."""
from __future__ import annotations

import html

import pytest

W = pytest.importorskip("ipywidgets")

from ocrtrain.cli.dashboard import MAX_UPLOAD_MB, TEMPLATE_INDEX  # noqa: E402

from ocrtrain.workbench import ComparePanel, DatasetPanel, Workspace  # noqa: E402
from ocrtrain.workbench.compare_panel import TRY_IT_FIX  # noqa: E402
from ocrtrain.workbench.dataset_panel import WORDS_FIX  # noqa: E402

# What the dashboard template's guard throws (ocrtrain/cli/dashboard.py, TEMPLATE_INDEX).
LIMIT = f"scan.png is 300.0 MiB, over the dashboard's upload limit of {MAX_UPLOAD_MB} MiB"
REFUSED = (f"{LIMIT}: give its path on the server instead (Dataset tab, import: 'or a path on the server'), or "
           "restart the dashboard with `ocrtrain dashboard --max-upload-mb N`")


def test_the_page_still_words_its_refusal_as_the_tab_reads_it():
    # The tab keeps the message up to the limit and replaces the fix after it.
    assert '" MiB, over the " +\n        "dashboard\'s upload limit of "' in TEMPLATE_INDEX
    assert '" MiB: give its path on the server "' in TEMPLATE_INDEX


def test_a_refused_try_it_upload_shows_the_limit_and_the_try_it_fix(tmp_path):
    panel = ComparePanel(Workspace(tmp_path / "work"))
    panel.try_result.value = "<div>an earlier image's readings</div>"
    panel.upload.error = REFUSED
    assert panel.try_status.kind == "error", panel.try_status.value
    assert panel.try_status.text == f"{LIMIT}: {TRY_IT_FIX}"
    assert "path on the server" not in panel.try_status.text
    assert "smaller image" in panel.try_status.text and "--max-upload-mb N" in panel.try_status.text
    assert "ocrtrain-error" in panel.try_status.value
    assert panel.try_result.value == ""  # the old readings are not this file's
    # The view clears `error` when the next upload arrives: that alone shows no error.
    panel.try_status.clear()
    panel.upload.error = ""
    assert panel.try_status.kind == "" and panel.try_status.value == ""
    # Another error from the page's file read is shown as it came.
    panel.upload.error = "NotReadableError: the file could not be read"
    assert panel.try_status.text == "NotReadableError: the file could not be read"


def test_the_dataset_tab_keeps_the_server_path_fix(tmp_path):
    panel = DatasetPanel(Workspace(tmp_path / "work"))
    panel.zip_upload.error = REFUSED
    assert panel.import_status.kind == "error" and panel.import_status.text == REFUSED


def test_a_refused_word_list_shows_the_limit_and_the_word_list_fix(tmp_path):
    # The word-list source has no path field: its fix is a smaller list, `ocrtrain synth` on the
    # server or a higher limit, worded as the Compare tab's try-it refusal.
    panel = DatasetPanel(Workspace(tmp_path / "work"))
    panel.words_upload.error = REFUSED
    assert panel.words_info.value == f'<div class="ocrtrain-error">{html.escape(f"{LIMIT}: {WORDS_FIX}")}</div>'
    assert "path on the server" not in panel.words_info.value
    assert "--max-upload-mb N" in WORDS_FIX and "ocrtrain synth --source" in WORDS_FIX
    # Another error from the page's file read is shown as it came.
    panel.words_upload.error = "NotReadableError: the file could not be read"
    assert panel.words_info.value == '<div class="ocrtrain-error">NotReadableError: the file could not be read</div>'
