"""Time to quality: english_g2 -> fine-tuned on synthetic Norwegian receipt lines, wall clock on CPU.

Phases (all timed, in one process): generate a dataset from the built-in corpus with
ocrtrain.synth.generate_dataset; evaluate english_g2 on its held-out test split ("before");
fine-tune with a training template (default quick-cpu); evaluate the best checkpoint on the same
test split ("after"). The target is >= 97 % line accuracy within 10 minutes on a 2-core CPU.

By default the lines are rendered with trdg's plain sans fonts (``--fonts receipt``), which is what
receipts look like; ``--fonts trdg`` uses all of trdg's fonts, script and hairline faces included,
and is markedly harder (report both).

    python -m bench.time_to_quality [--lines 2000] [--height 32] [--fonts receipt|trdg|DIR]
                                    [--template quick-cpu] [--max-steps N] [--keep DIR]
    python -m bench.time_to_quality --data DATASET     # skip generation, use an existing dataset
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

# Before torch loads: spinning OpenMP waits collapse when another process wants a core.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

TARGET_ACCURACY = 0.97
BUDGET_S = 600


#: trdg font families that look like receipt print (no script, hairline/thin or display faces).
RECEIPT_FAMILIES = ("DroidSans", "Lato", "OpenSans", "Roboto", "RobotoCondensed", "Aller")
EXCLUDED_STYLES = ("Hairline", "Thin", "ExtraLight", "Display")


def receipt_fonts(folder: Path) -> Path:
    """A folder of links to trdg's receipt-like fonts (see RECEIPT_FAMILIES)."""
    from ocrtrain.synth import trdg_font_dir

    folder.mkdir(parents=True, exist_ok=True)
    for font in sorted(trdg_font_dir().glob("*.ttf")):
        family = font.stem.split("-")[0].split("_")[0]
        if family in RECEIPT_FAMILIES and not any(s in font.stem for s in EXCLUDED_STYLES):
            (folder / font.name).symlink_to(font)
    return folder


def _generate(lines: int, out: Path, seed: int, height: int, fonts: str):
    from ocrtrain.synth import RenderConfig, SynthConfig, generate_dataset

    render = RenderConfig(height=height, fonts=fonts)
    return generate_dataset(SynthConfig(count=lines, seed=seed, render=render), out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=2000, help="synthetic lines to generate (all splits)")
    parser.add_argument("--height", type=int, default=32, help="height of the generated line images")
    parser.add_argument("--fonts", default="receipt",
                        help="'receipt' (trdg's plain sans fonts, see RECEIPT_FAMILIES), 'trdg' (all of them, "
                             "script and hairline faces too) or a font folder")
    parser.add_argument("--template", default="quick-cpu", help="training template")
    parser.add_argument("--max-steps", type=int, default=0, help="override the template's max_steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data", type=Path, help="use this dataset folder instead of generating one")
    parser.add_argument("--keep", type=Path, help="keep the dataset and run here (default: a temp folder)")
    args = parser.parse_args(argv)

    from ocrtrain.evaluate import evaluate
    from ocrtrain.train import Validation, fit, load_template

    work = args.keep or Path(tempfile.mkdtemp(prefix="ttq-"))
    work.mkdir(parents=True, exist_ok=True)
    data, run_dir = work / "data", work / "run"
    times: dict[str, float] = {}
    t0 = time.perf_counter()

    start = time.perf_counter()
    if args.data:
        data = args.data
    else:
        fonts = str(receipt_fonts(work / "fonts")) if args.fonts == "receipt" else args.fonts
        _generate(args.lines, data, args.seed, args.height, fonts)
    times["generate"] = time.perf_counter() - start
    from ocrtrain.dataset import Dataset

    counts = Dataset(data).counts()
    print(f"{'used' if args.data else 'generated'} {data} {counts} in {times['generate']:.1f} s", flush=True)

    start = time.perf_counter()
    before = evaluate("english_g2", data, device=args.device).metrics
    times["before"] = time.perf_counter() - start
    print(f"before (english_g2): accuracy {before['accuracy']:.4f}  cer {before['cer']:.4f}  "
          f"({times['before']:.1f} s)", flush=True)

    config = load_template(args.template).replace(seed=args.seed, device=args.device)
    if args.max_steps:
        config = config.replace(max_steps=args.max_steps, warmup_steps=min(config.warmup_steps, args.max_steps - 1))

    def on_event(event):
        if isinstance(event, Validation):
            m = event.metrics
            print(f"  {time.perf_counter() - t0:6.1f} s  step {event.step}/{event.max_steps}  val accuracy "
                  f"{m['accuracy']:.4f}  cer {m['cer']:.4f}  {m['samples_per_s']:.1f} lines/s", flush=True)

    start = time.perf_counter()
    run = fit(config, data, run_dir, callback=on_event)
    times["train"] = time.perf_counter() - start
    st = run.status()
    print(f"trained {st['step']} steps ({st['state']}) in {times['train']:.1f} s", flush=True)

    start = time.perf_counter()
    after = evaluate(f"run:{run_dir}", data, device=args.device).metrics
    times["after"] = time.perf_counter() - start
    total = time.perf_counter() - t0
    print(f"after  (fine-tuned): accuracy {after['accuracy']:.4f}  cer {after['cer']:.4f}  ({times['after']:.1f} s)")
    print(f"test lines: {after['n']}  template: {args.template}  config: {config.to_dict()}")
    print("timings: " + "  ".join(f"{k} {v:.1f} s" for k, v in times.items()) + f"  total {total:.1f} s")
    ok = after["accuracy"] >= TARGET_ACCURACY and total <= BUDGET_S
    print(f"target (>= {TARGET_ACCURACY:.0%} line accuracy within {BUDGET_S} s): {'reached' if ok else 'NOT reached'}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
