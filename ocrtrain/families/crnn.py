"""The ``easyocr-crnn`` family: EasyOCR generation-2's VGG-BiLSTM-CTC (english_g2 and friends).

Wraps :class:`ocrtrain.model.Recognizer` (EasyOCR's parameter names) and
:mod:`ocrtrain.preprocess` (pixel-identical to ``easyocr.Reader``): lines keep their aspect ratio
at height ``img_height`` and are padded to ``ceil(aspect) * img_height``; CTC loss and greedy
decoding with EasyOCR's confidence.

>>> family = CrnnFamily()
>>> model = family.build(family.default_options(), num_classes=97)
>>> family.check_label("a" * 10, (64, 64), family.default_options())[:24]
'label needs 19 output st'
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import numpy as np
import torch
from torch import nn

from ..charset import Charset
from ..model import ModelConfig, Recognizer, infer_architecture
from ..originspec import ENGLISH_G2
from ..preprocess import batch_tensor, padded_width, resize_to_height
from .base import ImageShape, ModelFamily, Prediction, width_at_height
from .ctc import ctc_loss, ctc_steps_needed, decode_logits
from .heads import resize_linear_rows

__all__ = ["CrnnFamily"]


class CrnnFamily(ModelFamily):
    """VGG-BiLSTM-CTC with EasyOCR's names, inputs and decoding (options: :class:`ModelConfig`)."""

    name = "easyocr-crnn"
    aliases = (ENGLISH_G2, "vgg-bilstm-ctc", "crnn")
    options_type = ModelConfig
    special_classes = "with blank"
    exportable_to_easyocr = True
    caches_features = True

    def build(self, options: Mapping[str, Any], num_classes: int) -> Recognizer:
        return Recognizer(self.options(options), num_classes)

    def options_from_state_dict(self, state_dict: Mapping[str, torch.Tensor],
                                where: str = "state dict") -> tuple[dict, int]:
        config, num_class = infer_architecture(state_dict, where)
        return config.to_dict(), num_class

    def owns(self, model: nn.Module) -> bool:
        return isinstance(model, Recognizer)

    def num_classes(self, charset: Charset) -> int:
        return charset.num_classes

    def head_size(self, model: nn.Module) -> int:
        return model.Prediction.out_features

    def img_height(self, options: Mapping[str, Any]) -> int:
        return int(self.options(options).img_height)

    def batch_key(self, shape: Sequence[int], options: Mapping[str, Any]) -> int:
        return padded_width(shape, self.img_height(options))

    def batch_tensor(self, grays: Sequence[np.ndarray], options: Mapping[str, Any],
                     adjust_contrast: float = 0.0, width: Optional[int] = None) -> torch.Tensor:
        height = self.img_height(options)
        return batch_tensor([resize_to_height(g, height) for g in grays], height, adjust_contrast, width)

    def encode(self, charset: Charset, label: str) -> list[int]:
        return charset.encode(label)

    def check_label(self, label: str, image: ImageShape, options: Mapping[str, Any]) -> Optional[str]:
        height = self.img_height(options)
        shape, scaled = width_at_height(image, height)
        # Training pads every line to EasyOCR's width, ceil(aspect) * height (tall crops included).
        width = padded_width(shape, height) if shape else max(1, -(-int(np.ceil(scaled)) // height)) * height
        steps = Recognizer.sequence_length(width)
        needed = ctc_steps_needed(label)
        if needed <= steps:
            return None
        size = f"{shape[1]}x{shape[0]} image" if shape else f"image {scaled:.0f} px wide at height {height}"
        return (f"label needs {needed} output steps but the {size} gives only {steps} at height {height} "
                "(CTC steps: one per character plus a blank between equal neighbours): crop the image to "
                "the text, split the line, or fix the label")

    def train_forward(self, model: nn.Module, images: torch.Tensor, targets: list[list[int]]) -> torch.Tensor:
        return model(images)

    def line_features(self, model: nn.Module, images: torch.Tensor) -> torch.Tensor:
        return model.features(images)

    def head_forward(self, model: nn.Module, features: torch.Tensor) -> torch.Tensor:
        return model.head(features)

    def loss(self, outputs: torch.Tensor, targets: list[list[int]], each: bool = False, fold=None) -> torch.Tensor:
        return ctc_loss(outputs, targets, each, fold)

    def folds_case(self, options: Mapping[str, Any]) -> bool:
        return True

    def decode(self, outputs: torch.Tensor, charset: Charset) -> list[Prediction]:
        return decode_logits(outputs, charset)

    def grow_head(self, model: nn.Module, old_charset: Charset, new_charset: Charset) -> None:
        model.Prediction = resize_linear_rows(model.Prediction, old_charset, new_charset, offset=1)

    def check_state_dict(self, options: Mapping[str, Any], num_classes: int,
                         state_dict: Mapping[str, Any], where: str = "state dict") -> None:
        from ..model import check_state_dict

        check_state_dict(self.options(options), num_classes, state_dict, where)
