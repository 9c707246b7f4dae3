"""`ocrtrain calibrate RUN_OR_ORIGIN --data DS`: fit a confidence temperature, optionally export with it."""
from __future__ import annotations

import json

from ..calibrate import CalibrationConfig
from ..config import add_config_arguments, config_from_args

__all__ = ["register", "run"]


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "calibrate", help="fit a confidence temperature on validation lines (and export a calibrated bundle)",
        description="Fit one temperature T (logits / T) so that EasyOCR's line confidence matches how often a "
                    "line is right on DATA, print a reliability table and a suggested rejection threshold, save "
                    "the report in the run (RUN/reports/calibration-TIME.json), and with --export write an "
                    "EasyOCR bundle with T baked into its last layer (readings unchanged).")
    p.add_argument("source", metavar="RUN_OR_ORIGIN", help="run folder (or a run name) or origin spec")
    p.add_argument("--data", required=True, metavar="DS_OR_SPLIT",
                   help="dataset folder (its val split; never the test split you report on) or one split's LMDB")
    p.add_argument("--version", default="best", help="checkpoint of a run: best, last or step-N (default: best)")
    add_config_arguments(p, CalibrationConfig)  # --limit --target
    p.add_argument("--export", metavar="NAME", help="also export a calibrated EasyOCR bundle named NAME")
    p.add_argument("--out", metavar="DIR", help="folder for --export")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def _split(data):
    """The split to fit on: an LMDB folder as given, else the dataset's val split."""
    from pathlib import Path

    from ..datamix import val_split_path
    from ..lmdb_io import is_lmdb

    return Path(data) if is_lmdb(data) else val_split_path(data, "val")


def run(args) -> int:
    from ..calibrate import apply_temperature, calibrate, describe
    from ..errors import ConfigError
    from ..evaluate import open_split, run_folder
    from ..home import resolve_dataset, resolve_model_source
    from ..images import decode_image
    from ..origins import load_origin, source_spec
    from ..runfolder import save_report
    from ._progress import EventBars

    if args.export and not args.out:
        raise ConfigError("--export NAME needs --out DIR: the folder to write the calibrated bundle into")
    config = config_from_args(CalibrationConfig, args)
    source = resolve_model_source(args.source)
    spec = source_spec(source, args.version)
    loaded = load_origin(spec)
    reader, _ = open_split(_split(resolve_dataset(args.data)))
    try:
        pairs = [reader[i] for i in range(min(len(reader), config.limit))]
    finally:
        reader.close()
    images = [decode_image(raw, f"{args.data} sample {i}") for i, (raw, _) in enumerate(pairs)]
    with EventBars() as bars:  # one step per candidate temperature, each a full read of the lines
        cal = calibrate(loaded, images, [label for _, label in pairs], target=config.target, callback=bars)
    report = {**cal.to_dict(), "source": spec, "data": str(args.data)}
    run_dir = run_folder(source)
    if run_dir is not None:
        report["report"] = str(save_report(run_dir, "calibration", report))
    if args.export:
        from ..export import export_easyocr

        result = export_easyocr(apply_temperature(loaded, cal.temperature), args.export, args.out)
        report["export"] = {"dir": result["dir"], "files": result["files"], "snippet": result["snippet"]}
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return 0
    print(describe(cal))
    print("confidence bin | lines | mean confidence | right")
    for b in cal.after["bins"]:
        if b["count"]:
            print(f"{b['low']:.1f}-{b['high']:.1f} | {b['count']} | {b['confidence']:.1%} | {b['accuracy']:.1%}")
    if args.export:
        print(f"\nexported {args.export!r} with temperature {cal.temperature:g} to {report['export']['dir']}\n")
        print(report["export"]["snippet"])
    return 0
