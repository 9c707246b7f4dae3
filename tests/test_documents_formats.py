"""Document sets: ground-truth formats written by hand, page images of every kind, crops, edits."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from conftest import FONT
from ocrtrain.documents import DocumentSet, PageImportConfig, import_pages, read_truth
from ocrtrain.documents.crop import CropConfig, crop_line, order_quad
from ocrtrain.errors import ConfigError, DatasetError

TEXTS = ["TOTAL 12,50", "MELK 1 L", "KAFFE 49,90", "BROD 32,00"]


def draw_page(texts, angles=None, size=(520, 400), font_size=26, top=20):
    """A white page with one black text line per text, each rotated by its angle (degrees, CCW).

    Returns (RGB image, polygons) with each polygon TL, TR, BR, BL of the text's own frame.
    """
    angles = angles or [0] * len(texts)
    page = Image.new("RGB", size, "white")
    font = ImageFont.truetype(str(FONT), font_size)
    polygons, y = [], top
    for text, angle in zip(texts, angles):
        left, t, right, b = font.getbbox(text)
        w, h = right - left + 12, b - t + 12
        patch = Image.new("L", (w, h), 0)
        ImageDraw.Draw(patch).text((6 - left, 6 - t), text, fill=255, font=font)
        rotated = patch.rotate(angle, expand=True, resample=Image.BICUBIC)
        cx, cy = 30 + w / 2, y + rotated.size[1] / 2
        page.paste((0, 0, 0), (int(cx - rotated.size[0] / 2), int(cy - rotated.size[1] / 2)), rotated)
        a = math.radians(angle)
        corners = [(-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)]
        polygons.append([(cx + dx * math.cos(a) + dy * math.sin(a), cy - dx * math.sin(a) + dy * math.cos(a))
                         for dx, dy in corners])
        y += rotated.size[1] + 14
    return page, polygons


def _icdar_row(poly, text):
    return ",".join(str(int(round(v))) for p in poly for v in p) + "," + text


def write_icdar_page(src, name, texts, extra_rows=(), **draw):
    """src/NAME.png drawn with `texts` (draw_page's options) and src/NAME.csv, its ICDAR rows + `extra_rows`."""
    page, polys = draw_page(texts, **draw)
    page.save(src / f"{name}.png")
    rows = [_icdar_row(p, t) for p, t in zip(polys, texts)] + list(extra_rows)
    (src / f"{name}.csv").write_text("\n".join(rows) + "\n")


def _import(src, tmp_path, **cfg):
    return DocumentSet(import_pages(src, tmp_path / "docs", PageImportConfig(**cfg)))


# -- ICDAR / SROIE ------------------------------------------------------------------------------
def test_icdar_folder_keeps_good_lines_and_names_each_bad_one(tmp_path):
    src = tmp_path / "sroie"
    (src / "img").mkdir(parents=True)
    (src / "box").mkdir()
    page, polys = draw_page(TEXTS)
    page.save(src / "img" / "r1.jpg")
    rows = [_icdar_row(polys[0], "TOTAL 12,50"), "1,2,3,oops", _icdar_row(polys[1], "MELK 1 L"),
            "900,900,950,900,950,930,900,930,OUTSIDE", _icdar_row(polys[1], "MELK 1 L"),
            _icdar_row(polys[2], "###"), _icdar_row(polys[3], "BR\xd8D 32,00")]
    # BOM-less cp1252 file with CRLF endings, as some SROIE box files are.
    (src / "box" / "r1.csv").write_bytes("\r\n".join(rows).encode("cp1252") + b"\r\n")
    docs = _import(src, tmp_path, format="auto")
    assert docs.manifest["source"]["format"] == "icdar"
    lines = docs.lines("r1")
    assert [l.text for l in lines] == ["TOTAL 12,50", "MELK 1 L", "", "BR\xd8D 32,00"]
    assert [l.status for l in lines] == ["verified", "verified", "skipped", "verified"]
    assert lines[0].source.endswith("r1.csv:1") and lines[0].provenance == "gt-file"
    reasons = {r.where.rsplit(":", 1)[-1] if ":" in r.where else r.where: r.reason for r in docs.rejected()}
    assert "8 (or 4) numbers" in reasons["2"] and "r1.csv:2" in reasons["2"]
    assert "outside" in reasons["4"] and "duplicate" in reasons["5"]
    assert any("not UTF-8" in r.reason for r in docs.rejected())
    assert docs.counts() == {"unreviewed": 0, "verified": 3, "skipped": 1, "bad_box": 0}
    assert docs.page("r1").image == "pages/r1.jpg"  # an untouched JPEG is copied as is


def test_icdar_box_without_image_is_rejected_and_nothing_usable_is_an_error(tmp_path):
    src = tmp_path / "only-boxes"
    src.mkdir()
    (src / "lost.csv").write_text("1,1,9,1,9,9,1,9,X\n")
    with pytest.raises(DatasetError, match="no usable pages"):
        import_pages(src, tmp_path / "docs", PageImportConfig(format="icdar"))
    assert not (tmp_path / "docs").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".docs")]


# -- PAGE-XML and ALTO --------------------------------------------------------------------------
_PAGE_NS = {"2019": "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15",
            "2013": "http://schema.primaresearch.org/PAGE/gts/pagecontent/2013-07-15"}


def _pagexml(ns, image, polys, texts):
    lines = "".join(
        f'<TextLine id="l{i}"><Coords points="{" ".join(f"{x:.0f},{y:.0f}" for x, y in p)}"/>'
        f"<TextEquiv><Unicode>{t}</Unicode></TextEquiv></TextLine>" for i, (p, t) in enumerate(zip(polys, texts)))
    return (f'<?xml version="1.0" encoding="UTF-8"?><PcGts xmlns="{ns}"><Page imageFilename="{image}" '
            f'imageWidth="520" imageHeight="400"><TextRegion id="r1">{lines}</TextRegion></Page></PcGts>')


@pytest.mark.parametrize("version", ["2019", "2013"])
def test_pagexml_lines_and_missing_image_reported(tmp_path, version):
    src = tmp_path / "page"
    src.mkdir()
    page, polys = draw_page(TEXTS, angles=[0, 10, 0, -8])
    page.save(src / "scan.png")
    (src / "scan.xml").write_text(_pagexml(_PAGE_NS[version], "scan.png", polys, TEXTS), encoding="utf-8")
    (src / "gone.xml").write_text(_pagexml(_PAGE_NS[version], "gone.png", polys, TEXTS), encoding="utf-8")
    (src / "broken.xml").write_text("<PcGts><Page", encoding="utf-8")
    docs = _import(src, tmp_path, format="pagexml")
    assert [l.text for l in docs.lines("scan")] == TEXTS
    assert np.allclose(docs.lines("scan")[1].polygon, [(round(x), round(y)) for x, y in polys[1]])
    reasons = " | ".join(r.reason for r in docs.rejected())
    assert "gone.xml" in reasons and "'gone.png'" in reasons and "imageFilename" in reasons
    assert "broken.xml:1" in reasons and "well-formed" in reasons


def test_alto_strings_joined_and_polygon_preferred(tmp_path):
    src = tmp_path / "alto"
    src.mkdir()
    page, polys = draw_page(TEXTS[:2])
    page.save(src / "book.tif")
    p = polys[1]
    shape = " ".join(f"{x:.0f},{y:.0f}" for x, y in p)
    (src / "book.xml").write_text(
        '<alto xmlns="http://www.loc.gov/standards/alto/ns-v4#"><Description><MeasurementUnit>pixel'
        '</MeasurementUnit><sourceImageInformation><fileName>book.tif</fileName></sourceImageInformation>'
        '</Description><Layout><Page WIDTH="520" HEIGHT="400"><PrintSpace><TextBlock>'
        f'<TextLine ID="a" HPOS="{polys[0][0][0]:.0f}" VPOS="{polys[0][0][1]:.0f}" WIDTH="{polys[0][1][0] - polys[0][0][0]:.0f}" '
        f'HEIGHT="{polys[0][3][1] - polys[0][0][1]:.0f}"><String CONTENT="TOTAL"/><SP/><String CONTENT="12,50"/></TextLine>'
        f'<TextLine ID="b" HPOS="0" VPOS="0" WIDTH="1" HEIGHT="1"><Shape><Polygon POINTS="{shape}"/></Shape>'
        '<String CONTENT="MELK"/><String CONTENT="1"/><String CONTENT="L"/></TextLine>'
        '<TextLine ID="c" HPOS="x"><String CONTENT="BAD"/></TextLine>'
        '</TextBlock></PrintSpace></Page></Layout></alto>', encoding="utf-8")
    docs = _import(src, tmp_path, format="auto")
    assert docs.manifest["source"]["format"] == "alto"
    lines = docs.lines("book")
    assert [l.text for l in lines] == ["TOTAL 12,50", "MELK 1 L"]
    assert abs(lines[1].polygon[0][0] - p[0][0]) < 1
    assert any("TextLine c" in r.where and "HPOS" in r.reason for r in docs.rejected())


# -- PPOCRLabel and Label Studio ----------------------------------------------------------------
def test_ppocr_label_txt(tmp_path):
    folder = tmp_path / "ppocr" / "shop"
    folder.mkdir(parents=True)
    page, polys = draw_page(TEXTS[:3])
    page.save(folder / "a.png")
    boxes = [{"transcription": t, "points": [[round(x), round(y)] for x, y in p], "difficult": False}
             for t, p in zip(TEXTS[:3], polys)]
    boxes.append({"transcription": "no points"})
    (folder / "Label.txt").write_text(f"shop/a.png\t{json.dumps(boxes)}\nshop/b.png\t[]\nshop/a.png\t[{{bad\n",
                                      encoding="utf-8")
    docs = _import(tmp_path / "ppocr", tmp_path, format="auto")
    assert docs.manifest["source"]["format"] == "ppocr"
    assert [l.text for l in docs.lines("a")] == TEXTS[:3]
    where = {r.where: r.reason for r in docs.rejected()}
    assert any(w.endswith("Label.txt:1 box 4") for w in where)
    assert any(w.endswith("Label.txt:2") and "'shop/b.png' not found" in r for w, r in where.items())
    assert any(w.endswith("Label.txt:3") and "not valid JSON" in r for w, r in where.items())


def test_labelstudio_rotated_rectangle_and_polygon(tmp_path):
    src = tmp_path / "ls"
    src.mkdir()
    page, polys = draw_page(TEXTS[:2], angles=[0, 15])
    page.save(src / "receipt.png")
    W, H = page.size
    (x0, y0), (x1, _), _, (_, y3) = polys[0]
    rect = {"x": x0 / W * 100, "y": y0 / H * 100, "width": (x1 - x0) / W * 100, "height": (y3 - y0) / H * 100,
            "rotation": 0}
    poly = {"points": [[x / W * 100, y / H * 100] for x, y in polys[1]]}
    common = {"original_width": W, "original_height": H}
    task = {"id": 7, "data": {"ocr": "/data/upload/3/8b2d5c3a-receipt.png"}, "annotations": [{"result": [
        {"id": "r1", "type": "rectangle", "value": rect, **common},
        {"id": "r1", "type": "textarea", "value": {**rect, "text": ["TOTAL 12,50"]}, **common},
        {"id": "p1", "type": "polygon", "value": poly, **common},
        {"id": "p1", "type": "textarea", "value": {**poly, "text": ["MELK 1 L"]}, **common},
        {"id": "x", "type": "rectangle", "value": {"x": 1, "y": 1, "width": 5, "height": 5}}]}]}
    (src / "export.json").write_text(json.dumps([task, {"id": 8, "data": {"ocr": "missing.png"}}]))
    docs = _import(src, tmp_path, format="labelstudio")
    lines = docs.lines("receipt")
    assert [l.text for l in lines] == ["TOTAL 12,50", "MELK 1 L"]
    assert np.allclose(lines[1].polygon, polys[1], atol=0.5)
    reasons = " | ".join(f"{r.where}: {r.reason}" for r in docs.rejected())
    assert "result x" in reasons and "original_width" in reasons
    assert "task 8" in reasons and "'missing.png' not found" in reasons


def test_rotated_labelstudio_rectangle_turns_about_its_top_left():
    from ocrtrain.documents.gt_json import rectangle_points

    pts = rectangle_points({"x": 10, "y": 10, "width": 20, "height": 10, "rotation": 90}, 100, 100)
    assert np.allclose(pts, [(10, 10), (10, 30), (0, 30), (0, 10)])


# -- page images --------------------------------------------------------------------------------
def test_tiff_pages_pdf_pages_exif_and_big_pages(tmp_path):
    src = tmp_path / "scans"
    src.mkdir()
    frames = [draw_page([t], size=(300, 120))[0] for t in TEXTS[:3]]
    frames[0].save(src / "multi.tif", save_all=True, append_images=frames[1:])
    frames[0].save(src / "doc.pdf", save_all=True, append_images=frames[1:2], resolution=100)
    photo = draw_page(["PHOTO"], size=(300, 120))[0]
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    photo.save(src / "phone.jpg", exif=exif)
    draw_page(["BIG"], size=(1000, 800))[0].save(src / "big.png")
    docs = _import(src, tmp_path, format="images", max_megapixels=0.5, pdf_dpi=100)
    pages = {p.id: p for p in docs.pages}
    assert {"multi-p001", "multi-p002", "multi-p003", "doc-p001", "doc-p002", "phone", "big"} == set(pages)
    assert pages["multi-p002"].document == "multi" and pages["doc-p002"].document == "doc"
    pdf = pages["doc-p001"]
    assert abs(pdf.width - 300) <= 1 and abs(pdf.height - 120) <= 1  # 100 dpi = the pixels saved
    assert (pages["phone"].width, pages["phone"].height) == (120, 300)  # EXIF applied
    assert pages["big"].width * pages["big"].height <= 500_000 and pages["big"].scale < 1
    assert np.asarray(docs.image("multi-p003")).shape == (120, 300, 3)
    assert docs.counts()["verified"] == 0


def test_pdf_over_the_page_limit_is_rejected_with_the_fix(tmp_path):
    src = tmp_path / "scans"
    src.mkdir()
    frames = [draw_page([t], size=(200, 80))[0] for t in TEXTS]
    frames[0].save(src / "long.pdf", save_all=True, append_images=frames[1:])
    frames[0].save(src / "ok.png")
    docs = _import(src, tmp_path, format="images", max_pages=3)
    assert [p.id for p in docs.pages] == ["ok"]
    assert any("4 pages, over max_pages=3" in r.reason and "--max-pages" in r.reason for r in docs.rejected())


def test_import_config_rejects_bad_values():
    with pytest.raises(ConfigError, match="pdf_dpi"):
        PageImportConfig(pdf_dpi=5)
    with pytest.raises(ConfigError, match="format"):
        PageImportConfig(format="hocr")


# -- crops --------------------------------------------------------------------------------------
def test_order_quad_is_independent_of_the_given_order():
    quad = np.array([(10, 10), (110, 30), (106, 50), (6, 30)], np.float32)
    want = order_quad(quad)
    assert np.allclose(want[0], (10, 10)) and np.allclose(want[1], (110, 30))
    for perm in ([2, 0, 3, 1], [3, 2, 1, 0], [1, 2, 3, 0]):
        assert np.allclose(order_quad(quad[perm]), want)


def _ink_rows(crop: np.ndarray) -> np.ndarray:
    gray = crop.mean(axis=2) if crop.ndim == 3 else crop
    return (gray < 128).sum(axis=1)


@pytest.mark.parametrize("angle", [0, 12, -25, 80])
def test_rotated_lines_come_out_horizontal(angle):
    page, polys = draw_page(["KAFFE 49,90"], angles=[angle], size=(420, 420), top=80)
    straight = crop_line(np.asarray(draw_page(["KAFFE 49,90"], size=(420, 420), top=80)[0]),
                         draw_page(["KAFFE 49,90"], size=(420, 420), top=80)[1][0], CropConfig(padding=0, padding_px=0))
    crop = crop_line(np.asarray(page), polys[0], CropConfig(padding=0, padding_px=0))
    assert crop.shape[1] > 3 * crop.shape[0]
    assert abs(crop.shape[0] - straight.shape[0]) <= 2 and abs(crop.shape[1] - straight.shape[1]) <= 2
    # Same ink profile row by row as the unrotated line: the text is upright and level.
    a = _ink_rows(crop)[: straight.shape[0]].astype(float)
    b = _ink_rows(straight)[: len(a)].astype(float)
    assert np.corrcoef(a, b)[0, 1] > 0.9
    # ... and not mirrored or upside down: the column profile matches too.
    cols = lambda c: (c.mean(axis=2) < 128).sum(axis=0).astype(float)
    n = min(crop.shape[1], straight.shape[1])
    # (up to 2 pixels of shift: the drawing pastes rotated text at whole pixels)
    assert max(np.corrcoef(np.roll(cols(crop), k)[:n], cols(straight)[:n])[0, 1] for k in range(-2, 3)) > 0.9


def test_padding_in_line_heights_and_pixels():
    page = np.full((100, 300, 3), 255, np.uint8)
    quad = [(50, 40), (250, 40), (250, 60), (50, 60)]
    assert crop_line(page, quad, CropConfig(padding=0.5, padding_px=3)).shape == (46, 226, 3)
    polygon = [(50, 40), (150, 38), (250, 40), (250, 60), (150, 62), (50, 60)]  # not a quad: min-area box
    assert crop_line(page, polygon, CropConfig(padding=0, padding_px=0)).shape[1] == 200
    with pytest.raises(Exception, match="min_height"):
        crop_line(page, [(0, 0), (50, 0), (50, 2), (0, 2)])


# -- edits --------------------------------------------------------------------------------------
def test_update_line_saves_one_page_atomically_and_updates_counts(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    page, polys = draw_page(TEXTS[:2])
    page.save(src / "p.png")
    (src / "p.csv").write_text("\n".join(_icdar_row(p, "") for p in polys))
    docs = _import(src, tmp_path, format="icdar")
    assert docs.counts()["unreviewed"] == 2
    before = docs.manifest["content_hash"]
    docs.update_line("p:0001", text="MELK 1 L", status="verified", provenance="typed")
    again = DocumentSet(docs.path)
    assert again.lines("p")[1].text == "MELK 1 L" and again.lines("p")[1].provenance == "typed"
    assert again.counts() == {"unreviewed": 1, "verified": 1, "skipped": 0, "bad_box": 0}
    assert again.manifest["content_hash"] != before
    assert not list(docs.path.rglob("*.tmp"))
    with pytest.raises(DatasetError, match="status"):
        docs.update_line("p:0000", status="done")
    with pytest.raises(DatasetError, match="no line"):
        docs.update_line("p:0042", text="x")
    docs.set_tag("p", "test")
    assert DocumentSet(docs.path).page("p").tag == "test"


def test_read_truth_unknown_format():
    with pytest.raises(DatasetError, match="unknown ground-truth format"):
        read_truth(Path("."), "hocr")


def test_auto_tells_box_files_from_plain_transcripts(tmp_path):
    from ocrtrain.documents.formats import detect_format

    (tmp_path / "a").mkdir()
    draw_page(TEXTS[:1])[0].save(tmp_path / "a" / "p.png")
    (tmp_path / "a" / "p.txt").write_text("TOTAL 12,50\nMELK 1 L\n")
    assert detect_format(tmp_path / "a") == "images"
    (tmp_path / "a" / "p.txt").write_text("\ufeff1, 2, 30, 2, 30, 12, 1, 12, TOTAL 12,50\n")
    assert detect_format(tmp_path / "a") == "icdar"
