"""Held-out sets no training run sees, read by english_g2, Tesseract 5 and (optionally) a run.

Sets (built under --work, reproducibly, before anything is read):

- ``receipt-heldout``: receipt lines (the default templates, single spaces, default blur and
  skew) whose items come from another word list (Norwegian words ranked 20000-30000 of trdg's
  ``no.txt``, never the built-in grocery corpus), another seed, and a held-out font split: every
  4th trdg font that draws the text (``HELDOUT_FONTS`` lists them; train with
  ``--render-fonts WORK/fonts-train`` to keep them out of training).
- ``receipt-printer``: the same kind of lines in the receipt-printer preset (monospace faces
  that are not trdg fonts, faded thermal print, perspective, JPEG).
- ``general``: the general validation set (``ocrtrain.general``), its test split.
- ``sroie``: real line crops of ../shared/realdata/sroie-dev (axis-aligned box of each
  polygon, 2 px of margin). Its labels are upper case and spaced loosely, so the figures that
  count are case-insensitive (``ci_ws``) and case- and space-insensitive (``loose``).

Rows: english_g2 (as ``Reader.recognize`` reads: contrast retry), Tesseract 5
(``tesseract -l nor --psm 7``, skipped with a message where it or its ``nor`` data is missing;
``apt-get install -y tesseract-ocr tesseract-ocr-nor``), and the run given with ``--run``.
Figures: line accuracy and CER raw, with whitespace runs collapsed (``ws``), any case with
spaces collapsed (``ci_ws``), and case- and space-insensitive (``loose``).

    python -m bench.heldout [--run runs/r1] [--work /tmp/heldout] [--count 300] [--sroie-lines 600]
                            [--data ../shared/realdata/sroie-dev] [--no-tesseract] [--json OUT]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

__all__ = ["main", "build_sets", "HELDOUT_FONTS"]

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "realdata" / "sroie-dev"
SEEDS = {"receipt-heldout": 9001, "receipt-printer": 9002, "general": 9003}
MODES = ("raw", "ws", "ci_ws", "loose")
HELDOUT_FONTS: list[str] = []  # filled by build_sets (every 4th trdg font that draws the text)


def _wordlist(path: Path) -> Path:
    """Items of 1-2 Norwegian words from trdg's no.txt ranks 20000-30000 (not the grocery corpus)."""
    import random

    from ocrtrain.corpus import load_builtin
    from ocrtrain.fonts import trdg_font_dir

    words = (trdg_font_dir().parent.parent / "dicts" / "no.txt").read_text(encoding="utf-8").splitlines()
    letters = set("abcdefghijklmnopqrstuvwxyzæøå")
    words = [w.strip() for w in words[20000:30000] if set(w.strip().casefold()) <= letters and 3 <= len(w.strip()) <= 12]
    builtin = {w.casefold() for e in load_builtin() for w in e.split()}
    words = [w for w in words if w.casefold() not in builtin]
    rng = random.Random(4242)
    items = [w.capitalize() if rng.random() < 0.7 else w for w in words]
    items = [f"{a} {b.lower()}" if rng.random() < 0.3 else a for a, b in zip(items, reversed(items))]
    path.write_text("\n".join(items) + "\n", encoding="utf-8")
    return path


def _font_split(work: Path, words: Path) -> tuple[Path, Path]:
    """trdg fonts that draw the word list, split: every 4th held out, the rest for training."""
    from ocrtrain.fonts import font_missing_chars, font_paths

    chars = "".join(sorted(set(words.read_text(encoding="utf-8")) - {"\n", " "})) + "0123456789,.:x"
    good = [p for p in font_paths("trdg") if not font_missing_chars(p, chars)]
    held, train = work / "fonts-heldout", work / "fonts-train"
    for folder in (held, train):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    for i, p in enumerate(good):
        shutil.copy(p, (held if i % 4 == 0 else train) / p.name)
    HELDOUT_FONTS[:] = sorted(p.name for p in held.iterdir())
    return held, train


def build_sets(work: Path, count: int) -> dict[str, Path]:
    """The synthetic held-out sets as dataset folders under `work` (rebuilt each time)."""
    from ocrtrain.general import generate_general_set
    from ocrtrain.synth import RenderConfig, SynthConfig, generate_dataset

    work.mkdir(parents=True, exist_ok=True)
    words = _wordlist(work / "heldout_words.txt")
    held, _ = _font_split(work, words)
    base = SynthConfig(count=count, source=str(words))
    test = ["test"] * count
    sets = {
        "receipt-heldout": generate_dataset(base.replace(seed=SEEDS["receipt-heldout"],
                                                         render=RenderConfig(fonts=str(held)).to_dict()),
                                            work / "receipt-heldout", overwrite=True, splits=test),
        "receipt-printer": generate_dataset(base.replace(seed=SEEDS["receipt-printer"],
                                                         render=RenderConfig(preset="receipt-printer").to_dict()),
                                            work / "receipt-printer", overwrite=True, splits=test),
        "general": generate_general_set(work / "general", count=2 * count, seed=SEEDS["general"], overwrite=True),
    }
    return sets


def _read_split(folder: Path) -> tuple[list, list[str]]:
    from ocrtrain.evaluate import open_split
    from ocrtrain.images import decode_image

    reader, _ = open_split(folder)
    try:
        pairs = [reader[i] for i in range(len(reader))]
    finally:
        reader.close()
    return [decode_image(raw) for raw, _ in pairs], [label for _, label in pairs]


def sroie_crops(data: Path, limit: int) -> tuple[list, list[str]]:
    """Line crops (axis-aligned box of each polygon, 2 px margin) and labels, receipt by receipt."""
    from PIL import Image

    images, labels = [], []
    for box in sorted((data / "box").glob("*.csv")):
        page = Image.open(data / "img" / f"{box.stem}.jpg").convert("L")
        for line in box.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split(",", 8)
            if len(parts) < 9 or not parts[8].strip():
                continue
            xs, ys = [int(v) for v in parts[0:8:2]], [int(v) for v in parts[1:8:2]]
            x0, y0 = max(0, min(xs) - 2), max(0, min(ys) - 2)
            x1, y1 = min(page.width, max(xs) + 2), min(page.height, max(ys) + 2)
            if x1 - x0 < 4 or y1 - y0 < 4:
                continue
            images.append(page.crop((x0, y0, x1, y1)))
            labels.append(parts[8].strip())
            if len(images) >= limit:
                return images, labels
    return images, labels


def tesseract_missing() -> str:
    """Why Tesseract cannot run here ('' when it can)."""
    if shutil.which("tesseract") is None:
        return "tesseract is not installed (apt-get install -y tesseract-ocr tesseract-ocr-nor)"
    langs = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True).stdout.split()
    return "" if "nor" in langs else "tesseract has no 'nor' data (apt-get install -y tesseract-ocr-nor)"


def _tesseract_one(image) -> str:
    buf = io.BytesIO()
    image.convert("L").save(buf, format="PNG")
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    out = subprocess.run(["tesseract", "stdin", "stdout", "-l", "nor", "--psm", "7"], input=buf.getvalue(),
                         capture_output=True, env=env, timeout=60)
    return " ".join(out.stdout.decode("utf-8", errors="replace").split())


def read_tesseract(images, workers: int = 2) -> list[str]:
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(_tesseract_one, images))


def scores(predictions: list[str], labels: list[str]) -> dict:
    """Line accuracy and CER under each of MODES (ocrtrain.metrics.normalize)."""
    from ocrtrain.metrics import normalize, summarize

    out = {"n": len(labels)}
    for mode in MODES:
        m = summarize([normalize(p, mode) for p in predictions], [normalize(g, mode) for g in labels])
        out[f"acc_{mode}"], out[f"cer_{mode}"] = m["accuracy"], m["cer"]
    return out


def _readers(args) -> dict:
    from ocrtrain.inference import Predictor

    readers = {"english_g2": Predictor.from_origin("english_g2", reader_compatible=True, quantize=True)}
    if args.run:
        spec = args.run if ":" in args.run else f"run:{args.run}"
        readers[f"run {Path(args.run.split(':', 1)[-1]).name}"] = Predictor.from_origin(
            spec, reader_compatible=True, quantize=True)
    return readers


def _print_table(results: list[dict]) -> None:
    cols = ["set", "model", "n"] + [f"{k}_{m}" for m in MODES for k in ("acc", "cer")]
    print(" | ".join(cols))
    for r in results:
        cells = [r["set"], r["model"], str(r["n"])]
        cells += ["-" if r.get(c) is None else f"{100 * r[c]:.1f}" for c in cols[3:]]
        cells.append(f"({r['seconds']:.1f} s)")
        print(" | ".join(cells))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", help="a run folder (or origin spec) to read next to english_g2")
    ap.add_argument("--work", default="/tmp/ocrtrain-heldout", help="where the sets are built")
    ap.add_argument("--count", type=int, default=300, help="lines per synthetic receipt set (general: as many)")
    ap.add_argument("--sroie-lines", type=int, default=600, help="real line crops read (0: none)")
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="the sroie-dev folder")
    ap.add_argument("--no-tesseract", action="store_true", help="leave Tesseract out")
    ap.add_argument("--json", help="write the rows as JSON here")
    args = ap.parse_args(argv)

    started = time.time()
    sets = {name: _read_split(path) for name, path in build_sets(Path(args.work), args.count).items()}
    data = Path(args.data)
    if args.sroie_lines and (data / "box").is_dir():
        sets["sroie"] = sroie_crops(data, args.sroie_lines)
    elif args.sroie_lines:
        print(f"skipping sroie: {data} not found", file=sys.stderr)
    print(f"sets built in {time.time() - started:.0f} s: " + ", ".join(f"{k} {len(v[1])}" for k, v in sets.items())
          + f"; held-out trdg fonts: {', '.join(HELDOUT_FONTS)}")
    readers = _readers(args)
    why = "left out (--no-tesseract)" if args.no_tesseract else tesseract_missing()
    if why:
        print(f"Tesseract skipped: {why}", file=sys.stderr)
    results = []
    for name, (images, labels) in sets.items():
        runs = [(model, reader.predict) for model, reader in readers.items()]
        if not why:
            runs.append(("tesseract 5 nor psm7", read_tesseract))
        for model, read in runs:
            t = time.time()
            texts = read(images)
            texts = [x.text if hasattr(x, "text") else x for x in texts]
            results.append({"set": name, "model": model, **scores(texts, labels), "seconds": time.time() - t})
    _print_table(results)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": results, "heldout_fonts": HELDOUT_FONTS}, indent=2))
    print(f"total {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
