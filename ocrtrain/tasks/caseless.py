"""Case-insensitive training on lines whose labels are upper case by convention (SROIE-style).

Some ground truth writes every line in capitals whatever the print shows (SROIE's receipts:
``Tan Chay Yee`` is labelled ``TAN CHAY YEE``). Trained on as is, the model must learn to read a
printed ``a`` as ``A`` on those lines while every other source (synthetic, replay) says ``a``: the
two disagree, the head fits neither, and the model forgets how to write lower case. For such a
source the CTC loss is taken over case-folded classes instead: a letter's probability is the sum
of its upper- and lower-case classes, so the line teaches *which letter* it shows and leaves the
case to the other sources (and to the origin's prior).

Which sources: ``caseless`` = ``auto`` folds every training source whose labels hold at least
:data:`MIN_LETTERS` letters and not one lower-case letter (never generated replay lines); ``off``
(the default) folds none; otherwise a comma list of dataset folder names. Measured on SROIE
(``python -m bench.real_mix --variants mixed-real3-lr1e-3,mixed-real3-lr1e-3-cased``): with replay
on, the model kept lower case anyway (general set 99.3% case-sensitive when trained on the upper-case
labels as written, 98.3% folded) and read as many held-out receipt lines (76.7% vs 76.1%), so
folding is an option, not the default; it matters where nothing else in the mix shows lower case.

>>> fold = CaseFold.from_chars("aAb-")
>>> fold.pairs
[(2, 1)]
>>> caseless_sources("auto", ["sroie", "synth"], [["TOTAL 12.50", "CASH"] * 50, ["Total 12.50"]])
[0]
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Sequence

from ..errors import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = ["CaseFold", "caseless_sources", "check_caseless", "MIN_LETTERS"]

#: ``auto`` folds a source only when its labels hold this many letters (and no lower-case one).
MIN_LETTERS = 200

_NAMES = re.compile(r"^(auto|off|[A-Za-z0-9_][A-Za-z0-9_.-]*(,[A-Za-z0-9_][A-Za-z0-9_.-]*)*)$")


def check_caseless(value: str) -> None:
    """ConfigError unless `value` is a valid ``caseless`` setting (the message says the fix)."""
    if not _NAMES.match(value):
        raise ConfigError(f"caseless {value!r} must be auto, off or a comma list of training dataset names "
                          "(e.g. sroie or sroie,forms)")


def caseless_sources(setting: str, names: Sequence[str], labels: Sequence[Sequence[str]],
                     replay: Sequence[int] = ()) -> list[int]:
    """Indices of the training sources to train case-insensitively (see module doc).

    `names` are the sources' folder names, `labels` their training labels, `replay` the indices
    of generated replay sources (never folded)."""
    if setting == "off":
        return []
    if setting == "auto":
        return [i for i, rows in enumerate(labels) if i not in replay and _upper_only(rows)]
    wanted = [n.strip() for n in setting.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in names]
    if unknown:
        raise ConfigError(f"caseless names {unknown} that are not training datasets of this run "
                          f"({', '.join(names)}): use their folder names, auto or off")
    return [i for i, n in enumerate(names) if n in wanted and i not in replay]


def _upper_only(rows: Sequence[str]) -> bool:
    letters = 0
    for label in rows:
        for c in label:
            if c.islower():
                return False
            letters += c.isupper()
    return letters >= MIN_LETTERS


class CaseFold:
    """Upper/lower class pairs of a charset (class = character index + 1, blank 0) and the fold
    of CTC log-probabilities onto the upper-case classes."""

    def __init__(self, pairs: list[tuple[int, int]]):
        import torch

        self.pairs = pairs
        self._upper = torch.tensor([u for u, _ in pairs], dtype=torch.long)
        self._lower = torch.tensor([lo for _, lo in pairs], dtype=torch.long)
        self._to_upper = {lo: u for u, lo in pairs}

    @classmethod
    def from_chars(cls, chars: str) -> "CaseFold":
        index = {c: i + 1 for i, c in enumerate(chars)}
        pairs = [(index[c.upper()], index[c]) for c in chars
                 if c.islower() and len(c.upper()) == 1 and c.upper() in index]
        return cls(pairs)

    def targets(self, targets: Sequence[Sequence[int]]) -> list[list[int]]:
        """Targets with every lower-case class replaced by its upper-case one."""
        return [[self._to_upper.get(c, c) for c in seq] for seq in targets]

    def log_probs(self, log_probs: "torch.Tensor") -> "torch.Tensor":
        """Log-probabilities [..., C] with each upper class holding the pair's summed probability
        and each lower class none (a distribution over the folded classes)."""
        import torch

        if not self.pairs:
            return log_probs
        up, low = self._upper.to(log_probs.device), self._lower.to(log_probs.device)
        merged = torch.logaddexp(log_probs.index_select(-1, up), log_probs.index_select(-1, low))
        folded = log_probs.index_copy(-1, up, merged)
        floor = merged.new_full(merged.shape, -1e4)  # not -inf: keeps CTC's sums finite
        return folded.index_copy(-1, low, floor)
