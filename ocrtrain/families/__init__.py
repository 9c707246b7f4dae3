"""Registry of model families: the one place that maps a family name to what builds, feeds,
trains, reads and exports it (see :class:`ocrtrain.families.base.ModelFamily`).

Built in: ``easyocr-crnn`` (EasyOCR generation-2 VGG-BiLSTM-CTC, english_g2; aliases
``english_g2``, ``crnn``) and ``dtrb`` (deep-text-recognition-benchmark
``[None|TPS]-[VGG|ResNet]-[None|BiLSTM]-[CTC|Attn]``; alias ``deep-text-recognition-benchmark``).

>>> get_family("english_g2").name
'easyocr-crnn'
>>> sorted(family_names())
['dtrb', 'easyocr-crnn']
"""
from __future__ import annotations

import difflib
from typing import Any, Mapping, Optional, Union

from torch import nn

from ..errors import ConfigError, ModelError
from .base import ModelFamily, Prediction

__all__ = ["ModelFamily", "Prediction", "DEFAULT_FAMILY", "register_family", "get_family", "family_names",
           "family_of_model"]

#: the family of checkpoints that record none (written before families existed) and of english_g2
DEFAULT_FAMILY = "easyocr-crnn"

_FAMILIES: dict[str, ModelFamily] = {}
_ALIASES: dict[str, str] = {}


def register_family(family: ModelFamily, replace: bool = False) -> ModelFamily:
    """Make `family` available under its name and aliases; a clash raises ConfigError unless `replace`."""
    if not isinstance(family, ModelFamily) or not family.name:
        raise ConfigError(f"{family!r} is not a named ModelFamily instance: subclass ModelFamily and set name")
    names = (family.name, *family.aliases)
    taken = [n for n in names if (n in _FAMILIES or n in _ALIASES) and not replace]
    if taken:
        raise ConfigError(f"model family name(s) {taken} are already registered: pick another name "
                          "or pass replace=True")
    _FAMILIES[family.name] = family
    for alias in family.aliases:
        _ALIASES[alias] = family.name
    return family


def family_names() -> list[str]:
    """Registered family names (without aliases)."""
    return list(_FAMILIES)


def get_family(name: Union[str, ModelFamily], options: Optional[Mapping[str, Any]] = None) -> ModelFamily:
    """The family registered as `name` (or an alias), bound to `options` when given
    (:meth:`ModelFamily.bind`); ConfigError with a suggestion for unknown names."""
    if isinstance(name, ModelFamily):
        return name.bind(options) if options is not None else name
    key = (name or "").strip()
    key = _ALIASES.get(key, key)
    if key in _FAMILIES:
        family = _FAMILIES[key]
        return family.bind(options) if options is not None else family
    known = sorted([*_FAMILIES, *_ALIASES])
    close = difflib.get_close_matches(str(name), known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise ConfigError(f"unknown model family {name!r}: {hint}known families are {', '.join(sorted(_FAMILIES))}")


def family_of_model(model: nn.Module) -> ModelFamily:
    """The registered family that builds `model` (DataParallel / torch.compile wrappers unwrapped)."""
    for attr in ("_orig_mod", "module", "_orig_mod"):
        inner = getattr(model, attr, None)
        if isinstance(inner, nn.Module):
            model = inner
    for family in _FAMILIES.values():
        if family.owns(model):
            return family.bind(family.model_options(model))
    raise ModelError(f"{type(model).__name__} is not a model of any registered family "
                     f"({', '.join(_FAMILIES)}): build it with get_family(name).build(options, num_classes)")


def _register_builtins() -> None:
    from .crnn import CrnnFamily

    from .dtrb import DtrbFamily

    register_family(CrnnFamily())
    register_family(DtrbFamily())


_register_builtins()
