"""Where a CPU-recipe step's time goes, and what the frozen-feature cache saves.

Part 1 (`--split`): english_g2 with its VGG frozen, one batch of 32 lines 64 x WIDTH px: the VGG
forward (what the cache skips when a line comes again) vs the BiLSTM + head forward and backward
(what every step still pays), median of ``--repeat`` timings.

Part 2: the default recipe's training steps on a dataset with the cache on and off (same seed,
same batches; ``feature_cache_mb`` 2048 vs 0; augmentation as given by ``--augment-variants``,
0 = off), summing the steps' own times (``step_s``) over ``--steps`` steps.

    python -m bench.feature_cache --split [--width 448]
    python -m bench.feature_cache --data RECEIPTS [--steps 200] [--augment-variants 1]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def split(width: int, repeat: int) -> dict:
    import torch

    from ocrtrain.origins import load_origin

    model = load_origin("english_g2", device="cpu").model
    model.freeze_feature_extractor(True)
    model.train()
    images = torch.randn(32, 1, 64, width)

    def timed(fn) -> float:
        fn()
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    with torch.no_grad():
        feats = model.features(images)
    vgg = timed(lambda: _no_grad(model.features, images))
    head = timed(lambda: model.head(feats).sum().backward())
    return {"width": width, "vgg_forward_s": round(vgg, 3), "head_fwd_bwd_s": round(head, 3),
            "vgg_share": round(vgg / (vgg + head), 3)}


def _no_grad(fn, x):
    import torch

    with torch.no_grad():
        return fn(x)


def steps(data: str, work: Path, n: int, variants: int) -> list[dict]:
    from ocrtrain.augment import AugmentConfig
    from ocrtrain.runs import Run
    from ocrtrain.train import TrainConfig, fit

    out = []
    for mb in (0, 2048):
        run = work / f"cache-{mb}"
        if run.exists():
            shutil.rmtree(run)
        augment = AugmentConfig() if variants else AugmentConfig(probability=0.0)
        cfg = TrainConfig(max_steps=n, val_interval=10 ** 6, device="cpu", seed=1, workers=0, feature_cache_mb=mb,
                          augment=augment, augment_variants=variants)
        fit(cfg, data, run)
        rows = Run(run).metrics("train")
        seconds = sum(r["step_s"] for r in rows)
        out.append({"feature_cache_mb": mb, "steps": len(rows), "seconds": round(seconds, 1),
                    "lines_per_s": round(sum(r["batch_size"] for r in rows) / seconds, 1)})
        print(out[-1], flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", action="store_true", help="time the VGG forward vs the head on one batch")
    ap.add_argument("--width", type=int, default=448)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--data", help="a dataset folder (e.g. from ocrtrain synth --count 4000 --seed 1)")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--augment-variants", type=int, default=0, help="0 = no augmentation; N = N fixed variants")
    ap.add_argument("--work", default="/tmp/ocrtrain-featurecache")
    args = ap.parse_args(argv)
    if not args.split and not args.data:
        ap.error("give --split, --data DATASET, or both")
    if args.split:
        print(split(args.width, args.repeat), flush=True)
    if args.data:
        off, on = steps(args.data, Path(args.work), args.steps, args.augment_variants)
        print(f"{on['steps']} steps: cache off {off['seconds']} s, on {on['seconds']} s = "
              f"{off['seconds'] / on['seconds']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
