"""Text-line templates such as ``{item} {price}`` and the generated fields they compose.

These fill the labels of synthetic lines (:mod:`ocrtrain.synth`); the saved *training*
templates (YAML TrainConfigs) are :mod:`ocrtrain.train` and ``ocrtrain/train_templates/``.

Fields: ``{item}`` (an entry of the text source), ``{price}`` (mostly 1-99, about 10% 100-999,
two decimals after a comma, e.g. ``42,90``), ``{number}``, ``{qty}`` (e.g. ``2 x``), ``{date}``
(``21.11.2026``), ``{time}`` (``14:32``), ``{weight}`` (``0,482 kg``). Labels are drawn in the
parent process from one seeded ``random.Random``, so the same seed gives the same labels.

Spaces: the default templates use single spaces, and :func:`make_labels` collapses runs of
spaces (from a template such as the tutorial's ``{item}    {price}`` or from an item) unless told
not to. A CTC recognizer cannot count spaces, so a label with four of them teaches it to invent
runs of spaces that no metric forgives.

>>> import random
>>> fill_template("{item} {price}", ["Melk"], random.Random(0))
'Melk 54,05'
"""
from __future__ import annotations

import random
import re
import string
from typing import Callable, Sequence

from .errors import ConfigError

__all__ = ["FIELDS", "DEFAULT_TEMPLATES", "DEFAULT_WEIGHTS", "template_fields", "check_template",
           "fill_template", "make_price", "make_labels", "collapse_spaces"]

#: The built-in receipt-line templates and their relative weights (single spaces).
DEFAULT_TEMPLATES = ("{item} {price}", "{item}", "{qty} {item} {price}", "{price}", "{date}")
DEFAULT_WEIGHTS = (6.0, 2.0, 1.0, 0.5, 0.5)


def make_price(rng: random.Random) -> str:
    """The tutorial's rule: about 10% 100-999, otherwise 1-99, two decimals after a comma."""
    whole = rng.randint(100, 999) if rng.random() < 0.1 else rng.randint(1, 99)
    return f"{whole},{rng.randint(0, 99):02d}"


FIELDS: dict[str, Callable[[random.Random], str]] = {
    "price": make_price,
    "number": lambda r: str(r.randint(0, 99999)),
    "qty": lambda r: f"{r.randint(1, 9)} x",
    "date": lambda r: f"{r.randint(1, 28):02d}.{r.randint(1, 12):02d}.{r.randint(2015, 2030)}",
    "time": lambda r: f"{r.randint(7, 22):02d}:{r.randint(0, 59):02d}",
    "weight": lambda r: f"{r.randint(0, 2)},{r.randint(1, 999):03d} kg",
}


def template_fields(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]


def check_template(template: str) -> None:
    """Raise ConfigError for unknown fields or bad braces."""
    try:
        names = template_fields(template)
    except ValueError as exc:
        raise ConfigError(f"template {template!r} is malformed ({exc}): balance the braces, use {{{{ for a literal brace") from None
    valid = ["item", *FIELDS]
    for name in names:
        if name not in valid:
            raise ConfigError(f"template {template!r} uses unknown field {{{name}}}: valid fields are "
                              + ", ".join("{" + v + "}" for v in valid))
    if not template.strip():
        raise ConfigError("a template is empty: give text such as '{item} {price}'")


def fill_template(template: str, items: Sequence[str], rng: random.Random) -> str:
    values = {"item": rng.choice(items) if "item" in template_fields(template) else ""}
    for name in template_fields(template):
        if name in FIELDS:
            values[name] = FIELDS[name](rng)
    return template.format(**values)


def collapse_spaces(text: str) -> str:
    """`text` with each run of spaces made one space, stripped.

    >>> collapse_spaces("  Melk    12,50 ")
    'Melk 12,50'
    """
    return re.sub(" {2,}", " ", text).strip()


def make_labels(count: int, templates: Sequence[str], weights: Sequence[float], items: Sequence[str],
                seed: int, upper_prob: float = 0.0, title_prob: float = 0.0,
                single_spaces: bool = True) -> list[str]:
    """`count` labels from weighted templates, with optional upper/title-case variants.

    With `single_spaces` (the default) runs of spaces are collapsed (see the module doc).
    """
    for t in templates:
        check_template(t)
    rng = random.Random(seed)
    labels = []
    for _ in range(count):
        template = rng.choices(templates, weights=weights)[0]
        text = fill_template(template, items, rng).strip()
        if single_spaces:
            text = collapse_spaces(text)
        r = rng.random()
        if r < upper_prob:
            text = text.upper()
        elif r < upper_prob + title_prob:
            text = text.title()
        labels.append(text)
    return labels
