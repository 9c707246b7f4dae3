"""Re-joining split lines in alignment, on real receipts: CRAFT boxes, english_g2 readings, with and without.

On ../shared/realdata/sroie-dev: the first `--pages` receipts' images go through ``ocrtrain pages
detect`` (CRAFT, DetectConfig below) and ``preread`` (english_g2); each page's ground-truth lines,
shuffled, are its transcript. ``align`` runs twice on copies of that one detected set, with
``rejoin`` off and on. Per run: boxes, boxes re-joined, verified lines, verified lines whose text
is the ground truth of the box under them (IoU >= 0.5, case and spaces ignored), and transcript
lines left unmatched.

    python -m bench.align_rejoin [--data ../shared/realdata/sroie-dev] [--pages 12] [--canvas-size 1280]
                                 [--width-ths 1.0] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
from pathlib import Path

from bench.real_pages import DEFAULT_DATA, _loose, match_boxes

__all__ = ["main"]


def build(data: Path, pages: int, work: Path, canvas_size: int, width_ths: float):
    """Ground-truth set, detected + pre-read set, transcripts: (gt, detected folder, texts folder, seconds)."""
    from ocrtrain.documents import (DetectConfig, DocumentSet, PageImportConfig, PrereadConfig, detect_pages,
                                    import_pages, preread_pages)

    src = work / "gt-src"
    (src / "img").mkdir(parents=True)
    (src / "box").mkdir()
    for box in sorted((data / "box").glob("*.csv"))[:pages]:
        shutil.copy(box, src / "box" / box.name)
        shutil.copy(data / "img" / f"{box.stem}.jpg", src / "img")
    gt = DocumentSet(import_pages(src, work / "gt", PageImportConfig(format="icdar")))
    (work / "pages").mkdir()
    for page in gt.pages:
        shutil.copy(gt.image_path(page.id), work / "pages" / Path(page.image).name)
    docs = DocumentSet(import_pages(work / "pages", work / "detected", PageImportConfig(format="images")))
    start = time.perf_counter()
    detect_pages(docs, DetectConfig(canvas_size=canvas_size, width_ths=width_ths))
    preread_pages(docs, PrereadConfig())
    seconds = time.perf_counter() - start
    texts, rng = work / "texts", random.Random(0)
    texts.mkdir()
    for page in gt.pages:
        lines = [l.text for l in gt.lines(page.id) if l.status == "verified"]
        rng.shuffle(lines)
        (texts / f"{page.id}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return gt, work / "detected", texts, seconds


def score(gt, docs, reports) -> dict:
    boxes = truth_n = verified = right = 0
    for page in gt.pages:
        truth = [l for l in gt.lines(page.id) if l.status == "verified"]
        found = docs.lines(page.id)
        under = {f: t for f, t, _ in match_boxes([l.polygon for l in found], [l.polygon for l in truth])}
        boxes, truth_n = boxes + len(found), truth_n + len(truth)
        for i, line in enumerate(found):
            if line.status == "verified":
                verified += 1
                right += i in under and _loose(line.text) == _loose(truth[under[i]].text)
    return {"boxes": boxes, "truth_lines": truth_n, "joined": sum(len(r.get("joined", [])) for r in reports),
            "verified": verified, "verified_right": right, "precision": right / max(1, verified),
            "right_share_of_truth": right / max(1, truth_n),
            "unmatched_transcript": sum(len(r["unmatched_transcript"]) for r in reports)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--pages", type=int, default=12)
    parser.add_argument("--canvas-size", type=int, default=1280)
    parser.add_argument("--width-ths", type=float, default=1.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    from ocrtrain.documents import AlignConfig, DocumentSet, align_pages

    rows = {}
    with tempfile.TemporaryDirectory(prefix="align-rejoin-") as tmp:
        gt, detected, texts, seconds = build(args.data, args.pages, Path(tmp), args.canvas_size, args.width_ths)
        for rejoin in (False, True):
            copy = Path(tmp) / f"aligned-{rejoin}"
            shutil.copytree(detected, copy)
            docs = DocumentSet(copy)
            rows["rejoin" if rejoin else "no rejoin"] = score(gt, docs, align_pages(docs, texts, AlignConfig(rejoin=rejoin)))
    print(f"{args.pages} sroie-dev receipts, CRAFT (canvas {args.canvas_size}, width_ths {args.width_ths}) + english_g2 "
          f"in {seconds:.0f} s; transcript = the page's ground-truth lines, shuffled")
    print(f"{'':<10} {'boxes':>6} {'joined':>6} {'verified':>8} {'right':>6} {'precision':>9} {'of truth':>8} {'unmatched':>9}")
    for name, r in rows.items():
        print(f"{name:<10} {r['boxes']:>6} {r['joined']:>6} {r['verified']:>8} {r['verified_right']:>6} "
              f"{r['precision']:>9.1%} {r['right_share_of_truth']:>8.1%} {r['unmatched_transcript']:>9}")
    base, new = rows["no rejoin"], rows["rejoin"]
    print(f"ratio rejoin / no rejoin: verified right x{new['verified_right'] / max(1, base['verified_right']):.3f}, "
          f"unmatched transcript lines x{new['unmatched_transcript'] / max(1, base['unmatched_transcript']):.3f}")
    if args.json:
        args.json.write_text(json.dumps({"config": vars(args) | {"data": str(args.data), "json": None}, **rows},
                                        indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
