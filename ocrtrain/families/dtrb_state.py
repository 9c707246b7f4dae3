"""Reading a DTRB model's options from its state dict: which stages it has, and their sizes.

Stages are told apart by their keys (``Transformation.*`` = TPS, ``FeatureExtraction.ConvNet.conv0_1``
= ResNet, ``ConvNet.0`` + ``ConvNet.18`` = VGG, ``SequenceModeling.*`` = BiLSTM,
``Prediction.attention_cell.*`` = Attn, ``Prediction.weight`` = CTC); sizes by their shapes. What a
state dict does not hold (``batch_max_length``, ``sensitive``, ``PAD``; ``imgW`` without TPS) keeps
DTRB's defaults unless the caller overrides it (e.g. from DTRB's ``opt.txt``).

>>> import torch
>>> from ocrtrain.families.dtrb_model import DtrbModel, DtrbOptions
>>> sd = DtrbModel(DtrbOptions(output_channel=64, hidden_size=32), 38).state_dict()
>>> options, classes = options_from_state_dict(sd)
>>> options["Transformation"], options["FeatureExtraction"], options["Prediction"], classes
('TPS', 'ResNet', 'Attn', 38)
"""
from __future__ import annotations

from typing import Mapping

import torch

from ..errors import ConfigError, ModelError
from .dtrb_model import DtrbOptions

__all__ = ["options_from_state_dict"]

_TPS = "Transformation.LocalizationNetwork."


def _shape(sd: Mapping[str, torch.Tensor], key: str, what: str, where: str) -> tuple[int, ...]:
    if key not in sd:
        raise ModelError(f"{where} has {what} keys but not {key!r}: it is not a complete DTRB model "
                         "(deep-text-recognition-benchmark's Model state dict); use the original file")
    return tuple(sd[key].shape)


def _transformation(sd, where: str, out: dict) -> None:
    if not any(k.startswith("Transformation.") for k in sd):
        out["Transformation"] = "None"
        return
    what = "a TPS transformation stage (Transformation.*)"
    out["Transformation"] = "TPS"
    out["num_fiducial"] = _shape(sd, _TPS + "localization_fc2.weight", what, where)[0] // 2
    fiducial = _shape(sd, "Transformation.GridGenerator.inv_delta_C", what, where)[0] - 3
    points = _shape(sd, "Transformation.GridGenerator.P_hat", what, where)[0]
    if fiducial != out["num_fiducial"] or points % out.get("imgH", 32):
        raise ModelError(f"{where}: TPS grid of {points} points for {fiducial} fiducials does not fit imgH "
                         f"{out.get('imgH', 32)}: pass the imgH/imgW the model was trained with (DTRB's opt.txt)")
    out["imgW"] = points // out.get("imgH", 32)


def _features(sd, where: str, out: dict) -> None:
    if any("GRCL" in k or ".wgf_u." in k for k in sd):
        raise ModelError(f"{where} has an RCNN (GRCL) feature extractor, which ocrtrain does not build: "
                         "use a DTRB model with VGG or ResNet features")
    if "FeatureExtraction.ConvNet.conv0_1.weight" in sd:
        out["FeatureExtraction"] = "ResNet"
        out["output_channel"] = _shape(sd, "FeatureExtraction.ConvNet.conv4_2.weight", "ResNet", where)[0]
        first = "FeatureExtraction.ConvNet.conv0_1.weight"
    elif "FeatureExtraction.ConvNet.0.weight" in sd:
        out["FeatureExtraction"] = "VGG"
        out["output_channel"] = _shape(sd, "FeatureExtraction.ConvNet.18.weight", "VGG", where)[0]
        first = "FeatureExtraction.ConvNet.0.weight"
    else:
        raise ModelError(f"{where} has no DTRB feature extractor (FeatureExtraction.ConvNet.0 or .conv0_1), "
                         f"found keys such as {list(sd)[:3]}: it is not a deep-text-recognition-benchmark model")
    out["input_channel"] = tuple(sd[first].shape)[1]


def _head(sd, where: str, out: dict) -> int:
    if any(k.startswith("SequenceModeling.") for k in sd):
        out["SequenceModeling"] = "BiLSTM"
        out["hidden_size"] = _shape(sd, "SequenceModeling.0.rnn.weight_hh_l0", "BiLSTM", where)[1]
    else:
        out["SequenceModeling"] = "None"
    if any(k.startswith("Prediction.attention_cell.") for k in sd):
        out["Prediction"] = "Attn"
        out["hidden_size"] = _shape(sd, "Prediction.attention_cell.h2h.weight", "attention", where)[0]
        return _shape(sd, "Prediction.generator.weight", "attention", where)[0]
    out["Prediction"] = "CTC"
    return _shape(sd, "Prediction.weight", "a CTC prediction (Prediction.*)", where)[0]


def options_from_state_dict(state_dict: Mapping[str, torch.Tensor], where: str = "state dict",
                            known: Mapping = None) -> tuple[dict, int]:
    """(DtrbOptions dict, num_class) of a DTRB state dict (``module.`` stripped); `known` options
    (imgH, batch_max_length, sensitive, PAD...) fill what the tensors do not tell."""
    if not state_dict or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise ModelError(f"{where} is not a tensor state dict: expected DTRB parameter names like "
                         "'FeatureExtraction.ConvNet.conv0_1.weight'")
    if any("_packed_params" in k for k in state_dict):
        raise ModelError(f"{where} holds quantized weights: use the float model file")
    out = dict(known or {})
    _transformation(state_dict, where, out)
    _features(state_dict, where, out)
    num_class = _head(state_dict, where, out)
    if out["input_channel"] != 1:
        raise ModelError(f"{where} expects {out['input_channel']}-channel (--rgb) images: ocrtrain feeds grayscale "
                         "lines; use a model trained without --rgb (input_channel 1)")
    try:
        return DtrbOptions.from_dict(out).to_dict(), num_class
    except ConfigError as exc:
        raise ModelError(f"{where}: {exc}") from None
