"""Inference throughput: ocrtrain's Predictor vs easyocr.Reader.recognize on the same crops and device.

reader per-crop: ``Reader.recognize(crop)`` once per crop (batch_size=1, the documented way to
                 read a crop), quantized (qint8, Reader's CPU default) and fp32. Each crop is
                 padded to its own width.
reader canvas:   all crops pasted on one white canvas, one per row, read in one call with their
                 boxes as ``horizontal_list`` and batch_size=32. On a GPU Reader pads every box to
                 the widest one; on CPU it still reads box by box (easyocr.py, ``recognize``).
ours:            ``Predictor`` (width-bucketed batches, oneDNN on CPU), fp32 and, on CPU,
                 ``quantize=True``; ``+compat`` adds Reader's low-confidence contrast retry.

"same text" compares each mode with the per-crop Reader of the same precision (fp32 with fp32,
qint8 with qint8). Every mode first reads all crops once untimed (kernels are made per input
shape, so a one-crop warm-up would leave most widths cold); then --repeats rounds run the modes
in turn and each keeps its fastest round.

    python -m bench.infer_speed [--lines 300] [--data DATASET] [--device cpu|cuda] [--batch-size 32] [--repeats 3]
"""
from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable, Optional

import numpy as np

__all__ = ["synthetic_crops", "load_crops", "measure_inference", "format_table", "main"]


def load_crops(data: Path, lines: int, split: str = "test") -> list[np.ndarray]:
    """The first `lines` images of a dataset split, decoded to uint8 grey arrays."""
    from ocrtrain.dataset import Dataset
    from ocrtrain.images import decode_image
    from ocrtrain.preprocess import to_gray

    reader = Dataset(data).reader(split)
    n = min(lines, len(reader))
    return [to_gray(decode_image(reader.image_bytes(i), where=f"{data}/{split}#{i}")) for i in range(n)]


def synthetic_crops(lines: int, out: Path, seed: int = 1) -> list[np.ndarray]:
    """Generate a synthetic receipt dataset at `out` (most lines in its test split) and load `lines`."""
    from ocrtrain.dataset import SplitConfig
    from ocrtrain.synth import SynthConfig, generate_dataset

    # The split is random: ask for ~15% more than needed so the test split holds `lines`.
    count = math.ceil(lines / 0.9 * 1.15) + 8
    generate_dataset(SynthConfig(count=count, seed=seed, split=SplitConfig(val_fraction=0.0, test_fraction=0.9)), out)
    return load_crops(out, lines)


def _paste_rows(crops: list[np.ndarray]) -> tuple[np.ndarray, list[list[int]]]:
    """One white canvas with a crop per row at x=0, and each crop's box [x_min, x_max, y_min, y_max]."""
    width = max(c.shape[1] for c in crops)
    canvas = np.full((sum(c.shape[0] for c in crops), width), 255, np.uint8)
    boxes, y = [], 0
    for c in crops:
        h, w = c.shape
        canvas[y:y + h, :w] = c
        boxes.append([0, w, y, y + h])
        y += h
    return canvas, boxes


def _read_canvas(reader, crops: list[np.ndarray], batch_size: int) -> Callable[[], list]:
    from ocrtrain.easyocr_interop import read_boxes

    canvas, boxes = _paste_rows(crops)

    def read() -> list:
        boxed = read_boxes(reader, canvas, boxes, batch_size)
        got = [[int(c[0][0]), int(c[1][0]), int(c[0][1]), int(c[2][1])] for c, _ in boxed]
        # Reader sorts results by top edge; rows are stacked top-down, so the order must hold.
        if got != boxes:
            raise RuntimeError(f"Reader returned {len(boxed)} boxes in another order than the {len(boxes)} "
                               "pasted rows: the canvas mode cannot be compared line by line")
        return [p for _, p in boxed]

    return read


def measure_inference(crops: list[np.ndarray], device: str = "cpu", batch_size: int = 32,
                      repeats: int = 3) -> list[dict]:
    """Time each reading mode on `crops` (uint8 grey arrays); one dict per mode, prints nothing.

    Every mode reads all crops once untimed, then `repeats` timed rounds run the modes in turn
    (so a burst of other load hits all of them) and each keeps its fastest round.
    Keys: name, kind ("reader" or "ours"), crops, seconds, crops_per_s, same_text (lines equal to
    the `compared_with` mode, None for the reference modes), compared_with, differences (index,
    text, reference text), note.
    """
    import torch

    from ocrtrain.easyocr_interop import make_reader, read_lines
    from ocrtrain.inference import Predictor

    cpu = torch.device(device).type == "cpu"
    precisions = [("qint8", True), ("fp32", False)] if cpu else [("fp32", False)]
    modes = []  # (name, kind, precision, note, read)
    for precision, quantize in precisions:
        with warnings.catch_warnings():
            # torch's notices that eager quantization is deprecated, raised inside EasyOCR.
            warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            # Reader ignores quantize on a GPU; on CPU True is its default.
            reader = make_reader(None, "english_g2", gpu=False if cpu else device, quantize=quantize)
        default = " (default)" if quantize or not cpu else ""
        modes.append((f"reader per-crop {precision}{default}", "reader", precision,
                      "batch_size=1, own width per crop", lambda r=reader: read_lines(r, crops)))
        if quantize or not cpu:
            modes.append((f"reader canvas {precision}", "reader", precision,
                          f"one call, batch_size={batch_size}, "
                          + ("reads box by box on CPU" if cpu else "pads to the widest box"),
                          _read_canvas(reader, crops, batch_size)))
    for precision, quantize in precisions:
        for compat in (False, True):
            predictor = Predictor.from_origin("english_g2", device=device, batch_size=batch_size,
                                              reader_compatible=compat, quantize=quantize)
            note = f"batch_size={batch_size}" + (", contrast retry" if compat else "")
            modes.append((f"ours {precision}" + (" +compat" if compat else ""), "ours", precision, note,
                          lambda p=predictor: p.predict(crops)))

    # Untimed pass over every crop: kernels are made per input shape, and the results are compared.
    outputs = [read() for *_, read in modes]
    best = [float("inf")] * len(modes)
    for _ in range(max(1, repeats)):
        for i, (*_, read) in enumerate(modes):
            start = time.perf_counter()
            read()
            best[i] = min(best[i], time.perf_counter() - start)

    rows: list[dict] = []
    reference: dict[str, tuple[str, list]] = {}
    for (name, kind, precision, note, _), preds, seconds in zip(modes, outputs, best):
        row = {"name": name, "kind": kind, "crops": len(crops), "seconds": seconds,
               "crops_per_s": len(crops) / seconds, "same_text": None, "compared_with": None,
               "differences": [], "note": note}
        if precision not in reference:  # the first mode of each precision is Reader per crop
            reference[precision] = (name, preds)
        else:
            ref_name, ref = reference[precision]
            diffs = [(i, a.text, b.text) for i, (a, b) in enumerate(zip(preds, ref)) if a.text != b.text]
            row.update(same_text=len(crops) - len(diffs), compared_with=ref_name, differences=diffs)
        rows.append(row)
    return rows


def format_table(rows: list[dict]) -> str:
    """Rows of :func:`measure_inference` as a text table, then each of ours' speed-up over each Reader mode."""
    readers = [r for r in rows if r["kind"] == "reader"]
    width = max(len(r["name"]) for r in rows)
    lines = [f"{'mode':{width}} {'crops/s':>8} {'seconds':>8} {'same text':>10}  compared with; note"]
    for r in rows:
        same = "" if r["same_text"] is None else f"{r['same_text']}/{r['crops']}"
        versus = f"{r['compared_with']}; " if r["compared_with"] else ""
        lines.append(f"{r['name']:{width}} {r['crops_per_s']:8.1f} {r['seconds']:8.2f} {same:>10}  {versus}{r['note']}")
    lines.append("speed-up (crops/s ratio):")
    for r in rows:
        if r["kind"] == "ours":
            ratios = " | ".join(f"{r['crops_per_s'] / x['crops_per_s']:.2f}x {x['name']}" for x in readers)
            lines.append(f"  {r['name']:{width}} {ratios}")
    for r in rows:
        for i, ours, theirs in r["differences"][:10]:
            lines.append(f"differs: {r['name']} crop {i}: {ours!r} vs {theirs!r}")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="dataset folder whose test split is read (default: generate one)")
    parser.add_argument("--lines", type=int, default=300, help="number of crops (default: 300)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument("--batch-size", type=int, default=32, help="our batch size and Reader's in canvas mode")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds; each mode keeps its fastest (default: 3)")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="infer-speed-") as tmp:
        crops = load_crops(args.data, args.lines) if args.data else synthetic_crops(args.lines, Path(tmp) / "data")
    import torch

    widths = sorted(c.shape[1] for c in crops)
    source = args.data or "synthetic receipts (seed 1)"
    print(f"crops: {len(crops)} from {source}, width median {widths[len(widths) // 2]} px; "
          f"device: {args.device}; torch threads: {torch.get_num_threads()}", flush=True)
    if os.environ.get("OMP_WAIT_POLICY"):
        # PASSIVE makes OpenMP threads sleep between the many small ops of per-crop reading.
        print(f"note: OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']} is set; CPU numbers change with it")
    rows = measure_inference(crops, args.device, args.batch_size, args.repeats)
    print(format_table(rows))
    if args.json:
        import json

        args.json.write_text(json.dumps(rows, indent=2, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
