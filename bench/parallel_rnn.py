"""english_g2's BiLSTM head on a CPU, forward + backward, with each layer's two directions fused (one
oneDNN call spread over all threads) or side by side (:mod:`ocrtrain.parallel_rnn`: two threads, half
the threads each), alternating in one process so both see the same machine; median of ``--repeat``.

    python -m bench.parallel_rnn [--width 448] [--batch 32] [--repeat 7] [--rounds 3]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--width", type=int, default=448, help="line width in px (64 px high)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)

    import torch

    from ocrtrain import parallel_rnn
    from ocrtrain.origins import load_origin

    model = load_origin("english_g2", device="cpu").model
    model.freeze_feature_extractor(True)
    model.train()
    with torch.no_grad():
        feats = model.features(torch.randn(args.batch, 1, 64, args.width))

    def step() -> None:
        model.zero_grad()
        (model.head(feats) ** 2).mean().backward()

    def timed(split: bool) -> float:
        parallel_rnn.ENABLED = split
        step()
        runs = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            step()
            runs.append(time.perf_counter() - started)
        return statistics.median(runs)

    rows = [(timed(False), timed(True)) for _ in range(args.rounds)]
    fused, split = statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows)
    print({"threads": torch.get_num_threads(), "feature_columns": int(feats.shape[1]), "fused_s": round(fused, 3),
           "split_s": round(split, 3), "ratio": round(split / fused, 3), "rounds": [[round(a, 3), round(b, 3)]
                                                                                  for a, b in rows]})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
