"""An int8 copy of a frozen convolutional feature extractor, for the training lines of the feature cache.

With the CPU recipe the VGG only computes features the head learns from; it never trains. Its
convolutions quantized to 8 bits (PyTorch's x86 engine: per-channel weights, activations calibrated
on the run's first lines) ran 1.6x faster than the float32 channels-last copy on this 2-core CPU
(256 receipt lines), their features 2.2% (median relative norm; 6.7% at most) from the float ones
(`python -m bench.int8_features --data RECEIPTS`). The
head then learns from slightly rounded features and reads exact ones: the model that is validated,
exported and loaded by ``easyocr.Reader`` is the float model, so validation figures are those of
the real model. A lever (``feature_precision int8``), measured in bench/first_run.

>>> # fast = int8_copy(model, [line0, line1, ...])   # lines [1, 1, H, W]; model.FeatureExtraction quantized
"""
from __future__ import annotations

import copy
import warnings
from typing import Sequence

import torch
from torch import nn

from ..errors import ConfigError

__all__ = ["int8_copy"]


def int8_copy(model: nn.Module, lines: Sequence[torch.Tensor]) -> nn.Module:
    """A copy of `model` in eval mode whose ``FeatureExtraction`` runs in int8, calibrated on `lines`
    (each [1, C, H, W], any widths); the original is untouched."""
    if not isinstance(getattr(model, "FeatureExtraction", None), nn.Module):
        raise ConfigError(f"feature_precision int8 quantizes a model's FeatureExtraction, which "
                          f"{type(model).__name__} lacks: use feature_precision float32")
    if not lines:
        raise ConfigError("feature_precision int8 needs training lines to calibrate on: the run has none")
    with warnings.catch_warnings():  # torch marks torch.ao.quantization deprecated in favour of torchao
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*deprecat.*")  # its UserWarnings/FutureWarnings say so
        try:
            from torch.ao.quantization import get_default_qconfig_mapping
            from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
        except ImportError as exc:
            raise ConfigError(f"feature_precision int8 needs torch.ao.quantization, which torch "
                              f"{torch.__version__} lacks ({exc}): use feature_precision float32") from None
        engine = "x86" if "x86" in torch.backends.quantized.supported_engines else "fbgemm"
        if engine not in torch.backends.quantized.supported_engines:
            raise ConfigError(f"feature_precision int8 needs PyTorch's x86 or fbgemm quantized engine; this "
                              f"machine has {torch.backends.quantized.supported_engines}: use float32")
        torch.backends.quantized.engine = engine
        out = copy.deepcopy(model).eval()
        features = out.FeatureExtraction.float()
        prepared = prepare_fx(features, get_default_qconfig_mapping(engine), example_inputs=(lines[0],))
        with torch.no_grad():
            for line in lines:
                prepared(line.float())
        out.FeatureExtraction = convert_fx(prepared)
    return out
