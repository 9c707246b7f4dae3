"""`ocrtrain export RUN_OR_ORIGIN --name NAME --out DIR [--install]`: write an EasyOCR user_network bundle
(and copy it into EasyOCR's own folders)."""
from __future__ import annotations

import json
import sys
import tempfile

from ..readconfig import ReadConfig

__all__ = ["register", "run"]


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a run or origin model as an EasyOCR user_network bundle",
        description="Write NAME.pth, NAME.yaml and NAME.py into DIR so that "
                    "easyocr.Reader(['en'], recog_network=NAME, user_network_directory=DIR, "
                    "model_storage_directory=DIR) loads the model. RUN_OR_ORIGIN is a run folder "
                    "(its --version checkpoint) or an origin spec (english_g2, run:PATH@last, "
                    "easyocr:DIR/NAME, dtrb:FILE:CHARS, a checkpoint .pt).",
    )
    p.add_argument("source", metavar="RUN_OR_ORIGIN",
                   help="run folder (or a run name under $OCRTRAIN_HOME/runs) or origin spec")
    p.add_argument("--name", required=True, help="bundle name, a Python identifier (EasyOCR imports NAME.py)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="folder to write the bundle into (required unless --install)")
    p.add_argument("--install", action="store_true",
                   help="also copy the bundle into EasyOCR's own folders ($EASYOCR_MODULE_PATH, $MODULE_PATH or "
                        "~/.EasyOCR: model/ and user_network/, plus the offline CRAFT detector), so that "
                        "easyocr.Reader(['en'], recog_network=NAME) loads it with no directory arguments")
    p.add_argument("--version", default="best", help="checkpoint of a run: best, last or step-N (default: best)")
    p.add_argument("--lang", default="en", metavar="CODES",
                   help="comma-separated lang_list written to NAME.yaml (default: en)")
    p.add_argument("--parity-data", default=None, metavar="PATH",
                   help="after exporting, compare our reading with easyocr.Reader's on this dataset/LMDB; "
                        "the report is saved in the run (RUN/reports/parity-TIME.json)")
    p.add_argument("--parity-limit", type=int, default=ReadConfig.parity_limit, metavar="N",
                   help=f"samples for the parity check (default: {ReadConfig.parity_limit})")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.out is None and not args.install:
        print("ocrtrain export: error: give --out DIR, --install, or both", file=sys.stderr)
        return 2
    if args.out is None:  # --install alone: the bundle goes only into EasyOCR's folders
        with tempfile.TemporaryDirectory(prefix="ocrtrain-export-") as tmp:
            args.out, args.temporary_out = tmp, True
            return _run(args)
    return _run(args)


def _run(args) -> int:
    from ..export import export_easyocr, install_bundle
    from ..home import resolve_dataset, resolve_model_source

    langs = [c.strip() for c in args.lang.split(",") if c.strip()] or ["en"]
    source = resolve_model_source(args.source)
    result = export_easyocr(source, args.name, args.out, version=args.version, lang_list=langs)
    if args.install:
        result["installed"] = install_bundle(result["dir"], args.name)
    parity = saved = None
    if args.parity_data:
        from ..evaluate import parity_check, parity_device, run_folder
        from ..runfolder import save_report

        from ._progress import EventBars

        with EventBars() as bars:
            parity = parity_check(result["dir"], args.name, resolve_dataset(args.parity_data),
                                  limit=args.parity_limit, callback=bars)
        run = run_folder(source)
        if run is not None:
            saved = save_report(run, "parity", {**parity, "bundle": args.name, "version": args.version})
    if args.json:
        print(json.dumps({**result, "parity": parity, "parity_report": saved}, indent=2, ensure_ascii=False,
                         default=str))
        return 0 if parity is None or parity.get("ok", True) else 1
    print(f"exported {result['source']['spec']} ({result['num_class'] - 1} characters) as {args.name!r}" +
          (":" if not getattr(args, "temporary_out", False) else ""))
    if not getattr(args, "temporary_out", False):
        for path in result["files"].values():
            print(f"  {path}")
        print("\nload it with:\n")
        print(result["snippet"])
    if args.install:
        installed = result["installed"]
        print(f"\ninstalled into {installed['module_path']} (with {installed['detector']}):")
        for path in installed["files"].values():
            print(f"  {path}")
        print("\nload it from anywhere with:\n")
        print(installed["snippet"])
    if parity is not None:
        print(f"\nparity on {parity.get('n')} samples (read on {parity_device(parity) or 'an unknown device'}): "
              f"ours {parity.get('accuracy_ours')}, "
              f"easyocr.Reader {parity.get('accuracy_reader')}, agreement {parity.get('agreement')}, "
              f"ok={parity.get('ok')}" + (f"\nreport saved to {saved}" if saved else ""))
        return 0 if parity.get("ok", True) else 1
    return 0
