"""Cleaning one label's text at import: what is normalised silently and what rejects the row.

A label becomes the model's charset, so invisible characters would become classes the model
must learn to emit from nothing, and end up in the exported model. The rules:

- NFC normalisation (``a`` + combining ring -> ``å``): the same letter is one class;
- other spaces (no-break, thin, ideographic ...) become an ordinary space;
- invisible characters that carry no text are removed: zero-width space U+200B, word joiner
  U+2060, BOM U+FEFF, soft hyphen U+00AD, Mongolian vowel separator U+180E, and the zero-width
  (non-)joiners U+200C/U+200D except between two letters of a script that uses them (Arabic,
  Persian, Indic, emoji sequences: code points from U+0370 up);
- rejected, with the code point, its name and position: control characters (tab, newline,
  NUL, DEL, C1), bidirectional controls (LRM/RLM/ALM, embeddings, overrides, isolates: a label
  must hold the characters in reading order), any other invisible format character, line and
  paragraph separators, unassigned code points and lone surrogates.

>>> clean_label("Mel\\u200bk\\u00a01 l")
('Melk 1 l', True, None)
>>> clean_label("abc\\u202e")[2]
'has the bidirectional control U+202E (RIGHT-TO-LEFT OVERRIDE) at position 4: write the text in reading order without direction marks'
"""
from __future__ import annotations

import unicodedata
from typing import Optional

__all__ = ["clean_label", "BIDI_CONTROLS", "REMOVED"]

#: Bidirectional formatting characters (they reorder the text shown, not the text itself).
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
#: Invisible characters removed wherever they appear.
REMOVED = frozenset("\u200b\u2060\ufeff\u00ad\u180e")
_JOINERS = frozenset("\u200c\u200d")


def _joins_letters(text: str, i: int) -> bool:
    """True when the joiner at `i` sits between two letters/marks/symbols of a script that uses it."""
    if i == 0 or i == len(text) - 1:
        return False
    around = (text[i - 1], text[i + 1])
    return all(ord(c) >= 0x370 and unicodedata.category(c)[0] in "LMS" for c in around)


_CONTROL_NAMES = {0: "NUL", 9: "TAB", 10: "LINE FEED", 13: "CARRIAGE RETURN", 27: "ESCAPE", 127: "DELETE"}


def _describe(c: str) -> str:
    return f"U+{ord(c):04X} ({unicodedata.name(c, _CONTROL_NAMES.get(ord(c), 'control'))})"


def _problem(c: str, position: int) -> Optional[str]:
    cat = unicodedata.category(c)
    where = f"{_describe(c)} at position {position}"
    if c in BIDI_CONTROLS:
        return f"has the bidirectional control {where}: write the text in reading order without direction marks"
    if cat == "Cc":
        return f"has the control character {where}: remove it (a text line cannot show it)"
    if cat == "Cf":
        return f"has the invisible format character {where}: remove it"
    if cat in ("Zl", "Zp"):
        return f"has the line break {where}: one label is one line; remove it"
    if cat == "Cs":
        return f"has a lone surrogate {where}: save the labels as valid UTF-8"
    if cat == "Cn":
        return f"has the unassigned code point {where}: remove it"
    return None


def clean_label(label: str) -> tuple[str, bool, Optional[str]]:
    """(cleaned label, whether it changed, problem or None). With a problem the row is rejected."""
    text = unicodedata.normalize("NFC", label)
    out = []
    for i, c in enumerate(text):
        if c in REMOVED or (c in _JOINERS and not _joins_letters(text, i)):
            continue
        if c != " " and unicodedata.category(c) == "Zs":
            c = " "
        problem = None if c in _JOINERS else _problem(c, i + 1)
        if problem:
            return label, False, problem
        out.append(c)
    cleaned = "".join(out)
    return cleaned, cleaned != label, None
