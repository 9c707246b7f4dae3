"""Reader's contrast retry as a reading setting for real receipts, chosen on val, reported on test.

``easyocr.Reader.readtext`` / ``recognize`` read a line again after stretching its contrast when the
first reading's confidence is below ``contrast_ths`` (default 0.1), keeping the more confident one;
``adjust_contrast`` (default 0.5) sets the stretch. Faint dot-matrix and thermal receipts are what
the fine-tuned models still misread most (bench/real_mix's per-receipt rows), so: does retrying more
lines help? Every (contrast_ths, adjust_contrast) in ``--settings`` reads the val and test crops of a
bench.real_mix work folder (its receipt split: no receipt in two splits) with ``Predictor(
reader_compatible=True)``, which equals ``Reader.recognize`` (tests/test_export_parity); the
setting with the most val crops right (case and spaces ignored) is then the one reported on test.

    python -m bench.read_contrast --work REALMIX_WORK [--models english_g2,run:RUN@last]
                                  [--settings 0.1:0.5,0.3:0.5,0.5:0.5,0.5:0.7,0.8:0.7] [--json FILE]

Prediction (written before the first run): retrying lines below 0.5-0.8 confidence reads +1-3
points more of english_g2's test crops (the faint receipts) and +0-2 for a fine-tuned model, which
is more confident and so retries fewer lines.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

DEFAULT_SETTINGS = "0.1:0.5,0.3:0.5,0.5:0.5,0.5:0.7,0.8:0.7"


def read_splits(spec: str, splits: list[Path], ths: float, adjust: float) -> list:
    """The EvalReport of `spec` on each LMDB split with Reader's retry at (ths, adjust), one model load."""
    from ocrtrain.evaluate import evaluate
    from ocrtrain.inference import Predictor

    predictor = Predictor.from_origin(spec, device="cpu", reader_compatible=True, contrast_ths=ths,
                                      adjust_contrast=adjust)
    predictor.spec = spec
    return [evaluate(predictor, split) for split in splits]


def model_rows(spec: str, real: Path, docset: Path, settings: list[tuple[float, float]]) -> dict:
    """Val and test figures per setting, the setting chosen on val, and its test crops per receipt."""
    from bench.real_mix import per_receipt

    rows, test_reports = [], {}
    for ths, adjust in settings:
        started = time.time()
        val, test = read_splits(spec, [real / "val", real / "test"], ths, adjust)
        test_reports[(ths, adjust)] = test
        rows.append({"contrast_ths": ths, "adjust_contrast": adjust, "seconds": round(time.time() - started, 1),
                     **{f"{name}_{k}": r.metrics.get(f"{k}_ci_ws") for name, r in (("val", val), ("test", test))
                        for k in ("accuracy", "cer")}})
        print(f"{spec} contrast_ths {ths:g} adjust_contrast {adjust:g}: val {rows[-1]['val_accuracy']:.1%} "
              f"(CER {rows[-1]['val_cer']:.1%}), test {rows[-1]['test_accuracy']:.1%} "
              f"(CER {rows[-1]['test_cer']:.1%})", flush=True)
    chosen = max(rows, key=lambda r: (r["val_accuracy"], -r["val_cer"]))
    key = (chosen["contrast_ths"], chosen["adjust_contrast"])
    return {"model": spec, "rows": rows, "chosen": chosen, "default": rows[0],
            "chosen_per_receipt": per_receipt(test_reports[key].rows, docset, real),
            "default_per_receipt": per_receipt(test_reports[settings[0]].rows, docset, real)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", required=True, help="a bench.real_mix work folder (sroie/ and sroie-pages/)")
    ap.add_argument("--models", default="english_g2", help="comma list of origin specs")
    ap.add_argument("--settings", default=DEFAULT_SETTINGS,
                    help="comma list of contrast_ths:adjust_contrast; the first is the baseline (EasyOCR's)")
    ap.add_argument("--json", help="write the result here")
    args = ap.parse_args(argv)
    work = Path(args.work)
    real, docset = work / "sroie", work / "sroie-pages"
    if not (real / "test").is_dir():
        ap.error(f"{real}/test not found: run python -m bench.real_mix --work {work} first (it makes the split)")
    settings = [tuple(float(v) for v in s.split(":")) for s in args.settings.split(",")]
    out = []
    for spec in args.models.split(","):
        result = model_rows(spec, real, docset, settings)
        d, c = result["default"], result["chosen"]
        print(f"{spec}: chosen on val contrast_ths {c['contrast_ths']:g} adjust_contrast {c['adjust_contrast']:g}; "
              f"test {d['test_accuracy']:.1%} -> {c['test_accuracy']:.1%} (CER {d['test_cer']:.1%} -> "
              f"{c['test_cer']:.1%})", flush=True)
        out.append(result)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
