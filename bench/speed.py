"""Speed and scale, side by side in one run: training levers, the data loader, inference.

Training is a ladder. The first row is the EasyOCR-trainer-style loop (bench/train_speed.py:
every crop padded to 64x600, batch 32, fp32, Adadelta, its loader). Each next row is ocrtrain's
own loop (``ocrtrain.train.fit``) with ONE more lever than the row above, and each row states its
prediction before it is measured; the prediction for width bucketing is computed from the data
(padded pixels per line, since the model's cost grows with width). Augmentation is off in every
row so only speed levers differ. GPU-only levers (bf16, channels-last, torch.compile, big
batches with GPU memory per batch size) run when the device is CUDA, or on CPU with --levers.

The data-loader row times decoding + resizing + batching alone (one process): the most lines/s
one loader process can feed the model. Inference compares ``ocrtrain predict``'s Predictor with
``easyocr.Reader.recognize`` on the same crops and device (bench/infer_speed.py).

With --accuracy-samples N, the baseline loop and the fastest ocrtrain configuration each train
for N samples from english_g2 and are scored on the test split: the "equal accuracy after the
same number of samples" check.

    python -m bench.speed                       # CPU here: ladder + loader + inference
    python -m bench.speed --device cuda --lines 4000 --steps 60 --accuracy-samples 64000
    python -m bench.speed --json results.json   # also write every row as JSON
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench/train_speed.py

from bench.train_speed import _make_dataset, measure_easyocr_style  # noqa: E402

GPU_LEVERS = ("bf16", "channels_last", "compile")


@dataclass
class Row:
    """One measured line of the table."""

    section: str
    name: str
    prediction: str = ""
    lines_per_s: Optional[float] = None
    seconds: Optional[float] = None
    samples: Optional[int] = None
    peak_memory_gb: Optional[float] = None
    note: str = ""
    extra: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- helpers

def _device_name(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"{platform.processor() or platform.machine()} CPU, {len(os.sched_getaffinity(0))} cores, torch threads {torch.get_num_threads()}"


def _reset_memory(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak_memory(device: str) -> Optional[float]:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**30
    return None


def padded_pixels(data: Path, batch_size: int, height: int = 64) -> dict:
    """Average padded width per line: EasyOCR-style 600 px vs ocrtrain's width-bucketed batches."""
    from ocrtrain.tasks.lines import scan_split
    from ocrtrain.trainstate import plan_epoch

    _, shapes = scan_split(Path(data) / "train")
    widths = [max(1, int(height * w / h)) if w >= h else height for h, w in shapes]
    plan = plan_epoch(widths, batch_size, 0, 0)
    # batch_tensor pads a batch to ceil(widest aspect) * height
    ours = sum(len(b) * math.ceil(max(widths[i] for i in b) / height) * height for b in plan) / len(widths)
    own = sum(widths) / len(widths)
    return {"easyocr": 600.0, "ours": ours, "unpadded": own}


def measure_fit(data: Path, run_dir: Path, steps: int, warm: int, device: str, **overrides) -> Row:
    """Time `steps` optimizer steps of ocrtrain's fit() after `warm` untimed ones."""
    from ocrtrain.train import AugmentConfig, TrainConfig, TrainStep, fit

    stamps: list[tuple[float, int]] = []

    def on_event(event):
        if isinstance(event, TrainStep):
            stamps.append((time.perf_counter(), event.batch_size))

    config = TrainConfig(**{
        "cpu_recipe": False, "general_val": 0, "baseline": False,
        "max_steps": warm + steps, "val_interval": warm + steps + 1, "val_limit": 16, "warmup_steps": 1,
        "device": device, "augment": AugmentConfig(probability=0.0), **overrides})
    _reset_memory(device)
    fit(config, data, run_dir, callback=on_event)
    timed = stamps[warm:]
    seconds = timed[-1][0] - stamps[warm - 1][0]
    samples = sum(n for _, n in timed)
    return Row("train", "", lines_per_s=samples / seconds, seconds=seconds, samples=samples,
               peak_memory_gb=_peak_memory(device), extra={"config": dict(overrides)})


def measure_loader(data: Path, batch_size: int, batches: int = 20) -> Row:
    """Lines/s of decode + grey + resize + pad-to-batch in this process (no model)."""
    from ocrtrain.origins import adapt_charset, load_origin
    from ocrtrain.tasks.lines import LineBatches, filter_lines, scan_split
    from ocrtrain.tasks.recognition import label_codec
    from ocrtrain.trainstate import plan_epoch

    path = Path(data) / "train"
    labels, shapes = scan_split(path)
    loaded = adapt_charset(load_origin("english_g2"), "".join(sorted({c for label in labels for c in label})))
    codec = label_codec(loaded)
    split = filter_lines("train", path, labels, shapes, codec, 64, "extend", [])
    plan = plan_epoch(split.widths, batch_size, 0, 0)
    while len(plan) < batches:
        plan = plan + plan
    source = LineBatches([split], plan[:batches], None, 0, 0,
                         lambda grays: loaded.family.batch_tensor(grays, loaded.family_options))
    source[0]
    start = time.perf_counter()
    lines = sum(len(source[i]["positions"]) for i in range(1, batches))
    seconds = time.perf_counter() - start
    return Row("loader", "data loader alone (decode + resize + batch), 1 process", lines_per_s=lines / seconds,
               seconds=seconds, samples=lines)


def measure_accuracy(data: Path, work: Path, samples: int, device: str, ours: dict, batch_size: int) -> list[Row]:
    """Baseline loop and ocrtrain's loop trained for the same number of samples, scored on the test split."""
    from ocrtrain.dataset import Dataset
    from ocrtrain.evaluate import evaluate

    rows = []
    steps = max(1, samples // 32)
    start = time.perf_counter()
    base = measure_easyocr_style(data, steps, 32, device, workers=6 if device.startswith("cuda") else 1,
                                 keep_model=True)
    seconds = time.perf_counter() - start
    report = evaluate_model(base["model"], base["charset"], Dataset(data).splits["test"], device)
    rows.append(Row("accuracy", f"EasyOCR-trainer style, {steps * 32} samples", lines_per_s=None, seconds=seconds,
                    samples=steps * 32, note=f"test accuracy {report['accuracy']:.4f}, CER {report['cer']:.4f}",
                    extra=report))
    bs = int(ours.get("batch_size", batch_size))
    steps = max(1, samples // bs)
    run_dir = work / "accuracy-ours"
    start = time.perf_counter()
    from ocrtrain.train import AugmentConfig, TrainConfig, fit

    config = TrainConfig(**{"cpu_recipe": False, "max_steps": steps, "val_interval": steps, "val_limit": 200, "device": device,
                            "augment": AugmentConfig(probability=0.0), **ours})
    fit(config, data, run_dir)
    seconds = time.perf_counter() - start
    metrics = evaluate(f"run:{run_dir}@last", Dataset(data).splits["test"], device=device).metrics
    rows.append(Row("accuracy", f"ocrtrain ({', '.join(f'{k}={v}' for k, v in ours.items())}), {steps * bs} samples",
                    seconds=seconds, samples=steps * bs,
                    note=f"test accuracy {metrics['accuracy']:.4f}, CER {metrics['cer']:.4f}",
                    extra={"accuracy": metrics["accuracy"], "cer": metrics["cer"]}))
    return rows


def evaluate_model(model, charset, lmdb_path: Path, device: str) -> dict:
    from ocrtrain.images import decode_image
    from ocrtrain.inference import Predictor
    from ocrtrain.lmdb_io import LmdbReader
    from ocrtrain.metrics import summarize

    reader = LmdbReader(lmdb_path)
    images, labels = [], []
    for i in range(len(reader)):
        raw, label = reader[i]
        images.append(decode_image(raw))
        labels.append(label)
    preds = Predictor(model, charset, device=device).predict(images)
    m = summarize([p.text for p in preds], labels)
    return {"accuracy": m["accuracy"], "cer": m["cer"]}


# ----------------------------------------------------------------------------- the ladder

def training_ladder(data: Path, work: Path, device: str, steps: int, batch_size: int, levers: set[str],
                    big_batches: list[int]) -> tuple[list[Row], dict]:
    cuda = device.startswith("cuda")
    workers = min(6, max(1, len(os.sched_getaffinity(0)) - 2)) if cuda else 1
    rows: list[Row] = []
    pix = padded_pixels(data, batch_size)

    _reset_memory(device)
    base = measure_easyocr_style(data, steps, 32, device, workers=6 if cuda else 1)
    rows.append(Row("train", "EasyOCR-trainer style: 64x600 padding, batch 32, fp32, Adadelta",
                    prediction="baseline", lines_per_s=base["samples_per_s"], seconds=base["seconds"],
                    samples=base["samples"], peak_memory_gb=_peak_memory(device)))

    config: dict = {"batch_size": batch_size, "workers": 0}
    n = [0]

    def step(name: str, prediction: str, warm: int = 1, **change) -> Row:
        config.update(change)
        n[0] += 1
        row = measure_fit(data, work / f"ladder-{n[0]}", steps, warm, device, **config)
        row.name, row.prediction = name, prediction
        rows.append(row)
        return row

    ratio = pix["easyocr"] / pix["ours"]
    step("+ width-bucketed batches, AdamW (ocrtrain's loop)",
         f"padding {pix['easyocr']:.0f} -> {pix['ours']:.0f} px per line (lines are {pix['unpadded']:.0f} px): "
         f"up to {ratio:.1f}x if cost follows width; less where the BiLSTM/fixed costs dominate",
         workers=0)
    step("+ data-loader process(es), pinned memory" if cuda else "+ 1 data-loader process",
         "overlaps decoding with the step: gain <= the loader's share of a step (see the loader row)",
         workers=workers)
    bigger = batch_size * 2
    step(f"+ batch {bigger}, lr x sqrt(2)", "CPU: ~1x (2 cores are already busy); GPU: more work per launch",
         batch_size=bigger, lr=3e-4 * math.sqrt(2))
    if cuda or "bf16" in levers:
        step("+ bf16 autocast", "GPU: ~1.5-2x (tensor cores, half the activation traffic); not on CPU", amp="bf16")
    if cuda or "channels_last" in levers:
        step("+ channels-last", "GPU: ~1.1x with bf16 convolutions (cuDNN NHWC kernels)", channels_last=True)
    if cuda or "compile" in levers:
        step("+ torch.compile (dynamic widths)", "GPU: ~1.1-1.3x (fused elementwise ops); slow first steps",
             warm=3, compile=True)
    best = max(rows[1:], key=lambda r: r.lines_per_s or 0)
    if cuda:
        for size in big_batches:
            step(f"batch {size}, lr x sqrt({size}/32)", "GPU: rises until the GPU is full, then flat",
                 batch_size=size, lr=3e-4 * math.sqrt(size / 32))
    else:
        row = measure_fit(data, work / "quick-cpu", steps, 1, device, batch_size=16, workers=0,
                          freeze_feature_extractor=True, lr=1e-3)
        row.name = "(other job) template quick-cpu: VGG frozen, batch 16"
        row.prediction = "trains only BiLSTM + head: ~3x fewer FLOPs per line (no VGG backward)"
        rows.append(row)
    return rows, dict(best.extra.get("config") or {})


def inference_rows(work: Path, lines: int, device: str, batch_size: int) -> list[Row]:
    """bench/infer_speed.py in a child process without OMP_WAIT_POLICY=PASSIVE.

    Training here runs with PASSIVE (as ocrtrain's jobs do: spinning OpenMP threads collapse under
    contention), but the setting is fixed when torch loads and costs per-crop reading ~40%; the
    child gets OpenMP's default, as a user's `ocrtrain predict` or Reader does.
    """
    import subprocess
    import sys

    out = work / "inference.json"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    # infer_speed generates its own crops (a synthetic set, mostly test split) when given no data.
    subprocess.run([sys.executable, "-m", "bench.infer_speed", "--lines", str(lines),
                    "--device", device, "--batch-size", str(batch_size), "--json", str(out)],
                   check=True, env=env, cwd=Path(__file__).resolve().parents[1], stdout=subprocess.DEVNULL)
    results = json.loads(out.read_text(encoding="utf-8"))
    ours = next((r for r in results if r["name"] == "ours fp32"), results[-1])
    rows = []
    for r in results:
        ratio = "" if r["name"].startswith("ours") else f"{ours['crops_per_s'] / r['crops_per_s']:.2f}x"
        same = "" if r.get("same_text") is None else f"{r['same_text']}/{r['crops']} vs {r.get('compared_with')}"
        rows.append(Row("inference", r["name"], lines_per_s=r["crops_per_s"], seconds=r["seconds"],
                        samples=r["crops"], note=same, extra={"ratio": ratio}))
    return rows


# ----------------------------------------------------------------------------- output

def _fmt(value: Optional[float], digits: int = 1) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def print_table(rows: list[Row], device_name: str) -> None:
    train = [r for r in rows if r.section == "train"]
    base = train[0].lines_per_s if train else None
    print(f"\n### Training ({device_name})\n")
    print("| configuration | prediction | lines/s | vs EasyOCR-style | vs row above | peak GPU memory |")
    print("|---|---|---:|---:|---:|---:|")
    prev = None
    for r in train:
        vs_base = f"{r.lines_per_s / base:.2f}x" if base and r.lines_per_s else ""
        vs_prev = f"{r.lines_per_s / prev:.2f}x" if prev and r.lines_per_s else ""
        mem = f"{r.peak_memory_gb:.2f} GiB" if r.peak_memory_gb is not None else ""
        print(f"| {r.name} | {r.prediction} | {_fmt(r.lines_per_s)} | {vs_base} | {vs_prev} | {mem} |")
        if not r.name.startswith("(other"):
            prev = r.lines_per_s
    for r in rows:
        if r.section == "loader":
            print(f"\nData loader alone: {_fmt(r.lines_per_s)} lines/s per process ({r.samples} lines)")
    infer = [r for r in rows if r.section == "inference"]
    if infer:
        print(f"\n### Inference ({device_name})\n")
        print("| reader | crops/s | ours fp32 vs this | same text |")
        print("|---|---:|---:|---|")
        for r in infer:
            print(f"| {r.name} | {_fmt(r.lines_per_s)} | {r.extra.get('ratio', '')} | {r.note} |")
    acc = [r for r in rows if r.section == "accuracy"]
    if acc:
        print("\n### Accuracy after the same number of samples\n")
        for r in acc:
            print(f"- {r.name}: {r.note} ({_fmt(r.seconds)} s)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="dataset folder (default: generate --lines synthetic lines)")
    parser.add_argument("--lines", type=int, default=400, help="lines to generate when --data is not given")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument("--steps", type=int, default=6, help="timed optimizer steps per training row")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size of the first ocrtrain rows")
    parser.add_argument("--big-batches", default="128,256,512", help="CUDA: batch sizes for the memory rows")
    parser.add_argument("--levers", default="", help=f"also try these GPU levers on CPU: {','.join(GPU_LEVERS)}")
    parser.add_argument("--infer-lines", type=int, default=300, help="crops for the inference comparison (0 = skip)")
    parser.add_argument("--accuracy-samples", type=int, default=0,
                        help="train baseline and ours for N samples each and score the test split (0 = skip)")
    parser.add_argument("--skip-train", action="store_true", help="only the loader and inference rows")
    parser.add_argument("--json", type=Path, help="write all rows to this JSON file")
    args = parser.parse_args(argv)
    levers = {x.strip() for x in args.levers.split(",") if x.strip()}
    unknown = levers - set(GPU_LEVERS)
    if unknown:
        parser.error(f"unknown lever(s) {sorted(unknown)}: choose from {', '.join(GPU_LEVERS)}")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="speed-") as tmp:
        tmp = Path(tmp)
        data = args.data or _make_dataset(args.lines, tmp / "data")
        from ocrtrain.dataset import Dataset

        name = _device_name(args.device)
        print(f"data: {data} {Dataset(data).counts()}  device: {args.device} ({name})  steps per row: {args.steps}",
              flush=True)
        best = {"batch_size": args.batch_size}
        if not args.skip_train:
            ladder, best = training_ladder(data, tmp, args.device, args.steps, args.batch_size, levers,
                                           [int(x) for x in args.big_batches.split(",") if x.strip()])
            rows += ladder
            for r in ladder:
                print(f"  {r.name}: {_fmt(r.lines_per_s)} lines/s", flush=True)
        rows.append(measure_loader(data, args.batch_size))
        if args.infer_lines:
            rows += inference_rows(tmp, args.infer_lines, args.device, args.batch_size)
        if args.accuracy_samples:
            rows += measure_accuracy(data, tmp, args.accuracy_samples, args.device, best, args.batch_size)
    print_table(rows, name)
    if args.json:
        args.json.write_text(json.dumps({"device": name, "rows": [r.__dict__ for r in rows]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
