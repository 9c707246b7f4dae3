"""How many of your own pages to label: the SROIE recipe trained on 10, 20, 30, ... real receipts,
read on the same 18 held-out test receipts (a learning curve for #11).

Builds on ``bench.real_mix`` (same work folder, same split by receipt 30 / 12 / 18): for each N it
copies the document set, keeps the first N training receipts (a seeded order; past 30, receipts of
the val split join in order, leaving the rest for val), marks the other training receipts' lines
``skipped`` (so only verified lines of N receipts become samples), tags the pages and writes the
dataset with ``ocrtrain pages to-dataset --split-by tag``, as a user who labelled N receipts would.
Each N then trains the real_mix variant (default ``mixed-real3-lr1e-3-cased``: ``--data sroie:3
--data receipts:1 --lr 1e-3``, 500 steps, replay on) and is read with ``ocrtrain eval`` on the
original test receipts' crops (case and spaces ignored, ``@last``). Finished runs are reused.

    python -m bench.real_curve [--work /tmp/ocrtrain-realmix] [--receipts 10,20,40] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from pathlib import Path

from bench.heldout import DEFAULT_DATA
from bench.real_mix import VARIANTS, _cli, prepare, read, split_pages, train

PREDICTION = ("accuracy on the held-out receipts grows by 2-4 points per 10 more training receipts past 20 "
              "(session 12: 30 receipts read 76.7%; the head fits its training lines, so data limits it): "
              "10 receipts ~68%, 20 ~73%, 40 ~79%; 85% would need about 60-80 receipts (session 13: 10 receipts "
              "67.7%, 40 receipts 76.0%: wrong past 30, the curve is flat from 30 to 40)")


def receipts_dataset(work: Path, docset: Path, real: Path, n: int, seed: int = 0) -> Path:
    """WORK/curve/sroie-rN: the real dataset with only N training receipts (see the module doc)."""
    from ocrtrain.documents.docset import DocumentSet
    from ocrtrain.lmdb_io import is_lmdb

    out = work / "curve" / f"sroie-r{n}"
    if is_lmdb(out / "train"):
        return out
    pages = split_pages(real)
    train_pages, val_pages = sorted(pages["train"]), sorted(pages["val"])
    random.Random(seed).shuffle(train_pages)
    random.Random(seed).shuffle(val_pages)
    if not 1 <= n < len(train_pages) + len(val_pages):
        raise SystemExit(f"--receipts {n}: give 1 to {len(train_pages) + len(val_pages) - 1} "
                         "(at least one receipt must stay for validation)")
    keep = (train_pages + val_pages)[:n]
    copy = work / "curve" / f"pages-r{n}"
    if copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(docset, copy)
    docs = DocumentSet(copy)
    for pid in train_pages + val_pages:
        if pid in keep:
            docs.set_tag(pid, "train")
        elif pid in val_pages:
            docs.set_tag(pid, "val")
        else:
            docs.save_lines(pid, [line.replace(status="skipped") for line in docs.lines(pid)])
            docs.set_tag(pid, "train")
    for pid in pages["test"]:
        docs.set_tag(pid, "test")
    _cli(["pages", "to-dataset", str(copy), "--out", str(out), "--split-by", "tag", "--overwrite"])
    shutil.rmtree(copy)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default="/tmp/ocrtrain-realmix", help="bench.real_mix's work folder")
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="the sroie-dev folder")
    ap.add_argument("--synth", default="", help="an existing synthetic receipts dataset (default: make one)")
    ap.add_argument("--receipts", default="10,20,40", help="training receipts per point, comma list")
    ap.add_argument("--variant", default="mixed-real3-lr1e-3-cased", help=f"one of {', '.join(VARIANTS)}")
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--json", help="write the rows as JSON here")
    args = ap.parse_args(argv)
    if args.variant not in VARIANTS:
        ap.error(f"unknown variant {args.variant}: pick from {', '.join(VARIANTS)}")
    if not (Path(args.data) / "box").is_dir():
        print(f"{args.data} not found: this bench needs the sroie-dev receipts", file=sys.stderr)
        return 2
    print(f"prediction (written before training): {PREDICTION}")
    work, started = Path(args.work), time.time()
    docset, real, synth = prepare(work, Path(args.data), args.synth)
    from ocrtrain.dataset import Dataset

    rows = []
    for n in [int(x) for x in args.receipts.split(",") if x.strip()]:
        ds = receipts_dataset(work, docset, real, n)
        run = train(f"{args.variant}-r{n}", VARIANTS[args.variant][0], ds, synth, work, args.steps)
        row = read(f"r{n}", f"run:{run['run']}@last", real, docset, work, pages=False)
        rows.append({**row, "receipts": n, "train_lines": Dataset(ds).manifest["counts"]["train"],
                     "train_seconds": run["seconds"]})
        print(f"trained on {n} receipts ({rows[-1]['train_lines']} lines): {row['crop_acc_ci_ws']:.1%} of "
              f"{row['lines']} test crops right (CER {row['crop_cer_ci_ws']:.1%})", flush=True)
    print("receipts | training lines | test crops right ci_ws | CER | train s")
    for r in rows:
        sec = r["train_seconds"]
        print(f"{r['receipts']} | {r['train_lines']} | {r['crop_acc_ci_ws']:.1%} | {r['crop_cer_ci_ws']:.1%} | "
              f"{'-' if sec is None else f'{sec:.0f}'}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    print(f"total {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
