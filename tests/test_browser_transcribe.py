"""The Transcribe tab in a real browser: `ocrtrain dashboard` serves the dashboard, headless Chromium
edits a line, presses Enter, reloads the page, and finds the edit kept (in the page and on disk).

The document set is made by the engine from pages drawn in-process (ICDAR box files), with
pre-read texts that carry mistakes, as `ocrtrain pages preread` would leave them.
Skipped only when /usr/bin/chromium is missing.
"""
from __future__ import annotations

import pytest

from browser_support import SHOTS, chromium_page, needs_chromium, open_tab, serve_dashboard, wait_until
from ocrtrain.documents import DocumentSet, PageImportConfig, import_pages
from test_documents_formats import _icdar_row, draw_page

pytestmark = [
    needs_chromium,
    pytest.mark.timeout(180),
]

TRUTH = ["TOTAL 12,50", "MELK 1 L", "KAFFE 49,90"]
READ = ["TOTAI 12.50", "MELK 1 L", "KAFE 49,90"]  # what a model pre-read, mistakes included


def make_docset(home):
    src = home / "src"
    src.mkdir()
    page, polys = draw_page(TRUTH, size=(360, 200), font_size=22)
    for name in ("r1", "r2"):
        page.save(src / f"{name}.png")
        (src / f"{name}.csv").write_text("\n".join(_icdar_row(p, "") for p in polys))
    docs = DocumentSet(import_pages(src, home / "docsets" / "shop", PageImportConfig(format="icdar")))
    for name in ("r1", "r2"):
        for i, (read, conf) in enumerate(zip(READ, (0.41, 0.97, 0.55))):
            docs.update_line(f"{name}:{i:04d}", text=read, reading=read, confidence=conf, reading_model="english_g2")
    return docs


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("ocrtrain-home")
    docs = make_docset(home)
    # A reload leaves the first page's kernel behind: culled after 2 idle minutes.
    with serve_dashboard(home, home.parent / f"{home.name}-dashboard.log", options=["--cull-idle", "120"]) as url:
        yield url, docs


def open_editor(page, rows: int) -> None:
    page.wait_for_selector(".ocrtrain-workbench .ocrtrain-tabs")
    assert page.locator(".lm-TabBar-tab").count() == 6
    open_tab(page, "6 · Transcribe")
    wait_until(lambda: page.locator(".ocrtrain-transcribe .ocrtrain-line-row").count() == rows, timeout=60)


def active_row_index(page) -> int:
    return page.evaluate("""() => [...document.querySelectorAll('.ocrtrain-line-row')]
        .findIndex(r => r.contains(document.activeElement))""")


def page_label(page) -> str:
    return page.locator(".ocrtrain-docset-page select").evaluate("s => s.options[s.selectedIndex].text")


def test_edit_enter_reload_keeps_the_edit(server):
    url, docs = server
    with chromium_page(height=900) as page:
        page.goto(url)
        open_editor(page, rows=3)
        rows = page.locator(".ocrtrain-line-row")
        assert [rows.nth(i).locator("input").input_value() for i in range(3)] == READ
        assert "unreviewed 3/6" in page.locator(".ocrtrain-counts").inner_text()
        field = rows.nth(0).locator(".ocrtrain-line-text input")
        field.fill(TRUTH[0])
        field.press("Enter")
        wait_until(lambda: "ocrtrain-line-verified" in (rows.nth(0).get_attribute("class") or ""), timeout=20)
        wait_until(lambda: active_row_index(page) == 1, timeout=20)  # Enter moved on to the next line
        assert "verified 1/1" in page.locator(".ocrtrain-counts").inner_text()
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "09-transcribe.png"))
        saved = DocumentSet(docs.path).lines("r1")
        assert [(l.text, l.status) for l in saved] == [(TRUTH[0], "verified"), (READ[1], "unreviewed"),
                                                       (READ[2], "unreviewed")]
        assert saved[0].provenance == "typed"
        # Enter on the page's last line: the next page opens on its first line.
        rows.nth(2).locator("input").click()
        page.keyboard.press("Enter")
        wait_until(lambda: page_label(page).startswith("r2") and active_row_index(page) == 0, timeout=20)
        assert DocumentSet(docs.path).lines("r1")[2].status == "verified"

        page.reload()  # a new kernel, a new workbench: everything comes from disk
        open_editor(page, rows=3)
        rows = page.locator(".ocrtrain-line-row")
        assert page_label(page).startswith("r1"), "r1 still has a line to review: the editor resumes there"
        assert rows.nth(0).locator("input").input_value() == TRUTH[0]
        assert ["ocrtrain-line-verified" in rows.nth(i).get_attribute("class") for i in range(3)] == [
            True, False, True]
        assert "verified 2/2" in page.locator(".ocrtrain-counts").inner_text()
        assert not page.locator(".jp-OutputArea-output pre:has-text('Traceback')").count()
