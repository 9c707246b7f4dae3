"""Reading line images with a model of any family: width-bucketed batches, the family's decoding.

Each line gets the input width its family gives it (``easyocr-crnn``: its own EasyOCR width,
``ceil(aspect) * 64``; ``dtrb``: the fixed ``imgW``) and is batched only with lines of that width,
so every line gets exactly the tensor it would get alone (for english_g2: what ``Reader.recognize``
builds). Decoding and confidence are the family's (``easyocr-crnn``: EasyOCR's softmax, the max
probability of each non-blank step, and ``prod ** (2 / sqrt(n))``).

On CPU the convolutional part runs on oneDNN (MKL-DNN) layout tensors, about 1.5x faster than
NCHW for the same numbers (differences ~1e-6). ``quantize=True`` applies the qint8 dynamic
quantization ``easyocr.Reader`` applies on CPU by default, so both read with the same weights.

>>> predictor = Predictor.from_origin("english_g2")
>>> # predictor.predict([Image.open("line.png")])[0].text
"""
from __future__ import annotations

import copy
import warnings
from itertools import groupby
from typing import Optional, Sequence, Union

import numpy as np
import torch

from .charset import Charset
from .errors import ConfigError
from .events import Callback, Progress, emit
from .families import ModelFamily, Prediction, family_of_model, get_family
from .families.ctc import custom_mean, decode_logits
from .model import Recognizer
from .originspec import DEFAULT_ORIGIN
from .preprocess import ImageLike, to_gray
from .readconfig import ReadConfig, resolve_read_device

__all__ = ["Prediction", "custom_mean", "decode_logits", "Predictor"]


def _check_quantize_device(quantize: bool, device: torch.device) -> None:
    if quantize and device.type != "cpu":
        raise ConfigError(f"quantize=True needs device 'cpu', got {str(device)!r}: PyTorch's qint8 dynamic "
                          "quantization has CPU kernels only (easyocr.Reader ignores quantize on a GPU); "
                          "drop --quantize or use --device cpu")


def _quantize_dynamic(model: torch.nn.Module) -> torch.nn.Module:
    """A qint8 dynamically quantized copy of `model`, as easyocr's ``get_recognizer`` makes on CPU."""
    model = copy.deepcopy(model).cpu().eval()
    with warnings.catch_warnings():
        # torch.ao.quantization announces its move to torchao; EasyOCR still calls it, and so do we
        # so that both read with the very same quantized weights.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
        return torch.ao.quantization.quantize_dynamic(model, dtype=torch.qint8)


def _options_with_height(family: ModelFamily, model: torch.nn.Module, options: Optional[dict],
                         height: Optional[int]) -> dict:
    """The family options to read with; `height` overrides a CRNN's line height (others must match)."""
    config = family.options(options if options is not None else family.model_options(model))
    if height is None or int(height) == family.img_height(config):
        return config.to_dict()
    if "img_height" in config.field_names():
        return config.replace(img_height=int(height)).to_dict()
    raise ConfigError(f"height {height} differs from the {family.name} model's input height "
                      f"{family.img_height(config)}, which it was built for: leave height unset")


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

    `device` ``None`` reads where `model` is (a model you hold is not moved; ``quantize=True`` reads
    on the CPU); a device name (``auto``, ``cpu``, ``cuda:N``) moves it there. :meth:`from_origin`,
    which loads the model, defaults to ``ReadConfig.device`` (``auto``: a GPU when torch sees one).
    """

    def __init__(self, model: torch.nn.Module, charset: Charset, device: Union[str, torch.device, None] = None,
                 batch_size: int = ReadConfig.batch_size, height: Optional[int] = None, reader_compatible: bool = False,
                 contrast_ths: float = 0.1, adjust_contrast: float = 0.5, quantize: bool = False,
                 family: Union[str, ModelFamily, None] = None, family_options: Optional[dict] = None):
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        self.family = get_family(family) if family is not None else family_of_model(model)
        self.options = _options_with_height(self.family, model, family_options, height)
        needed = self.family.num_classes(charset)
        if self.family.head_size(model) != needed:
            raise ConfigError(f"model has {self.family.head_size(model)} classes but the charset needs {needed} "
                              f"({self.family.special_classes}, {self.family.name}): pass the charset the model "
                              "was trained with")
        if device is None:
            device = "cpu" if quantize else next((p.device for p in model.parameters()), "cpu")
        self.device = torch.device(resolve_read_device(device, quantize))
        _check_quantize_device(quantize, self.device)
        self.quantize = bool(quantize)
        if self.quantize:
            model = _quantize_dynamic(model)
        self.model = model.to(self.device)
        self.charset = charset
        # The staged forward (_logits) knows Recognizer's layers; other families run infer_forward.
        self._staged = isinstance(model, Recognizer)
        self._onednn = self._staged and self.device.type == "cpu" and torch.backends.mkldnn.is_available()
        self.batch_size = int(batch_size)
        self.height = self.family.img_height(self.options)
        self.reader_compatible = reader_compatible
        self.contrast_ths = contrast_ths
        self.adjust_contrast = adjust_contrast

    @classmethod
    def from_origin(cls, spec: str = DEFAULT_ORIGIN, device: Union[str, torch.device] = ReadConfig.device,
                    **kwargs) -> "Predictor":
        """A Predictor for an origin spec (``english_g2``, ``run:PATH@best``, ``easyocr:DIR/NAME`` ...)."""
        from .origins import load_origin

        device = resolve_read_device(device, kwargs.get("quantize", False))
        _check_quantize_device(kwargs.get("quantize", False), torch.device(device))
        loaded = load_origin(spec, device=device)
        return cls(loaded.model, loaded.charset, device=device, family=loaded.family,
                   family_options=loaded.family_options, **kwargs)

    def _logits(self, batch: torch.Tensor) -> torch.Tensor:
        """``Recognizer.forward`` in stages: VGG on oneDNN tensors, sequence layers per line if quantized."""
        model = self.model
        if not self._staged:
            if not self.quantize:
                return self.family.infer_forward(model, batch)
            return torch.cat([self.family.infer_forward(model, batch[i:i + 1]) for i in range(batch.shape[0])])
        if self._onednn:
            features = model.FeatureExtraction(batch.to_mkldnn()).to_dense()
        else:
            features = model.FeatureExtraction(batch)
        features = model.AdaptiveAvgPool(features.permute(0, 3, 1, 2)).squeeze(3)
        if not self.quantize:
            return model.Prediction(model.SequenceModeling(features).contiguous())
        return torch.cat([model.Prediction(model.SequenceModeling(features[i:i + 1]).contiguous())
                          for i in range(features.shape[0])])

    def _read(self, grays: list[np.ndarray], adjust_contrast: float, callback: Optional[Callback] = None,
              stage: str = "predict") -> list[Prediction]:
        widths = [self.family.batch_key(g.shape, self.options) for g in grays]
        order = sorted(range(len(grays)), key=lambda i: widths[i])
        results: list[Optional[Prediction]] = [None] * len(grays)
        was_training, done = self.model.training, 0
        self.model.eval()
        try:
            with torch.inference_mode():
                for width, group in groupby(order, key=lambda i: widths[i]):
                    group = list(group)
                    for start in range(0, len(group), self.batch_size):
                        chunk = group[start:start + self.batch_size]
                        batch = self.family.batch_tensor([grays[i] for i in chunk], self.options,
                                                         adjust_contrast, width)
                        outputs = self._logits(batch.to(self.device))
                        for i, pred in zip(chunk, self.family.decode(outputs, self.charset)):
                            results[i] = pred
                        done += len(chunk)
                        emit(callback, Progress(stage, done, len(grays)))
        finally:
            self.model.train(was_training)
        return results  # type: ignore[return-value]

    def predict(self, images: Sequence[ImageLike], callback: Optional[Callback] = None) -> list[Prediction]:
        """One Prediction per image, in input order; `callback` gets a Progress per batch read."""
        if not images:
            return []
        grays = [to_gray(image) for image in images]
        results = self._read(grays, 0.0, callback)
        if self.reader_compatible:
            low = [i for i, p in enumerate(results) if p.confidence < self.contrast_ths]
            if low:
                second = self._read([grays[i] for i in low], self.adjust_contrast, callback, "retry low contrast")
                for i, retry in zip(low, second):
                    # EasyOCR keeps the first reading only when it is strictly more confident.
                    if not results[i].confidence > retry.confidence:
                        results[i] = retry
        return results
