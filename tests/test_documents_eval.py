"""Page-level evaluation through the real Reader.readtext (CRAFT + english_g2, and as an exported bundle)."""
from __future__ import annotations

import json

import pytest

from ocrtrain.cli import main
from ocrtrain.documents import DocumentSet, PageImportConfig, import_pages
from ocrtrain.documents.detect import match_boxes
from ocrtrain.documents.page_eval import PageEvalConfig, evaluate_pages
from ocrtrain.errors import DatasetError
from test_documents_formats import write_icdar_page

TEXTS = ["TOTAL 12.50", "BREAD 32.00", "COFFEE 49.90"]  # no short words: readtext keeps each line whole


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    src = tmp_path_factory.mktemp("eval-src")
    for name in ("p1", "p2"):  # + a ground-truth line nothing reads
        write_icdar_page(src, name, TEXTS, ["300,180,390,180,390,210,300,210,NOT PRINTED"], size=(400, 220),
                         font_size=28)
    docs = DocumentSet(import_pages(src, src.parent / "eval-docs", PageImportConfig(format="icdar")))
    docs.set_tag("p2", "test")
    return docs


def test_english_g2_pages_and_the_same_model_as_a_bundle(pages, tmp_path, capsys):
    config = PageEvalConfig(canvas_size=640)
    result = evaluate_pages("english_g2", pages, config)
    assert result["pages"] == 2 and result["total_truth_lines"] == 8
    assert result["line_recall"] == pytest.approx(6 / 8)  # the unprinted line has no box
    assert result["line_precision"] >= 0.75 and result["lines_correct"] >= 4 / 8
    assert 0 < result["page_cer"] < 0.5
    assert any(e["truth"] == "NOT PRINTED" and e["why"] == "no box found" for e in result["errors"])
    from ocrtrain.export import export_easyocr

    export_easyocr("english_g2", "g2copy", tmp_path / "bundle")
    assert main(["pages", "eval", str(tmp_path / "bundle"), "--pages", str(pages.path), "--tag", "test",
                 "--canvas-size", "640", "--json"]) == 0
    as_bundle = json.loads(capsys.readouterr().out)
    assert as_bundle["pages"] == 1 and as_bundle["per_page"][0] == result["per_page"][1]
    for key in ("page_cer", "line_recall", "line_precision", "lines_correct"):
        assert isinstance(as_bundle[key], float)


def test_no_pages_to_evaluate_is_a_clear_error(pages):
    with pytest.raises(DatasetError, match="tagged val"):
        evaluate_pages("english_g2", pages, PageEvalConfig(tag="val"))


def test_match_boxes_is_one_to_one():
    a = [(0, 0), (10, 0), (10, 10), (0, 10)]
    b = [(1, 0), (11, 0), (11, 10), (1, 10)]
    pairs = match_boxes([a, b], [b])
    assert [(f, t) for f, t, _ in pairs] == [(1, 0)]
