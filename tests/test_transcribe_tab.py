"""The Transcribe tab, headless: listed sets, resume where lines are left, the confidence filter,
Enter on a page's last line moving to the next page, and the tab in the workbench."""
from __future__ import annotations

from ocrtrain.documents import DocumentSet, PageImportConfig, import_pages
from test_documents_formats import _icdar_row, draw_page
from ocrtrain.workbench.transcribe_panel import TranscribePanel, find_document_sets


class _Workspace:
    def __init__(self, root):
        self.root = root


def _docset(root, name="shop", pages=("a", "b")):
    src = root / f"src-{name}"
    src.mkdir()
    for page_id in pages:
        page, polys = draw_page(["TOTAL 12,50", "MELK 1 L"], size=(300, 140), font_size=22)
        page.save(src / f"{page_id}.png")
        (src / f"{page_id}.csv").write_text("\n".join(_icdar_row(p, "") for p in polys))
    return DocumentSet(import_pages(src, root / "docsets" / name, PageImportConfig(format="icdar")))


def test_lists_sets_latest_edited_first_and_resumes_on_lines_left(tmp_path):
    older, newer = _docset(tmp_path, "older"), _docset(tmp_path, "newer")
    (tmp_path / "docsets" / "not-a-set").mkdir()
    for line in newer.lines("a"):
        newer.update_line(line.id, text="X", status="verified")
    older.update_line("a:0000", confidence=0.5)  # edited last: listed first
    assert find_document_sets(tmp_path) == [older.path, newer.path]
    panel = TranscribePanel(_Workspace(tmp_path))
    assert panel.docset == str(older.path) and panel.page.value == "a"
    panel.open_set(newer.path)
    assert panel.page.value == "b", "page a is all verified: the editor starts where work is left"
    assert [r.line.id for r in panel.rows.children] == ["b:0000", "b:0001"]


def test_confidence_filter_keeps_unread_lines(tmp_path):
    docs = _docset(tmp_path, pages=("a",))
    docs.update_line("a:0000", confidence=0.9, reading="TOTAL 12,50", text="TOTAL 12,50")
    panel = TranscribePanel()
    panel.open_set(docs.path)
    panel.max_confidence.value = 0.5
    assert [r.line.id for r in panel.rows.children] == ["a:0001"], "a:0001 was never read: always shown"
    docs.update_line("a:0001", confidence=0.3)
    panel.max_confidence.value = 0.95
    assert [r.line.id for r in panel.rows.children] == ["a:0000", "a:0001"]
    panel.max_confidence.value = 0.2
    assert panel.rows.children == ()


def test_enter_on_a_pages_last_line_goes_to_the_next_page(tmp_path):
    docs = _docset(tmp_path)
    panel = TranscribePanel()
    panel.open_set(docs.path)
    first, last = panel.rows.children
    last.text.value = "MELK 1 L"
    last.text._handle_string_msg(None, {"event": "submit"}, None)  # Enter
    assert panel.page.value == "b" and [r.line.id for r in panel.rows.children] == ["b:0000", "b:0001"]
    saved = DocumentSet(docs.path).lines("a")[1]
    assert (saved.text, saved.status) == ("MELK 1 L", "verified")
    assert "ocrtrain-line-verified" in last._dom_classes
    assert "verified 0/1" in panel.counts.value
    for row in panel.rows.children:
        row.accept()  # the last line of the last page stays, and says what is left
    assert panel.page.value == "b" and "1 line left to review" in panel.message.text


def test_workbench_has_the_transcribe_tab(tmp_path):
    from ocrtrain.workbench import Workbench

    docs = _docset(tmp_path, pages=("a",))
    bench = Workbench(tmp_path, start_polling=False)
    try:
        assert bench.tabs.get_title(5).endswith("Transcribe") and bench._panels[5] is None
        bench.tabs.selected_index = 5
        assert bench.tabs.children[5] is bench.transcribe and bench.transcribe.docset == str(docs.path)
        other = _docset(tmp_path, "later", pages=("z",))
        bench.tabs.selected_index = 0
        bench.tabs.selected_index = 5  # shown again: the list is read again
        assert str(other.path) in bench.transcribe.path.options
    finally:
        bench.close()


def test_an_empty_work_folder_says_how_to_make_a_set(tmp_path):
    panel = TranscribePanel(_Workspace(tmp_path))
    assert panel.docs is None and panel.rows.children == ()
    assert panel.message.kind == "note" and "ocrtrain pages import" in panel.message.text
    assert str(tmp_path / "docsets") in panel.message.text
