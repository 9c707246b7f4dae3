"""Reading line images with a Recognizer: width-bucketed batches, greedy CTC, EasyOCR's confidence.

Each line is padded to its own EasyOCR width (``ceil(aspect) * 64``) and batched only with lines of
that width, so every line gets exactly the tensor ``Reader.recognize`` would build for it alone.
Confidence is EasyOCR's: softmax, the max probability of each non-blank step, and
``prod ** (2 / sqrt(n))``.

On CPU the convolutional part runs on oneDNN (MKL-DNN) layout tensors, about 1.5x faster than
NCHW for the same numbers (differences ~1e-6). ``quantize=True`` applies the qint8 dynamic
quantization ``easyocr.Reader`` applies on CPU by default, so both read with the same weights.

>>> predictor = Predictor.from_origin("english_g2")
>>> # predictor.predict([Image.open("line.png")])[0].text
"""
from __future__ import annotations

import copy
import warnings
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


_STAGES = ("FeatureExtraction", "AdaptiveAvgPool", "SequenceModeling", "Prediction")


def _check_quantize_device(quantize: bool, device: torch.device) -> None:
    if quantize and device.type != "cpu":
        raise ConfigError(f"quantize=True needs device 'cpu', got {str(device)!r}: PyTorch's qint8 dynamic "
                          "quantization has CPU kernels only (easyocr.Reader ignores quantize on a GPU); "
                          "drop --quantize or use --device cpu")


def _quantize_dynamic(model: Recognizer) -> Recognizer:
    """A qint8 dynamically quantized copy of `model`, as easyocr's ``get_recognizer`` makes on CPU."""
    model = copy.deepcopy(model).cpu().eval()
    with warnings.catch_warnings():
        # torch.ao.quantization announces its move to torchao; EasyOCR still calls it, and so do we
        # so that both read with the very same quantized weights.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
        return torch.ao.quantization.quantize_dynamic(model, dtype=torch.qint8)


class Predictor:
    """Reads line images (PIL or uint8 arrays) with `model`; results keep the input order.

    ``reader_compatible=True`` adds ``Reader.recognize``'s second pass: lines read with confidence
    below `contrast_ths` are read again after EasyOCR's contrast stretch and the more confident
    reading wins.

    ``quantize=True`` (CPU only) reads with a qint8 dynamically quantized copy of `model` (the
    BiLSTM and linear layers, as ``Reader(quantize=True)``, EasyOCR's CPU default, does); `model`
    itself is left untouched. Dynamic quantization scales activations by the range of the whole
    tensor it gets, so those layers then run one line at a time: a line's reading must not depend
    on its batch-mates, and this is what makes it equal to Reader's. On CUDA it is an error
    (PyTorch's dynamic quantization has CPU kernels only, and Reader ignores it on a GPU).
    """

    def __init__(self, model: Recognizer, charset: Charset, device: Union[str, torch.device] = "cpu",
                 batch_size: int = 32, height: Optional[int] = None, reader_compatible: bool = False,
                 contrast_ths: float = 0.1, adjust_contrast: float = 0.5, quantize: bool = False):
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        if model.num_class != charset.num_classes:
            raise ConfigError(f"model has {model.num_class} classes but the charset {charset.num_classes} "
                              "(with blank): pass the charset the model was trained with")
        self.device = torch.device(device)
        _check_quantize_device(quantize, self.device)
        self.quantize = bool(quantize)
        if self.quantize:
            model = _quantize_dynamic(model)
        self.model = model.to(device)
        self.charset = charset
        # The staged forward (_logits) knows Recognizer's layers; anything else is called whole.
        self._staged = all(hasattr(model, name) for name in _STAGES)
        self._onednn = self._staged and self.device.type == "cpu" and torch.backends.mkldnn.is_available()
        self.batch_size = int(batch_size)
        self.height = int(height or getattr(getattr(model, "config", None), "img_height", 64))
        self.reader_compatible = reader_compatible
        self.contrast_ths = contrast_ths
        self.adjust_contrast = adjust_contrast

    @classmethod
    def from_origin(cls, spec: str = "english_g2", device: Union[str, torch.device] = "cpu", **kwargs) -> "Predictor":
        """A Predictor for an origin spec (``english_g2``, ``run:PATH@best``, ``easyocr:DIR/NAME`` ...)."""
        from .origins import load_origin

        _check_quantize_device(kwargs.get("quantize", False), torch.device(device))
        loaded = load_origin(spec, device=device)
        kwargs.setdefault("height", loaded.model_config.img_height)
        return cls(loaded.model, loaded.charset, device=device, **kwargs)

    def _logits(self, batch: torch.Tensor) -> torch.Tensor:
        """``Recognizer.forward`` in stages: VGG on oneDNN tensors, sequence layers per line if quantized."""
        model = self.model
        if not self._staged:
            return model(batch)
        if self._onednn:
            features = model.FeatureExtraction(batch.to_mkldnn()).to_dense()
        else:
            features = model.FeatureExtraction(batch)
        features = model.AdaptiveAvgPool(features.permute(0, 3, 1, 2)).squeeze(3)
        if not self.quantize:
            return model.Prediction(model.SequenceModeling(features).contiguous())
        return torch.cat([model.Prediction(model.SequenceModeling(features[i:i + 1]).contiguous())
                          for i in range(features.shape[0])])

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
                        logits = self._logits(batch.to(self.device))
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
