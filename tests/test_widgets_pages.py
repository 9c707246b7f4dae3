"""Compare tab, whole pages: the real Reader.readtext with two models on a drawn document set, side by side."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

from ocrtrain.documents import DocumentSet, PageImportConfig, import_pages
from ocrtrain.documents.page_eval import PageEvalConfig, evaluate_pages
from ocrtrain.documents.review import OUTCOME_COLOURS, page_outcome_png
from test_documents_formats import _icdar_row, draw_page
from ocrtrain.workbench.page_compare import PageCompare
from ocrtrain.workbench.workspace import Workspace

TEXTS = ["TOTAL 12.50", "BREAD 32.00"]


def _docset(root):
    src = root / "src"
    src.mkdir()
    for name in ("p1", "p2"):
        page, polys = draw_page(TEXTS, size=(400, 160), font_size=28)
        page.save(src / f"{name}.png")
        rows = [_icdar_row(p, t) for p, t in zip(polys, TEXTS)] + ["300,120,390,120,390,150,300,150,NOT PRINTED"]
        (src / f"{name}.csv").write_text("\n".join(rows) + "\n")
    docs = DocumentSet(import_pages(src, root / "docsets" / "receipts", PageImportConfig(format="icdar")))
    docs.set_tag("p2", "test")
    return docs


def test_page_results_carry_each_line_and_draw_it_in_its_outcome_colour(tmp_path):
    docs = _docset(tmp_path)
    result = evaluate_pages("english_g2", docs, PageEvalConfig(tag="test", canvas_size=640))
    page = result["per_page"][0]
    outcomes = {l["truth"]: l["outcome"] for l in page["lines"]}
    assert outcomes["NOT PRINTED"] == "no box found" and len(page["lines"]) == page["truth_lines"] == 3
    assert sum(o == "right" for o in outcomes.values()) == page["right"]
    png = np.asarray(Image.open(io.BytesIO(page_outcome_png(docs, page, max_width=400))).convert("RGB"))
    colour = np.array(OUTCOME_COLOURS["no box found"])
    assert (np.abs(png[118:152, 298:392].astype(int) - colour).sum(axis=2) == 0).any()  # its box, orange


def test_page_compare_reads_both_models_and_shows_the_pages_side_by_side(tmp_path):
    from ocrtrain.export import export_easyocr

    docs = _docset(tmp_path)
    export_easyocr("english_g2", "g2copy", tmp_path / "bundle")
    panel = PageCompare(Workspace(tmp_path), before=lambda: "english_g2", after=lambda: str(tmp_path / "bundle"),
                        run=lambda: None)
    assert panel.docset.value == str(docs.path) and panel.tag.value == "test" and panel.width_ths.value == 0.5
    panel.width_ths.value = 1.0  # readtext's grouping, as pages tune-detect suggests it
    panel.read_button.click()
    panel.task.join(300)
    assert panel.status.kind == "ok", panel.status.text
    before, after = panel.result["before"], panel.result["after"]
    assert before["pages"] == after["pages"] == 1 and before["per_page"][0] == after["per_page"][0]  # same model
    assert before["config"]["width_ths"] == after["config"]["width_ths"] == 1.0
    assert "page CER" in panel.summary.value and panel.summary.value.count("<tr>") == 5
    assert "width_ths 1</th>" in panel.summary.value
    assert panel.page.options == ("p2",) and panel.view.value.count("<img") == 2
    assert "NOT PRINTED" in panel.view.value and "no box found" in panel.view.value


def test_page_compare_says_what_is_missing(tmp_path):
    panel = PageCompare(Workspace(tmp_path), before=lambda: "english_g2", after=lambda: None, run=lambda: None)
    panel.read_button.click()
    assert panel.status.kind == "error" and "no run to compare" in panel.status.text
    panel = PageCompare(Workspace(tmp_path), before=lambda: "english_g2", after=lambda: "run:x@best", run=lambda: None)
    panel.read_button.click()
    assert panel.status.kind == "error" and "ocrtrain pages import" in panel.status.text


def test_the_compare_tab_holds_the_page_view(tmp_path):
    from ocrtrain.workbench import ComparePanel

    _docset(tmp_path)
    panel = ComparePanel(Workspace(tmp_path))
    assert panel.pages in panel.children and panel.pages.docset.value.endswith("docsets/receipts")
