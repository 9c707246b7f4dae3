"""The transcription editor, headless: typing saves, Enter verifies and moves on, filters, counts."""
from __future__ import annotations

from ocrtrain.documents import DocumentSet, PageImportConfig, import_pages
from ocrtrain.documents.review import select_lines
from test_documents_formats import _icdar_row, draw_page
from ocrtrain.workbench.transcribe_panel import TranscribePanel


def _docset(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("a", "b"):
        page, polys = draw_page(["TOTAL 12,50", "MELK 1 L", "KAFFE 49,90"], size=(360, 220), font_size=22)
        page.save(src / f"{name}.png")
        (src / f"{name}.csv").write_text("\n".join(_icdar_row(p, "") for p in polys))
    docs = DocumentSet(import_pages(src, tmp_path / "docsets" / "shop", PageImportConfig(format="icdar")))
    for i, conf in enumerate((0.9, 0.2, 0.5)):
        docs.update_line(f"a:{i:04d}", reading=f"R{i}", confidence=conf, text=f"R{i}")
    return docs


class _Workspace:
    def __init__(self, root):
        self.root = root


def test_typing_saves_enter_verifies_and_a_reload_keeps_everything(tmp_path):
    docs = _docset(tmp_path)
    panel = TranscribePanel(_Workspace(tmp_path))
    assert panel.path.options == (str(docs.path),)
    panel.path.value = str(docs.path)
    panel.open_button.click()
    assert panel.docset == str(docs.path) and panel.page.value == "a" and len(panel.rows.children) == 3
    assert panel.preview.value[:4] == b"\x89PNG" and "unreviewed 3/6" in panel.counts.value
    first, second = panel.rows.children[:2]
    first.text.value = "TOTAL 12,50"  # saved as typed, still unreviewed
    line = DocumentSet(docs.path).lines("a")[0]
    assert (line.text, line.status, line.provenance) == ("TOTAL 12,50", "unreviewed", "typed")
    first.text._handle_string_msg(None, {"event": "submit"}, None)  # Enter
    assert DocumentSet(docs.path).lines("a")[0].status == "verified" and first.status.value == "verified"
    assert "verified 1/1" in panel.counts.value
    second.status.value = "bad_box"
    assert DocumentSet(docs.path).lines("a")[1].status == "bad_box"
    reopened = TranscribePanel(_Workspace(tmp_path))
    reopened.open_set(docs.path)
    assert [r.text.value for r in reopened.rows.children] == ["TOTAL 12,50", "R1", "R2"]
    assert [r.status.value for r in reopened.rows.children] == ["verified", "bad_box", "unreviewed"]


def test_filter_sort_and_page_steps(tmp_path):
    docs = _docset(tmp_path)
    panel = TranscribePanel()
    panel.open_set(docs.path)
    panel.sort.value = "confidence"
    assert [r.line.confidence for r in panel.rows.children] == [0.2, 0.5, 0.9]
    panel.rows.children[0].accept()
    panel.filter.value = "unreviewed"
    assert len(panel.rows.children) == 2
    panel.next_button.click()
    assert panel.page.value == "b" and len(panel.rows.children) == 3
    panel.next_button.click()
    assert panel.page.value == "a"
    assert [l.id for l in select_lines(docs.lines("a"), "verified")] == ["a:0001"]


def test_opening_something_else_shows_the_error(tmp_path):
    panel = TranscribePanel()
    panel.open_set(tmp_path)
    assert panel.message.kind == "error" and "not a document set" in panel.message.value
