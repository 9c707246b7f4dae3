"""Origin spec names without loading anything: the default origin and what reads as a spec.

The one spelling of ``english_g2`` (EasyOCR's English recognizer, the default base model) lives
here, so configs, the CLI and the workbench can name it without importing torch;
:mod:`ocrtrain.origins` loads what a spec names.

>>> DEFAULT_ORIGIN
'english_g2'
>>> is_origin_spec("run:runs/no-1@best"), is_origin_spec("scratch"), is_origin_spec("line.png")
(True, True, False)
"""
from __future__ import annotations

__all__ = ["ENGLISH_G2", "DEFAULT_ORIGIN", "NAMED_ORIGINS", "SPEC_PREFIXES", "is_origin_spec"]

#: EasyOCR's English recognizer: its model name, its charset's name and an origin spec.
ENGLISH_G2 = "english_g2"
#: The model a run starts from, and that reads, when none is named.
DEFAULT_ORIGIN = ENGLISH_G2
#: Specs that are a bare name.
NAMED_ORIGINS = (ENGLISH_G2, "scratch")
#: Specs that are a prefix and an argument (``run:PATH@best``, ``easyocr:DIR/NAME`` ...).
SPEC_PREFIXES = ("run:", "easyocr:", "dtrb:", "scratch:")


def is_origin_spec(text: str) -> bool:
    """Whether `text` is written as an origin spec (a named origin or a prefixed one), not a path."""
    return text in NAMED_ORIGINS or text.startswith(SPEC_PREFIXES)
