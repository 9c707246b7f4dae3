"""ocrtrain: fine-tune EasyOCR-compatible text recognizers on your own documents.

The public names below are imported lazily, so ``import ocrtrain`` stays light (no torch).

>>> import ocrtrain
>>> # ds = ocrtrain.generate_dataset(ocrtrain.SynthConfig(count=3000, seed=1), "datasets/receipts")
>>> # run = ocrtrain.fit(ocrtrain.load_template("quick-cpu"), ds, "runs/receipts")
>>> # ocrtrain.export_easyocr("runs/receipts", "receipts_no", "export")
"""
from __future__ import annotations

import importlib

#: The one version number: pyproject.toml reads it (dynamic version), `ocrtrain --version` prints it.
__version__ = "0.1.0"

_EXPORTS = {
    "Config": "config", "OcrtrainError": "errors", "Charset": "charset", "english_g2_charset": "charset",
    "SplitConfig": "dataset", "Dataset": "dataset", "DatasetWriter": "dataset",
    "SynthConfig": "synth", "RenderConfig": "synth", "generate_dataset": "synth", "preview": "synth",
    "ImportConfig": "imports", "import_dataset": "imports", "audit_dataset": "audit",
    "LmdbTextDataset": "torchdata", "ModelConfig": "model", "Recognizer": "model",
    "load_origin": "origins", "adapt_charset": "origins", "Predictor": "inference",
    "TrainConfig": "train", "fit": "train", "load_template": "train", "save_template": "train",
    "list_templates": "train", "Run": "runs", "launch": "runs", "cancel": "runs", "resume": "runs",
    "list_runs": "runs", "evaluate": "evaluate", "compare": "evaluate", "parity_check": "evaluate",
    "summarize": "metrics", "export_easyocr": "export",
    "DocumentSet": "documents.docset", "PageImportConfig": "documents.importer", "import_pages": "documents.importer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ocrtrain' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + __all__)
