"""The VGG-BiLSTM-CTC text-line recognizer of EasyOCR's generation-2 models (english_g2).

:class:`Recognizer` has EasyOCR's ``vgg_model.Model`` architecture with the *same parameter
names* (``FeatureExtraction.ConvNet.*``, ``SequenceModeling.{0,1}.{rnn,linear}.*``,
``Prediction.*``), so english_g2.pth, deep-text-recognition-benchmark None-VGG-BiLSTM-CTC
checkpoints and our exports share one state-dict layout (minus DataParallel's ``module.``).

>>> model = Recognizer(ModelConfig(), num_class=97)
>>> model(torch.zeros(2, 1, 64, 128)).shape
torch.Size([2, 31, 97])
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional

import torch
from torch import nn

from .config import Config, check
from .errors import ModelError
from .parallel_rnn import bidirectional_lstm, can_split

__all__ = [
    "ModelConfig",
    "Recognizer",
    "strip_module_prefix",
    "infer_architecture",
    "check_state_dict",
    "load_weights",
    "init_weights",
]


@dataclass(frozen=True)
class ModelConfig(Config):
    """Sizes of the VGG-BiLSTM-CTC recognizer (english_g2: 1/256/256, images 64 px high)."""

    input_channel: int = field(default=1, metadata={"help": "image channels fed to the network (grayscale: 1)"})
    output_channel: int = field(default=256, metadata={"help": "channels of the last VGG convolution"})
    hidden_size: int = field(default=256, metadata={"help": "hidden units of each BiLSTM direction"})
    img_height: int = field(default=64, metadata={"help": "height in pixels of the model's input lines"})

    def validate(self) -> None:
        check(self.input_channel == 1,
              f"input_channel must be 1 (ocrtrain feeds grayscale lines, as EasyOCR does), got {self.input_channel}")
        check(self.output_channel >= 8 and self.output_channel % 8 == 0,
              f"output_channel must be a positive multiple of 8 (VGG uses /8, /4, /2 of it), got {self.output_channel}")
        check(self.hidden_size > 0, f"hidden_size must be positive, got {self.hidden_size}")
        # Four poolings halve the height to H/16 and the last 2x2 convolution takes one more row.
        check(self.img_height >= 32,
              f"img_height must be at least 32 so the VGG leaves one feature row, got {self.img_height}")


class _VGGFeatures(nn.Module):
    """EasyOCR's VGG_FeatureExtractor (parameter names ``ConvNet.<index>.*``)."""

    def __init__(self, input_channel: int, output_channel: int):
        super().__init__()
        c = [output_channel // 8, output_channel // 4, output_channel // 2, output_channel]
        self.ConvNet = nn.Sequential(
            nn.Conv2d(input_channel, c[0], 3, 1, 1), nn.ReLU(True),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(c[0], c[1], 3, 1, 1), nn.ReLU(True),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(c[1], c[2], 3, 1, 1), nn.ReLU(True),
            nn.Conv2d(c[2], c[2], 3, 1, 1), nn.ReLU(True),
            nn.MaxPool2d((2, 1), (2, 1)),
            nn.Conv2d(c[2], c[3], 3, 1, 1, bias=False),
            nn.BatchNorm2d(c[3]), nn.ReLU(True),
            nn.Conv2d(c[3], c[3], 3, 1, 1, bias=False),
            nn.BatchNorm2d(c[3]), nn.ReLU(True),
            nn.MaxPool2d((2, 1), (2, 1)),
            nn.Conv2d(c[3], c[3], 2, 1, 0), nn.ReLU(True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ConvNet(x)


class _BiLSTM(nn.Module):
    """EasyOCR's BidirectionalLSTM (``rnn`` + ``linear``)."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int):
        super().__init__()
        self.rnn = nn.LSTM(input_size, hidden_size, bidirectional=True, batch_first=True)
        self.linear = nn.Linear(hidden_size * 2, output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_cuda:
            # cuDNN wants one contiguous weight chunk; after load_state_dict it may not be.
            self.rnn.flatten_parameters()
        if can_split(self.rnn, x):  # training on a CPU: the two directions side by side
            return self.linear(bidirectional_lstm(self.rnn, x))
        recurrent, _ = self.rnn(x)
        return self.linear(recurrent)


class FreezableFeatures:
    """For models whose convolutional part is ``self.FeatureExtraction``: freeze it on demand, with
    its BatchNorm layers kept in eval mode (frozen weights with BatchNorm in train mode would still
    drift the running statistics). Mix in before ``nn.Module``."""

    _features_frozen = False

    def freeze_feature_extractor(self, flag: bool = True) -> None:
        """Stop (or resume) training FeatureExtraction; frozen BatchNorm layers also keep their statistics."""
        self._features_frozen = bool(flag)
        for p in self.FeatureExtraction.parameters():
            p.requires_grad_(not flag)
        self.train(self.training)

    def thaw_last_convs(self, n: int) -> list[str]:
        """With the features frozen, train again the last `n` convolutions (and the BatchNorm
        affine weights after them; BatchNorm statistics stay frozen). Returns their module names."""
        convs = [name for name, m in self.FeatureExtraction.named_modules() if isinstance(m, nn.Conv2d)]
        if n <= 0:
            return []
        if n > len(convs):
            from .errors import ConfigError

            raise ConfigError(f"train_last_convs {n} exceeds the {len(convs)} convolutions of this model: use "
                              f"at most {len(convs)}, or cpu_recipe false to train them all")
        modules = dict(self.FeatureExtraction.named_modules())
        first = list(modules).index(convs[-n])
        thawed = [name for name in list(modules)[first:]
                  if isinstance(modules[name], (nn.Conv2d, nn.BatchNorm2d))]
        for name in thawed:
            for p in modules[name].parameters():
                p.requires_grad_(True)
        return thawed

    def train(self, mode: bool = True):
        super().train(mode)
        if self._features_frozen:
            self.FeatureExtraction.eval()
        return self


class Recognizer(FreezableFeatures, nn.Module):
    """VGG-BiLSTM-CTC line recognizer: images [B,1,H,W] in [-1,1] -> logits [B,T,num_class].

    ``T = W // 4 - 1`` (see :meth:`sequence_length`); class 0 is the CTC blank.
    """

    def __init__(self, config: ModelConfig, num_class: int):
        super().__init__()
        if num_class < 2:
            raise ModelError(f"num_class must be at least 2 (blank + one character), got {num_class}")
        self.config = config
        self.FeatureExtraction = _VGGFeatures(config.input_channel, config.output_channel)
        self.AdaptiveAvgPool = nn.AdaptiveAvgPool2d((None, 1))
        self.SequenceModeling = nn.Sequential(
            _BiLSTM(config.output_channel, config.hidden_size, config.hidden_size),
            _BiLSTM(config.hidden_size, config.hidden_size, config.hidden_size),
        )
        self.Prediction = nn.Linear(config.hidden_size, num_class)

    @property
    def num_class(self) -> int:
        return self.Prediction.out_features

    @staticmethod
    def sequence_length(width: int) -> int:
        """Number of CTC time steps for an input `width` pixels wide (two 2x2 poolings, one 2x2 conv)."""
        return width // 2 // 2 - 1

    def forward(self, images: torch.Tensor, text: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Logits [B, T, num_class]; `text` is ignored (kept for EasyOCR's call signature)."""
        return self.head(self.features(images))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The convolutional part: images [B,1,H,W] -> feature columns [B, T, output_channel]."""
        features = self.FeatureExtraction(images)
        # [B, C, H, W] -> [B, W, C, H], then average the remaining rows away.
        return self.AdaptiveAvgPool(features.permute(0, 3, 1, 2)).squeeze(3)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        """The BiLSTM and classifier: feature columns [B, T, C] -> logits [B, T, num_class]."""
        contextual = self.SequenceModeling(features)
        return self.Prediction(contextual.contiguous())



def strip_module_prefix(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Remove DataParallel's ``module.`` prefix when every key has it (EasyOCR, DTRB files)."""
    keys = list(state_dict)
    if keys and all(k.startswith("module.") for k in keys):
        return {k[len("module."):]: v for k, v in state_dict.items()}
    return dict(state_dict)


def _shape(sd: Mapping[str, torch.Tensor], key: str) -> tuple[int, ...]:
    return tuple(sd[key].shape)


def infer_architecture(state_dict: Mapping[str, torch.Tensor], where: str = "state dict") -> tuple[ModelConfig, int]:
    """(ModelConfig, num_class) of a VGG-BiLSTM-CTC state dict (``module.`` already stripped).

    Raises ModelError naming what was found when the file is of another family
    (TPS transformation, ResNet/RCNN features, attention head, quantized weights...).
    """
    keys = list(state_dict)
    if not keys or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise ModelError(f"{where} is not a tensor state dict: expected parameter names like "
                         "'FeatureExtraction.ConvNet.0.weight'")
    hints = []
    if any(k.startswith("Transformation.") for k in keys):
        hints.append("a TPS transformation stage")
    if any(k.startswith("Prediction.") and "attention" in k for k in keys):
        hints.append("an attention (Attn) prediction head")
    if any(".conv0_1." in k or ".layer1." in k for k in keys):
        hints.append("a ResNet feature extractor")
    if any("GRCL" in k or ".wgf_u." in k for k in keys):
        hints.append("an RCNN feature extractor")
    if any("_packed_params" in k for k in keys):
        hints.append("quantized weights")
    needed = ["FeatureExtraction.ConvNet.0.weight", "FeatureExtraction.ConvNet.18.weight",
              "SequenceModeling.0.rnn.weight_hh_l0", "Prediction.weight"]
    missing = [k for k in needed if k not in state_dict]
    if hints or missing:
        found = ", ".join(hints) if hints else f"keys such as {keys[:3]} but not {missing[:2]}"
        raise ModelError(
            f"{where} is not a VGG-BiLSTM-CTC recognizer (found {found}): ocrtrain fine-tunes "
            "EasyOCR generation-2 / DTRB None-VGG-BiLSTM-CTC models only; start from english_g2 "
            "or scratch instead"
        )
    channels = _shape(state_dict, "FeatureExtraction.ConvNet.0.weight")[1]
    if channels != 1:
        raise ModelError(f"{where} expects {channels}-channel (colour) images: ocrtrain feeds grayscale "
                         "lines like EasyOCR; use a model trained on grayscale (input_channel 1)")
    config = ModelConfig(
        input_channel=channels,
        output_channel=_shape(state_dict, "FeatureExtraction.ConvNet.18.weight")[0],
        hidden_size=_shape(state_dict, "SequenceModeling.0.rnn.weight_hh_l0")[1],
    )
    return config, _shape(state_dict, "Prediction.weight")[0]


def describe_state_dict_mismatch(expected: Mapping[str, tuple], state_dict: Mapping[str, object]) -> list[str]:
    """Short descriptions of missing / unexpected / mis-shaped keys (empty when they fit)."""
    found = {k: tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
             for k, v in state_dict.items()}
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    shapes = [f"{k}: file {found[k]} vs model {expected[k]}" for k in expected
              if k in found and found[k] != expected[k]]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
    if shapes:
        parts.append(f"{len(shapes)} with other shapes (e.g. {'; '.join(shapes[:3])})")
    return parts


def check_state_dict(config: ModelConfig, num_class: int, state_dict: Mapping[str, torch.Tensor],
                     where: str = "state dict") -> None:
    """Raise ModelError listing a few missing/unexpected/mis-shaped keys, if any."""
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in Recognizer(config, num_class).state_dict().items()}
    parts = describe_state_dict_mismatch(expected, state_dict)
    if parts:
        raise ModelError(
            f"{where} does not fit Recognizer({config.to_dict()}, num_class={num_class}): "
            f"{'; '.join(parts)}. Fix: use a model of the same architecture and charset size, "
            "or adapt the charset / sizes to the file"
        )


def load_weights(model: Recognizer, state_dict: Mapping[str, torch.Tensor], where: str = "state dict") -> None:
    """Strict load of `state_dict` (``module.`` stripped) into `model`, with a readable error."""
    state_dict = strip_module_prefix(state_dict)
    check_state_dict(model.config, model.num_class, state_dict, where)
    model.load_state_dict(state_dict, strict=True)


def init_weights(model: nn.Module, seed: Optional[int] = None) -> nn.Module:
    """Fresh weights as deep-text-recognition-benchmark initializes them (Kaiming, zero bias, BN 1).

    As in DTRB, a TPS localization head (``localization_fc2``) keeps its identity initialization.
    """
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    for name, param in model.named_parameters():
        if "localization_fc2" in name:
            continue
        with torch.no_grad():
            if "bias" in name:
                param.zero_()
            elif "weight" in name:
                if param.dim() < 2:  # BatchNorm scale
                    param.fill_(1.0)
                else:
                    nn.init.kaiming_normal_(param, generator=generator)
    return model
