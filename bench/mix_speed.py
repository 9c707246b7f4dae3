"""Replay-mixture step time: one tensor padded to the batch's widest line vs one per source.

Each source of a training mixture is planned in width buckets of its own, but their buckets meet
in one batch at random; replay's general lines are wider than receipt lines (median 513 vs 376 px
at height 64 here), so one tensor pads every receipt line to the widest replay line. With per-source
padding (:func:`ocrtrain.tasks.lines.padding_groups`) each source is its own tensor and forward pass.
Both sides train the same default recipe (CPU: frozen features, replay 0.25, batch 32) on the same
batches from english_g2 (same seed and plan), alternating, and sum the steps' own times
(``step_s``, the validation at step 0 excluded).

    python -m bench.mix_speed --data RECEIPTS [--steps 30] [--rounds 2] [--work /tmp/ocrtrain-mixspeed]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def measure(data: str, run_dir: Path, steps: int, grouped: bool) -> dict:
    import ocrtrain.tasks.lines as lines
    from ocrtrain.runs import Run
    from ocrtrain.train import TrainConfig, fit

    saved = lines.GROUP_BELOW
    lines.GROUP_BELOW = saved if grouped else 0.0  # 0: never split (the single padded tensor)
    try:
        cfg = TrainConfig(max_steps=steps, val_interval=10 ** 6, device="cpu", seed=1, workers=0)
        fit(cfg, data, run_dir)
    finally:
        lines.GROUP_BELOW = saved
    rows = Run(run_dir).metrics("train")
    seconds = sum(r["step_s"] for r in rows)
    return {"grouped": grouped, "steps": len(rows), "seconds": seconds, "lines_per_s": sum(r["batch_size"] for r in rows) / seconds}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="a dataset folder (e.g. from ocrtrain synth --count 4000 --seed 1)")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--work", default="/tmp/ocrtrain-mixspeed")
    args = ap.parse_args(argv)
    work = Path(args.work)
    results = []
    started = time.time()
    for r in range(args.rounds):
        for grouped in (False, True):
            run = work / f"r{r}-{'grouped' if grouped else 'single'}"
            if run.exists():
                import shutil

                shutil.rmtree(run)
            results.append(measure(args.data, run, args.steps, grouped))
            print(results[-1], flush=True)
    single = [x["seconds"] for x in results if not x["grouped"]]
    grouped = [x["seconds"] for x in results if x["grouped"]]
    print(f"{args.steps} steps x {args.rounds} rounds: one padded tensor {sum(single) / len(single):.1f} s, "
          f"per-source padding {sum(grouped) / len(grouped):.1f} s = {sum(single) / sum(grouped):.2f}x "
          f"(total {time.time() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
