"""readtext's line grouping tuned to a document set (real CRAFT, real english_g2 through Reader.recognize)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ocrtrain.cli import main
from ocrtrain.config import ConfigError
from ocrtrain.documents import DocumentSet, PageImportConfig, import_pages
from ocrtrain.documents.detect import GroupingConfig, detector
from ocrtrain.documents.tune_detect import TuneConfig, _words, group_words, tune_grouping
from test_documents_formats import write_icdar_page

# Item and price far apart, as on receipts: EasyOCR's default width_ths (0.5) cuts each line in two.
TEXTS = ["BREAD       32.00", "COFFEE       49.90", "TOTAL       81.90"]
FAST = dict(canvas_size=640)


@pytest.fixture(scope="module")
def receipts(tmp_path_factory):
    src = tmp_path_factory.mktemp("tune-src")
    for name in ("r1", "r2"):
        write_icdar_page(src, name, TEXTS, size=(460, 200), font_size=26)
    docs = DocumentSet(import_pages(src, src.parent / "tune-docs", PageImportConfig(format="icdar")))
    docs.set_tag("r1", "val")
    docs.set_tag("r2", "test")
    return docs


def test_regrouping_the_words_gives_exactly_what_reader_detect_gives(receipts):
    reader = detector()
    path = str(receipts.image_path("r1"))
    words, _ = _words(reader, path, GroupingConfig(**FAST))
    for grouping in (GroupingConfig(**FAST), GroupingConfig(width_ths=2.0, add_margin=0.2, **FAST)):
        from easyocr.utils import reformat_input

        horizontal, free = reader.detect(reformat_input(path)[0], reformat=False, **grouping.reader_kwargs())
        assert group_words(words, grouping) == (horizontal[0], free[0])


def test_tuning_finds_the_width_that_keeps_receipt_lines_whole(receipts):
    config = TuneConfig(tag="val", width_thss=(0.5, 2.5), ycenter_thss=(0.5,), height_thss=(0.5,),
                        add_margins=(0.1,), **FAST)
    result = tune_grouping(receipts, config)
    assert result["pages"] == 1 and result["lines"] == 3 and result["combinations"] == 2
    assert result["default"]["line_recall"] < 1 / 3 + 1e-9  # the default splits item from price
    assert result["best"]["width_ths"] == 2.5 and result["rows"][0]["line_recall"] == 1.0
    assert result["rows"][0]["f1"] > result["default"]["f1"]


def test_cli_reads_the_best_groupings_and_eval_agrees(receipts, capsys):
    args = ["pages", "tune-detect", str(receipts.path), "--tag", "val", "--model", "english_g2", "--top", "1",
            "--width-thss", "0.5,2.5", "--ycenter-thss", "0.5", "--height-thss", "0.5", "--add-margins", "0.1",
            "--canvas-size", "640", "--json"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    read = {row["width_ths"]: row for row in result["read"]}
    assert set(read) == {0.5, 2.5} and result["ranked_by"] == "page_cer"
    assert read[2.5]["page_cer"] < read[0.5]["page_cer"] and result["best"]["width_ths"] == 2.5
    # what tune-detect read (CRAFT once, Reader.recognize) is what readtext reads with those settings
    assert main(["pages", "eval", "english_g2", "--pages", str(receipts.path), "--tag", "val", "--width-ths",
                 "2.5", "--canvas-size", "640", "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["page_cer"] == pytest.approx(read[2.5]["page_cer"])
    assert evaluated["lines_correct"] == pytest.approx(read[2.5]["lines_correct"])
    assert main(args[:-1]) == 0
    assert "--width-ths 2.5" in capsys.readouterr().out


def test_bad_grids_and_missing_pages_say_what_to_change(receipts):
    with pytest.raises(ConfigError, match="width_thss"):
        TuneConfig(width_thss=())
    with pytest.raises(ConfigError, match="add_margins"):
        TuneConfig(add_margins=(-1.0,))
    from ocrtrain.errors import DatasetError

    with pytest.raises(DatasetError, match="tagged train"):
        tune_grouping(receipts, TuneConfig(tag="train", **FAST))
    assert np.isfinite(TuneConfig().combinations()[0].width_ths)
