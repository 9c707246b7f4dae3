"""`ocrtrain pages ...`: document sets (page images + line ground truth) from the command line.

    ocrtrain pages import SOURCE --out DOCSET [--format auto|icdar|pagexml|alto|ppocr|labelstudio|images]
    ocrtrain pages detect DOCSET [--canvas-size 1280 --width-ths 1.0 ...]
    ocrtrain pages preread DOCSET --model english_g2          (alias: prelabel)
    ocrtrain pages align DOCSET --text-dir DIR                 (alias: --text)
    ocrtrain pages to-dataset DOCSET --out DATASET [--split-by page|document|tag]
    ocrtrain pages status DOCSET [--json]
    ocrtrain pages eval MODEL --pages DOCSET [--tag test] [--width-ths 1.0 ...] [--json]   (Reader.readtext)
    ocrtrain pages tune-detect DOCSET [--tag val] [--model english_g2] [--json]   (readtext's line grouping)
    ocrtrain pages train-detect DOCSET --out DETECTOR [--tag train] [--steps 150]   (fine-tune CRAFT)
"""
from __future__ import annotations

import argparse
import json
import sys

from ..config import add_config_arguments, config_from_args
from ..home import resolve_docset
from ._progress import EventBars

__all__ = ["register"]


def _bars() -> EventBars:
    """The page commands' progress: tqdm bars on a terminal (on stderr), every message printed above them."""
    return EventBars(quiet_info=False)


def _open(text: str):
    """The document set a user named: a bare name under HOME/docsets (see ocrtrain.home), a path as given."""
    from ..documents.docset import DocumentSet

    return DocumentSet(resolve_docset(text))


def _counts_text(counts: dict) -> str:
    return ", ".join(f"{n} {s}" for s, n in counts.items())


def _import(args: argparse.Namespace) -> int:
    from ..documents.crop import CropConfig
    from ..documents.docset import REJECTED, DocumentSet
    from ..documents.importer import PageImportConfig, import_pages

    config = config_from_args(PageImportConfig, args)
    crop = config_from_args(CropConfig, args)
    with _bars() as bars:
        out = import_pages(args.source, resolve_docset(args.out), config, overwrite=args.overwrite, callback=bars, crop=crop)
    docs = DocumentSet(out)
    rejected = len(docs.rejected())
    print(f"imported {len(docs.pages)} pages ({docs.manifest['source']['format']}) into {out}: "
          f"{_counts_text(docs.counts())} lines; {rejected} rejected" + (f", see {out / REJECTED}" if rejected else ""))
    empty = sum(1 for p in docs.pages if not sum(p.counts.values()))
    print(f"next: ocrtrain pages detect {out}" if empty else f"next: ocrtrain pages to-dataset {out} --out DATASET")
    return 0


def _detect(args: argparse.Namespace) -> int:
    from ..documents.detect import DetectConfig, detect_pages

    docs = _open(args.docset)
    with _bars() as bars:
        found = detect_pages(docs, config_from_args(DetectConfig, args), callback=bars)
    print(f"detected {sum(found.values())} lines on {len(found)} pages "
          f"({len(docs.pages) - len(found)} pages already had lines; --redo detects them again)")
    print(f"next: ocrtrain pages preread {args.docset} --model english_g2")
    return 0


def _preread(args: argparse.Namespace) -> int:
    from ..documents.preread import PrereadConfig, preread_pages

    docs = _open(args.docset)
    config = config_from_args(PrereadConfig, args)
    with _bars() as bars:
        n = preread_pages(docs, config, callback=bars)
    print(f"read {n} lines with {config.model}; {_counts_text(docs.counts())}")
    return 0


def _align(args: argparse.Namespace) -> int:
    from ..documents.align import AlignConfig, align_pages

    docs = _open(args.docset)
    with _bars() as bars:
        reports = align_pages(docs, args.text_dir, config_from_args(AlignConfig, args), callback=bars)
    if args.json:
        print(json.dumps(reports, indent=2, ensure_ascii=False))
        return 0
    for r in reports:
        left = r["unmatched_transcript"]
        joined = len(r.get("joined") or [])
        print(f"{r['page']}: {r['matched']} of {r['transcript_lines']} transcript lines matched to {r['boxes']} boxes"
              + (f" ({joined} of them re-joined from two boxes the detector split)" if joined else "")
              + (f"; unmatched: {'; '.join(left[:3])}{' ...' if len(left) > 3 else ''}" if left else ""))
    print(f"{_counts_text(docs.counts())}")
    return 0


def _to_dataset(args: argparse.Namespace) -> int:
    from ..dataset import Dataset
    from ..documents.to_dataset import ExportConfig, export_dataset

    docs = _open(args.docset)
    with _bars() as bars:
        out = export_dataset(docs, args.out, config_from_args(ExportConfig, args), overwrite=args.overwrite,
                             callback=bars)
    ds = Dataset(out)
    pages = ds.manifest.get("source", {}).get("pages", {})
    print(f"wrote {ds.manifest.get('total', 0)} verified lines into {out} ("
          + ", ".join(f"{s} {n} lines / {len(pages.get(s, []))} pages" for s, n in ds.manifest.get("counts", {}).items())
          + f"); {ds.manifest.get('rejected', 0)} rejected")
    print(f"next: ocrtrain train --data {out}")
    return 0


def _status(args: argparse.Namespace) -> int:

    docs = _open(args.docset)
    if args.refresh:
        docs.refresh()
    pages = [{"id": p.id, "document": p.document, "tag": p.tag, **p.counts} for p in docs.pages]
    if args.json:
        print(json.dumps({"pages": pages, "counts": docs.counts(), "rejected": len(docs.rejected())}, indent=2))
        return 0
    for p in pages:
        print(f"{p['id']:<24} {p['tag'] or '-':<5} " + " ".join(f"{s}={p[s]}" for s in docs.counts()))
    print(f"{len(pages)} pages: {_counts_text(docs.counts())}; {len(docs.rejected())} rejected at import")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from ..documents.page_eval import PageEvalConfig, evaluate_pages

    docs = _open(args.pages)
    with _bars() as bars:
        result = evaluate_pages(args.model, docs, config_from_args(PageEvalConfig, args), callback=bars)
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0
    print(f"{result['model']} on {result['pages']} pages of {docs.path} (Reader.readtext):")
    print(f"  page CER {result['page_cer']:.1%} ({result['config']['page_compare']}), "
          f"line recall {result['line_recall']:.1%}, precision {result['line_precision']:.1%} (IoU >= "
          f"{result['config']['iou']}), lines read right {result['lines_correct']:.1%} "
          f"({result['lines_correct_count']} of {result['total_truth_lines']})")
    for e in result["errors"][:10]:
        print(f"  {e['line']}: {e['truth']!r} -> {e['read']!r}")
    return 0


def _tune(args: argparse.Namespace) -> int:
    from ..documents.tune_detect import TuneConfig, grouping_text as text, tune_grouping

    docs = _open(args.docset)
    with _bars() as bars:
        result = tune_grouping(docs, config_from_args(TuneConfig, args), model=args.model, callback=bars)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['combinations']} groupings on {result['pages']} pages ({result['lines']} lines) of {docs.path}:")
    for row in result["rows"][:5]:
        print(f"  {text(row)}: recall {row['line_recall']:.1%}, precision {row['line_precision']:.1%}, F1 {row['f1']:.1%}")
    d = result["default"]
    print(f"  EasyOCR's defaults: recall {d['line_recall']:.1%}, precision {d['line_precision']:.1%}, F1 {d['f1']:.1%}")
    for row in result["read"]:
        print(f"  read by {args.model} with {text(row)}: page CER {row['page_cer']:.1%}, "
              f"lines right {row['lines_correct']:.1%}")
    best = result["best"]
    flags = " ".join(f"--{k.replace('_', '-')} {v:g}" for k, v in best.items())
    print(f"best ({result['ranked_by']}): {text(best)}\nuse: ocrtrain pages eval MODEL --pages {docs.path} {flags}"
          f"\n     reader.readtext(image, {', '.join(f'{k}={v:g}' for k, v in best.items())})")
    return 0


def _train_detect(args: argparse.Namespace) -> int:
    from ..documents.craft_train import DetectorTrainConfig, train_detector

    docs = _open(args.docset)
    with _bars() as bars:
        record = train_detector(docs, args.out, config_from_args(DetectorTrainConfig, args), overwrite=args.overwrite,
                                callback=bars)
    print(f"detector {args.out}: {record['pages']} pages, {record['lines']} lines, loss {record['losses'][0]:.4f} -> "
          f"{record['losses'][-1]:.4f} in {record['seconds']:.0f} s\n"
          f"measure: ocrtrain pages eval english_g2 --pages {docs.path} --tag test --detector {args.out}\n"
          f"use:     reader.detector = reader.initDetector('{args.out}/craft_mlt_25k.pth')")
    return 0


def _add_train_detect(sub) -> None:
    from ..documents.craft_train import DetectorTrainConfig

    p = _add(sub, "train-detect", _train_detect, "fine-tune EasyOCR's CRAFT detector on your pages' verified lines")
    p.add_argument("docset", metavar="DOCSET")
    p.add_argument("--out", required=True, metavar="DETECTOR", help="new detector folder (craft_mlt_25k.pth + "
                                                                     "detector.json)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing detector folder")
    add_config_arguments(p, DetectorTrainConfig)


def _add(sub, name: str, func, help_text: str, aliases=()) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help_text, description=help_text, aliases=list(aliases))
    parser.set_defaults(func=func)
    return parser


def register(subparsers) -> None:
    from ..documents.align import AlignConfig
    from ..documents.crop import CropConfig
    from ..documents.detect import DetectConfig
    from ..documents.importer import PageImportConfig
    from ..documents.page_eval import PageEvalConfig
    from ..documents.preread import PrereadConfig
    from ..documents.to_dataset import ExportConfig
    from ..documents.tune_detect import TuneConfig

    pages = subparsers.add_parser("pages", help="document sets: import pages, detect, pre-read, align, export",
                                  description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = pages.add_subparsers(dest="pages_command", metavar="STEP", required=True)
    p = _add(sub, "import", _import, "import page images (+ ground truth) into a new document set")
    p.add_argument("source", metavar="SOURCE", help="folder or file: images, box files, PAGE-XML, ALTO, Label.txt, JSON")
    p.add_argument("--out", required=True, metavar="DOCSET",
                   help="new document-set folder (a bare name goes under $OCRTRAIN_HOME/docsets, where the "
                        "Transcribe tab looks)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing document set")
    add_config_arguments(p, PageImportConfig)
    add_config_arguments(p, CropConfig)
    p = _add(sub, "detect", _detect, "find text lines with CRAFT on pages that have none")
    p.add_argument("docset", metavar="DOCSET")
    add_config_arguments(p, DetectConfig)
    p = _add(sub, "preread", _preread, "fill unverified lines with a model's reading and confidence",
             aliases=("prelabel",))
    p.add_argument("docset", metavar="DOCSET")
    add_config_arguments(p, PrereadConfig)
    p = _add(sub, "align", _align, "match each page's known text (DIR/PAGE.txt) to its boxes")
    p.add_argument("docset", metavar="DOCSET")
    p.add_argument("--text-dir", "--text", dest="text_dir", required=True, metavar="DIR",
                   help="folder of PAGE.txt transcripts (one line per text line, any order)")
    p.add_argument("--json", action="store_true", help="print the per-page report as JSON")
    add_config_arguments(p, AlignConfig)
    p = _add(sub, "to-dataset", _to_dataset, "write verified lines as a dataset folder, split by page/document/tag")
    p.add_argument("docset", metavar="DOCSET")
    p.add_argument("--out", required=True, metavar="DATASET")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset folder")
    add_config_arguments(p, ExportConfig)
    p = _add(sub, "eval", _eval, "the whole EasyOCR pipeline (Reader.readtext) on pages: page CER, line recall/precision")
    p.add_argument("model", metavar="MODEL", help="english_g2, a run folder, an exported bundle folder or easyocr:DIR/NAME")
    p.add_argument("--pages", required=True, metavar="DOCSET", help="document set with ground-truth lines")
    p.add_argument("--json", action="store_true", help="print the full result (per page, per-line errors) as JSON")
    add_config_arguments(p, PageEvalConfig)
    p = _add(sub, "tune-detect", _tune, "find readtext's line grouping (width_ths, ...) that fits your pages' lines")
    p.add_argument("docset", metavar="DOCSET")
    p.add_argument("--model", help="also read the best groupings with this model (english_g2, a run, a bundle) "
                                   "and rank them by page CER")
    p.add_argument("--json", action="store_true", help="print every row as JSON")
    add_config_arguments(p, TuneConfig)
    _add_train_detect(sub)
    p = _add(sub, "status", _status, "lines per status, page by page")
    p.add_argument("docset", metavar="DOCSET")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.add_argument("--refresh", action="store_true", help="recount from the lines files first")
