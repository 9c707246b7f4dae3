"""Training throughput: ocrtrain's loop vs EasyOCR-trainer-style settings, on the same LMDB.

ours:    ocrtrain.train.fit with its defaults (width-bucketed batches padded only to the widest
         line of each batch, AdamW, augmentation on, one loader process), full model trained.
easyocr: what EasyOCR's trainer does (trainer/train.py + en_filtered_config.yaml): every crop
         resized to height 64 and padded to 64x600 (wider ones squeezed), batch 32, fp32,
         Adadelta lr 1 rho 0.95, gradient clip 5, full model trained, no augmentation.

Both start from english_g2 with the head extended to the data's characters and use
ocrtrain.preprocess and the same CTC loss, so only batching and optimizer differ. The first
step of each is a warm-up and not timed.

    python -m bench.train_speed --data DATASET [--steps 6] [--batch-size 32] [--device cpu|cuda]
    python -m bench.train_speed --lines 400          # generate a synthetic receipt set first
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

# Before torch loads (same for both loops): spinning OpenMP waits collapse under any CPU contention.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _make_dataset(lines: int, out: Path) -> Path:
    from ocrtrain.synth import SynthConfig, generate_dataset

    generate_dataset(SynthConfig(count=lines, seed=1), out)  # the built-in Norwegian grocery corpus
    return out


def measure_ours(data: Path, steps: int, batch_size: int, device: str, run_dir: Path, workers: int = 0) -> dict:
    from ocrtrain.train import TrainConfig, TrainStep, fit

    stamps: list[tuple[float, int]] = []

    def on_event(event):
        if isinstance(event, TrainStep):
            stamps.append((time.perf_counter(), event.batch_size))

    config = TrainConfig(cpu_recipe=False, general_val=0, baseline=False, max_steps=steps + 1, val_interval=steps + 1, val_limit=32, batch_size=batch_size,
                         warmup_steps=1, device=device, workers=workers)
    fit(config, data, run_dir, callback=on_event)
    timed = stamps[1:]
    seconds = timed[-1][0] - stamps[0][0]
    samples = sum(n for _, n in timed)
    return {"samples": samples, "seconds": seconds, "samples_per_s": samples / seconds,
            "batch_size": batch_size, "optimizer": "adamw", "padding": "per-batch widest line"}


class _PaddedBatches:
    """EasyOCR trainer's AlignCollate(imgH=64, imgW=600, keep_ratio_with_pad=True) over shuffled lines."""

    def __init__(self, path: Path, batches: list[list[int]], targets: dict, width: int = 600):
        from ocrtrain.lmdb_io import LmdbReader

        self.reader = LmdbReader(path)
        self.batches = batches
        self.targets = targets
        self.width = width

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int):
        from ocrtrain.images import decode_image
        from ocrtrain.preprocess import batch_tensor, resize_to_height, to_gray

        grays = [resize_to_height(to_gray(decode_image(self.reader.image_bytes(j))), 64) for j in self.batches[i]]
        return batch_tensor(grays, 64, width=self.width), [self.targets[j] for j in self.batches[i]]


def measure_easyocr_style(data: Path, steps: int, batch_size: int, device: str, seed: int = 0, workers: int = 1,
                          keep_model: bool = False) -> dict:
    """`steps` timed steps (after one untimed) of the EasyOCR-trainer-style loop; `workers` loader
    processes (the trainer's config uses 6; 1 on a 2-core CPU). `keep_model` adds the trained
    model and its charset to the result."""
    import numpy as np
    import torch

    from ocrtrain.dataset import Dataset
    from ocrtrain.origins import adapt_charset, load_origin

    torch.manual_seed(seed)
    ds = Dataset(data)
    reader = ds.reader("train")
    labels = list(reader.labels())
    chars = "".join(sorted({c for label in labels for c in label}))
    loaded = adapt_charset(load_origin("english_g2"), chars, "extend")
    model = loaded.model.to(device).train()
    targets = {i: loaded.charset.encode(label) for i, label in enumerate(labels)}
    order = np.random.default_rng(seed).permutation(len(labels)).tolist()
    while len(order) < (steps + 1) * batch_size:
        order += order
    batches = [order[i * batch_size:(i + 1) * batch_size] for i in range(steps + 1)]
    loader = torch.utils.data.DataLoader(_PaddedBatches(ds.splits["train"], batches, targets), batch_size=None,
                                         num_workers=workers, pin_memory=device.startswith("cuda"))
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0, rho=0.95, eps=1e-8)
    ctc = torch.nn.CTCLoss(blank=0, reduction="mean", zero_infinity=True)
    start = None
    samples = 0
    for step, (images, target) in enumerate(loader):
        images = images.to(device)
        preds = model(images).log_softmax(2).permute(1, 0, 2)
        sizes = torch.full((images.shape[0],), preds.shape[0], dtype=torch.long)
        flat = torch.tensor([c for t in target for c in t], dtype=torch.long)
        lengths = torch.tensor([len(t) for t in target], dtype=torch.long)
        loss = ctc(preds, flat.to(device), sizes.to(device), lengths.to(device))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        if step == 0:  # like the trainer, no host sync inside the loop; only around the timed part
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
        else:
            samples += images.shape[0]
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    result = {"samples": samples, "seconds": seconds, "samples_per_s": samples / seconds,
              "batch_size": batch_size, "optimizer": "adadelta", "padding": "64x600"}
    if keep_model:
        result.update(model=model.eval(), charset=loaded.charset)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="dataset folder (default: generate --lines synthetic lines)")
    parser.add_argument("--lines", type=int, default=400, help="lines to generate when --data is not given")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per loop (after one warm-up step)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=0, help="loader processes of our loop (TrainConfig.workers)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="train-speed-") as tmp:
        tmp = Path(tmp)
        data = args.data or _make_dataset(args.lines, tmp / "data")
        from ocrtrain.dataset import Dataset

        print(f"data: {data} {Dataset(data).counts()}  device: {args.device}  steps: {args.steps}", flush=True)
        ours = measure_ours(data, args.steps, args.batch_size, args.device, tmp / "run", args.workers)
        print(f"ours     : {ours['samples_per_s']:7.2f} lines/s  ({ours['samples']} lines in {ours['seconds']:.1f} s; "
              f"AdamW, {ours['padding']})", flush=True)
        easy = measure_easyocr_style(data, args.steps, args.batch_size, args.device)
        print(f"easyocr  : {easy['samples_per_s']:7.2f} lines/s  ({easy['samples']} lines in {easy['seconds']:.1f} s; "
              f"Adadelta, {easy['padding']})", flush=True)
        print(f"ratio ours/easyocr: {ours['samples_per_s'] / easy['samples_per_s']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
