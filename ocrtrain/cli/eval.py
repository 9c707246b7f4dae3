"""`ocrtrain eval SOURCE --data PATH`: score a run or origin model on a dataset split."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional

from ..config import add_config_arguments, config_from_args
from ..readconfig import ReadConfig

__all__ = ["register", "run"]


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "eval",
        help="evaluate a run or origin model on a dataset split",
        description="Evaluate SOURCE (a run folder or an origin spec such as english_g2, run:PATH@last, "
                    "easyocr:DIR/NAME) on a dataset's test split (val when test is empty) or an LMDB "
                    "split folder. Reports of a run folder are also saved to RUN/reports/ (eval-TIME.json, "
                    "compare-TIME.json; the dashboard shows the newest).",
    )
    p.add_argument("source", metavar="SOURCE", help="run folder (or a run name under $OCRTRAIN_HOME/runs) or origin spec")
    p.add_argument("--data", required=True, metavar="PATH",
                   help="dataset folder (or a dataset name under $OCRTRAIN_HOME/datasets) or LMDB split folder "
                        "(e.g. DATASET/test)")
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="evaluate only the first N samples")
    p.add_argument("--compare-with", default=None, metavar="ORIGIN",
                   help="also evaluate ORIGIN on the same samples and report better/worse/same per sample")
    p.add_argument("--out", default=None, metavar="FILE", help="write the JSON report to FILE")
    add_config_arguments(p, ReadConfig)
    p.add_argument("--worst", type=int, default=10, metavar="K", help="worst samples shown (default: 10)")
    p.set_defaults(func=run)


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


_SHOWN = ("n", "accuracy", "accuracy_ci", "cer", "wer", "ned", "mean_confidence")


def _print_eval(report, worst: int) -> None:
    print(f"source: {report.source}")
    print(f"data:   {report.data} ({report.split}, {report.metrics['n']} samples)")
    print()
    for key in _SHOWN:
        print(f"  {key:<16} {_fmt(report.metrics.get(key))}")
    _print_worst(report.worst[:worst])
    _print_confusions(report.top_confusions(10))


def _print_worst(rows) -> None:
    if not rows:
        return
    print("\nworst samples (cer  label -> prediction):")
    for r in rows:
        print(f"  #{r['index']:<5} {r['cer']:.2f}  {r['label']!r} -> {r['prediction']!r}")


def _print_confusions(rows) -> None:
    if not rows:
        return
    print("\ntop confusions:")
    for r in rows:
        gold = repr(r["gold"]) if r["gold"] else "(none)"
        pred = repr(r["pred"]) if r["pred"] else "(none)"
        print(f"  {r['count']:>5}x {r['kind']:<12} {gold} -> {pred}")


def _print_compare(report, worst: int) -> None:
    print(f"before: {report.before.source}")
    print(f"after:  {report.after.source}")
    print(f"data:   {report.after.data} ({report.after.split}, {report.after.metrics['n']} samples)")
    print()
    print(f"  {'metric':<16} {'before':>8} {'after':>8} {'delta':>8}")
    delta = report.delta()
    for key in _SHOWN:
        print(f"  {key:<16} {_fmt(report.before.metrics.get(key)):>8} {_fmt(report.after.metrics.get(key)):>8} "
              f"{_fmt(delta.get(key)):>8}")
    c = report.counts
    print(f"\nper sample: {c['better']} better, {c['worse']} worse, {c['same']} same")
    regressions = report.regressions[:worst]
    if regressions:
        print("\nregressions (label: before -> after):")
        for r in regressions:
            print(f"  #{r['index']:<5} {r['label']!r}: {r['before']!r} -> {r['after']!r}")
    _print_worst(report.after.worst[:worst])
    _print_confusions(report.after.top_confusions(10))


def run(args: argparse.Namespace) -> int:
    from ..evaluate import compare, evaluate, resolve_source, run_folder
    from ..home import resolve_dataset, resolve_model_source

    source = resolve_source(resolve_model_source(args.source))
    args.data = str(resolve_dataset(args.data))
    read = config_from_args(ReadConfig, args, ReadConfig())
    kwargs = dict(limit=args.limit, device=read.resolved_device(), batch_size=read.batch_size,
                  reader_compatible=read.reader_compatible)
    from ._progress import EventBars

    with EventBars() as bars:
        if args.compare_with:
            report = compare(resolve_model_source(args.compare_with), source, args.data, callback=bars, **kwargs)
        else:
            report = evaluate(source, args.data, callback=bars, **kwargs)
    saved = []
    run = run_folder(source)
    if run is not None:
        saved.append(report.save_in_run(run))
    if args.out:
        saved.append(report.save(args.out))
    if args.json:
        json.dump(report.to_dict(), sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        (_print_compare if args.compare_with else _print_eval)(report, args.worst)
        for path in saved:
            print(f"\nreport saved to {path}")
    return 0
