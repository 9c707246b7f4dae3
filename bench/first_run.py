"""A new user's first fine-tune, timed phase by phase: the #12 target as the issue states it.

"With the defaults, on this 2-core CPU, from ``ocrtrain synth`` to an exported bundle read by
``easyocr.Reader``: >= 97% line accuracy and <= 0.6% CER on held-out synthetic receipt lines within
10 minutes." Each phase runs as the user types it, a separate ``ocrtrain`` process, with a fresh
``OCRTRAIN_HOME`` (so the run renders its general replay and validation lines, as a first run does):

    ocrtrain synth --out WORK/receipts --count 4000 --seed 1
    ocrtrain train --data WORK/receipts --max-steps 500 --run WORK/run
    ocrtrain export WORK/run --name receipts_ft --out WORK/bundle

then the bundle is loaded by the real ``easyocr.Reader`` and reads the held-out receipt lines of
:mod:`bench.heldout` (another word list and seed, fonts training never saw; spaces collapsed), next
to english_g2 on the same lines, and so are the first ``--sroie-lines`` real receipt line crops of
../shared/realdata/sroie-dev (compared ignoring case and spaces: its labels are upper case; the
issue's "on real lines never below english_g2 after a synthetic-only fine-tune"). The clock covers
the three commands (process start-up included); the held-out sets are built before it starts and the
reading after it stops. ``--train-args`` adds options to ``ocrtrain train`` (a lever, not the
defaults: say so when reporting).

    python -m bench.first_run [--work /tmp/ocrtrain-firstrun] [--count 300] [--steps 500] [--lines 4000]
                              [--sroie-lines 600] [--train-args "--augment-variants 1"] [--json FILE]

WORK must not exist yet (or be empty): everything this bench writes stays under it.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

TARGET_S, TARGET_ACC, TARGET_CER = 600, 0.97, 0.006


def _phase(name: str, args: list[str], env: dict, log: Path) -> float:
    """Run ``ocrtrain ARGS`` as its own process (output to `log`), return its wall seconds."""
    started = time.perf_counter()
    with open(log, "ab") as out:
        out.write(f"$ ocrtrain {' '.join(args)}\n".encode())
        out.flush()
        code = subprocess.run([sys.executable, "-m", "ocrtrain", *args], env=env, stdout=out,
                              stderr=subprocess.STDOUT).returncode
    seconds = time.perf_counter() - started
    if code:
        raise SystemExit(f"{name} failed ({code}): see {log}")
    print(f"{name}: {seconds:.1f} s", flush=True)
    return seconds


def _read(bundle: Path, name: str, images: list) -> list[str]:
    from ocrtrain.easyocr_interop import make_reader, read_lines

    reader = make_reader(bundle, name) if name != "english_g2" else make_reader(None, "english_g2")
    return [p.text for p in read_lines(reader, images)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default="/tmp/ocrtrain-firstrun")
    ap.add_argument("--count", type=int, default=300, help="held-out receipt lines")
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--lines", type=int, default=4000, help="lines ocrtrain synth makes (the issue's 4000)")
    ap.add_argument("--sroie-lines", type=int, default=600, help="real receipt line crops read (0: none)")
    ap.add_argument("--data", default="", help="the sroie-dev folder (default ../shared/realdata/sroie-dev)")
    ap.add_argument("--train-args", default="", help="extra ocrtrain train options (a lever; not the defaults)")
    ap.add_argument("--json", help="write the result as JSON here")
    args = ap.parse_args(argv)

    import shlex

    from bench.heldout import DEFAULT_DATA, _read_split, build_sets, scores, sroie_crops

    work = Path(args.work)
    if work.exists() and any(work.iterdir()):
        ap.error(f"{work} is not empty: give a new --work folder (this bench deletes nothing)")
    work.mkdir(parents=True, exist_ok=True)
    print("building the held-out sets (not timed) ...", flush=True)
    sets = {"receipt-heldout": _read_split(build_sets(work / "heldout", args.count)["receipt-heldout"])}
    data = Path(args.data) if args.data else DEFAULT_DATA
    if args.sroie_lines and (data / "box").is_dir():
        sets["sroie"] = sroie_crops(data, args.sroie_lines)
    elif args.sroie_lines:
        print(f"skipping the real sroie crops: {data} not found", file=sys.stderr)
    env = {**os.environ, "OCRTRAIN_HOME": str(work / "home")}
    log = work / "commands.log"
    phases = {
        "synth": _phase("synth", ["synth", "--out", str(work / "receipts"), "--count", str(args.lines), "--seed", "1"], env, log),
        "train": _phase("train", ["train", "--data", str(work / "receipts"), "--max-steps", str(args.steps),
                                  "--run", str(work / "run"), *shlex.split(args.train_args)], env, log),
        "export": _phase("export", ["export", str(work / "run"), "--name", "receipts_ft",
                                    "--out", str(work / "bundle")], env, log),
    }
    total = sum(phases.values())
    rows = {name: {key: scores(_read(work / "bundle", name, images), labels) for key, (images, labels) in sets.items()}
            for name in ("english_g2", "receipts_ft")}
    after, before = rows["receipts_ft"], rows["english_g2"]
    met = {"time": total <= TARGET_S, "accuracy": after["receipt-heldout"]["acc_ws"] >= TARGET_ACC,
           "cer": after["receipt-heldout"]["cer_ws"] <= TARGET_CER}
    if "sroie" in sets:
        met["sroie_not_worse"] = after["sroie"]["acc_ci_ws"] >= before["sroie"]["acc_ci_ws"]
    result = {"phases_s": {k: round(v, 1) for k, v in phases.items()}, "total_s": round(total, 1),
              "train_args": args.train_args, "rows": rows, "targets_met": met}
    for name, row in rows.items():
        held = row["receipt-heldout"]
        print(f"{name}: held-out receipts {held['acc_ws']:.1%} of lines right, CER {held['cer_ws']:.2%} "
              f"(spaces collapsed, {held['n']} lines)" + (
                  f"; real sroie crops {row['sroie']['acc_ci_ws']:.1%}, CER {row['sroie']['cer_ci_ws']:.2%} "
                  f"(case and spaces ignored, {row['sroie']['n']} lines)" if "sroie" in row else ""))
    print(f"synth -> bundle: {total:.0f} s = {total / 60:.1f} min (target {TARGET_S // 60} min); "
          f"targets met: {result['targets_met']}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
