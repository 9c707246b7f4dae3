"""Resizing a classifier head to another charset: known characters keep their rows exactly.

New characters start from a look-alike letter's row (``å`` from ``a``, ``ø`` from ``o``) lowered
by a margin, else small random weights. Families give the class offset of the first character
(CTC: 1 after the blank; attention: 2 after ``[GO]`` and ``[s]``); the special rows are kept.

>>> from ocrtrain.charset import Charset
>>> row_sources(Charset("ab"), Charset("bå"), offset=1)
[(1, 2, False), (2, 1, True)]
"""
from __future__ import annotations

import unicodedata
from typing import Optional

import torch
from torch import nn

from ..charset import Charset

__all__ = ["LOOKALIKE", "NEW_ROW_BIAS_MARGIN", "base_letter", "row_sources", "resize_linear_rows",
           "resize_input_columns"]

#: Letters without a Unicode decomposition, mapped to the ASCII letter they look like.
LOOKALIKE = {"ø": "o", "Ø": "O", "æ": "a", "Æ": "A", "œ": "o", "Œ": "O", "ß": "B", "đ": "d", "Đ": "D",
             "ð": "d", "Ð": "D", "ł": "l", "Ł": "L", "ı": "i", "ŋ": "n", "Ŋ": "N", "þ": "p", "Þ": "P"}
#: New rows copied from a look-alike start this much below it (e^-2 ~ 0.14 times as likely): the grown
#: model still reads like the original, yet the new class gets gradient from the first step.
NEW_ROW_BIAS_MARGIN = 2.0


def base_letter(char: str) -> Optional[str]:
    """The letter `char` looks like (its decomposition's base, or :data:`LOOKALIKE`), if any."""
    if char in LOOKALIKE:
        return LOOKALIKE[char]
    decomposed = unicodedata.normalize("NFD", char)
    return decomposed[0] if decomposed != char else None


def row_sources(old: Charset, new: Charset, offset: int) -> list[tuple[int, Optional[int], bool]]:
    """(new class, old class or None, copied from a look-alike) for every character of `new`."""
    out = []
    for i, char in enumerate(new.chars):
        if char in old:
            out.append((i + offset, old.index(char) - 1 + offset, False))
            continue
        base = base_letter(char)
        if base is not None and base in old:
            out.append((i + offset, old.index(base) - 1 + offset, True))
        else:
            out.append((i + offset, None, False))
    return out


def resize_linear_rows(old: nn.Linear, old_charset: Charset, new_charset: Charset, offset: int) -> nn.Linear:
    """A Linear with one output row per class of `new_charset` (the first `offset` rows kept)."""
    head = nn.Linear(old.in_features, len(new_charset) + offset, bias=old.bias is not None,
                     device=old.weight.device, dtype=old.weight.dtype)
    with torch.no_grad():
        nn.init.normal_(head.weight, 0.0, 0.01)
        if head.bias is not None:
            head.bias.fill_(float(old.bias[offset:].min()) if old.out_features > offset else 0.0)
        head.weight[:offset] = old.weight[:offset]
        if head.bias is not None:
            head.bias[:offset] = old.bias[:offset]
        for i, j, lookalike in row_sources(old_charset, new_charset, offset):
            if j is None:
                continue
            head.weight[i] = old.weight[j]
            if head.bias is not None:
                head.bias[i] = old.bias[j] - (NEW_ROW_BIAS_MARGIN if lookalike else 0.0)
    return head


def resize_input_columns(weight: torch.Tensor, first: int, old_charset: Charset, new_charset: Charset,
                         offset: int) -> torch.Tensor:
    """`weight` [out, first + classes] with its class columns (one-hot inputs) resized to `new_charset`:
    the first `first` + `offset` columns are kept, known characters keep theirs, look-alikes are
    copied, others start small and random."""
    new = torch.empty(weight.shape[0], first + offset + len(new_charset), dtype=weight.dtype, device=weight.device)
    with torch.no_grad():
        nn.init.normal_(new, 0.0, 0.01)
        new[:, :first + offset] = weight[:, :first + offset]
        for i, j, _ in row_sources(old_charset, new_charset, offset):
            if j is not None:
                new[:, first + i] = weight[:, first + j]
    return new
