"""Real receipt pages through the document path: line crops, CRAFT detection, alignment, pages.

On ../shared/realdata/sroie-dev (60 scanned receipts, ICDAR box files; labels are upper-case
ASCII and their spacing does not always follow the print, so text is compared case-insensitively
("ci") and also ignoring all whitespace ("ci, no spaces")):

1. ``ocrtrain pages import --format icdar``; every box cut along its polygon (CropConfig padding).
2. Line crops: english_g2 (Predictor as ``Reader.recognize`` reads: qint8 on CPU, contrast retry)
   vs Tesseract 5 ``--psm 7`` on the same crops when ``tesseract`` is installed: % lines right, CER.
3. Detection: CRAFT (``ocrtrain pages detect`` with the DetectConfig given) on each page, boxes
   matched one-to-one to the ground-truth boxes (IoU >= 0.5): recall and precision.
4. Alignment: detected boxes pre-read by english_g2 + the page's transcript (its ground-truth
   lines, shuffled) -> ``ocrtrain pages align``: how many boxes become verified and how many of
   those carry the text of the ground-truth box under them.
5. With ``--readtext``: the whole EasyOCR pipeline, ``Reader.readtext`` with english_g2, per page:
   page CER on reading-order text (ci, whitespace runs collapsed), line recall/precision
   (IoU >= 0.5), matched lines read right.

    python -m bench.real_pages [--data ../shared/realdata/sroie-dev] [--pages 60] [--detect-pages 60]
                               [--canvas-size 1280] [--width-ths 1.0] [--padding 0.1] [--padding-px 2]
                               [--no-tesseract] [--readtext] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "realdata" / "sroie-dev"


def _ci(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def _loose(text: str) -> str:
    return re.sub(r"\s+", "", text).casefold()


def line_scores(predictions: list[str], labels: list[str]) -> dict:
    """% right and CER, case-insensitive, with and without whitespace."""
    from rapidfuzz.distance import Levenshtein

    out = {"n": len(labels)}
    for name, norm in (("ci", _ci), ("loose", _loose)):
        p, g = [norm(x) for x in predictions], [norm(x) for x in labels]
        out[f"right_{name}"] = sum(a == b for a, b in zip(p, g)) / max(1, len(g))
        out[f"cer_{name}"] = sum(Levenshtein.distance(b, a) for a, b in zip(p, g)) / max(1, sum(map(len, g)))
    return out


def _gt_crops(docs, page_ids):
    from ocrtrain.documents.crop import crop_lines
    from ocrtrain.documents.preread import page_gray

    crops, labels = [], []
    for pid in page_ids:
        lines = [l for l in docs.lines(pid) if l.status == "verified"]
        for line, crop in zip(lines, crop_lines(page_gray(docs, pid), [l.polygon for l in lines], docs.crop_config())):
            if not isinstance(crop, Exception):
                crops.append(crop)
                labels.append(line.text)
    return crops, labels


def read_english_g2(crops) -> tuple[list[str], float]:
    from ocrtrain.inference import Predictor

    predictor = Predictor.from_origin("english_g2", quantize=True, reader_compatible=True)
    start = time.perf_counter()
    texts = [p.text for p in predictor.predict(crops)]
    return texts, time.perf_counter() - start


def read_tesseract(crops, workdir: Path) -> tuple[list[str], float] | None:
    """Tesseract --psm 7 on every crop (one process over a list file); None when not installed."""
    if shutil.which("tesseract") is None:
        return None
    from PIL import Image

    folder = workdir / "tess"
    folder.mkdir(exist_ok=True)
    texts, start = [], time.perf_counter()
    for chunk in range(0, len(crops), 200):
        names = []
        for i, crop in enumerate(crops[chunk:chunk + 200]):
            names.append(str(folder / f"{chunk + i:05d}.png"))
            Image.fromarray(crop).save(names[-1])
        listing = folder / "list.txt"
        listing.write_text("\n".join(names) + "\n")
        proc = subprocess.run(["tesseract", str(listing), "stdout", "--psm", "7", "-l", "eng"],
                              capture_output=True, text=True, check=True)
        pages = proc.stdout.split("\f")
        texts += [p.strip() for p in pages[:len(names)]] + [""] * max(0, len(names) - len(pages))
    return texts, time.perf_counter() - start


def match_boxes(found: list, truth: list, threshold: float = 0.5) -> list[tuple[int, int, float]]:
    """One-to-one matching of found to truth boxes maximising IoU; pairs with IoU >= threshold."""
    from scipy.optimize import linear_sum_assignment

    from ocrtrain.documents.detect import box_iou

    if not found or not truth:
        return []
    iou = np.array([[box_iou(f, t) for t in truth] for f in found])
    rows, cols = linear_sum_assignment(-iou)
    return [(int(r), int(c), float(iou[r, c])) for r, c in zip(rows, cols) if iou[r, c] >= threshold]


def detect_and_align(gt_docs, page_ids, args, workdir: Path) -> dict:
    """CRAFT on the pages, recall/precision vs the truth, then alignment of each page's transcript."""
    from ocrtrain.documents import (AlignConfig, DetectConfig, DocumentSet, PageImportConfig, align_pages,
                                    detect_pages, import_pages)

    src = workdir / "pages"
    src.mkdir()
    for pid in page_ids:
        shutil.copy(gt_docs.image_path(pid), src / Path(gt_docs.page(pid).image).name)
    docs = DocumentSet(import_pages(src, workdir / "detected", PageImportConfig(format="images")))
    config = DetectConfig(canvas_size=args.canvas_size, width_ths=args.width_ths)
    start = time.perf_counter()
    detect_pages(docs, config)
    detect_s = time.perf_counter() - start
    texts = workdir / "texts"
    texts.mkdir()
    rng = random.Random(0)
    for pid in page_ids:
        lines = [l.text for l in gt_docs.lines(pid) if l.status == "verified"]
        rng.shuffle(lines)
        (texts / f"{pid}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    align_pages(docs, texts, AlignConfig())
    tp = n_found = n_truth = verified = correct = 0
    for pid in page_ids:
        truth = [l for l in gt_docs.lines(pid) if l.status == "verified"]
        found = docs.lines(pid)
        pairs = match_boxes([l.polygon for l in found], [l.polygon for l in truth])
        tp, n_found, n_truth = tp + len(pairs), n_found + len(found), n_truth + len(truth)
        under = {f: t for f, t, _ in pairs}
        for i, line in enumerate(found):
            if line.status == "verified":
                verified += 1
                correct += i in under and _loose(line.text) == _loose(truth[under[i]].text)
    return {"pages": len(page_ids), "truth_lines": n_truth, "found": n_found, "recall": tp / max(1, n_truth),
            "precision": tp / max(1, n_found), "detect_s_per_page": detect_s / max(1, len(page_ids)),
            "verified": verified, "verified_right": correct, "verified_share_of_found": verified / max(1, n_found),
            "alignment_precision": correct / max(1, verified), "right_share_of_truth": correct / max(1, n_truth)}


def readtext_pages(gt_docs, page_ids, args) -> dict:
    """Reader.readtext (CRAFT + english_g2) per page: page CER, line recall/precision, lines right."""
    import easyocr
    import easyocr_en_models
    from rapidfuzz.distance import Levenshtein

    from ocrtrain.documents.detect import reading_order

    reader = easyocr.Reader(["en"], gpu=False, model_storage_directory=easyocr_en_models.model_dir(),
                            download_enabled=False, verbose=False)
    errors = chars = tp = n_found = n_truth = right = 0
    start = time.perf_counter()
    for pid in page_ids:
        truth = [l for l in gt_docs.lines(pid) if l.status == "verified"]
        result = reader.readtext(str(gt_docs.image_path(pid)), canvas_size=args.canvas_size)
        boxes = [[tuple(map(float, p)) for p in box] for box, _, _ in result]
        order = reading_order(boxes) if boxes else []
        text = "\n".join(_ci(result[i][1]) for i in order)
        gold = "\n".join(_ci(l.text) for l in [truth[i] for i in reading_order([l.polygon for l in truth])])
        errors, chars = errors + Levenshtein.distance(gold, text), chars + len(gold)
        pairs = match_boxes(boxes, [l.polygon for l in truth])
        tp, n_found, n_truth = tp + len(pairs), n_found + len(boxes), n_truth + len(truth)
        right += sum(_loose(result[f][1]) == _loose(truth[t].text) for f, t, _ in pairs)
    return {"page_cer": errors / max(1, chars), "line_recall": tp / max(1, n_truth),
            "line_precision": tp / max(1, n_found), "lines_correct": right / max(1, n_truth),
            "s_per_page": (time.perf_counter() - start) / max(1, len(page_ids))}


def _print_table(crops: dict) -> None:
    print(f"\n{'line crops (GT boxes)':<28}{'lines':>7}{'right ci':>10}{'right ci,ns':>13}{'CER ci':>9}"
          f"{'CER ci,ns':>11}{'s':>8}")
    for name, r in crops.items():
        print(f"{name:<28}{r['n']:>7}{r['right_ci']:>10.1%}{r['right_loose']:>13.1%}{r['cer_ci']:>9.1%}"
              f"{r['cer_loose']:>11.1%}{r['seconds']:>8.1f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--pages", type=int, default=60, help="receipts for the line-crop comparison")
    parser.add_argument("--detect-pages", type=int, default=60, help="receipts for detection + alignment (0: skip)")
    parser.add_argument("--canvas-size", type=int, default=1280)
    parser.add_argument("--width-ths", type=float, default=1.0)
    parser.add_argument("--padding", type=float, default=0.1, help="crop margin in line heights")
    parser.add_argument("--padding-px", type=int, default=2, help="crop margin in pixels (added)")
    parser.add_argument("--no-tesseract", action="store_true", help="skip the Tesseract row")
    parser.add_argument("--readtext", action="store_true", help="also the whole Reader.readtext pipeline per page")
    parser.add_argument("--json", type=Path, help="write all numbers to this file")
    args = parser.parse_args(argv)
    from ocrtrain.documents import CropConfig, DocumentSet, PageImportConfig, import_pages

    results: dict = {"args": {k: str(v) for k, v in vars(args).items()}}
    with tempfile.TemporaryDirectory(prefix="real_pages-") as tmp:
        work = Path(tmp)
        gt = DocumentSet(import_pages(args.data, work / "gt", PageImportConfig(format="icdar"),
                                      crop=CropConfig(padding=args.padding, padding_px=args.padding_px)))
        ids = [p.id for p in gt.pages]
        crops, labels = _gt_crops(gt, ids[:args.pages])
        texts, seconds = read_english_g2(crops)
        results["crops"] = {"english_g2": {**line_scores(texts, labels), "seconds": seconds}}
        tess = None if args.no_tesseract else read_tesseract(crops, work)
        if tess is None and not args.no_tesseract:
            print("tesseract is not installed (apt-get install -y tesseract-ocr): its row is skipped")
        else:
            results["crops"]["tesseract 5 --psm 7"] = {**line_scores(tess[0], labels), "seconds": tess[1]}
        _print_table(results["crops"])
        if args.detect_pages:
            d = results["detect_align"] = detect_and_align(gt, ids[:args.detect_pages], args, work)
            print(f"\nCRAFT (canvas {args.canvas_size}, width_ths {args.width_ths}) on {d['pages']} pages: "
                  f"recall {d['recall']:.1%}, precision {d['precision']:.1%} (IoU >= 0.5; {d['found']} boxes for "
                  f"{d['truth_lines']} GT lines), {d['detect_s_per_page']:.1f} s/page")
            print(f"alignment: {d['verified']} boxes verified ({d['verified_share_of_found']:.1%} of found), "
                  f"{d['alignment_precision']:.1%} of them with the right text; right verified lines = "
                  f"{d['right_share_of_truth']:.1%} of GT lines")
        if args.readtext:
            r = results["readtext"] = readtext_pages(gt, ids[:args.detect_pages or args.pages], args)
            print(f"\nReader.readtext english_g2: page CER {r['page_cer']:.1%}, line recall {r['line_recall']:.1%}, "
                  f"precision {r['line_precision']:.1%}, lines correct {r['lines_correct']:.1%}, "
                  f"{r['s_per_page']:.1f} s/page")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
