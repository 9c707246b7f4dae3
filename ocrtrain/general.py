"""A reproducible "general" validation set: ordinary Latin text lines that english_g2 already reads.

It guards against forgetting: fine-tuning on receipts must not make the model worse at plain
text. Lines mix English and Norwegian words (ASCII spellings only), numbers, dates, amounts,
mixed case and punctuation; nothing of the receipt domain (no grocery names, no ``{item}
{price}`` lines). Every character is one english_g2 knows. Words come from trdg's dictionaries
(trdg 1.8.0 is pinned, so the word lists are fixed), fonts from trdg's plain text faces, the
rendering is the synth's ``plain`` preset with mild skew and blur. Samples alternate between
the ``val`` and ``test`` splits; there is no ``train`` split. The same seed and count give the
same labels, the same PNG bytes and so the same manifest ``content_hash``, whatever the number of
workers.

>>> lines = general_lines(4, seed=0)
>>> len(lines), all(set(line) <= set(ENGLISH_G2_CHARS) for line in lines)
(4, True)
>>> # generate_general_set("datasets/general", count=1000, seed=0)  # val/ test/ manifest.json
"""
from __future__ import annotations

import random
from functools import lru_cache
from pathlib import Path
from typing import Callable, Optional, Union

from .charset import ENGLISH_G2_CHARS
from .events import Callback
from .fonts import trdg_font_dir

__all__ = ["GENERAL_VERSION", "GENERAL_COUNT", "general_lines", "general_config", "generate_general_set", "replay_lines",
           "generate_replay_set", "ENGLISH_G2_CHARS"]

#: Bumped whenever the line recipe changes, and recorded in the manifest.
GENERAL_VERSION = 1
#: Lines in the general set when no count is given (``ocrtrain general``, ``synth --preset general``).
GENERAL_COUNT = 1000
_ALLOWED = set(ENGLISH_G2_CHARS)


@lru_cache(maxsize=2)
def _words(lang: str) -> tuple[str, ...]:
    """Alphabetic ASCII words of trdg's `lang` dictionary (2..10 letters), file order kept."""
    path = trdg_font_dir().parent.parent / "dicts" / f"{lang}.txt"
    words = []
    for line in path.read_text(encoding="utf-8").splitlines():
        w = line.strip()
        # English: lower-case entries only (the capitalised ones are mostly names).
        if 2 <= len(w) <= 10 and w.isascii() and w.isalpha() and (lang != "en" or w.islower()):
            words.append(w)
    # no.txt is ordered by frequency: its first 20000 words are everyday Norwegian.
    return tuple(words[:20000] if lang == "no" else words)


def _word(rng: random.Random) -> str:
    return rng.choice(_words("no" if rng.random() < 0.4 else "en"))


def _case(text: str, rng: random.Random) -> str:
    r = rng.random()
    if r < 0.4:
        return text.lower()
    if r < 0.7:
        return text[:1].upper() + text[1:].lower()
    if r < 0.85:
        return " ".join(w[:1].upper() + w[1:].lower() for w in text.split(" "))
    return text.upper()


def _phrase(rng: random.Random) -> str:
    words = [_word(rng) for _ in range(rng.randint(2, 6))]
    if len(words) > 3 and rng.random() < 0.3:
        words[rng.randrange(1, len(words) - 1)] += ","
    text = _case(" ".join(words), rng)
    r = rng.random()
    if r < 0.2:
        text += rng.choice("...!?:;")
    elif r < 0.3:
        text = f'"{text}"' if rng.random() < 0.5 else f"({text})"
    return text


def _number(rng: random.Random) -> str:
    kind = rng.randrange(10)
    if kind == 0:
        return f"{rng.randint(1990, 2030)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if kind == 1:
        return f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}"
    if kind == 2:
        return f"{rng.randint(0, 99)}.{rng.randint(0, 9)}%"
    if kind == 3:
        return f"${rng.randint(1, 9)},{rng.randint(0, 999):03d}.{rng.randint(0, 99):02d}"
    if kind == 4:
        return f"+47 {rng.randint(400, 999)} {rng.randint(10, 99)} {rng.randint(100, 999)}"
    if kind == 5:
        return f"#{rng.randint(100, 99999)}"
    if kind == 6:
        return f"{rng.randint(1, 9)}/{rng.randint(2, 12)}"
    if kind == 7:
        return f"v{rng.randint(0, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}"
    if kind == 8:
        return str(rng.randint(0, 10 ** rng.randint(1, 7)))
    return f"{rng.randint(1, 999)} {rng.choice(['km', 'kg', 'mm', 'cm', 'ml', 'GB', 'MB'])}"


def _mixed(rng: random.Random) -> str:
    kind = rng.choice((0, 0, 1, 1, 2, 2, 3, 4))
    word = _word(rng)
    if kind == 0:
        return f"{_case(word, rng)} {rng.randint(1, 999)}"
    if kind == 1:
        return f"{_case(_word(rng) + ' ' + word, rng)}: {_number(rng)}"
    if kind == 2:
        return f"{rng.randint(1, 99)} {_case(word, rng)}"
    if kind == 3:
        return f"{word.lower()}@{_word(rng).lower()}.{rng.choice(['com', 'no', 'org', 'net'])}"
    return f"www.{word.lower()}{rng.choice(['.com', '.no', '.org'])}/{_word(rng).lower()}"


_KINDS: tuple[tuple[Callable[[random.Random], str], float], ...] = ((_phrase, 0.55), (_number, 0.2), (_mixed, 0.25))


def general_lines(count: int, seed: int = 0) -> list[str]:
    """`count` general text lines drawn from `seed` (only english_g2 characters, single spaces)."""
    rng = random.Random(f"general/{GENERAL_VERSION}/{seed}")
    makers, weights = zip(*_KINDS)
    lines = []
    while len(lines) < count:
        line = " ".join(rng.choices(makers, weights)[0](rng).split())
        if line and set(line) <= _ALLOWED and len(line) <= 48:
            lines.append(line)
    return lines


def general_config(count: int = GENERAL_COUNT, seed: int = 0, workers: int = 0):
    """The SynthConfig the general set is rendered with (its labels come from :func:`general_lines`)."""
    from .synth import RenderConfig, SynthConfig

    render = RenderConfig(preset="plain", fonts="text", skew=1, blur=0.8, backgrounds=("plain", "noise"))
    return SynthConfig(count=count, seed=seed, workers=workers, upper_prob=0.0, render=render)


def generate_general_set(out: Union[str, Path], count: int = GENERAL_COUNT, seed: int = 0, workers: int = 0,
                         overwrite: bool = False, callback: Optional[Callback] = None) -> Path:
    """Render the general set into a dataset folder at `out` (val/ and test/ splits only).

    >>> # generate_general_set("datasets/general", count=400, seed=0)
    """
    from .synth import generate_dataset

    labels = general_lines(count, seed)
    splits = ["val" if i % 2 == 0 else "test" for i in range(count)]
    info = {"kind": "general", "source": "general", "origin": f"ocrtrain.general v{GENERAL_VERSION} (trdg en/no words)",
            "general_version": GENERAL_VERSION, "seed": seed}
    return generate_dataset(general_config(count, seed, workers), out, callback=callback, overwrite=overwrite,
                            labels=labels, splits=splits, source_info=info)


def replay_lines(count: int, seed: int, exclude: int = 4000) -> list[str]:
    """`count` general lines for replay training: drawn from `seed`, never one of the first `exclude`
    lines of the general validation set (seed 0, whose val/test splits alternate over them)."""
    if seed == 0:
        raise ValueError("replay lines must not use seed 0: that is the general validation set's seed")
    taken = set(general_lines(exclude, 0))
    lines: list[str] = []
    batch = count
    while len(lines) < count:
        lines = [line for line in general_lines(batch, seed) if line not in taken][:count]
        batch += max(16, count // 10)
    return lines


def generate_replay_set(out: Union[str, Path], count: int = 4000, seed: int = 1000, workers: int = 0,
                        overwrite: bool = False, callback: Optional[Callback] = None) -> Path:
    """Render `count` general replay lines into a dataset folder at `out` (a ``train`` split only)."""
    from .synth import generate_dataset

    info = {"kind": "general-replay", "source": "general",
            "origin": f"ocrtrain.general v{GENERAL_VERSION} (trdg en/no words)", "general_version": GENERAL_VERSION,
            "seed": seed}
    return generate_dataset(general_config(count, seed, workers), out, callback=callback, overwrite=overwrite,
                            labels=replay_lines(count, seed), splits=["train"] * count, source_info=info)
