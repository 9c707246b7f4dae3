"""Pages without boxes -> real CRAFT -> real english_g2 pre-reading -> alignment -> dataset; the CLI."""
from __future__ import annotations

import json
import random

import pytest
from PIL import Image

from ocrtrain.cli import main
from ocrtrain.dataset import Dataset
from ocrtrain.documents import (AlignConfig, DetectConfig, DocumentSet, ExportConfig, PageImportConfig,
                                align_pages, detect_pages, export_dataset, import_pages, preread_pages)
from ocrtrain.documents.align import align_page
from ocrtrain.documents.detect import box_iou, reading_order
from ocrtrain.documents.to_dataset import assign_splits
from ocrtrain.errors import DatasetError
from test_documents_formats import _icdar_row, draw_page

PAGE_TEXTS = ["TOTAL 12.50", "MILK 1 LITRE", "COFFEE 49.90", "BREAD 32.00"]
FAST = DetectConfig(canvas_size=640, width_ths=1.0)


@pytest.fixture(scope="module")
def detected(tmp_path_factory):
    """A document set of one drawn page (lines slightly rotated), lines found by real CRAFT."""
    root = tmp_path_factory.mktemp("detect")
    (root / "scans").mkdir()
    page, polys = draw_page(PAGE_TEXTS, angles=[0, 3, -3, 0], size=(420, 300), font_size=28)
    page.save(root / "scans" / "shop.png")
    Image.new("RGB", (300, 200), "white").save(root / "scans" / "blank.png")
    docs = DocumentSet(import_pages(root / "scans", root / "docs", PageImportConfig(format="images")))
    events = []
    found = detect_pages(docs, FAST, callback=events.append)
    return docs, polys, found, events


def test_craft_finds_every_drawn_line(detected):
    docs, polys, found, events = detected
    lines = docs.lines("shop")
    assert found == {"shop": len(lines), "blank": 0} and len(lines) >= len(PAGE_TEXTS)
    assert all(l.provenance == "detector" and l.status == "unreviewed" and l.text == "" for l in lines)
    for poly in polys:  # every drawn line has a detected box over it
        assert max(box_iou(poly, l.polygon) for l in lines) >= 0.5
    assert [e.done for e in events if getattr(e, "stage", "") == "detect"] == [1, 2]
    assert any("blank: CRAFT found no text" in getattr(e, "text", "") for e in events)
    # Detection runs only on pages without lines unless asked again.
    assert detect_pages(docs, FAST, pages=["shop"]) == {}


def test_preread_then_align_a_shuffled_transcript(detected, tmp_path):
    docs, _, _, _ = detected
    assert preread_pages(docs) == len(docs.lines("shop"))
    lines = docs.lines("shop")
    assert all(l.reading is not None and 0 <= l.confidence <= 1 and l.reading_model == "english_g2" for l in lines)
    assert all(l.text == l.reading and l.status == "unreviewed" for l in lines)  # prefilled, not accepted
    readings = " ".join(l.reading for l in lines).upper()
    assert "TOTAL" in readings and "COFFEE" in readings
    texts = PAGE_TEXTS + ["A LINE THAT IS NOT ON THE PAGE"]
    random.Random(3).shuffle(texts)
    (tmp_path / "shop.txt").write_text("\n".join(texts) + "\n\n", encoding="utf-8")
    events = []
    report = align_pages(docs, tmp_path, AlignConfig(), callback=events.append)[0]
    assert report["matched"] == len(PAGE_TEXTS)
    assert report["unmatched_transcript"] == ["A LINE THAT IS NOT ON THE PAGE"]
    verified = [l for l in docs.lines("shop") if l.status == "verified"]
    assert sorted(l.text for l in verified) == sorted(PAGE_TEXTS)
    assert all(l.provenance == "aligned" for l in verified)
    assert any("transcript lines for" in getattr(e, "text", "") for e in events)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="no transcript"):
        align_pages(docs, empty)


def test_align_page_prefers_the_globally_best_assignment():
    # Greedy matching would give box 0 "TOTAL 1" and leave "TOTAL 12.50" without its box.
    result = align_page(["TOTAL 12.5", "TOTAL 1"], ["TOTAL 1", "TOTAL 12.50"], AlignConfig(max_distance=0.3))
    assert sorted(result.matches)[:2] == [(0, 1, pytest.approx(1 / 11, abs=1e-4)), (1, 0, 0.0)]
    far = align_page(["XYZ"], ["TOTAL 12.50"], AlignConfig())
    assert far.matches == () and far.unmatched_transcript == (0,) and far.unmatched_boxes == (0,)


def test_reading_order_rows_then_columns():
    boxes = [[(200, 10), (260, 10), (260, 30), (200, 30)], [(10, 60), (90, 60), (90, 80), (10, 80)],
             [(10, 12), (90, 12), (90, 32), (10, 32)]]
    assert reading_order(boxes) == [2, 0, 1]


# -- to-dataset ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def receipts(tmp_path_factory):
    """Five receipts (ICDAR boxes), each line's text naming its receipt."""
    src = tmp_path_factory.mktemp("receipts")
    for r in range(5):
        texts = [f"R{r} {t}" for t in PAGE_TEXTS]
        page, polys = draw_page(texts, size=(360, 260), font_size=22)
        page.save(src / f"r{r}.png")
        rows = [_icdar_row(p, t) for p, t in zip(polys, texts)]
        (src / f"r{r}.csv").write_text("\n".join(rows) + "\n")
    return DocumentSet(import_pages(src, src.parent / "receipts-docs", PageImportConfig(format="icdar")))


def _labels_by_split(path):
    ds = Dataset(path)
    return {s: [label for _, label in ds.iter_samples(s)] for s in ds.splits}


def test_to_dataset_splits_by_page_without_leakage_and_deterministically(receipts, tmp_path):
    out = export_dataset(receipts, tmp_path / "ds", ExportConfig(split_by="page"))
    labels = _labels_by_split(out)
    pages_in = {s: {l.split()[0] for l in ls} for s, ls in labels.items()}
    assert pages_in["val"] and pages_in["test"] and pages_in["train"]
    assert not (pages_in["train"] & pages_in["val"] or pages_in["train"] & pages_in["test"]
                or pages_in["val"] & pages_in["test"])
    assert sum(len(v) for v in labels.values()) == 20
    again = export_dataset(receipts, tmp_path / "ds2", ExportConfig(split_by="page"))
    assert _labels_by_split(again) == labels
    manifest = Dataset(out).manifest
    assert manifest["source"]["kind"] == "docset" and manifest["source"]["lines_not_verified"] == 0
    image, _ = next(Dataset(out).iter_samples("train"))
    assert image[:4] == b"\x89PNG"


def test_to_dataset_by_tag_and_only_verified_lines(receipts, tmp_path):
    for pid, tag in (("r0", "test"), ("r1", "val"), ("r2", "train")):
        receipts.set_tag(pid, tag)
    receipts.update_line("r3:0000", status="unreviewed")
    receipts.update_line("r3:0001", status="verified", text="   ")
    try:
        events = []
        out = export_dataset(receipts, tmp_path / "bytag", ExportConfig(split_by="tag"), callback=events.append)
        labels = _labels_by_split(out)
        assert {l.split()[0] for l in labels["test"]} == {"R0"} and {l.split()[0] for l in labels["val"]} == {"R1"}
        assert {l.split()[0] for l in labels["train"]} == {"R2", "R3", "R4"}
        assert sum(len(v) for v in labels.values()) == 18
        assert any("verified but empty" in r.reason for r in Dataset(out).rejected())
        assert any("untagged" in getattr(e, "text", "") for e in events)
    finally:
        receipts.update_line("r3:0000", status="verified")
        receipts.update_line("r3:0001", text="R3 MILK 1 LITRE")


def test_assign_splits_guarantees_val_and_test_from_three_units():
    assert sorted(assign_splits(["a", "b", "c"], 0.1, 0.1).values()) == ["test", "train", "val"]
    assert set(assign_splits(["a", "b"], 0.1, 0.1).values()) == {"train"}
    many = assign_splits([f"p{i}" for i in range(40)], 0.1, 0.2, seed=1)
    assert list(many.values()).count("test") == 8 and list(many.values()).count("val") == 4
    assert many == assign_splits([f"p{i}" for i in reversed(range(40))], 0.1, 0.2, seed=1)


# -- CLI ----------------------------------------------------------------------------------------
def test_cli_import_status_to_dataset(receipts, tmp_path, capsys):
    src = receipts.manifest["source"]["path"]
    assert main(["pages", "import", src, "--format", "icdar", "--out", str(tmp_path / "d"), "--padding", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "imported 5 pages (icdar)" in out and "20 verified" in out
    assert DocumentSet(tmp_path / "d").crop_config().padding == 0.2
    assert main(["pages", "status", str(tmp_path / "d"), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["counts"]["verified"] == 20 and len(status["pages"]) == 5
    assert main(["pages", "to-dataset", str(tmp_path / "d"), "--out", str(tmp_path / "ds")]) == 0
    assert "wrote 20 verified lines" in capsys.readouterr().out
    assert main(["pages", "to-dataset", str(tmp_path / "d"), "--out", str(tmp_path / "ds")]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["pages", "status", str(tmp_path / "nothing")]) == 1
    assert "not a document set" in capsys.readouterr().err
    # --overwrite replaces a document set, never another folder or the source itself.
    assert main(["pages", "import", src, "--format", "icdar", "--out", str(tmp_path / "d"), "--overwrite"]) == 0
    assert main(["pages", "import", src, "--format", "icdar", "--out", str(tmp_path / "ds"), "--overwrite"]) == 1
    assert "not a document set" in capsys.readouterr().err and Dataset(tmp_path / "ds").manifest
    assert main(["pages", "import", src, "--format", "icdar", "--out", src + "/inner"]) == 1
    assert "overlap" in capsys.readouterr().err
    assert main(["pages", "to-dataset", str(tmp_path / "d"), "--out", str(tmp_path / "d" / "x")]) == 1
    assert "inside" in capsys.readouterr().err


def test_cli_bare_docset_names_live_under_the_home(receipts, tmp_path, monkeypatch, capsys):
    from ocrtrain.home import docsets_root

    monkeypatch.setenv("OCRTRAIN_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    src = receipts.manifest["source"]["path"]
    assert main(["pages", "import", src, "--format", "icdar", "--out", "scans"]) == 0
    assert (docsets_root() / "scans" / "manifest.json").is_file() and not (tmp_path / "scans").exists()
    capsys.readouterr()
    assert main(["pages", "status", "scans", "--json"]) == 0  # the same bare name opens it again
    assert json.loads(capsys.readouterr().out)["counts"]["verified"] == 20
