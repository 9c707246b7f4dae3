"""Alignment re-joins a transcript line the detector split into two boxes on one text row."""
from __future__ import annotations

import json

import pytest

from ocrtrain.documents import AlignConfig, DocumentSet, PageImportConfig, align_pages, import_pages
from ocrtrain.documents.align import align_page, joined_polygon, row_neighbours
from ocrtrain.documents.crop import crop_line
from ocrtrain.errors import ConfigError
from test_documents_formats import _icdar_row, draw_page


def quad(x0, y0, x1, y1):
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


LEFT, RIGHT, BELOW = quad(10, 10, 80, 34), quad(120, 11, 190, 35), quad(10, 50, 120, 74)


def test_two_boxes_of_one_row_become_the_transcript_line():
    result = align_page(["T0TAL", "12.50", "MELK 1 L"], ["MELK 1 L", "TOTAL 12,50"], AlignConfig(),
                        boxes=[LEFT, RIGHT, BELOW])
    assert result.joins == ((0, 1, 1, pytest.approx(2 / 11, abs=1e-4)),)
    assert result.matches == ((2, 0, 0.0),)
    assert result.unmatched_boxes == () and result.unmatched_transcript == ()


def test_the_right_box_listed_first_is_still_read_left_to_right():
    result = align_page(["12.50", "TOTAL"], ["TOTAL 12,50"], AlignConfig(), boxes=[RIGHT, LEFT])
    assert [(j[0], j[1]) for j in result.joins] == [(1, 0)]


@pytest.mark.parametrize("transcript, boxes, config", [
    (["TOTAL", "12,50"], [LEFT, RIGHT], AlignConfig()),  # two transcript lines: two lines, no join
    (["TOTAL 12,50"], [LEFT, quad(10, 40, 80, 64)], AlignConfig()),  # one above the other: not one row
    (["TOTAL 12,50"], [LEFT, quad(400, 10, 470, 34)], AlignConfig()),  # 13 heights apart
    (["TOTAL 12,50"], [LEFT, quad(120, 0, 190, 80)], AlignConfig()),  # heights too different
    (["TOTAL 12,50"], [LEFT, RIGHT], AlignConfig(rejoin=False)),
    (["TOTAL 12,50"], None, AlignConfig()),  # no polygons given
])
def test_no_join_where_it_is_not_one_split_line(transcript, boxes, config):
    result = align_page(["TOTAL", "12.50"], transcript, config, boxes=boxes)
    assert result.joins == ()


def test_a_join_that_steals_a_better_match_is_refused():
    # "TOTAL" alone is a transcript line too: joining would leave it unmatched for a worse page.
    result = align_page(["TOTAL", "12.50"], ["TOTAL", "TOTAL 12,5"], AlignConfig(max_distance=0.5),
                        boxes=[LEFT, RIGHT])
    assert result.joins == () and (0, 0, 0.0) in result.matches


def test_row_neighbours_pick_the_nearest_box_to_the_right():
    assert row_neighbours([LEFT, RIGHT, quad(220, 10, 260, 34), BELOW]) == [(0, 1), (1, 2)]
    assert joined_polygon(LEFT, RIGHT) == ((10, 10), (190, 11), (190, 35), (10, 34))
    with pytest.raises(ConfigError):
        AlignConfig(join_gap=-1)


def _split_line_page(tmp_path):
    """A page of two lines whose first line's box is split in two (as CRAFT splits it), pre-read,
    with its transcript in tmp_path/text/p.txt; returns (document set, page image, drawn polygons)."""
    page, polys = draw_page(["TOTAL 12,50", "MELK 1 L"], size=(360, 140), font_size=24)
    (tmp_path / "src").mkdir()
    page.save(tmp_path / "src" / "p.png")
    (x0, y0), (x1, _), (_, y1), _ = polys[0]
    cut = x0 + 0.55 * (x1 - x0)  # the detector's split, in the space before "12,50"
    rows = [quad(x0, y0, cut - 4, y1), quad(cut + 4, y0, x1, y1), polys[1]]
    (tmp_path / "src" / "p.csv").write_text("\n".join(_icdar_row(p, "") for p in rows))
    docs = DocumentSet(import_pages(tmp_path / "src", tmp_path / "docs", PageImportConfig(format="icdar")))
    for i, (read, conf) in enumerate([("TOTAL", 0.9), ("12.50", 0.7), ("MELK 1 L", 0.95)]):
        docs.update_line(f"p:{i:04d}", reading=read, confidence=conf)
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "p.txt").write_text("MELK 1 L\nTOTAL 12,50\n")
    return docs, page, polys


def test_align_pages_merges_the_split_boxes_in_the_document_set(tmp_path):
    docs, page, polys = _split_line_page(tmp_path)
    (x0, _), (x1, _), _, _ = polys[0]
    report = align_pages(docs, tmp_path / "text")[0]
    assert report["joined"] == [["p:0000", "p:0001"]] and report["matched"] == 2
    assert report["unmatched_boxes"] == [] and report["unmatched_transcript"] == []
    lines = DocumentSet(docs.path).lines("p")
    assert [(l.id, l.text, l.status) for l in lines] == [("p:0000", "TOTAL 12,50", "verified"),
                                                         ("p:0002", "MELK 1 L", "verified")]
    merged = lines[0]
    assert merged.provenance == "aligned" and merged.reading == "TOTAL 12.50" and merged.confidence == 0.7
    assert merged.polygon[1][0] == pytest.approx(x1, abs=1) and merged.polygon[0][0] == pytest.approx(x0, abs=1)
    # The merged crop is the whole printed line, as wide as the drawn line's own box.
    import numpy as np

    whole = crop_line(np.asarray(page), merged.polygon, docs.crop_config())
    drawn = crop_line(np.asarray(page), polys[0], docs.crop_config())
    assert abs(whole.shape[1] - drawn.shape[1]) <= 3
    manifest = json.loads((docs.path / "manifest.json").read_text())
    assert manifest["counts"]["verified"] == 2 and manifest["total_lines"] == 2


def test_cli_align_says_how_many_lines_were_rejoined(tmp_path, capsys):
    from ocrtrain.cli import main

    docs, _, _ = _split_line_page(tmp_path)
    assert main(["pages", "align", str(docs.path), "--text-dir", str(tmp_path / "text")]) == 0
    out = capsys.readouterr().out
    assert "p: 2 of 2 transcript lines matched to 3 boxes (1 of them re-joined from two boxes" in out
