"""The model-family interface: one object knows how to build, feed, train, read and resize a family.

A *family* is an architecture with its own parameter names, label encoding, loss, decoding and
preprocessing (EasyOCR's VGG-BiLSTM-CTC; deep-text-recognition-benchmark's
``[None|TPS]-[VGG|ResNet]-[None|BiLSTM]-[CTC|Attn]``). Options are a frozen :class:`Config` of the
family (``options_type``); the interface takes and returns plain dicts, and
:meth:`ModelFamily.options` turns a dict into the validated config.

The text-recognition task calls, per batch::

    images = family.batch_tensor(grays, options)                 # [B, C, H, W]
    targets = [family.encode(charset, label) for label in labels]
    outputs = family.train_forward(model, images, targets)
    loss = family.loss(outputs, targets)                         # each=True: one value per sample
    preds = family.decode(family.infer_forward(model, images), charset)

>>> from ocrtrain.families import get_family
>>> family = get_family("easyocr-crnn")
>>> family.img_height(family.default_options())
64
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from ..charset import Charset
from ..config import Config
from ..errors import ModelError
from ..model import describe_state_dict_mismatch

__all__ = ["Prediction", "ModelFamily", "ImageShape", "describe_state_dict_mismatch", "width_at_height"]

#: (height, width) of an original line image, or its width once scaled to the model's height.
ImageShape = Union[Sequence[int], int, float]


@dataclass(frozen=True)
class Prediction:
    """Text read from one line image and the family's confidence for it (0..1)."""

    text: str
    confidence: float


class ModelFamily(abc.ABC):
    """How one architecture family is built, fed, trained, decoded, resized and exported."""

    #: registry name (``ocrtrain.families.get_family(name)``)
    name: ClassVar[str] = ""
    #: other names the registry accepts for this family
    aliases: ClassVar[tuple[str, ...]] = ()
    #: what num_classes adds to the characters, for messages ("with blank")
    special_classes: ClassVar[str] = ""
    #: the frozen Config class of the options
    options_type: ClassVar[type] = Config
    #: whether :func:`ocrtrain.export.export_easyocr` can write an easyocr.Reader bundle (see
    #: :meth:`easyocr_export_problem` for the reason when it cannot)
    exportable_to_easyocr: ClassVar[bool] = False
    #: whether the model splits into :meth:`line_features` (convolutions, frozen by the CPU recipe)
    #: and :meth:`head_forward` (sequence model + classifier), so training can keep each line's
    #: frozen features instead of recomputing them (:mod:`ocrtrain.tasks.feature_cache`)
    caches_features: ClassVar[bool] = False

    # ---- options and building
    def bind(self, options: Optional[Mapping[str, Any]] = None) -> "ModelFamily":
        """This family specialised to `options` where its label scheme depends on them (DTRB's CTC
        or Attn head); families with one scheme return themselves. LoadedModel.family is bound."""
        return self

    def options(self, options: Optional[Mapping[str, Any]] = None) -> Config:
        """The validated options Config of a dict (missing keys take their defaults)."""
        if isinstance(options, self.options_type):
            return options
        return self.options_type.from_dict(dict(options or {}))

    def default_options(self) -> dict:
        return self.options_type().to_dict()

    @abc.abstractmethod
    def build(self, options: Mapping[str, Any], num_classes: int) -> nn.Module:
        """A fresh model (PyTorch default init) with the family's exact parameter names."""

    @abc.abstractmethod
    def options_from_state_dict(self, state_dict: Mapping[str, torch.Tensor],
                                where: str = "state dict") -> tuple[dict, int]:
        """(options, num_classes) read from a state dict's keys and shapes (``module.`` stripped)."""

    @abc.abstractmethod
    def owns(self, model: nn.Module) -> bool:
        """Whether `model` is one this family builds (unwrapped)."""

    def model_options(self, model: nn.Module) -> dict:
        """The options `model` was built with."""
        return self.options(getattr(model, "config")).to_dict()

    @abc.abstractmethod
    def num_classes(self, charset: Charset) -> int:
        """Output classes for `charset` (CTC: + blank; attention: + [GO] and [s])."""

    @abc.abstractmethod
    def head_size(self, model: nn.Module) -> int:
        """Output classes of `model`'s prediction head."""

    def check_state_dict(self, options: Mapping[str, Any], num_classes: int,
                         state_dict: Mapping[str, Any], where: str = "state dict") -> None:
        """Raise ModelError listing missing/unexpected/mis-shaped keys against ``build(options)``."""
        with torch.device("meta"):
            expected = {k: tuple(v.shape) for k, v in self.build(options, num_classes).state_dict().items()}
        parts = describe_state_dict_mismatch(expected, state_dict)
        if parts:
            raise ModelError(
                f"{where} does not fit the {self.name} model {self.options(options).to_dict()} with "
                f"{num_classes} classes: "
                f"{'; '.join(parts)}. Fix: use a model of the same architecture and charset size, "
                "or adapt the charset / sizes to the file")

    def load_weights(self, model: nn.Module, state_dict: Mapping[str, torch.Tensor],
                     where: str = "state dict") -> None:
        """Strict load (``module.`` stripped) with a readable ModelError."""
        from ..model import strip_module_prefix

        state_dict = strip_module_prefix(state_dict)
        self.check_state_dict(self.model_options(model), self.head_size(model), state_dict, where)
        model.load_state_dict(state_dict, strict=True)

    # ---- geometry and preprocessing
    @abc.abstractmethod
    def img_height(self, options: Mapping[str, Any]) -> int:
        """Height in pixels of the model's input lines."""

    def input_channels(self, options: Mapping[str, Any]) -> int:
        return int(self.options(options).input_channel)

    @abc.abstractmethod
    def batch_key(self, shape: Sequence[int], options: Mapping[str, Any]) -> int:
        """Input width a line of original (height, width) `shape` gets: lines with equal keys batch
        together exactly as each would be read alone."""

    @abc.abstractmethod
    def batch_tensor(self, grays: Sequence[np.ndarray], options: Mapping[str, Any],
                     adjust_contrast: float = 0.0, width: Optional[int] = None) -> torch.Tensor:
        """Model input [B, C, H, W] for uint8 HxW grayscale lines (original size, not yet resized).

        `width` forces the padded width where the family pads (it is ignored where it resizes to
        a fixed width); `adjust_contrast` > 0 applies EasyOCR's contrast stretch first.
        """

    # ---- labels
    def normalize_label(self, label: str, options: Mapping[str, Any]) -> str:
        """The label as this family trains on it (DTRB: lower case unless ``sensitive``)."""
        return label

    @abc.abstractmethod
    def encode(self, charset: Charset, label: str) -> list[int]:
        """Class indices of `label` as :meth:`loss` takes them (unknown characters raise ConfigError)."""

    @abc.abstractmethod
    def check_label(self, label: str, image: ImageShape, options: Mapping[str, Any]) -> Optional[str]:
        """None when `label` can be trained from `image` ((height, width) of the original image, or
        its width at model height), else the reason (what is wrong and the fix)."""

    # ---- training and reading
    @abc.abstractmethod
    def train_forward(self, model: nn.Module, images: torch.Tensor, targets: list[list[int]]) -> torch.Tensor:
        """Outputs for the loss (attention: teacher forcing with the targets)."""

    @abc.abstractmethod
    def loss(self, outputs: torch.Tensor, targets: list[list[int]], each: bool = False, fold=None) -> torch.Tensor:
        """Mean loss of the batch, or one value per sample when `each`; `fold` (a
        :class:`ocrtrain.tasks.caseless.CaseFold`, only where :meth:`folds_case`) takes it over
        case-folded classes."""

    def folds_case(self, options: Mapping[str, Any]) -> bool:
        """Whether :meth:`loss` can train case-insensitively (``fold``)."""
        return False

    def line_features(self, model: nn.Module, images: torch.Tensor) -> torch.Tensor:
        """Feature columns [B, T, C] of images (only when :attr:`caches_features`)."""
        raise NotImplementedError(f"the {self.name} family does not split into features and head")

    def head_forward(self, model: nn.Module, features: torch.Tensor) -> torch.Tensor:
        """Outputs from feature columns (only when :attr:`caches_features`)."""
        raise NotImplementedError(f"the {self.name} family does not split into features and head")

    def infer_forward(self, model: nn.Module, images: torch.Tensor) -> torch.Tensor:
        """Outputs for :meth:`decode` (call under eval mode / inference_mode)."""
        return model(images)

    @abc.abstractmethod
    def decode(self, outputs: torch.Tensor, charset: Charset) -> list[Prediction]:
        """Greedy text and confidence per sample."""

    # ---- charset changes and freezing
    @abc.abstractmethod
    def grow_head(self, model: nn.Module, old_charset: Charset, new_charset: Charset) -> None:
        """Resize `model`'s head in place from `old_charset` to `new_charset` (extend or restrict):
        characters in both keep their weights exactly; new ones start from a look-alike or small
        random weights."""

    def freeze_feature_extractor(self, model: nn.Module, flag: bool = True) -> None:
        """Stop (or resume) training the convolutional feature extractor (BatchNorm stats kept)."""
        model.freeze_feature_extractor(flag)

    # ---- export
    def easyocr_export_problem(self, options: Mapping[str, Any]) -> Optional[str]:
        """None when a model with `options` exports to an easyocr.Reader bundle, else why not + what to do."""
        if self.exportable_to_easyocr:
            return None
        return f"the {self.name} family cannot be exported to easyocr.Reader"

    def __repr__(self) -> str:
        return f"<model family {self.name}>"


def width_at_height(image: ImageShape, height: int) -> tuple[Optional[tuple[int, int]], float]:
    """((h, w) or None, width scaled to `height`) of an ImageShape."""
    if isinstance(image, (int, float)):
        return None, float(image)
    h, w = int(image[0]), int(image[1])
    return (h, w), height * w / max(1, h)
