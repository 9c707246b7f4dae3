"""CRAFT fine-tuned on a document set's lines (real CRAFT weights, real easyocr.Reader loading the result)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ocrtrain.cli import main
from ocrtrain.config import ConfigError
from ocrtrain.documents import DocumentSet, PageImportConfig, import_pages
from ocrtrain.documents.craft_targets import char_quads, line_maps, ohem_loss
from ocrtrain.documents.craft_train import DetectorTrainConfig, is_detector, load_craft, train_detector
from ocrtrain.errors import DatasetError, ModelError
from test_documents_formats import write_icdar_page

TEXTS = ["BREAD 32.00", "COFFEE 49.90", "TOTAL 81.90"]
BOX = ((0, 0), (100, 0), (100, 20), (0, 20))


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    src = tmp_path_factory.mktemp("craft-src")
    write_icdar_page(src, "r1", TEXTS, size=(300, 160), font_size=22)
    return DocumentSet(import_pages(src, src.parent / "craft-docs", PageImportConfig(format="icdar", tag="train")))


def test_a_line_is_cut_in_one_cell_per_character_and_space_runs_split_words():
    words = char_quads(BOX, "AB   CD")  # one space cell: 5 cells of 20 px
    assert [len(w) for w in words] == [2, 2]
    assert np.allclose(words[0][0], [(0, 0), (20, 0), (20, 20), (0, 20)])
    assert np.allclose(words[1][1], [(80, 0), (100, 0), (100, 20), (80, 20)])
    assert char_quads(BOX, "   ") == []


def test_maps_peak_on_characters_and_link_only_within_a_word():
    region, affinity = line_maps([BOX], ["AB CD"], (20, 100), scale=1.0)
    assert region[10, 10] > 0.9 and region[10, 30] > 0.9 and region[10, 90] > 0.9  # A, B, D centres
    assert region[10, 50] < 0.05  # the space cell
    assert affinity[10, 20] > 0.5 and affinity[10, 80] > 0.5  # A-B and C-D
    assert affinity[10, 50] < 0.05  # no link across the space
    half, _ = line_maps([BOX], ["AB CD"], (10, 50))  # CRAFT's half-size maps
    assert half[5, 5] > 0.9 and half.shape == (10, 50)


def test_ohem_loss_counts_text_pixels_and_the_hardest_background():
    target = torch.zeros(1, 40, 40)
    target[0, 10:20, 10:20] = 1.0
    assert float(ohem_loss(target.clone(), target)) == 0.0
    pred = target.clone()
    pred[0, 30, 30] = 1.0  # one wrong background pixel among 1500
    assert float(ohem_loss(pred, target, floor=10)) == pytest.approx(1 / 300)  # 300 hardest negatives
    assert float(ohem_loss(torch.zeros_like(target), target)) > 0.9  # every text pixel missed


def test_train_detect_writes_a_detector_that_reader_loads_and_pages_eval_uses(pages, tmp_path, capsys):
    out = tmp_path / "det"
    args = ["pages", "train-detect", str(pages.path), "--out", str(out), "--steps", "2", "--crop", "128",
            "--batch-size", "1", "--lr", "1e-3"]
    assert main(args) == 0
    assert "reader.initDetector" in capsys.readouterr().out
    record = json.loads((out / "detector.json").read_text())
    assert is_detector(out) and record["pages"] == 1 and record["lines"] == 3 and len(record["losses"]) == 2
    origin, tuned = load_craft().state_dict(), load_craft(out).state_dict()
    changed = {k for k in origin if not torch.equal(origin[k], tuned[k])}
    assert changed and all(not k.startswith("basenet.") for k in changed)  # the backbone stays fixed

    from ocrtrain.easyocr_interop import make_page_reader

    reader = make_page_reader(None, detector=out)  # the real Reader, its CRAFT swapped as a user would
    loaded = reader.detector.state_dict()
    assert torch.equal(loaded["conv_cls.0.weight"], tuned["conv_cls.0.weight"])
    assert isinstance(reader.readtext(str(pages.image_path("r1"))), list)
    assert main(["pages", "eval", "english_g2", "--pages", str(pages.path), "--detector", str(out),
                 "--canvas-size", "640", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["config"]["detector"] == str(out) and 0 <= result["page_cer"]


def test_refusals_name_the_problem_and_keep_what_is_there(pages, tmp_path):
    with pytest.raises(DatasetError, match=r"no pages tagged 'test' with verified text lines.*--tag train"):
        train_detector(pages, tmp_path / "a", DetectorTrainConfig(tag="test", steps=1))
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("keep me")
    with pytest.raises(DatasetError, match="not an ocrtrain detector folder"):
        train_detector(pages, theirs, DetectorTrainConfig(steps=1), overwrite=True)
    assert (theirs / "notes.txt").read_text() == "keep me"
    with pytest.raises(ConfigError, match="crop must be a multiple of 32"):
        DetectorTrainConfig(crop=100)
    with pytest.raises(ModelError, match="no CRAFT weights"):
        load_craft(tmp_path / "missing")
