"""Reading line images with a Recognizer: width-bucketed batches, greedy CTC, EasyOCR's confidence.

Each line is padded to its own EasyOCR width (``ceil(aspect) * 64``) and batched only with lines of
that width, so every line gets exactly the tensor ``Reader.recognize`` would build for it alone.
Confidence is EasyOCR's: softmax, the max probability of each non-blank step, and
``prod ** (2 / sqrt(n))``.

>>> predictor = Predictor.from_origin("english_g2")
>>> # predictor.predict([Image.open("line.png")])[0].text
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby
from typing import Optional, Sequence, Union

import numpy as np
import torch

from .charset import Charset
from .errors import ConfigError
from .model import Recognizer
from .preprocess import ImageLike, batch_tensor, padded_width, resize_to_height, to_gray

__all__ = ["Prediction", "custom_mean", "decode_logits", "Predictor"]


@dataclass(frozen=True)
class Prediction:
    """Text read from one line image and EasyOCR's confidence for it (0..1)."""

    text: str
    confidence: float


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


class Predictor:
    """Reads line images (PIL or uint8 arrays) with `model`; results keep the input order.

    ``reader_compatible=True`` adds ``Reader.recognize``'s second pass: lines read with confidence
    below `contrast_ths` are read again after EasyOCR's contrast stretch and the more confident
    reading wins.
    """

    def __init__(self, model: Recognizer, charset: Charset, device: Union[str, torch.device] = "cpu",
                 batch_size: int = 32, height: Optional[int] = None, reader_compatible: bool = False,
                 contrast_ths: float = 0.1, adjust_contrast: float = 0.5):
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        if model.num_class != charset.num_classes:
            raise ConfigError(f"model has {model.num_class} classes but the charset {charset.num_classes} "
                              "(with blank): pass the charset the model was trained with")
        self.model = model.to(device)
        self.charset = charset
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        self.height = int(height or getattr(getattr(model, "config", None), "img_height", 64))
        self.reader_compatible = reader_compatible
        self.contrast_ths = contrast_ths
        self.adjust_contrast = adjust_contrast

    @classmethod
    def from_origin(cls, spec: str = "english_g2", device: Union[str, torch.device] = "cpu", **kwargs) -> "Predictor":
        """A Predictor for an origin spec (``english_g2``, ``run:PATH@best``, ``easyocr:DIR/NAME`` ...)."""
        from .origins import load_origin

        loaded = load_origin(spec, device=device)
        kwargs.setdefault("height", loaded.model_config.img_height)
        return cls(loaded.model, loaded.charset, device=device, **kwargs)

    def _read(self, grays: list[np.ndarray], adjust_contrast: float) -> list[Prediction]:
        resized = [resize_to_height(g, self.height) for g in grays]
        widths = [padded_width(g.shape, self.height) for g in grays]
        order = sorted(range(len(grays)), key=lambda i: widths[i])
        results: list[Optional[Prediction]] = [None] * len(grays)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                for width, group in groupby(order, key=lambda i: widths[i]):
                    group = list(group)
                    for start in range(0, len(group), self.batch_size):
                        chunk = group[start:start + self.batch_size]
                        batch = batch_tensor([resized[i] for i in chunk], self.height, adjust_contrast, width)
                        logits = self.model(batch.to(self.device))
                        for i, pred in zip(chunk, decode_logits(logits, self.charset)):
                            results[i] = pred
        finally:
            self.model.train(was_training)
        return results  # type: ignore[return-value]

    def predict(self, images: Sequence[ImageLike]) -> list[Prediction]:
        """One Prediction per image, in input order."""
        if not images:
            return []
        grays = [to_gray(image) for image in images]
        results = self._read(grays, 0.0)
        if self.reader_compatible:
            low = [i for i, p in enumerate(results) if p.confidence < self.contrast_ths]
            if low:
                second = self._read([grays[i] for i in low], self.adjust_contrast)
                for i, retry in zip(low, second):
                    # EasyOCR keeps the first reading only when it is strictly more confident.
                    if not results[i].confidence > retry.confidence:
                        results[i] = retry
        return results
