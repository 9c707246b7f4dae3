"""Your own documents: page images in, line ground truth out (document sets).

A document set is a folder of pages and their lines (:mod:`.docset`). Lines come from
ground-truth files (:mod:`.formats`: ICDAR/SROIE, PAGE-XML, ALTO, PPOCRLabel, Label Studio) or
from EasyOCR's CRAFT detector (:mod:`.detect`); a model pre-reads them (:mod:`.preread`), a known
transcript can be aligned to them (:mod:`.align`), and verified lines become an ordinary dataset
folder (:mod:`.to_dataset`). CRAFT itself can be fine-tuned on verified lines (:mod:`.craft_train`).
Names below are imported lazily.

>>> from ocrtrain.documents import import_pages, PageImportConfig
>>> # docs = import_pages("sroie/", "docsets/sroie", PageImportConfig(format="icdar"))
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "DocumentSet": "docset", "DocumentSetWriter": "docset", "Line": "docset", "Page": "docset",
    "STATUSES": "docset", "is_document_set": "docset", "read_truth": "formats", "detect_format": "formats",
    "CropConfig": "crop", "crop_line": "crop", "PageImportConfig": "importer", "import_pages": "importer",
    "DetectConfig": "detect", "GroupingConfig": "detect", "detect_lines": "detect", "detect_pages": "detect",
    "TuneConfig": "tune_detect", "tune_grouping": "tune_detect",
    "DetectorTrainConfig": "craft_train", "train_detector": "craft_train",
    "PageEvalConfig": "page_eval", "evaluate_pages": "page_eval",
    "PrereadConfig": "preread", "preread_pages": "preread",
    "AlignConfig": "align", "align_page": "align", "align_pages": "align",
    "ExportConfig": "to_dataset", "export_dataset": "to_dataset",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ocrtrain.documents' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
