"""deep-text-recognition-benchmark's ``Model(opt)``: options and the four-stage network.

:class:`DtrbOptions` holds DTRB's own option names (``--Transformation TPS --FeatureExtraction
ResNet --SequenceModeling BiLSTM --Prediction Attn --imgH 32 --imgW 100 ...``); ``character``
is not an option here but the run's charset. :class:`DtrbModel` has DTRB's stage attributes, so
its state dict keys are DTRB's (``Transformation.LocalizationNetwork...``,
``FeatureExtraction.ConvNet...``, ``SequenceModeling.0.rnn...``, ``Prediction.attention_cell...``).

>>> import torch
>>> opts = DtrbOptions(Transformation="None", FeatureExtraction="VGG", Prediction="CTC")
>>> DtrbModel(opts, num_class=37).eval()(torch.zeros(1, 1, 32, 100)).shape
torch.Size([1, 24, 37])
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

import torch
from torch import nn

from ..config import Config, check
from ..errors import ModelError
from ..model import FreezableFeatures, _BiLSTM, _VGGFeatures
from .dtrb_modules import Attention, ResNetFeatures, TpsTransformer

__all__ = ["DtrbOptions", "DtrbModel", "sequence_length"]


@dataclass(frozen=True)
class DtrbOptions(Config):
    """DTRB's model and data options (defaults: the TPS-ResNet-BiLSTM-Attn case-insensitive model)."""

    Transformation: Literal["None", "TPS"] = field(default="TPS", metadata={"help": "None or TPS"})
    FeatureExtraction: Literal["VGG", "ResNet"] = field(default="ResNet", metadata={"help": "VGG or ResNet"})
    SequenceModeling: Literal["None", "BiLSTM"] = field(default="BiLSTM", metadata={"help": "None or BiLSTM"})
    Prediction: Literal["CTC", "Attn"] = field(default="Attn", metadata={"help": "CTC or Attn"})
    num_fiducial: int = field(default=20, metadata={"help": "fiducial points of the TPS transformation"})
    imgH: int = field(default=32, metadata={"help": "input image height"})
    imgW: int = field(default=100, metadata={"help": "input image width (lines are resized to it)"})
    input_channel: int = field(default=1, metadata={"help": "image channels (grayscale: 1)"})
    output_channel: int = field(default=512, metadata={"help": "channels of the feature extractor"})
    hidden_size: int = field(default=256, metadata={"help": "LSTM hidden units"})
    batch_max_length: int = field(default=25, metadata={"help": "longest label in characters"})
    sensitive: bool = field(default=False, metadata={"help": "case-sensitive labels (else lower-cased)"})
    PAD: bool = field(default=False, metadata={"help": "keep the aspect ratio and pad instead of stretching"})

    def validate(self) -> None:
        check(self.input_channel == 1, f"input_channel must be 1 (ocrtrain feeds grayscale lines), got "
              f"{self.input_channel}: use a model trained without --rgb")
        check(self.output_channel >= 16 and self.output_channel % 16 == 0,
              f"output_channel must be a positive multiple of 16 (ResNet uses /16 of it), got {self.output_channel}")
        check(self.hidden_size > 0, f"hidden_size must be positive, got {self.hidden_size}")
        check(self.imgH >= 32, f"imgH must be at least 32 so the features keep one row, got {self.imgH}")
        check(self.imgW >= 16, f"imgW must be at least 16, got {self.imgW}")
        check(self.num_fiducial >= 4 and self.num_fiducial % 2 == 0,
              f"num_fiducial must be even and at least 4, got {self.num_fiducial}")
        check(self.batch_max_length >= 1, f"batch_max_length must be at least 1, got {self.batch_max_length}")

    @property
    def img_height(self) -> int:
        return self.imgH

    @property
    def arch(self) -> str:
        """DTRB's name of the combination, e.g. ``TPS-ResNet-BiLSTM-Attn``."""
        return "-".join([self.Transformation, self.FeatureExtraction, self.SequenceModeling, self.Prediction])


class DtrbModel(FreezableFeatures, nn.Module):
    """DTRB's four-stage recognizer: images [B,1,imgH,imgW] in [-1,1] -> logits [B, T, num_class].

    ``forward(images, text, is_train)``: CTC ignores `text`; attention uses it for teacher forcing
    when `is_train` (``text[:, 0]`` is [GO]), else decodes ``batch_max_length + 1`` greedy steps.
    """

    def __init__(self, config: DtrbOptions, num_class: int):
        super().__init__()
        if num_class < 2:
            raise ModelError(f"num_class must be at least 2, got {num_class}")
        self.config = config
        if config.Transformation == "TPS":
            self.Transformation = TpsTransformer(config.num_fiducial, (config.imgH, config.imgW), config.input_channel)
        if config.FeatureExtraction == "VGG":
            self.FeatureExtraction = _VGGFeatures(config.input_channel, config.output_channel)
        else:
            self.FeatureExtraction = ResNetFeatures(config.input_channel, config.output_channel)
        self.AdaptiveAvgPool = nn.AdaptiveAvgPool2d((None, 1))
        sequence_out = config.output_channel
        if config.SequenceModeling == "BiLSTM":
            self.SequenceModeling = nn.Sequential(
                _BiLSTM(config.output_channel, config.hidden_size, config.hidden_size),
                _BiLSTM(config.hidden_size, config.hidden_size, config.hidden_size))
            sequence_out = config.hidden_size
        if config.Prediction == "CTC":
            self.Prediction = nn.Linear(sequence_out, num_class)
        else:
            self.Prediction = Attention(sequence_out, config.hidden_size, num_class)

    @property
    def num_class(self) -> int:
        head = self.Prediction
        return head.out_features if isinstance(head, nn.Linear) else head.num_classes

    def forward(self, images: torch.Tensor, text: Optional[torch.Tensor] = None, is_train: bool = True) -> torch.Tensor:
        if self.config.Transformation == "TPS":
            images = self.Transformation(images)
        features = self.FeatureExtraction(images)
        features = self.AdaptiveAvgPool(features.permute(0, 3, 1, 2)).squeeze(3)
        if self.config.SequenceModeling == "BiLSTM":
            features = self.SequenceModeling(features)
        if self.config.Prediction == "CTC":
            return self.Prediction(features.contiguous())
        return self.Prediction(features.contiguous(), text, is_train, batch_max_length=self.config.batch_max_length)

    def sequence_length(self) -> int:
        """Time steps the features give for an imgH x imgW input (the CTC output length)."""
        return sequence_length(self.config)



def sequence_length(config: DtrbOptions) -> int:
    """Feature columns (CTC time steps) for an imgH x imgW input: VGG ``imgW // 4 - 1``, ResNet ``imgW // 4 + 1``."""
    with torch.device("meta"):
        if config.FeatureExtraction == "VGG":
            features = _VGGFeatures(config.input_channel, config.output_channel)
        else:
            features = ResNetFeatures(config.input_channel, config.output_channel)
        return int(features(torch.zeros(1, config.input_channel, config.imgH, config.imgW)).shape[3])
