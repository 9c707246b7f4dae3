"""The int8 copy of english_g2's frozen VGG (``feature_precision int8``) against the float32
channels-last copy the feature cache uses: seconds per batch of 32 lines and how far the features
move (relative norm of the difference), on real rendered receipt lines.

The lines are the first ``--count`` training lines of a dataset (e.g. ``ocrtrain synth --out R
--count 4000 --seed 1``), at their own widths grouped by width as the cache runs them; the int8 copy
is calibrated on the 64 lines after them, as a run calibrates on its first two batches.

    python -m bench.int8_features --data RECEIPTS [--count 256] [--repeat 3]
"""
from __future__ import annotations

import argparse
import copy
import os
import statistics
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _lines(data: str, start: int, count: int) -> list:
    import numpy as np

    from ocrtrain.preprocess import batch_tensor, resize_to_height
    from ocrtrain.torchdata import LmdbTextDataset

    split = LmdbTextDataset(os.path.join(data, "train"))
    return [batch_tensor([resize_to_height(np.asarray(split[i][0]))])
            for i in range(start, min(len(split), start + count))]


def _batches(lines: list, size: int = 32) -> list:
    """Lines of equal width stacked, at most `size` per batch (as the cache groups them)."""
    import torch

    by_width: dict[int, list] = {}
    for line in lines:
        by_width.setdefault(int(line.shape[-1]), []).append(line)
    return [torch.cat(group[k:k + size]).contiguous(memory_format=torch.channels_last)
            for group in by_width.values() for k in range(0, len(group), size)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="a dataset folder with a train split (ocrtrain synth)")
    ap.add_argument("--count", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)

    import torch

    from ocrtrain.origins import load_origin
    from ocrtrain.tasks.int8_features import int8_copy

    model = load_origin("english_g2", device="cpu").model.eval()
    lines = _lines(args.data, 0, args.count)
    fast = copy.deepcopy(model).to(memory_format=torch.channels_last).eval()
    quantized = int8_copy(model, _lines(args.data, args.count, 64))
    batches = _batches(lines)

    def timed(net) -> float:
        runs = []
        with torch.no_grad():
            for _ in range(args.repeat + 1):
                started = time.perf_counter()
                for batch in batches:
                    net.features(batch)
                runs.append(time.perf_counter() - started)
        return statistics.median(runs[1:])

    float_s, int8_s = timed(fast), timed(quantized)
    errors = []
    with torch.no_grad():
        for batch in batches:
            exact, rounded = fast.features(batch), quantized.features(batch)
            errors.extend(((exact - rounded).flatten(1).norm(dim=1) / exact.flatten(1).norm(dim=1)).tolist())
    per_batch = 32 / len(lines)
    print({"lines": len(lines), "float32_s_per_32": round(float_s * per_batch, 3),
           "int8_s_per_32": round(int8_s * per_batch, 3), "speedup": round(float_s / int8_s, 2),
           "rel_error_median": round(statistics.median(errors), 4), "rel_error_max": round(max(errors), 4)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
