"""CTC pieces shared by the CTC families: steps a label needs, the loss, greedy decoding.

Class 0 is the blank and character ``i`` of a :class:`Charset` is class ``i + 1`` (EasyOCR's and
DTRB's ``CTCLabelConverter`` layout).

>>> ctc_steps_needed("aab")
4
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..charset import Charset
from .base import Prediction

__all__ = ["ctc_steps_needed", "ctc_loss", "custom_mean", "decode_logits", "decode_ctc_product"]


def ctc_steps_needed(label: str) -> int:
    """Time steps CTC needs for `label`: one per character plus a blank between equal neighbours."""
    return len(label) + sum(1 for a, b in zip(label, label[1:]) if a == b)


def ctc_loss(logits: torch.Tensor, targets: list[list[int]], each: bool = False, fold=None) -> torch.Tensor:
    """CTC loss of logits [B, T, C] (blank 0, zero_infinity): the batch mean, or per sample when `each`;
    with a :class:`ocrtrain.tasks.caseless.CaseFold`, over case-folded classes."""
    log_probs = logits.float().log_softmax(2)
    if fold is not None:
        log_probs, targets = fold.log_probs(log_probs), fold.targets(targets)
    log_probs = log_probs.permute(1, 0, 2)  # [T, B, C] for CTCLoss
    t, b = log_probs.shape[:2]
    flat = torch.tensor([c for seq in targets for c in seq], dtype=torch.long)
    lengths = torch.tensor([len(seq) for seq in targets], dtype=torch.long)
    inputs = torch.full((b,), t, dtype=torch.long)
    if log_probs.is_cuda:
        flat, lengths, inputs = flat.to(log_probs.device), lengths.to(log_probs.device), inputs.to(log_probs.device)
    reduction = "none" if each else "mean"
    return torch.nn.functional.ctc_loss(log_probs, flat, inputs, lengths, blank=0, reduction=reduction,
                                        zero_infinity=True)


def custom_mean(probs: np.ndarray) -> float:
    """EasyOCR's line confidence: product of step probabilities ** (2 / sqrt(n))."""
    return float(probs.prod() ** (2.0 / np.sqrt(len(probs))))


def decode_logits(logits: torch.Tensor, charset: Charset, ignore: Sequence[int] = ()) -> list[Prediction]:
    """Greedy CTC decoding of logits [B, T, C] with EasyOCR's confidence.

    `ignore` are class indices whose probability is zeroed before renormalizing (EasyOCR's
    ``ignore_char``); EasyOCR renormalizes even when nothing is ignored, and so do we.
    """
    probs = torch.softmax(logits.detach().float(), dim=2).cpu().numpy()
    if len(ignore):
        probs[:, :, list(ignore)] = 0.0
    probs = probs / np.expand_dims(probs.sum(axis=2), axis=-1)
    values = probs.max(axis=2)
    indices = probs.argmax(axis=2)
    out = []
    for steps, best in zip(values, indices):
        kept = steps[best != Charset.BLANK]
        confidence = custom_mean(kept) if len(kept) else custom_mean(np.array([0.0]))
        out.append(Prediction(charset.decode_ctc(best.tolist()), confidence))
    return out


def decode_ctc_product(logits: torch.Tensor, charset: Charset) -> list[Prediction]:
    """Greedy CTC decoding with DTRB demo.py's confidence: the product of every step's max probability."""
    probs = torch.softmax(logits.detach().float(), dim=2)
    values, indices = probs.max(dim=2)
    confidence = values.cumprod(dim=1)[:, -1].cpu().tolist()
    return [Prediction(charset.decode_ctc(best), float(conf))
            for best, conf in zip(indices.cpu().tolist(), confidence)]
