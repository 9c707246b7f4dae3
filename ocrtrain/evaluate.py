"""Evaluating a recognizer on a dataset split: metrics, per-sample rows, confusions, comparisons.

A *source* is an origin spec (``english_g2``, ``run:PATH``, ``easyocr:DIR/NAME``, ...), a run
folder (read as ``run:PATH``) or a ready :class:`ocrtrain.inference.Predictor`. *data* is an LMDB
split folder or a dataset folder, of which the ``test`` split is used (``val`` when test is
missing or empty).

>>> # report = evaluate("english_g2", "datasets/receipts", limit=200)
>>> # report.metrics["cer"], report.worst[0]["label"]
>>> # compare("english_g2", "runs/no-1", "datasets/receipts").counts
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

from .dataset import Dataset
from .fsutil import now_iso as _now, write_json_atomic
from .errors import DatasetError, InputError
from .events import Callback, Progress, emit
from .images import decode_image
from .lmdb_io import LmdbReader, is_lmdb
from .metrics import (VERDICT_MODE, char_confusions, confusions_to_json, edit_distance, metric_key, normalize,
                      summarize, top_confusions)
from .readconfig import ReadConfig, resolve_read_device

__all__ = [
    "EvalReport",
    "CompareReport",
    "evaluate",
    "compare",
    "parity_check",
    "parity_device",
    "resolve_source",
    "run_folder",
    "run_version",
    "open_split",
    "PARITY_TOLERANCE_POINTS",
]

log = logging.getLogger(__name__)

#: The largest |accuracy difference| (percentage points) between our evaluator and Reader.recognize.
PARITY_TOLERANCE_POINTS = 0.5

# Images are decoded and predicted in chunks so memory stays flat on large splits while the
# Predictor still sees enough lines to batch similar widths together.
_CHUNK = 256


def resolve_source(source: Union[str, Path]) -> str:
    """The origin spec for `source`: a run folder becomes ``run:PATH``, specs pass unchanged."""
    from .origins import source_spec

    return source_spec(source)


def run_folder(source: Union[str, Path]) -> Optional[Path]:
    """The run folder `source` refers to (a run folder or ``run:PATH[@version]``), else None."""
    return run_version(source)[0]


def run_version(source: Union[str, Path]) -> tuple[Optional[Path], Optional[str]]:
    """(run folder, version) of a run folder or ``run:PATH[@version]``; (None, None) otherwise.

    The version is None when none is named (the run's best checkpoint).
    """
    text = str(source)
    if text.startswith("run:"):
        body = text[len("run:"):]
        # "@" marks the version only when what follows it is one (paths may contain "@").
        head, sep, tail = body.rpartition("@")
        if sep and (tail in ("best", "last") or tail.startswith("step-")):
            return Path(head), tail
        return Path(body), None
    from .origins import is_run_folder

    path = Path(text)
    return (path, None) if is_run_folder(path) else (None, None)


def open_split(data: Union[str, Path]) -> tuple[LmdbReader, str]:
    """Open the LMDB to evaluate on and name its split (test, val, or the LMDB folder's name).

    The caller closes the reader (py-lmdb allows one open environment per path and process).
    """
    path = Path(data)
    if is_lmdb(path):
        return LmdbReader(path), path.name or "data"
    ds = Dataset(path)
    for split in ("test", "val"):
        if split in ds.splits:
            reader = ds.reader(split)
            if len(reader):
                return reader, split
            # py-lmdb refuses a second open of one path in a process: close what we do not use.
            reader.close()
    counts = {}
    for split, split_path in ds.splits.items():
        reader = LmdbReader(split_path)
        counts[split] = len(reader)
        reader.close()
    raise DatasetError(
        f"{path} has no samples to evaluate on (test and val are missing or empty; counts {counts}): "
        "regenerate it with test_fraction > 0, or pass an LMDB split folder such as DATASET/train"
    )


def _make_predictor(source, device: str, batch_size: int, reader_compatible: bool):
    # Anything with predict(images) -> list[Prediction] works (a Predictor, a Reader wrapper).
    if hasattr(source, "predict"):
        return source, str(getattr(source, "spec", None) or type(source).__name__)
    from .inference import Predictor

    spec = resolve_source(source)
    return Predictor.from_origin(spec, device=device, batch_size=batch_size,
                                 reader_compatible=reader_compatible), spec


def _sample_count(reader: LmdbReader, limit: Optional[int]) -> int:
    if limit is not None and limit < 0:
        raise InputError(f"limit must be >= 0 (or None for all samples), got {limit}")
    return len(reader) if limit is None else min(limit, len(reader))


def _predict_all(predictors: Sequence, reader: LmdbReader, n: int, stage: str,
                 callback: Optional[Callback], info: dict, chunk: int = _CHUNK,
                 stop_event=None) -> tuple[list[str], list[list]]:
    """Labels of the first `n` samples and each predictor's Predictions for them (fewer when
    `stop_event` is set: the loop stops between chunks of `chunk` samples)."""
    labels: list[str] = []
    outputs: list[list] = [[] for _ in predictors]
    emit(callback, Progress(stage, 0, n, dict(info)))
    for start in range(0, n, chunk):
        if stop_event is not None and stop_event.is_set():
            break
        stop = min(start + chunk, n)
        images = []
        for i in range(start, stop):
            raw, label = reader[i]
            images.append(decode_image(raw, where=f"{reader.path} sample {i}"))
            labels.append(label)
        done: dict[int, list] = {}
        for out, predictor in zip(outputs, predictors):
            # The same predictor object twice (a model compared with itself) runs only once.
            if id(predictor) not in done:
                done[id(predictor)] = predictor.predict(images)
            out.extend(done[id(predictor)])
        emit(callback, Progress(stage, stop, n, dict(info)))
    return labels, outputs


def _rows(labels: Sequence[str], predictions: Sequence) -> list[dict]:
    rows = []
    for i, (label, pred) in enumerate(zip(labels, predictions)):
        dist = edit_distance(pred.text, label)
        rows.append({"index": i, "label": label, "prediction": pred.text,
                     "confidence": float(pred.confidence), "distance": dist,
                     "cer": dist / max(len(label), 1)})
    return rows


def _worst(rows: Sequence[dict], k: int) -> list[dict]:
    wrong = [r for r in rows if r["prediction"] != r["label"]]
    wrong.sort(key=lambda r: (-r["cer"], -r["distance"], r["index"]))
    return wrong[:k]


@dataclass
class EvalReport:
    """One model on one split: metrics, a row per sample, confusions and the worst lines.

    Rows are ``{"index", "label", "prediction", "confidence", "distance", "cer"}`` where ``index``
    is the sample's 0-based position in the LMDB and ``cer = distance / max(len(label), 1)``.
    """

    source: str
    data: str
    split: str
    metrics: dict
    rows: list
    confusions: dict
    worst: list
    info: dict = field(default_factory=dict)

    @classmethod
    def from_predictions(cls, source: str, data: str, split: str, labels: Sequence[str],
                         predictions: Sequence, worst_k: int = 20, info: Optional[dict] = None) -> "EvalReport":
        texts = [p.text for p in predictions]
        metrics = summarize(texts, labels, [p.confidence for p in predictions])
        rows = _rows(labels, predictions)
        return cls(source=source, data=data, split=split, metrics=metrics, rows=rows,
                   confusions=char_confusions(texts, labels), worst=_worst(rows, worst_k),
                   info=dict(info or {}))

    def top_confusions(self, k: int = 10) -> list[dict]:
        return top_confusions(self.confusions, k)

    def to_dict(self) -> dict:
        return {
            "kind": "eval",
            "source": self.source,
            "data": self.data,
            "split": self.split,
            "metrics": dict(self.metrics),
            "worst": [dict(r) for r in self.worst],
            "top_confusions": self.top_confusions(),
            "confusions": confusions_to_json(self.confusions),
            "rows": [dict(r) for r in self.rows],
            "info": dict(self.info),
        }

    def save(self, path: Union[str, Path]) -> Path:
        """Write :meth:`to_dict` as JSON atomically (parent folders are created)."""
        return write_json_atomic(path, self.to_dict())

    def save_in_run(self, run_dir: Union[str, Path]) -> Path:
        """Save as the run's newest ``eval`` report (RUN/reports/eval-<time>.json)."""
        from .runfolder import save_report

        return save_report(run_dir, "eval", self.to_dict())


def evaluate(source, data: Union[str, Path], limit: Optional[int] = None, device: str = ReadConfig.device,
             batch_size: int = ReadConfig.batch_size, reader_compatible: bool = False,
             callback: Optional[Callback] = None, worst_k: int = 20) -> EvalReport:
    """Run `source` over the first `limit` samples of `data` and score it (see module doc).

    `reader_compatible` applies EasyOCR Reader's low-confidence contrast retry; it is ignored
    when `source` is already a Predictor. `device` ``auto`` reads on a GPU when torch sees one (the
    report's ``info`` names the device used). Emits ``Progress("evaluate", done, total)``.
    """
    started = time.time()
    device = resolve_read_device(device)
    reader, split = open_split(data)
    try:
        predictor, spec = _make_predictor(source, device, batch_size, reader_compatible)
        n = _sample_count(reader, limit)
        labels, (preds,) = _predict_all([predictor], reader, n, "evaluate", callback, {"source": spec})
    finally:
        reader.close()
    info = {"created": _now(), "seconds": round(time.time() - started, 3), "device": device,
            "limit": limit, "split_size": len(reader), "reader_compatible": reader_compatible}
    report = EvalReport.from_predictions(spec, str(reader.path), split, labels, preds, worst_k, info)
    log.debug("evaluated %s on %s (%s): %s", spec, reader.path, split, report.metrics)
    return report


@dataclass
class CompareReport:
    """Two models on the same samples; each sample is better/worse/same by edit distance.

    Verdicts compare text normalised by `mode` (default :data:`ocrtrain.metrics.VERDICT_MODE`,
    runs of spaces collapsed): a model that reads "Melk  12,50" for "Melk 12,50" has not got
    worse. Rows keep the raw distances too (``before_distance_raw``, ``after_distance_raw``).
    """

    before: EvalReport
    after: EvalReport
    rows: list
    counts: dict
    info: dict = field(default_factory=dict)
    mode: str = VERDICT_MODE

    @classmethod
    def from_reports(cls, before: EvalReport, after: EvalReport, info: Optional[dict] = None,
                     mode: str = VERDICT_MODE) -> "CompareReport":
        """Pair two reports on the same samples; "better" = smaller edit distance after (under `mode`)."""
        if [r["label"] for r in before.rows] != [r["label"] for r in after.rows]:
            raise InputError(f"cannot compare {before.source} on {before.data} with {after.source} on "
                             f"{after.data}: the samples differ; evaluate both on the same data and limit")
        rows = []
        counts = {"better": 0, "worse": 0, "same": 0}
        for rb, ra in zip(before.rows, after.rows):
            gold = normalize(rb["label"], mode)
            db = edit_distance(normalize(rb["prediction"], mode), gold)
            da = edit_distance(normalize(ra["prediction"], mode), gold)
            verdict = "better" if da < db else "worse" if da > db else "same"
            counts[verdict] += 1
            rows.append({"index": rb["index"], "label": rb["label"], "before": rb["prediction"],
                         "after": ra["prediction"], "before_distance": db, "after_distance": da,
                         "before_distance_raw": rb["distance"], "after_distance_raw": ra["distance"],
                         "before_confidence": rb["confidence"], "after_confidence": ra["confidence"],
                         "verdict": verdict})
        return cls(before=before, after=after, rows=rows, counts=counts, info=dict(info or {}), mode=mode)

    @property
    def regressions(self) -> list[dict]:
        """Samples the `after` model reads worse, largest loss first."""
        worse = [r for r in self.rows if r["verdict"] == "worse"]
        return sorted(worse, key=lambda r: (r["before_distance"] - r["after_distance"], r["index"]))

    @property
    def improvements(self) -> list[dict]:
        better = [r for r in self.rows if r["verdict"] == "better"]
        return sorted(better, key=lambda r: (r["after_distance"] - r["before_distance"], r["index"]))

    def delta(self) -> dict:
        """after - before for every numeric metric defined in both."""
        out = {}
        for key, a in self.after.metrics.items():
            b = self.before.metrics.get(key)
            if key != "n" and isinstance(a, (int, float)) and isinstance(b, (int, float)):
                out[key] = a - b
        return out

    def verdict(self) -> dict:
        """The headline: the mode, and after - before of line accuracy and CER under it."""
        d = self.delta()
        return {"mode": self.mode, "accuracy": d.get(metric_key("accuracy", self.mode)),
                "cer": d.get(metric_key("cer", self.mode)), **self.counts}

    def to_dict(self) -> dict:
        # Regressions come first: they are what a user must look at before shipping a model.
        return {
            "kind": "compare",
            "before": self.before.source,
            "after": self.after.source,
            "data": self.after.data,
            "split": self.after.split,
            "counts": dict(self.counts),
            "verdict": self.verdict(),
            "regressions": self.regressions,
            "improvements": self.improvements,
            "metrics": {"before": dict(self.before.metrics), "after": dict(self.after.metrics),
                        "delta": self.delta()},
            "top_confusions": {"before": self.before.top_confusions(), "after": self.after.top_confusions()},
            "rows": [dict(r) for r in self.rows],
            "info": dict(self.info),
        }

    def save(self, path: Union[str, Path]) -> Path:
        """Write :meth:`to_dict` as JSON atomically (parent folders are created)."""
        return write_json_atomic(path, self.to_dict())

    def save_in_run(self, run_dir: Union[str, Path]) -> Path:
        """Save as the run's newest ``compare`` report (RUN/reports/compare-<time>.json), which the
        dashboard's Compare tab shows."""
        from .runfolder import save_report

        return save_report(run_dir, "compare", self.to_dict())


def compare(before, after, data: Union[str, Path], limit: Optional[int] = None, device: str = ReadConfig.device,
            batch_size: int = ReadConfig.batch_size, reader_compatible: bool = False,
            callback: Optional[Callback] = None, worst_k: int = 20, mode: str = VERDICT_MODE) -> CompareReport:
    """Evaluate `before` (e.g. the origin) and `after` (e.g. the fine-tuned run) on the same samples.

    Per-sample verdicts compare text normalised by `mode` (see :class:`CompareReport`).

    Emits ``Progress("compare", done, total)``; images are decoded once for both models.
    """
    started = time.time()
    device = resolve_read_device(device)
    reader, split = open_split(data)
    try:
        p_before, spec_before = _make_predictor(before, device, batch_size, reader_compatible)
        if isinstance(before, (str, Path)) and isinstance(after, (str, Path)) \
                and resolve_source(before) == resolve_source(after):
            p_after, spec_after = p_before, spec_before  # one model in memory is enough
        else:
            p_after, spec_after = _make_predictor(after, device, batch_size, reader_compatible)
        n = _sample_count(reader, limit)
        labels, (preds_b, preds_a) = _predict_all([p_before, p_after], reader, n, "compare", callback,
                                                  {"before": spec_before, "after": spec_after})
    finally:
        reader.close()
    info = {"created": _now(), "seconds": round(time.time() - started, 3), "device": device,
            "limit": limit, "split_size": len(reader), "reader_compatible": reader_compatible}
    rep_b = EvalReport.from_predictions(spec_before, str(reader.path), split, labels, preds_b, worst_k, info)
    rep_a = EvalReport.from_predictions(spec_after, str(reader.path), split, labels, preds_a, worst_k, info)
    return CompareReport.from_reports(rep_b, rep_a, info, mode=mode)


def _bundle_folder(bundle_dir: Union[str, Path], name: str) -> Path:
    bundle_dir = Path(bundle_dir)
    for suffix in (".pth", ".yaml", ".py"):
        if not (bundle_dir / f"{name}{suffix}").is_file():
            raise InputError(f"{bundle_dir / (name + suffix)} is missing: export the bundle first "
                             "(ocrtrain export) and pass its folder and name")
    return bundle_dir


def parity_check(bundle_dir: Union[str, Path], name: str, data: Union[str, Path],
                 limit: Optional[int] = ReadConfig.parity_limit, device: str = ReadConfig.device,
                 batch_size: int = ReadConfig.batch_size, callback: Optional[Callback] = None, show: int = 20,
                 stop_event=None) -> dict:
    """Our evaluator on an exported EasyOCR bundle vs the real ``easyocr.Reader.recognize``.

    Both read the same decoded crops; the result holds both line accuracies, their difference
    in percentage points (ours - reader), the share of identical predictions, up to `show`
    disagreeing samples, and ``ok = |diff| <= PARITY_TOLERANCE_POINTS``. Progress comes every
    `batch_size` lines; `stop_event` ends it early: ``canceled: True``, counts over the lines read.
    Both read on `device` (``auto``: a GPU when torch sees one); ``device`` names the one resolved
    (``cpu``, ``cuda:0``), since a parity reading on a GPU is not a CPU user's reading.
    """
    from .easyocr_interop import make_reader, read_lines

    started = time.time()
    device = resolve_read_device(device)
    bundle_dir = _bundle_folder(bundle_dir, name)
    reader, split = open_split(data)
    try:
        spec = f"easyocr:{bundle_dir / name}"
        ours_predictor, _ = _make_predictor(spec, device, batch_size, reader_compatible=True)
        easy_reader = make_reader(bundle_dir, name, gpu=False if device == "cpu" else device)

        class _ReaderPredictor:
            def predict(self, images):
                return read_lines(easy_reader, images)

        # Reader reads one line at a time on CPU (about 0.1 s): a chunk per batch keeps the events live.
        wanted = _sample_count(reader, limit)
        labels, (ours, theirs) = _predict_all([ours_predictor, _ReaderPredictor()], reader, wanted, "parity",
                                              callback, {"bundle": str(bundle_dir / name)},
                                              chunk=max(1, batch_size), stop_event=stop_event)
    finally:
        reader.close()
    n = len(labels)
    acc_ours = summarize([p.text for p in ours], labels)["accuracy"]
    acc_reader = summarize([p.text for p in theirs], labels)["accuracy"]
    agree = sum(a.text == b.text for a, b in zip(ours, theirs))
    disagreements = [{"index": i, "label": labels[i], "ours": a.text, "reader": b.text,
                      "ours_confidence": float(a.confidence), "reader_confidence": float(b.confidence)}
                     for i, (a, b) in enumerate(zip(ours, theirs)) if a.text != b.text]
    diff = None if n == 0 else 100.0 * (acc_ours - acc_reader)
    return {
        "kind": "parity",
        "bundle": str(bundle_dir / name),
        "data": str(reader.path),
        "split": split,
        "device": device,
        "n": n,
        "accuracy_ours": acc_ours,
        "accuracy_reader": acc_reader,
        "diff_points": diff,
        "tolerance_points": PARITY_TOLERANCE_POINTS,
        "agreement": (agree / n) if n else None,
        "disagreements": disagreements[:show],
        "ok": diff is not None and abs(diff) <= PARITY_TOLERANCE_POINTS,
        "canceled": n < wanted,
        "info": {"created": _now(), "seconds": round(time.time() - started, 3), "device": device},
    }


def parity_device(report: dict) -> Optional[str]:
    """The device a parity report's readings ran on, or None for reports that do not say.

    Reports written before ``device`` was a field of their own keep it in ``info`` (or nowhere).
    """
    return report.get("device") or (report.get("info") or {}).get("device")
