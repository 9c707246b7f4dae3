"""Synthetic data speed: our parallel trdg -> LMDB generator vs the tutorial's two-pass pipeline.

Both sides render the same labels with the same fonts and options. The tutorial's pipeline
(EasyOCR fine-tuning guides) runs trdg in one process writing PNG files and a labels file, then a
second pass (deep-text-recognition-benchmark's create_lmdb_dataset) reads every file back,
checks it decodes, and writes the LMDB.

    python -m bench.synth_speed --count 2000
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import lmdb
import numpy as np

from ocrtrain.synth import BACKGROUNDS, SynthConfig, _glyph_check, _prepare, _trdg, generate_dataset


def tutorial_two_pass(config: SynthConfig, labels: list[str], fonts: list, work: Path) -> tuple[float, float]:
    """Seconds of (pass 1: trdg -> PNG files + labels.txt, pass 2: files -> LMDB)."""
    start = time.perf_counter()
    img_dir = work / "images"
    img_dir.mkdir(parents=True)
    generator, _ = _trdg()
    r, m = config.render, config.render.margin
    rng = random.Random(config.seed)
    with open(work / "labels.txt", "w", encoding="utf-8") as fh:
        for i, label in enumerate(labels):
            if fonts[i] is None:  # no font draws it: ours rejects it too
                continue
            # trdg's own generator, as the tutorials run it: it writes img_dir/<i>.png itself.
            generator.generate(
                i, label, fonts[i], str(img_dir), r.height, "png", r.skew, r.random_skew,
                r.blur, r.random_blur, BACKGROUNDS[rng.choice(r.backgrounds)],
                ("none", "sine", "cosine", "random").index(r.distortion), 0, False, 2, -1, 0,
                r.text_color, 0, 1.0, r.character_spacing, (m, m, m, m), False, False, False,
                r.background_dir, 0, "#282828", "L", 0)
            if (img_dir / f"{i}.png").exists():
                fh.write(f"{i}.png\t{label}\n")
    first = time.perf_counter() - start
    env = lmdb.open(str(work / "lmdb"), map_size=1 << 30)
    cache, n = {}, 0
    for line in open(work / "labels.txt", encoding="utf-8"):
        name, label = line.rstrip("\n").split("\t", 1)
        data = (img_dir / name).read_bytes()
        buf = np.frombuffer(data, dtype=np.uint8)
        img = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
        if img is None or img.shape[0] * img.shape[1] == 0:
            continue
        n += 1
        cache[b"image-%09d" % n] = data
        cache[b"label-%09d" % n] = label.encode()
        if n % 1000 == 0:
            with env.begin(write=True) as txn:
                for k, v in cache.items():
                    txn.put(k, v)
            cache = {}
    cache[b"num-samples"] = str(n).encode()
    with env.begin(write=True) as txn:
        for k, v in cache.items():
            txn.put(k, v)
    env.close()
    return first, time.perf_counter() - start - first


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=0, help="our generator's processes (0 = CPU count)")
    args = ap.parse_args()
    config = SynthConfig(count=args.count, seed=args.seed, workers=args.workers)
    labels, fonts = _prepare(config)  # labels and the font of each sample, shared by both sides
    work = Path(tempfile.mkdtemp(prefix="ocrtrain-bench-"))
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # trdg prints per rejected image
            t_render, t_convert = tutorial_two_pass(config, labels, fonts, work / "tutorial")
        t_two = t_render + t_convert
        _glyph_check.cache_clear()  # ours pays its font checks again, from cold
        start = time.perf_counter()
        generate_dataset(config, work / "ours")
        t_ours = time.perf_counter() - start
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rate_two, rate_ours = args.count / t_two, args.count / t_ours
    print(f"cpus={os.cpu_count()} count={args.count} height={config.render.height}")
    print(f"{'pipeline':<42}{'seconds':>9}{'images/s':>10}")
    print(f"{'tutorial: 1-process trdg -> PNG, then LMDB':<42}{t_two:>9.1f}{rate_two:>10.1f}"
          f"   (render+write {t_render:.1f} s, convert {t_convert:.1f} s)")
    print(f"{'ocrtrain: parallel trdg -> LMDB, one pass':<42}{t_ours:>9.1f}{rate_ours:>10.1f}")
    print(f"speed-up: {rate_ours / rate_two:.2f}x")


if __name__ == "__main__":
    main()
