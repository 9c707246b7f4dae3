"""The ``dtrb`` family: deep-text-recognition-benchmark's ``[None|TPS]-[VGG|ResNet]-[None|BiLSTM]-[CTC|Attn]``.

As DTRB does it: lines are resized to ``imgH x imgW`` (32 x 100; ``PAD`` keeps the aspect ratio and
pads right by repeating the last column), scaled to [-1, 1]; labels are lower-cased unless
``sensitive``; CTC classes are ``[blank] + characters``, attention classes ``[GO], [s] +
characters`` (AttnLabelConverter) with cross-entropy ignoring [GO] and greedy decoding until [s];
confidence is the product of the steps' max probabilities (demo.py).

The label scheme depends on ``Prediction``, so the methods without options (``encode``, ``loss``,
``decode``, ``num_classes``) need a *bound* family: ``get_family("dtrb", options)`` or the
``family`` of a :class:`ocrtrain.origins.LoadedModel`.

>>> family = DtrbFamily().bind({"Prediction": "Attn"})
>>> from ocrtrain.charset import Charset
>>> family.encode(Charset("abc"), "cab"), family.num_classes(Charset("abc"))
([4, 2, 3, 1], 5)
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from ..charset import Charset
from ..errors import ConfigError
from ..preprocess import adjust_contrast_grey
from .base import ImageShape, ModelFamily, Prediction
from .ctc import ctc_loss, ctc_steps_needed, decode_ctc_product
from .dtrb_model import DtrbModel, DtrbOptions, sequence_length
from .dtrb_modules import EOS, GO
from .dtrb_state import options_from_state_dict
from .heads import resize_input_columns, resize_linear_rows

__all__ = ["DtrbFamily"]


def _normalized(image: Image.Image) -> torch.Tensor:
    """torchvision ToTensor + sub_(0.5).div_(0.5) of a PIL 'L' image, bit for bit: [1, H, W]."""
    return torch.from_numpy(np.array(image, dtype=np.uint8)).to(torch.float32).div(255).sub(0.5).div(0.5).unsqueeze(0)


def _line(gray: np.ndarray, config: DtrbOptions, adjust_contrast: float) -> torch.Tensor:
    if adjust_contrast > 0:
        gray = adjust_contrast_grey(gray, target=adjust_contrast)
    image = Image.fromarray(gray)
    height, width = config.imgH, config.imgW
    if not config.PAD:  # DTRB's ResizeNormalize: stretch to imgW x imgH
        return _normalized(image.resize((width, height), Image.Resampling.BICUBIC))
    # DTRB's keep_ratio_with_pad: resize to height, at most imgW wide, then NormalizePAD.
    resized_w = min(width, math.ceil(height * image.width / float(image.height)))
    pixels = _normalized(image.resize((resized_w, height), Image.Resampling.BICUBIC))
    padded = torch.zeros(1, height, width, dtype=torch.float32)
    padded[:, :, :resized_w] = pixels
    if resized_w < width:
        padded[:, :, resized_w:] = pixels[:, :, resized_w - 1:resized_w].expand(1, height, width - resized_w)
    return padded


def _attn_text(targets: list[list[int]], device: torch.device) -> torch.Tensor:
    """[B, L + 1]: [GO], then each target (ending in [s]), padded with [GO] (DTRB's batch_text)."""
    length = max(len(t) for t in targets)
    text = torch.full((len(targets), length + 1), GO, dtype=torch.long)
    for i, t in enumerate(targets):
        text[i, 1:1 + len(t)] = torch.tensor(t, dtype=torch.long)
    return text.to(device)


class DtrbFamily(ModelFamily):
    """deep-text-recognition-benchmark models with DTRB's parameter names (options: :class:`DtrbOptions`)."""

    name = "dtrb"
    aliases = ("deep-text-recognition-benchmark",)
    options_type = DtrbOptions

    def __init__(self, bound: Optional[DtrbOptions] = None):
        self.bound = bound

    def bind(self, options: Optional[Mapping[str, Any]] = None) -> "DtrbFamily":
        return DtrbFamily(self.options(options)) if options is not None else self

    def _attn(self, options: Optional[Mapping[str, Any]] = None) -> bool:
        if options is not None:
            return self.options(options).Prediction == "Attn"
        if self.bound is None:
            raise ConfigError("the dtrb family's labels, loss and decoding depend on its Prediction option (CTC or "
                              "Attn): use get_family('dtrb', options) or the family of a loaded model")
        return self.bound.Prediction == "Attn"

    @property
    def special_classes(self) -> str:  # type: ignore[override]
        if self.bound is None:
            return "with blank (CTC) or [GO] and [s] (Attn)"
        return "with [GO] and [s]" if self._attn() else "with blank"

    @property
    def exportable_to_easyocr(self) -> bool:  # type: ignore[override]
        return self.bound is not None and self.easyocr_export_problem(self.bound) is None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DtrbFamily) and other.bound == self.bound

    def __hash__(self) -> int:
        return hash((self.name, self.bound))

    # ---- building
    def build(self, options: Mapping[str, Any], num_classes: int) -> DtrbModel:
        return DtrbModel(self.options(options), num_classes)

    def options_from_state_dict(self, state_dict: Mapping[str, torch.Tensor],
                                where: str = "state dict") -> tuple[dict, int]:
        return options_from_state_dict(state_dict, where)

    def owns(self, model: nn.Module) -> bool:
        return isinstance(model, DtrbModel)

    def num_classes(self, charset: Charset) -> int:
        return len(charset) + (2 if self._attn() else 1)

    def head_size(self, model: nn.Module) -> int:
        return model.num_class

    # ---- geometry and preprocessing
    def img_height(self, options: Mapping[str, Any]) -> int:
        return int(self.options(options).imgH)

    def batch_key(self, shape: Sequence[int], options: Mapping[str, Any]) -> int:
        return int(self.options(options).imgW)

    def batch_tensor(self, grays: Sequence[np.ndarray], options: Mapping[str, Any],
                     adjust_contrast: float = 0.0, width: Optional[int] = None) -> torch.Tensor:
        if not grays:
            raise ConfigError("no images to batch: pass at least one line image")
        config = self.options(options)
        return torch.stack([_line(g, config, adjust_contrast) for g in grays])

    # ---- labels
    def normalize_label(self, label: str, options: Mapping[str, Any]) -> str:
        return label if self.options(options).sensitive else label.lower()

    def encode(self, charset: Charset, label: str) -> list[int]:
        indices = charset.encode(label)
        if not self._attn():
            return indices
        return [i + 1 for i in indices] + [EOS]

    def check_label(self, label: str, image: ImageShape, options: Mapping[str, Any]) -> Optional[str]:
        config = self.options(options)
        if len(label) > config.batch_max_length:
            return (f"label has {len(label)} characters, more than batch_max_length {config.batch_max_length} of "
                    f"the {config.arch} model: split the line, or raise batch_max_length")
        if config.Prediction == "CTC":
            steps, needed = sequence_length(config), ctc_steps_needed(label)
            if needed > steps:
                return (f"label needs {needed} output steps (CTC steps) but a {config.imgW} px wide input gives "
                        f"only {steps}: shorten the line, or use a model with a larger imgW")
        return None

    # ---- training and reading
    def train_forward(self, model: nn.Module, images: torch.Tensor, targets: list[list[int]]) -> torch.Tensor:
        if not self._attn():
            return model(images)
        return model(images, _attn_text(targets, images.device)[:, :-1], is_train=True)

    def loss(self, outputs: torch.Tensor, targets: list[list[int]], each: bool = False, fold=None) -> torch.Tensor:
        """CTC: as ``easyocr-crnn``. Attn: cross-entropy ignoring [GO] (DTRB's), the mean over the
        batch's tokens; with `each`, each sample's summed token losses (like CTC's per-sample NLL).
        `fold` (case-insensitive lines) applies to CTC only (see :meth:`folds_case`)."""
        if not self._attn():
            return ctc_loss(outputs, targets, each, fold)
        gold = _attn_text(targets, outputs.device)[:, 1:]
        steps = outputs.shape[1]
        if gold.shape[1] < steps:  # greedy outputs run batch_max_length + 1 steps
            gold = F.pad(gold, (0, steps - gold.shape[1]), value=GO)
        gold = gold[:, :steps]
        logits = outputs.float().reshape(-1, outputs.shape[-1])
        if not each:
            return F.cross_entropy(logits, gold.reshape(-1), ignore_index=GO)
        per_token = F.cross_entropy(logits, gold.reshape(-1), ignore_index=GO, reduction="none")
        return per_token.view(gold.shape).sum(dim=1)

    def folds_case(self, options: Mapping[str, Any]) -> bool:
        return not self._attn(options)

    def infer_forward(self, model: nn.Module, images: torch.Tensor) -> torch.Tensor:
        if not self._attn():
            return model(images)
        return model(images, None, is_train=False)

    def decode(self, outputs: torch.Tensor, charset: Charset) -> list[Prediction]:
        if not self._attn():
            return decode_ctc_product(outputs, charset)
        values, indices = torch.softmax(outputs.detach().float(), dim=2).max(dim=2)
        out = []
        for probs, best in zip(values.cpu().tolist(), indices.cpu().tolist()):
            end = best.index(EOS) if EOS in best else len(best)
            text = "".join(charset.chars[k - 2] for k in best[:end] if k >= 2)
            kept = probs[:end] if end else probs[:1]
            out.append(Prediction(text, float(np.prod(kept))))
        return out

    # ---- charset changes
    def grow_head(self, model: nn.Module, old_charset: Charset, new_charset: Charset) -> None:
        if isinstance(model.Prediction, nn.Linear):
            model.Prediction = resize_linear_rows(model.Prediction, old_charset, new_charset, offset=1)
            return
        head = model.Prediction
        old_classes = head.num_classes
        head.generator = resize_linear_rows(head.generator, old_charset, new_charset, offset=2)
        rnn = head.attention_cell.rnn
        first = rnn.input_size - old_classes
        grown = nn.LSTMCell(first + len(new_charset) + 2, rnn.hidden_size, device=rnn.weight_ih.device,
                            dtype=rnn.weight_ih.dtype)
        with torch.no_grad():
            grown.weight_ih.copy_(resize_input_columns(rnn.weight_ih, first, old_charset, new_charset, 2))
            grown.weight_hh.copy_(rnn.weight_hh)
            grown.bias_ih.copy_(rnn.bias_ih)
            grown.bias_hh.copy_(rnn.bias_hh)
        head.attention_cell.rnn = grown

    # ---- export
    def easyocr_export_problem(self, options: Mapping[str, Any]) -> Optional[str]:
        config = self.options(options)
        if config.Prediction == "Attn":
            return (f"easyocr.Reader loads only CTC heads (its recognizer decodes CTC output), and this is a DTRB "
                    f"{config.arch} attention model: export it for DTRB's own demo.py / test.py instead "
                    "(ocrtrain.export.export_dtrb)")
        if config.arch != "None-VGG-BiLSTM-CTC":
            return (f"ocrtrain's EasyOCR bundle carries the VGG-BiLSTM-CTC network only, and this is a DTRB "
                    f"{config.arch} model: export it for DTRB's demo.py / test.py instead "
                    "(ocrtrain.export.export_dtrb)")
        return None

    def __repr__(self) -> str:
        return f"<model family dtrb {self.bound.arch}>" if self.bound is not None else "<model family dtrb>"
