"""DTRB's option files: ``opt.txt`` as DTRB's train.py writes it (``key: value`` lines, next to the
saved model), default characters, and the command-line flags demo.py / test.py take.

>>> opts = DtrbOptions()
>>> " ".join(command_flags(opts, "0123456789abcdefghijklmnopqrstuvwxyz")[:4])
'--Transformation TPS --FeatureExtraction ResNet'
"""
from __future__ import annotations

import dataclasses
import string
from pathlib import Path
from typing import Optional, Union

from ..errors import ModelError
from .dtrb_model import DtrbOptions

__all__ = ["DTRB_CHARACTERS", "default_character", "find_options_file", "read_options_file",
           "options_file_text", "command_flags"]

#: DTRB's --character default, and what --sensitive sets (string.printable[:-6], 94 characters)
DTRB_CHARACTERS = ("0123456789abcdefghijklmnopqrstuvwxyz", string.printable[:-6])
_FIELDS = {f.name: f for f in dataclasses.fields(DtrbOptions)}


def default_character(num_class: int, prediction: str) -> Optional[str]:
    """DTRB's default characters whose class count (CTC: + blank; Attn: + [GO], [s]) is `num_class`."""
    extra = 2 if prediction == "Attn" else 1
    for chars in DTRB_CHARACTERS:
        if len(chars) + extra == num_class:
            return chars
    return None


def find_options_file(model_path: Union[str, Path]) -> Optional[Path]:
    """``NAME.opt.txt`` (ocrtrain's DTRB export) or ``opt.txt`` (DTRB's saved_models/EXP/) next to the model."""
    model_path = Path(model_path)
    for candidate in (model_path.with_name(model_path.stem + ".opt.txt"), model_path.with_name("opt.txt")):
        if candidate.is_file():
            return candidate
    return None


def _value(name: str, text: str, where: str):
    kind = _FIELDS[name].type
    if kind in (bool, "bool"):
        return text.strip() == "True"
    if kind in (int, "int"):
        try:
            return int(text.strip())
        except ValueError:
            raise ModelError(f"{where}: {name} is {text!r}, not an integer: fix the options file") from None
    return text.strip()


def read_options_file(path: Union[str, Path]) -> tuple[dict, Optional[str]]:
    """(DtrbOptions fields found, character) of a DTRB ``opt.txt``; other keys are ignored."""
    path = Path(path)
    options: dict = {}
    character = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        key, sep, value = line.partition(": ")
        if not sep:
            continue
        if key == "character":
            character = value  # kept exactly: a space may be one of the characters
        elif key in _FIELDS:
            options[key] = _value(key, value, f"{path}:{number}")
    return options, character


def options_file_text(options: DtrbOptions, character: str) -> str:
    """An ``opt.txt`` in DTRB's layout with the model options and the characters."""
    lines = ["------------ Options -------------"]
    lines += [f"{name}: {getattr(options, name)}" for name in _FIELDS]
    lines += [f"character: {character}", f"num_class: {len(character) + (2 if options.Prediction == 'Attn' else 1)}",
              "---------------------------------------", ""]
    return "\n".join(lines)


def command_flags(options: DtrbOptions, character: str) -> list[str]:
    """demo.py / test.py arguments for a model with `options` and `character` (no --sensitive:
    DTRB would replace the characters with string.printable[:-6])."""
    args: list[str] = []
    for name in ("Transformation", "FeatureExtraction", "SequenceModeling", "Prediction", "num_fiducial", "imgH",
                 "imgW", "input_channel", "output_channel", "hidden_size", "batch_max_length"):
        args += [f"--{name}", str(getattr(options, name))]
    if options.PAD:
        args.append("--PAD")
    return args + ["--character", character]
