"""The character codec of a CTC recognizer.

Invariants:
- index 0 is the CTC blank; character ``i`` of :attr:`Charset.chars` has class ``i + 1``
  (EasyOCR's ``CTCLabelConverter`` layout), so ``num_classes == len(chars) + 1``;
- characters are unique single code points, kept in the given order;
- encoding is *strict* (unknown characters raise) unless ``lenient=True`` (they are dropped);
- decoding greedily collapses repeats and removes blanks, as EasyOCR does.

>>> cs = Charset("ab")
>>> cs.encode("ba"), cs.num_classes
([2, 1], 3)
>>> cs.decode_ctc([0, 1, 1, 0, 2, 2])
'ab'
"""
from __future__ import annotations

from collections import Counter
from typing import Iterable, Sequence

from .errors import ConfigError

__all__ = ["Charset", "ENGLISH_G2_CHARS", "english_g2_charset"]

#: english_g2's characters in EasyOCR's order (number + symbol + letters), 96 + blank = 97 classes.
ENGLISH_G2_CHARS = (
    "0123456789"
    "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ €"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)


class Charset:
    """An ordered set of characters with CTC class indices (0 = blank)."""

    BLANK = 0

    def __init__(self, chars: Iterable[str]):
        chars = list(chars)
        for c in chars:
            if len(c) != 1:
                raise ConfigError(f"charset entry {c!r} is not a single character: split it")
        dup = [c for c, n in Counter(chars).items() if n > 1]
        if dup:
            raise ConfigError(f"charset has duplicate characters {dup}: remove the repeats")
        self.chars: str = "".join(chars)
        self._index = {c: i + 1 for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def __contains__(self, char: str) -> bool:
        return char in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Charset) and other.chars == self.chars

    def __hash__(self) -> int:
        return hash(self.chars)

    def __repr__(self) -> str:
        return f"Charset({self.chars!r})"

    @property
    def num_classes(self) -> int:
        return len(self.chars) + 1

    def index(self, char: str) -> int:
        return self._index[char]

    def missing(self, text: str) -> set[str]:
        """Characters of `text` this charset cannot encode."""
        return {c for c in text if c not in self._index}

    def encode(self, text: str, lenient: bool = False) -> list[int]:
        """Class indices of `text`; unknown characters raise unless `lenient`."""
        if not lenient:
            bad = self.missing(text)
            if bad:
                raise ConfigError(
                    f"label {text!r} has characters {sorted(bad)} outside the charset: "
                    "extend the charset or skip the sample"
                )
            return [self._index[c] for c in text]
        return [self._index[c] for c in text if c in self._index]

    def decode(self, indices: Sequence[int]) -> str:
        """Characters of class indices (no CTC collapsing; blanks skipped)."""
        return "".join(self.chars[i - 1] for i in indices if i != self.BLANK)

    def decode_ctc(self, indices: Sequence[int]) -> str:
        """Greedy CTC decoding: collapse repeats, drop blanks."""
        out = []
        prev = None
        for i in indices:
            i = int(i)
            if i != prev and i != self.BLANK:
                out.append(self.chars[i - 1])
            prev = i
        return "".join(out)

    def extended(self, extra: Iterable[str]) -> "Charset":
        """A new charset: these characters in order, then unseen `extra` ones appended (sorted)."""
        new = sorted({c for c in extra if c not in self._index})
        return Charset(self.chars + "".join(new))

    def restricted(self, keep: Iterable[str]) -> "Charset":
        """A new charset with only characters in `keep`, original order kept."""
        keep = set(keep)
        return Charset(c for c in self.chars if c in keep)

    def to_list(self) -> list[str]:
        return list(self.chars)


def english_g2_charset() -> Charset:
    """The 96 characters (97 classes with blank) of EasyOCR's english_g2."""
    return Charset(ENGLISH_G2_CHARS)
