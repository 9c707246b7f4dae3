"""Confidence calibration: make EasyOCR's line confidence mean "how likely this reading is right".

After fine-tuning, the confidence EasyOCR reports (the product of the per-character maximum
probabilities to the power 2/sqrt(n)) no longer matches how often a line is right: a model trained
with label-smoothing-free CTC on a few thousand lines is typically *under*-confident on its own
domain early and over-confident elsewhere. Temperature scaling (Guo et al. 2017) divides the logits
by one number T fitted on a validation split; argmax and so every reading stay the same (only
EasyOCR's low-confidence contrast retry can change a few), and T is baked into the exported bundle
by dividing the final layer's weights and bias by T, so ``easyocr.Reader`` reports the calibrated
confidence with no code of ours.

>>> bins = reliability([0.95, 0.9, 0.2, 0.1], [True, True, False, True], bins=2)
>>> [(b["count"], b["accuracy"]) for b in bins]
[(2, 0.5), (2, 1.0)]
>>> expected_calibration_error([0.95, 0.9, 0.2, 0.1], [True, True, False, True], bins=2)
0.2125
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field, replace
from typing import Optional, Sequence

from .config import Config, check
from .errors import ConfigError
from .events import Callback, Progress, emit

__all__ = ["TEMPERATURES", "CalibrationConfig", "Calibration", "reliability", "expected_calibration_error", "suggest_threshold",
           "apply_temperature", "calibrate", "log_loss"]

#: Candidate temperatures (T < 1 sharpens an under-confident model, T > 1 softens an over-confident one).
TEMPERATURES = (0.4, 0.5, 0.6, 0.7, 0.85, 1.0, 1.2, 1.5, 2.0, 2.5, 3.0)


@dataclass(frozen=True)
class CalibrationConfig(Config):
    """How many validation lines a calibration reads and what the suggested threshold keeps."""

    limit: int = field(default=500, metadata={"help": "lines read"})
    target: float = field(default=0.98, metadata={
        "help": "accuracy the suggested threshold keeps for accepted lines"})

    def validate(self) -> None:
        check(self.limit >= 1, f"limit must be at least 1, got {self.limit}")
        check(0.0 < self.target <= 1.0, f"target must be in (0, 1], got {self.target}")


@dataclass(frozen=True)
class Calibration:
    """A fitted temperature and how well confidence predicts correctness before and after."""

    temperature: float
    lines: int
    accuracy: float
    before: dict
    after: dict
    threshold: dict

    def to_dict(self) -> dict:
        return {"temperature": self.temperature, "lines": self.lines, "accuracy": self.accuracy,
                "before": self.before, "after": self.after, "threshold": self.threshold}


def reliability(confidences: Sequence[float], correct: Sequence[bool], bins: int = 10) -> list[dict]:
    """Equal-width confidence bins: count, mean confidence and accuracy of the lines in each."""
    out = []
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        members = [(c, ok) for c, ok in zip(confidences, correct) if lo <= c < hi or (b == bins - 1 and c == 1.0)]
        out.append({"low": lo, "high": hi, "count": len(members),
                    "confidence": sum(c for c, _ in members) / len(members) if members else None,
                    "accuracy": sum(ok for _, ok in members) / len(members) if members else None})
    return out


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[bool], bins: int = 10) -> float:
    """Mean |accuracy - confidence| over the bins, weighted by their line counts."""
    n = len(confidences)
    if not n:
        return 0.0
    return round(sum(b["count"] / n * abs(b["accuracy"] - b["confidence"])
                     for b in reliability(confidences, correct, bins) if b["count"]), 6)


def log_loss(confidences: Sequence[float], correct: Sequence[bool]) -> float:
    """Binary cross-entropy of confidence as the probability that the line is right."""
    eps = 1e-6
    total = sum(-math.log(min(max(c, eps), 1 - eps) if ok else 1 - min(max(c, eps), 1 - eps))
                for c, ok in zip(confidences, correct))
    return total / max(1, len(confidences))


def suggest_threshold(confidences: Sequence[float], correct: Sequence[bool],
                      target: float = CalibrationConfig.target) -> dict:
    """The lowest confidence threshold whose accepted lines are at least `target` right (the rest go
    to review), with the share of lines it keeps; None when no threshold reaches `target`."""
    pairs = sorted(zip(confidences, correct), reverse=True)
    best = None
    right = 0
    for k, (c, ok) in enumerate(pairs, start=1):
        right += ok
        if right / k >= target and (k == len(pairs) or pairs[k][0] < c):
            best = {"threshold": round(c, 4), "kept": k / len(pairs), "accuracy_kept": right / k}
    return {"target": target, **(best or {"threshold": None, "kept": 0.0, "accuracy_kept": None})}


def apply_temperature(loaded, temperature: float):
    """A copy of LoadedModel `loaded` whose final linear layer is divided by `temperature` (logits / T)."""
    import torch

    if not temperature > 0:
        raise ConfigError(f"temperature must be > 0, got {temperature}")
    head = getattr(loaded.model, "Prediction", None)
    if not isinstance(head, torch.nn.Linear):
        raise ConfigError(f"temperature scaling needs a model whose Prediction layer is linear (CTC); "
                          f"{loaded.family.name} models are not supported: leave calibration off")
    model = copy.deepcopy(loaded.model)
    with torch.no_grad():
        model.Prediction.weight.div_(temperature)
        if model.Prediction.bias is not None:
            model.Prediction.bias.div_(temperature)
    return replace(loaded, model=model, info={**loaded.info, "temperature": temperature})


def _summary(confidences, correct) -> dict:
    return {"ece": expected_calibration_error(confidences, correct), "log_loss": round(log_loss(confidences, correct), 6),
            "mean_confidence": sum(confidences) / max(1, len(confidences)), "bins": reliability(confidences, correct)}


def calibrate(loaded, images: Sequence, labels: Sequence[str], temperatures: Sequence[float] = TEMPERATURES,
              target: float = CalibrationConfig.target, mode: str = "ws",
              callback: Optional[Callback] = None) -> Calibration:
    """Fit T on `images`/`labels` (a validation split) by log loss of EasyOCR's confidence as read by
    ``Reader.recognize`` (our Reader-compatible Predictor, quantized as on CPU); `callback` gets a
    Progress per temperature read."""
    from .inference import Predictor
    from .metrics import normalize

    if not labels:
        raise ConfigError("calibration needs validation lines, got none: pass a split with lines (e.g. DS/val)")
    results = {}
    candidates = sorted(set(temperatures) | {1.0})
    for t in candidates:
        scaled = apply_temperature(loaded, t) if t != 1.0 else loaded
        reader = Predictor(scaled.model, scaled.charset, reader_compatible=True, quantize=True,
                           family=scaled.family, family_options=scaled.family_options)
        preds = reader.predict(list(images))
        correct = [normalize(p.text, mode) == normalize(g, mode) for p, g in zip(preds, labels)]
        results[t] = ([p.confidence for p in preds], correct)
        emit(callback, Progress("calibrate", len(results), len(candidates), {"T": t}))
    best = min(results, key=lambda t: (log_loss(*results[t]), abs(math.log(t))))
    conf, correct = results[best]
    return Calibration(temperature=best, lines=len(labels), accuracy=sum(correct) / len(correct),
                       before=_summary(*results[1.0]), after=_summary(conf, correct),
                       threshold=suggest_threshold(conf, correct, target))


def describe(cal: Calibration) -> str:
    """Two lines for people: the fitted T and what it changes, and the suggested threshold."""
    b, a, th = cal.before, cal.after, cal.threshold
    text = (f"temperature {cal.temperature:g} on {cal.lines} lines ({cal.accuracy:.1%} right): mean confidence "
            f"{b['mean_confidence']:.1%} -> {a['mean_confidence']:.1%}, calibration error (ECE) {b['ece']:.1%} -> "
            f"{a['ece']:.1%}")
    if th["threshold"] is None:
        return text + f"\nno confidence threshold gives {th['target']:.0%} right lines: review them all"
    return text + (f"\nsuggested rejection threshold {th['threshold']:.2f}: keeps {th['kept']:.0%} of lines, "
                   f"{th['accuracy_kept']:.1%} of them right; review the rest")
